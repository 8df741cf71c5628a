// The libcurl multi sender: one thread drives every transfer; redirects are
// not followed; TLS is verified; each transfer is bounded by its timeout.
// Unless private destinations are allowed, every connection's resolved
// address is checked just before it is opened (so a DNS answer that changes
// cannot slip through).
//
// Connections: a connection carries one transfer at a time (no HTTP/2
// multiplexing), and there is no per-host limit, so a transfer that hangs
// holds its own connection and nobody else's: the caller's in-flight caps
// (the dispatcher's) are the only thing that makes a transfer wait. Idle
// connections stay in one cache and are reused by any later transfer to the
// same origin. At most max_connections are open at once, idle ones included
// (the oldest idle one is closed to make room); the caller keeps its
// transfers in flight at or below that, so none ever waits for a connection.
#pragma once

#include <memory>

#include "triggers/http_sender.h"

namespace triggers::delivery {

struct CurlSenderOptions {
  bool allow_private_destinations = false;
  std::string user_agent = "triggers";
  long max_connections = 2048;  // NOLINT(runtime/int): curl's type
};

std::unique_ptr<HttpSender> NewCurlSender(const CurlSenderOptions& options);

}  // namespace triggers::delivery
