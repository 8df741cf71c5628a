// When a failed webhook delivery is tried again (SPEC section 6): a list of
// delays after the first attempt (default 5s, 30s, 2m, 10m, 30m, 1h, 3h, 6h,
// 12h, then dead), each with +-20% jitter drawn from injected randomness so
// that tests assert exact values; and the Retry-After header of a 429/503.
// Pure values, thread-safe once built.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

#include "triggers/status.h"

namespace triggers::delivery {

class RetrySchedule {
 public:
  static constexpr size_t kMaxItems = 50;
  static constexpr int64_t kMaxDelayMs = 7LL * 24 * 3600 * 1000;  // 7d
  static constexpr double kJitter = 0.2;                          // +-20%

  // 5s, 30s, 2m, 10m, 30m, 1h, 3h, 6h, 12h: 10 attempts in all.
  static RetrySchedule Default();

  // "1s,2s,500ms" (ParseDurationMs units; blanks around items are ignored).
  // Validation error naming the bad item unless there are 1-50 items, each
  // > 0 and <= 7d.
  static Result<RetrySchedule> Parse(std::string_view csv);

  // The delay before the next attempt once `failed_attempts` attempts (>= 1;
  // smaller counts as 1) have failed, or nullopt when the schedule is
  // exhausted and the delivery is dead. `unit_random` in [0, 1) picks the
  // jitter: 0 -> -20%, 0.5 -> exact, ->1 -> +20% (clamped into range; the
  // result is at least 1 ms).
  std::optional<int64_t> DelayAfterFailure(int failed_attempts, double unit_random) const;

  // Attempts before a delivery is dead: the first one plus one per item.
  size_t max_attempts() const { return delays_ms_.size() + 1; }
  const std::vector<int64_t>& delays_ms() const { return delays_ms_; }

 private:
  explicit RetrySchedule(std::vector<int64_t> delays_ms) : delays_ms_(std::move(delays_ms)) {}
  std::vector<int64_t> delays_ms_;
};

// Retry-After (RFC 9110 10.2.3): delta-seconds ("120") or an IMF-fixdate
// ("Sun, 06 Nov 1994 08:49:37 GMT", taken relative to now_ms) -> the delay in
// ms, capped at 1 h. nullopt when unparseable or when the date is in the past
// (the caller then keeps to its schedule). The obsolete RFC 850 and asctime
// date forms are not accepted.
inline constexpr int64_t kMaxRetryAfterMs = 3600 * 1000;
std::optional<int64_t> ParseRetryAfterMs(std::string_view header, int64_t now_ms);

}  // namespace triggers::delivery
