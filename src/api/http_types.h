// The API's view of HTTP: a request is plain data (views into the server's
// buffers, valid until the response is given), a response is plain data. No
// sockets and no Beast here: handlers are functions from Request to Response.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "triggers/status.h"

namespace triggers::api {

struct Request {
  std::string_view method;  // "GET", "POST", ...
  std::string_view path;    // without the query
  std::string_view query;   // after '?', raw
  std::string_view body;
  bool has_body = false;  // a body (or Content-Length > 0) was sent
  std::string_view authorization;
  std::string_view x_api_key;
  std::string_view content_type;
  std::string_view idempotency_key;
  bool has_idempotency_key = false;
  std::string_view origin;
  std::string request_id;
  int home = 0;  // the I/O thread that owns the connection (for completions)
};

struct Response {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this response
  // For the access log:
  std::string_view route = "unmatched";
  std::string tenant;
};

// Called exactly once per request, from any thread.
using Respond = std::function<void(Response&&)>;

// The JSON error body of SPEC section 2, with the matching status.
Response ErrorResponse(int status, std::string_view code, std::string_view message,
                       const std::string& request_id);
Response StatusResponse(const Status& s, const std::string& request_id);

// A query parameter, percent-decoded; nullopt when absent.
std::optional<std::string> QueryParam(std::string_view query, std::string_view name);

}  // namespace triggers::api
