// Dispatcher: the push-delivery loop (SPEC 6). One thread leases due
// deliveries from the store per subscription (within its max_in_flight, rate
// limit and circuit breaker), signs and hands them to the HttpSender, and
// records each outcome (attempt log, retry schedule with jitter, Retry-After,
// dead). Outcomes are written in batches, one transaction per pass.
//
// A slow or failing endpoint only uses its own subscription's slots, so it
// never delays the others. The Store is the truth: after a crash, leases
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
    std::string token;  // the lease (Leased::receipt)
  };
  std::unordered_map<std::string, Held> leased_;  // delivery id -> its lease
  std::thread thread_;
};

}  // namespace triggers::delivery
