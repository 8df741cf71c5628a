// Per-subscription protection of webhook endpoints (SPEC section 6): a
// circuit breaker that pauses a failing endpoint's deliveries for a growing
// cool-down with a single probe, and a token bucket for rate_limit_per_s.
// Time is always passed in, so tests drive them without a clock. Neither is
// thread-safe: the caller (the scheduler) holds the subscription's lock.
#pragma once

#include <cstdint>

#include "store/delivery_rules.h"

namespace triggers::delivery {

// closed --(10 consecutive failures)--> open for the cool-down (5 s)
// open --(cool-down over)--> half-open: AllowRequest is true once, the probe
// half-open --(probe succeeds)--> closed, cool-down back to 5 s
// half-open --(probe fails)--> open again for twice the cool-down (max 10 min)
class CircuitBreaker {
 public:
  enum class State { kClosed, kOpen, kHalfOpen };

  struct Options {
    int failure_threshold = store::rules::kBreakerFailureThreshold;
    int64_t base_cooldown_ms = store::rules::kBreakerBaseCooldownMs;
    int64_t max_cooldown_ms = store::rules::kBreakerMaxCooldownMs;
  };

  CircuitBreaker() : CircuitBreaker(Options()) {}
  explicit CircuitBreaker(Options options);

  // Whether a request may be sent now. Closed: always. Open: never. Half-open:
  // true exactly once (the probe; the caller must report its outcome), then
  // false until that outcome arrives.
  bool AllowRequest(int64_t now_ms);

  // Any success closes the circuit, resets the failure count and the
  // cool-down (a late success of a request sent before the circuit opened
  // proves the endpoint alive just as well as the probe).
  void OnSuccess(int64_t now_ms);

  // Closed: counts a consecutive failure; the threshold opens the circuit.
  // After the probe was allowed: the probe failed, re-open with the cool-down
  // doubled. Open before any probe: ignored (a late result of a request sent
  // before the circuit opened). Without a token per request, a late failure
  // arriving while the probe is out is taken as the probe's; that errs on the
  // side of a longer pause.
  void OnFailure(int64_t now_ms);

  // kHalfOpen from the end of the cool-down until the probe's outcome.
  State state(int64_t now_ms) const;
  // End of the current (or last) cool-down; 0 while closed.
  int64_t open_until_ms() const { return open_ ? open_until_ms_ : 0; }
  // The cool-down the next opening will use.
  int64_t next_cooldown_ms() const { return cooldown_ms_; }
  int consecutive_failures() const { return consecutive_failures_; }

 private:
  void Open(int64_t now_ms);

  Options options_;
  bool open_ = false;       // open or half-open
  bool probe_out_ = false;  // half-open and the probe was allowed
  int consecutive_failures_ = 0;
  int64_t cooldown_ms_;  // used by the next Open()
  int64_t open_until_ms_ = 0;
};

// Rate limit as a token bucket (kept exact in integer nanoseconds, GCRA
// style): `burst` tokens at most, refilled at `rate_per_s`. A rate <= 0 means
// unlimited. A burst below 1 is taken as 1. The bucket starts full.
class TokenBucket {
 public:
  TokenBucket(double rate_per_s, double burst);

  // Takes a token if one is available at now_ns.
  bool TryTake(int64_t now_ns);
  // The earliest time >= now_ns at which TryTake will succeed.
  int64_t NextAvailableNs(int64_t now_ns) const;
  // Gives back `n` tokens taken but not used.
  void Refund(int n) { tat_ns_ -= static_cast<int64_t>(n) * interval_ns_; }

 private:
  bool unlimited_ = false;
  int64_t interval_ns_ = 0;   // time to refill one token
  int64_t tolerance_ns_ = 0;  // (burst - 1) * interval
  int64_t tat_ns_;            // theoretical arrival time of the next token
};

}  // namespace triggers::delivery
