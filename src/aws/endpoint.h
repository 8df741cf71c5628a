// The AWS-compatible endpoints on the main listener (SPEC 12): a request to
// a queue URL's path, or to `/` in AWS form (X-Amz-Target, a SigV4
// signature, a form-encoded Action), is answered here instead of by the /v1
// route table (any other path is never AWS, whatever it carries):
// authenticated with SigV4 against a tenant's AWS credentials, checked for
// the action's scope, and handed to EventBridge (eventbridge.h) or SQS
// (sqs.h). Every answer is in the request's own wire protocol.
#pragma once

#include <boost/json.hpp>
#include <functional>
#include <memory>
#include <string>

#include "api/context.h"
#include "api/http_types.h"
#include "aws/protocol.h"
#include "aws/sigv4.h"

namespace triggers::aws {

// Queue URLs are <base>/sqs/<tenant>/<queue name>.
inline constexpr std::string_view kQueuePathPrefix = "/sqs/";

// One authenticated AWS call, as its action handler sees it.
struct AwsCall {
  api::Context* ctx = nullptr;
  const api::Request* req = nullptr;
  Protocol protocol = Protocol::kSqsJson;
  std::string action;
  boost::json::object input;
  std::shared_ptr<const api::Principal> who;
  std::string region;    // of the signature's credential scope
  std::string base_url;  // "http://<Host>", for queue URLs
};

struct Outcome {
  bool ok = true;
  boost::json::object output;
  Error error{ErrorKind::kInternal, ""};
  static Outcome Ok(boost::json::object o) { return {true, std::move(o), {}}; }
  static Outcome Fail(ErrorKind k, std::string m) { return {false, {}, {k, std::move(m)}}; }
};
// Called exactly once, from any thread.
using Done = std::function<void(Outcome)>;

class Endpoint {
 public:
  explicit Endpoint(api::Context* ctx) : ctx_(ctx) {}
  // True when `req` is in AWS form; the caller then hands it to Handle.
  static bool Recognise(const api::Request& req);
  // `req` must stay valid until `respond` has been called.
  void Handle(const api::Request& req, api::Respond respond);

 private:
  // Loads the access key from the store on the blocking pool (a key-cache
  // miss), then Verify.
  void LookUpThenVerify(std::shared_ptr<AwsCall> call, std::shared_ptr<SigV4Claim> claim,
                        std::string hash, api::Respond respond);
  // Checks the signature with the key's secret, then Authenticated.
  void Verify(std::shared_ptr<AwsCall> call, std::shared_ptr<SigV4Claim> claim,
              api::Respond respond);
  void Authenticated(std::shared_ptr<AwsCall> call, api::Respond respond);
  // An authentication failure in the request's protocol, logged as aws:auth.
  static void Refuse(const api::Request& req, Protocol p, Error err, api::Respond& respond);
  api::Context* ctx_;
};

}  // namespace triggers::aws
