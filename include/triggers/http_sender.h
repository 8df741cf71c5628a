// HttpSender: sends one webhook POST and reports its outcome. Implemented on
// libcurl's multi interface (src/delivery/curl_sender.cc); tests may swap it.
//
// Thread safety: Send() from any thread; `done` runs on the sender's thread
// and must not block.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace triggers {

struct HttpRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  int64_t timeout_ms = 15000;
};

struct HttpOutcome {
  std::optional<int> status_code;  // none when no response arrived
  std::string error;               // empty on a 2xx
  std::string body_snippet;        // first 1 KiB of the response body
  std::optional<std::string> retry_after;
  int64_t latency_ms = 0;
};

class HttpSender {
 public:
  virtual ~HttpSender() = default;
  virtual void Send(HttpRequest request, std::function<void(HttpOutcome)> done) = 0;
  // Requests in flight (sent, not yet completed).
  virtual size_t in_flight() const = 0;
  // Fails whatever is still in flight with "shutting down", then stops.
  virtual void Stop() = 0;
};

}  // namespace triggers
