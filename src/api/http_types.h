// The API's view of HTTP: a request is plain data (views into the server's
// buffers, valid until the response is given), a response is plain data. No
// sockets and no Beast here: handlers are functions from Request to Response.
#pragma once

#include <functional>
#include <memory>
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
  bool repeated_credential_header = false;  // Authorization or X-API-Key sent twice
  std::string_view content_type;
  std::string_view idempotency_key;
  bool has_idempotency_key = false;
  std::string_view origin;
  std::string_view if_none_match;  // for the dashboard's files (ETag)
  std::string request_id;
  int home = 0;                  // the I/O thread that owns the connection (for completions)
  std::string_view remote_addr;  // the client's IP address (text), for failed-auth counts
  // Every header as received (name, value), for what signs them (AWS SigV4).
  std::vector<std::pair<std::string_view, std::string_view>> headers;
};

// The body of a streamed response (Server-Sent Events), written to by the
// producer while the connection lasts. Thread safety: any thread.
class StreamSink {
 public:
  virtual ~StreamSink() = default;
  // Queues `data` (one chunk). False once the stream has ended: the client
  // went away, the server is stopping, or the client reads too slowly (more
  // than a bounded backlog is queued, then the stream is closed).
  virtual bool Write(std::string data) = 0;
  // Ends the stream and the connection.
  virtual void Close() = 0;
  // Runs `fn` once the stream has ended, for whatever reason (the client
  // went away, Close, a write refused, the server stopped), on any thread;
  // at once when it has ended already. One callback per sink.
  virtual void OnEnd(std::function<void()> fn) = 0;
};

struct Response {
  int status = 200;
  std::string body;
  std::string_view content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  bool close = false;  // close the connection after this response
  // When set: the status and headers go out with a chunked body that stays
  // open; `stream` is then called (on the connection's I/O thread) with the
  // sink that writes it. `body` is ignored.
  std::function<void(std::shared_ptr<StreamSink>)> stream;
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
