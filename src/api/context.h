// What handlers need from the rest of the process, injected by the
// composition root (src/app/serve.cc).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "api/auth.h"
#include "api/tenant_slots.h"
#include "aws/secret_box.h"
#include "delivery/subscription_cache.h"
#include "store/ingest_writer.h"
#include "triggers/clock.h"
#include "triggers/store.h"

namespace triggers::aws {
class Endpoint;
}

namespace triggers::api {

struct Context {
  store::Store* store = nullptr;
  store::IngestWriter* writer = nullptr;
  KeyCache* keys = nullptr;
  Clock* clock = nullptr;
  // Runs `fn` on the pool for blocking work (store reads, admin writes).
  // False when the pool's queue is full: the caller answers 503.
  std::function<bool(std::function<void()>)> run_blocking;
  delivery::SubscriptionCache* subscriptions = nullptr;
  bool allow_private_destinations = false;
  bool metrics_require_admin = false;
  // Tells the delivery dispatcher that new work may be due (never blocks).
  std::function<void()> wake_dispatcher = [] {};
  class Inbox* inbox = nullptr;
  class EventStream* event_stream = nullptr;  // live tail (GET /v1/events/stream)
  // Wakes parked pull receivers of these subscriptions.
  std::function<void(const std::vector<std::string>&)> inbox_notify = [](const auto&) {};
  std::atomic<bool> shutting_down{false};
  int64_t start_ms = 0;
  std::string cors_origins = "*";
  // Per-tenant limits (SPEC 10), set from the flags named in their errors.
  // 0 / null: no limit.
  int64_t max_subscriptions_per_tenant = 0;  // all nodes together (counted in the store)
  int64_t max_filter_bytes = 0;              // a filter's JSON, as stored
  TenantSlots* parked_receives = nullptr;    // per node
  TenantSlots* streams = nullptr;            // per node
  // Seals and opens AWS secret access keys (SPEC 12); not loaded: no AWS keys.
  const aws::SecretBox* aws_box = nullptr;
  // The AWS-compatible endpoints; null: requests in AWS form are not recognised.
  aws::Endpoint* aws_endpoint = nullptr;
};

}  // namespace triggers::api
