// The HTTP/1.1 server: Boost.Beast sessions on an Asio thread pool. The socket
// code only reads, parses and writes; requests go to api::Router as plain data.
// Every limit is here in code: header block, body, read and idle timeouts,
// connection count. Also the blocking pool that handlers use for store I/O.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "api/router.h"
#include "triggers/status.h"

namespace triggers::http {

struct ServerOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  int io_threads = 2;
  int blocking_threads = 4;
  size_t max_body = 256 * 1024;
  size_t max_header = 16 * 1024;
  size_t max_connections = 10000;
  // Connections accepted beyond max_connections, each for one request to
  // /health, /health/* or /metrics (others get 503 with Retry-After: 1), so
  // probes and scrapes still answer at the limit. Beyond it: closed at once.
  size_t reserve_connections = 16;
  // The header of a connection's first request must arrive within this from
  // accept; each later request within this from its first byte.
  int64_t request_timeout_ms = 10'000;
  int64_t idle_timeout_ms = 60'000;
  int64_t shutdown_grace_ms = 10'000;
  std::string cors_origins = "*";
  // A socket from BindSocket() (host and port as above): Listen() adopts it
  // (the Server owns it from then on) instead of binding one itself.
  int bound_fd = -1;
};

// Binds a TCP socket to host:port without listening: from now on the port
// is this process's (a port in use fails here), while connections to it are
// refused until Server::Listen(). Returns the descriptor (close-on-exec).
Result<int> BindSocket(const std::string& host, uint16_t port);

class Server {
 public:
  Server(ServerOptions options, api::Router* router, api::Context* ctx);
  ~Server();

  // Raises the soft RLIMIT_NOFILE to the hard limit (warns when
  // max_connections and its reserve do not fit), binds and listens. After Ok,
  // port() is the bound port and fd_limit() the open-file limit now in force.
  Status Listen();
  uint16_t port() const;
  size_t fd_limit() const;

  // Runs the I/O threads until SIGINT/SIGTERM (or Shutdown()), then drains:
  // stops accepting, lets in-flight requests finish (bounded by
  // shutdown_grace_ms), closes idle connections, and returns.
  // `on_signal` runs when the shutdown begins.
  void Run(std::function<void()> on_signal);
  void Shutdown();

  // Runs `fn` on I/O thread `home` (Request::home); it must not block.
  void Post(int home, std::function<void()> fn);

  // Posts `fn` to the blocking pool; false when the pool is saturated.
  bool RunBlocking(std::function<void()> fn);

  struct Impl;  // public only so the .cc's session class can name it

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace triggers::http
