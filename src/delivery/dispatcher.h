// Dispatcher: the push-delivery loop (SPEC 6). One thread leases due
// deliveries from the store per subscription (within its max_in_flight, rate
// limit and circuit breaker), signs and hands them to the HttpSender, and
// records each outcome (attempt log, retry schedule with jitter, Retry-After,
// dead). Outcomes are written in batches, one transaction per pass.
//
// A slow or failing endpoint only uses its own subscription's slots, so it
// never delays the others: below the two caps here, a subscription's
// max_in_flight is the only limit on it (the sender has no per-host limit).
// The caps bound what all subscriptions hold together (connections, file
// descriptors): a tenant holds at most max_in_flight_per_tenant attempts,
// all tenants at most max_in_flight, so one tenant's hanging endpoints leave
// the rest for the others. The Store is the truth: after a crash, leases
// expire and the deliveries are taken again (at-least-once).
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "delivery/circuit_breaker.h"
#include "delivery/retry_schedule.h"
#include "delivery/subscription_cache.h"
#include "triggers/clock.h"
#include "triggers/http_sender.h"
#include "triggers/store.h"

namespace triggers::delivery {

struct DispatcherOptions {
  RetrySchedule schedule = RetrySchedule::Default();
  int64_t delivery_timeout_ms = 15000;
  int64_t poll_interval_ms = 250;  // look for due work at least this often
  int64_t shutdown_grace_ms = 10000;
  std::string user_agent = "triggers";
  int max_in_flight = 2048;            // webhook attempts at once, all tenants
  int max_in_flight_per_tenant = 512;  // ... of one tenant (<= max_in_flight)
};

class Dispatcher {
 public:
  Dispatcher(store::DeliveryQueue* store, SubscriptionCache* subs, HttpSender* sender, Clock* clock,
             DispatcherOptions options);
  ~Dispatcher();  // Stop()s

  // New work may be due (an ingest committed deliveries, a retry, ...). Cheap.
  void Wake();
  // Stops leasing, lets in-flight attempts finish (bounded by the grace
  // period), records them, returns unfinished leases to the store.
  void Stop();

 private:
  struct SubState {
    int in_flight = 0;
    CircuitBreaker breaker;
    std::unique_ptr<TokenBucket> bucket;
    double bucket_rate = 0;
  };
  struct Outcome {
    store::Store::Leased work;
    HttpOutcome http;
    int64_t at_ms = 0;
  };

  void Run();
  void LeaseAndSend(int64_t now_ms);
  void RecordOutcomes(std::vector<Outcome>& outcomes, int64_t now_ms);
  void Send(const CompiledSubscription& sub, store::Store::Leased work);
  // How many more attempts the caps let `sub` start now (before its breaker
  // and rate limit): its max_in_flight, its tenant's share and the total.
  int Capacity(const Subscription& sub, const SubState& st) const;
  void Released(const std::string& subscription_id, const std::string& tenant);

  store::DeliveryQueue* store_;
  SubscriptionCache* subs_;
  HttpSender* sender_;
  Clock* clock_;
  DispatcherOptions opts_;
  std::mt19937_64 rng_;

  std::mutex mu_;  // guards the fields below
  std::condition_variable cv_;
  bool wake_ = false;
  bool stopping_ = false;
  std::vector<Outcome> done_;  // from the sender thread

  // Dispatcher thread only.
  std::unordered_map<std::string, SubState> states_;
  struct Held {
    std::string subscription_id;
    std::string tenant;
    std::string token;  // the lease (Leased::receipt)
  };
  std::unordered_map<std::string, int> tenant_in_flight_;  // no entry = 0
  int total_in_flight_ = 0;
  std::unordered_map<std::string, Held> leased_;  // delivery id -> its lease
  std::thread thread_;
};

}  // namespace triggers::delivery
