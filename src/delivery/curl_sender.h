// The libcurl multi sender: one thread drives every transfer; connections
// are pooled per host; redirects are not followed; TLS is verified; each
// transfer is bounded by its timeout. Unless private destinations are
// allowed, every connection's resolved address is checked just before it is
// opened (so a DNS answer that changes cannot slip through).
#pragma once

#include <memory>

#include "triggers/http_sender.h"

namespace triggers::delivery {

struct CurlSenderOptions {
  bool allow_private_destinations = false;
  std::string user_agent = "triggers";
  long max_connections_per_host = 64;  // NOLINT(runtime/int): curl's type
};

std::unique_ptr<HttpSender> NewCurlSender(const CurlSenderOptions& options);

}  // namespace triggers::delivery
