// The three AWS wire protocols spoken here, reduced to one shape: a request
// becomes (action, input as a JSON object in the AWS JSON protocol's member
// names), a result is a JSON object in the same names, and each protocol
// renders it (JSON 1.1 for EventBridge, JSON 1.0 for SQS, or the SQS query
// protocol's XML). Errors carry the code each protocol's clients expect.
#pragma once

#include <boost/json.hpp>
#include <string>
#include <string_view>

#include "api/http_types.h"

namespace triggers::aws {

enum class Protocol {
  kEventsJson,  // AWS JSON 1.1, X-Amz-Target: AWSEvents.<Action>
  kSqsJson,     // AWS JSON 1.0, X-Amz-Target: AmazonSQS.<Action>
  kSqsQuery,    // form-encoded Action=..., XML responses
};

// The AWS service name a protocol's requests are signed for.
std::string_view ServiceOf(Protocol p);

enum class ErrorKind {
  kMissingAuth,
  kIncompleteSignature,
  kUnknownKey,
  kSignatureMismatch,
  kExpired,
  kAccessDenied,
  kQueueDoesNotExist,
  kReceiptHandleIsInvalid,
  kMessageNotInflight,
  kInvalidParameterValue,
  kMissingParameter,
  kInvalidAttributeName,
  kTooManyEntries,
  kEmptyBatch,
  kBatchEntryIdsNotDistinct,
  kInvalidBatchEntryId,
  kBatchRequestTooLong,
  kSerialization,
  kInvalidAction,
  kThrottling,
  kUnavailable,
  kInternal,
};

struct Error {
  ErrorKind kind;
  std::string message;  // for the client: never a secret or a payload
};

// Codes of a kind: as SQS's JSON protocol names them (its __type), as the
// query protocol and x-amzn-query-error name them, as EventBridge names them.
struct ErrorCodes {
  std::string_view sqs_json;
  std::string_view sqs_query;
  std::string_view events;
  int status;
};
const ErrorCodes& CodesOf(ErrorKind kind);

// Parses the request into its action and input. The protocol is known (see
// Recognise in endpoint.h). InvalidAction / Serialization errors.
bool ParseInput(Protocol p, const api::Request& req, std::string* action,
                boost::json::object* input, Error* err);

api::Response RenderResult(Protocol p, std::string_view action, const boost::json::object& output,
                           const std::string& request_id);
api::Response RenderError(Protocol p, const Error& e, const std::string& request_id);

// The query protocol's form fields, nested: "A.1.B=x" -> {"A":[{"B":"x"}]}
// (exposed for tests).
boost::json::object NestForm(std::string_view form);
std::string XmlEscape(std::string_view s);

}  // namespace triggers::aws
