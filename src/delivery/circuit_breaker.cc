#include "delivery/circuit_breaker.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace triggers::delivery {

CircuitBreaker::CircuitBreaker(Options options)
    : options_(options), cooldown_ms_(options.base_cooldown_ms) {}

bool CircuitBreaker::AllowRequest(int64_t now_ms) {
  if (!open_) return true;
  if (now_ms < open_until_ms_ || probe_out_) return false;
  probe_out_ = true;
  return true;
}

void CircuitBreaker::OnSuccess(int64_t /*now_ms*/) {
  open_ = false;
  probe_out_ = false;
  consecutive_failures_ = 0;
  cooldown_ms_ = options_.base_cooldown_ms;
  open_until_ms_ = 0;
}

void CircuitBreaker::OnFailure(int64_t now_ms) {
  if (!open_) {
    if (++consecutive_failures_ >= options_.failure_threshold) Open(now_ms);
    return;
  }
  if (!probe_out_) return;  // a late failure of a request sent while closed
  Open(now_ms);
}

void CircuitBreaker::Open(int64_t now_ms) {
  open_ = true;
  probe_out_ = false;
  open_until_ms_ = now_ms + cooldown_ms_;
  cooldown_ms_ = std::min(cooldown_ms_ * 2, options_.max_cooldown_ms);
}

CircuitBreaker::State CircuitBreaker::state(int64_t now_ms) const {
  if (!open_) return State::kClosed;
  if (probe_out_ || now_ms >= open_until_ms_) return State::kHalfOpen;
  return State::kOpen;
}

TokenBucket::TokenBucket(double rate_per_s, double burst)
    : tat_ns_(std::numeric_limits<int64_t>::min()) {
  if (!(rate_per_s > 0.0)) {
    unlimited_ = true;
    return;
  }
  if (!(burst >= 1.0)) burst = 1.0;
  // At least 1 ns per token: beyond 1e9/s the limit is moot anyway.
  interval_ns_ = std::max<int64_t>(1, std::llround(1e9 / rate_per_s));
  double tolerance = (burst - 1.0) * static_cast<double>(interval_ns_);
  tolerance_ns_ = tolerance >= 9e18 ? int64_t{9'000'000'000'000'000'000} : std::llround(tolerance);
}

bool TokenBucket::TryTake(int64_t now_ns) {
  if (unlimited_) return true;
  int64_t tat = std::max(tat_ns_, now_ns);
  if (tat - now_ns > tolerance_ns_) return false;
  tat_ns_ = tat + interval_ns_;
  return true;
}

int64_t TokenBucket::NextAvailableNs(int64_t now_ns) const {
  if (unlimited_) return now_ns;
  int64_t tat = std::max(tat_ns_, now_ns);
  return std::max(now_ns, tat - tolerance_ns_);
}

}  // namespace triggers::delivery
