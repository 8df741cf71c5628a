#include "aws/endpoint.h"

#include <algorithm>
#include <cctype>

#include "aws/actions.h"
#include "aws/credentials.h"
#include "aws/sigv4.h"
#include "obs/auth_sources.h"
#include "obs/metrics.h"

namespace triggers::aws {
namespace {

struct Action {
  bool events;  // EventBridge (else SQS)
  std::string_view name;
  std::string_view route;  // for the access log and metrics
  uint32_t scope;
  void (*fn)(Call, Done);
};

const Action kActions[] = {
    {true, "PutEvents", "aws:events.PutEvents", kScopeIngest, PutEvents},
    {false, "GetQueueUrl", "aws:sqs.GetQueueUrl", kScopeRead, GetQueueUrl},
    {false, "ListQueues", "aws:sqs.ListQueues", kScopeRead, ListQueues},
    {false, "GetQueueAttributes", "aws:sqs.GetQueueAttributes", kScopeRead, GetQueueAttributes},
    {false, "ReceiveMessage", "aws:sqs.ReceiveMessage", kScopeConsume, ReceiveMessage},
    {false, "DeleteMessage", "aws:sqs.DeleteMessage", kScopeConsume, DeleteMessage},
    {false, "DeleteMessageBatch", "aws:sqs.DeleteMessageBatch", kScopeConsume, DeleteMessageBatch},
    {false, "ChangeMessageVisibility", "aws:sqs.ChangeMessageVisibility", kScopeConsume,
     ChangeMessageVisibility},
    {false, "ChangeMessageVisibilityBatch", "aws:sqs.ChangeMessageVisibilityBatch", kScopeConsume,
     ChangeMessageVisibilityBatch},
    {false, "SendMessage", "aws:sqs.SendMessage", kScopeIngest, SendMessage},
    {false, "SendMessageBatch", "aws:sqs.SendMessageBatch", kScopeIngest, SendMessageBatch},
};

std::string_view Header(const api::Request& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        }))
      return v;
  }
  return {};
}

Protocol ProtocolOf(const api::Request& req) {
  std::string_view target = Header(req, "X-Amz-Target");
  if (target.substr(0, 10) == "AWSEvents.") return Protocol::kEventsJson;
  if (target.substr(0, 10) == "AmazonSQS.") return Protocol::kSqsJson;
  return Protocol::kSqsQuery;
}

bool HasParam(std::string_view query, std::string_view name) {
  size_t at = 0;
  while ((at = query.find(name, at)) != std::string_view::npos) {
    if ((at == 0 || query[at - 1] == '&') && at + name.size() < query.size() &&
        query[at + name.size()] == '=')
      return true;
    at += name.size();
  }
  return false;
}

ErrorKind KindOf(SigV4Error e) {
  switch (e) {
    case SigV4Error::kMissing:
      return ErrorKind::kMissingAuth;
    case SigV4Error::kExpired:
      return ErrorKind::kExpired;
    case SigV4Error::kMismatch:
      return ErrorKind::kSignatureMismatch;
    default:
      return ErrorKind::kIncompleteSignature;
  }
}

constexpr const char* kInvalidToken = "The security token included in the request is invalid.";

}  // namespace

bool Endpoint::Recognise(const api::Request& req) {
  if (req.path.substr(0, kQueuePathPrefix.size()) == kQueuePathPrefix) return true;
  // Only the root speaks AWS besides queue URLs: a /v1 (or any other) path
  // keeps its meaning whatever its query string or headers carry, so
  // `GET /v1/events?Action=x` is still a /v1 request.
  if (req.path != "/") return false;
  if (req.authorization.substr(0, 5) == "AWS4-") return true;
  if (!Header(req, "X-Amz-Target").empty()) return true;
  if (HasParam(req.query, "X-Amz-Signature") || HasParam(req.query, "Action")) return true;
  return req.method == "POST" &&
         req.content_type.substr(0, 33) == "application/x-www-form-urlencoded";
}

void Endpoint::Refuse(const api::Request& req, Protocol p, Error err, api::Respond& respond) {
  api::Response r = RenderError(p, std::move(err), req.request_id);
  r.route = "aws:auth";
  respond(std::move(r));
}

void Endpoint::Handle(const api::Request& req, api::Respond respond) {
  auto call = std::make_shared<AwsCall>();
  call->ctx = ctx_;
  call->req = &req;
  call->protocol = ProtocolOf(req);
  const Protocol p = call->protocol;
  auto fail = [&](ErrorKind k, std::string msg, obs::Counter reason) {
    obs::Metrics::Get().Inc(reason);
    obs::AuthSources::Get().Failed(req.remote_addr);
    Refuse(req, p, {k, std::move(msg)}, respond);
  };
  if (ctx_->shutting_down.load(std::memory_order_relaxed)) {
    api::Response r =
        RenderError(p, {ErrorKind::kUnavailable, "the server is shutting down"}, req.request_id);
    r.close = true;
    return respond(std::move(r));
  }
  SigV4Request sreq{req.method, req.path, req.query, &req.headers, req.body};
  auto claim = std::make_shared<SigV4Claim>();
  SigV4Result parsed = ParseClaim(sreq, claim.get());
  if (parsed.error != SigV4Error::kNone) {
    return fail(KindOf(parsed.error), parsed.message,
                parsed.error == SigV4Error::kMissing ? obs::Counter::kAuthMissing
                                                     : obs::Counter::kAuthMalformed);
  }
  if (!LooksLikeAccessKeyId(claim->access_key_id)) {
    return fail(ErrorKind::kUnknownKey, kInvalidToken, obs::Counter::kAuthUnknown);
  }
  std::string hash = AccessKeyHash(claim->access_key_id);
  switch (ctx_->keys->Find(hash, &call->who)) {
    case api::KeyCache::Lookup::kFound:
      return Verify(call, claim, std::move(respond));
    case api::KeyCache::Lookup::kRejected:
      return fail(ErrorKind::kUnknownKey, kInvalidToken, obs::Counter::kAuthRevoked);
    case api::KeyCache::Lookup::kUnknown:
      obs::Metrics::Get().Inc(obs::Counter::kAuthNegativeHits);
      return fail(ErrorKind::kUnknownKey, kInvalidToken, obs::Counter::kAuthUnknown);
    case api::KeyCache::Lookup::kMiss:
      break;
  }
  LookUpThenVerify(call, claim, std::move(hash), std::move(respond));
}

