#include "api/http_types.h"

#include "core/json_util.h"
#include "core/url_decode.h"

namespace triggers::api {

Response ErrorResponse(int status, std::string_view code, std::string_view message,
                       const std::string& request_id) {
  Response r;
  r.status = status;
  r.body.reserve(96 + message.size());
  r.body += "{\"error\":{\"code\":";
  core::AppendJsonString(r.body, code);
  r.body += ",\"message\":";
  // Messages may quote what the client sent (a query value): the body must
  // stay valid JSON whatever those bytes are (found by fuzzing).
  core::AppendJsonString(r.body, core::ToValidUtf8(message));
  r.body += ",\"request_id\":";
  core::AppendJsonString(r.body, request_id);
  r.body += "}}";
  if (status == 503 || status == 429) r.headers.emplace_back("Retry-After", "1");
  return r;
}

Response StatusResponse(const Status& s, const std::string& rid) {
  using C = Status::Code;
  switch (s.code()) {
    case C::kOk:
      return ErrorResponse(500, "internal", "ok status used as an error", rid);
    case C::kInvalidJson:
      return ErrorResponse(400, "invalid_json", s.message(), rid);
    case C::kValidation:
      return ErrorResponse(400, "validation_error", s.message(), rid);
    case C::kLimitExceeded:
      return ErrorResponse(400, "limit_exceeded", s.message(), rid);
    case C::kUnauthorized:
      return ErrorResponse(401, "unauthorized", s.message(), rid);
    case C::kForbidden:
      return ErrorResponse(403, "forbidden", s.message(), rid);
    case C::kNotFound:
      return ErrorResponse(404, "not_found", s.message(), rid);
    case C::kConflict:
      return ErrorResponse(409, "conflict", s.message(), rid);
    case C::kTooLarge:
      return ErrorResponse(413, "payload_too_large", s.message(), rid);
    case C::kUnavailable:
      // The store's own text may name files or hosts: keep it for the log only.
      return ErrorResponse(503, "unavailable", "the store is unavailable; retry later", rid);
    case C::kInternal:
      return ErrorResponse(500, "internal", "internal error", rid);
  }
  return ErrorResponse(500, "internal", "internal error", rid);
}

namespace {
std::string Decode(std::string_view s) { return core::PercentDecode(s, true); }
}  // namespace

std::optional<std::string> QueryParam(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view part = query.substr(0, amp);
    size_t eq = part.find('=');
    std::string_view k = part.substr(0, eq);
    if (k == name) {
      return eq == std::string_view::npos ? std::string() : Decode(part.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

}  // namespace triggers::api
