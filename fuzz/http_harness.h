// The process the request fuzzer talks to: the real router, handlers, key
// cache, subscription cache, ingest writer, inbox and live tail, over an
// SQLite store in a fresh temporary directory, wired as src/app/serve.cc
// wires them, minus the sockets, the delivery dispatcher (no outbound HTTP)
// and the destination DNS check (allow_private_destinations: the fuzzer
// must not query the network).
#pragma once

#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "api/context.h"
#include "api/event_stream.h"
#include "api/inbox.h"
#include "api/router.h"

namespace triggers::fuzz {

// Keys the seeds use (fuzz/corpus/http_request/): the admin key, and a key
// of tenant "acme" with every scope.
inline constexpr std::string_view kAdminKey = "trg_FuzzAdmin0000000000000000000000000000000000";
inline constexpr std::string_view kTenantKey = "trg_FuzzTenant000000000000000000000000000000000";
// A pull subscription of "acme" (every type) that exists from the start, so
// that seeds can reach receive, ack, nack and replay (ids made by the server
// cannot be known in advance). The store carries over from input to input,
// as a server's does: once an input deletes it, it stays deleted for the
// rest of the run (deletion is final in the store).
inline constexpr std::string_view kPullSubscriptionId = "sub_01JDX3SQXY4YB5F5F9ZGPKT2FM";

class HttpHarness {
 public:
  // Built on first use; stopped (and its directory removed) at exit.
  static HttpHarness& Get();
  ~HttpHarness();

  // Routes one request and waits for its response. A receiver that parks
  // (wait_s) is answered at once as if its key were revoked, so that an
  // input cannot hold the fuzzer for the receive's whole wait.
  api::Response Dispatch(const api::Request& req);

 private:
  HttpHarness();
  bool RunBlocking(std::function<void()> fn);

  std::string dir_;
  std::string admin_hash_, tenant_hash_;
  boost::asio::thread_pool pool_{2};
  std::unique_ptr<store::Store> store_;
  std::unique_ptr<api::KeyCache> keys_;
  std::unique_ptr<delivery::SubscriptionCache> subscriptions_;
  api::EventStream event_stream_;
  std::unique_ptr<api::Inbox> inbox_;
  std::unique_ptr<store::IngestWriter> writer_;
  api::Context ctx_;
  std::unique_ptr<api::Router> router_;
};

}  // namespace triggers::fuzz