void Endpoint::LookUpThenVerify(std::shared_ptr<AwsCall> call, std::shared_ptr<SigV4Claim> claim,
                                std::string hash, api::Respond respond) {
  const api::Request& req = *call->req;
  if (!ctx_->keys->TryBeginLookup()) {
    obs::Metrics::Get().Inc(obs::Counter::kAuthLookupsShed);
    return respond(RenderError(
        call->protocol, {ErrorKind::kUnavailable, "server busy; retry later"}, req.request_id));
  }
  auto task = [this, call, claim, hash, respond]() mutable {
    const api::Request& req = *call->req;
    Status s = ctx_->keys->LoadFromStore(hash, &call->who);
    if (s.ok()) return Verify(call, claim, std::move(respond));
    if (s.code() != Status::Code::kUnauthorized) {
      return respond(RenderError(call->protocol,
                                 {ErrorKind::kUnavailable, "the store is unavailable; retry later"},
                                 req.request_id));
    }
    obs::AuthSources::Get().Failed(req.remote_addr);
    Refuse(req, call->protocol, {ErrorKind::kUnknownKey, kInvalidToken}, respond);
  };
  if (!ctx_->run_blocking(std::move(task))) {
    ctx_->keys->EndLookup();
    respond(RenderError(call->protocol, {ErrorKind::kUnavailable, "server busy; retry later"},
                        req.request_id));
  }
}

void Endpoint::Verify(std::shared_ptr<AwsCall> call, std::shared_ptr<SigV4Claim> claim,
                      api::Respond respond) {
  const api::Request& req = *call->req;
  const api::Principal& who = *call->who;
  std::string secret;
  if (who.access_key_id != claim->access_key_id || !ctx_->aws_box ||
      !ctx_->aws_box->Open(who.sealed_secret, who.access_key_id, &secret)) {
    obs::Metrics::Get().Inc(obs::Counter::kAuthUnknown);
    return Refuse(req, call->protocol, {ErrorKind::kUnknownKey, kInvalidToken}, respond);
  }
  SigV4Request sreq{req.method, req.path, req.query, &req.headers, req.body};
  SigV4Result v =
      aws::Verify(sreq, *claim, ServiceOf(call->protocol), secret, ctx_->clock->NowMs());
  if (v.error != SigV4Error::kNone) {
    obs::Metrics::Get().Inc(obs::Counter::kAuthMalformed);
    obs::AuthSources::Get().Failed(req.remote_addr);
    return Refuse(req, call->protocol, {KindOf(v.error), v.message}, respond);
  }
  if (!ctx_->keys->AllowRequest(who.key_hash)) {
    return respond(RenderError(call->protocol,
                               {ErrorKind::kThrottling, "rate limit of this key exceeded"},
                               req.request_id));
  }
  call->region = claim->region;
  Authenticated(call, std::move(respond));
}

void Endpoint::Authenticated(std::shared_ptr<AwsCall> call, api::Respond respond) {
  const api::Request& req = *call->req;
  Error err{ErrorKind::kInternal, ""};
  if (!ParseInput(call->protocol, req, &call->action, &call->input, &err)) {
    return respond(RenderError(call->protocol, err, req.request_id));
  }
  const bool events = call->protocol == Protocol::kEventsJson;
  const Action* action = nullptr;
  for (const Action& a : kActions) {
    if (a.events == events && a.name == call->action) action = &a;
  }
  if (!action) {
    return respond(RenderError(call->protocol,
                               {ErrorKind::kInvalidAction,
                                "The action " + call->action + " is not valid for this endpoint."},
                               req.request_id));
  }
  std::string_view host = Header(req, "Host");
  call->base_url = "http://" + std::string(host.empty() ? "127.0.0.1" : host);
  auto tagged = [respond = std::move(respond), call, route = action->route](api::Response&& r) {
    r.route = route;
    r.tenant = call->who->tenant;
    respond(std::move(r));
  };
  if (!(call->who->scopes & action->scope)) {
    return tagged(RenderError(
        call->protocol,
        {ErrorKind::kAccessDenied, "this key is not authorized to perform " + call->action},
        req.request_id));
  }
  action->fn(call, [call, tagged](Outcome o) mutable {
    const std::string& rid = call->req->request_id;
    tagged(o.ok ? RenderResult(call->protocol, call->action, o.output, rid)
                : RenderError(call->protocol, o.error, rid));
  });
}

}  // namespace triggers::aws
