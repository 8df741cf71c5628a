#include "delivery/retry_schedule.h"

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <string>

#include "core/time_util.h"

namespace triggers::delivery {
namespace {

std::string_view TrimBlanks(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool AllDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// Digits of a fixed width -> value; -1 when not all digits.
int FixedNumber(std::string_view s) {
  if (!AllDigits(s)) return -1;
  int v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

// "Sun, 06 Nov 1994 08:49:37 GMT" -> unix ms; nullopt when not that exact form.
std::optional<int64_t> ParseImfFixdateMs(std::string_view s) {
  static constexpr std::array<std::string_view, 7> kDays = {"Mon", "Tue", "Wed", "Thu",
                                                            "Fri", "Sat", "Sun"};
  static constexpr std::array<std::string_view, 12> kMonths = {
      "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  // 0         1         2
  // 01234567890123456789012345678
  // Sun, 06 Nov 1994 08:49:37 GMT
  if (s.size() != 29 || s.substr(3, 2) != ", " || s[7] != ' ' || s[11] != ' ' || s[16] != ' ' ||
      s[19] != ':' || s[22] != ':' || s.substr(25) != " GMT") {
    return std::nullopt;
  }
  if (std::find(kDays.begin(), kDays.end(), s.substr(0, 3)) == kDays.end()) return std::nullopt;
  auto month_it = std::find(kMonths.begin(), kMonths.end(), s.substr(8, 3));
  if (month_it == kMonths.end()) return std::nullopt;
  int day = FixedNumber(s.substr(5, 2));
  int year = FixedNumber(s.substr(12, 4));
  int hour = FixedNumber(s.substr(17, 2));
  int minute = FixedNumber(s.substr(20, 2));
  int second = FixedNumber(s.substr(23, 2));
  if (day < 0 || year < 0 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 ||
      second > 60) {  // 60: a leap second, as RFC 5322 allows
    return std::nullopt;
  }
  using namespace std::chrono;
  year_month_day ymd{std::chrono::year(year),
                     std::chrono::month(static_cast<unsigned>(month_it - kMonths.begin() + 1)),
                     std::chrono::day(static_cast<unsigned>(day))};
  if (!ymd.ok()) return std::nullopt;
  int64_t days = sys_days(ymd).time_since_epoch().count();
  return ((days * 24 + hour) * 60 + minute) * 60'000LL + second * 1000LL;
}

}  // namespace

RetrySchedule RetrySchedule::Default() {
  constexpr int64_t kS = 1000, kM = 60 * kS, kH = 60 * kM;
  return RetrySchedule(
      {5 * kS, 30 * kS, 2 * kM, 10 * kM, 30 * kM, 1 * kH, 3 * kH, 6 * kH, 12 * kH});
}

Result<RetrySchedule> RetrySchedule::Parse(std::string_view csv) {
  std::vector<int64_t> delays;
  size_t position = 0;
  while (true) {
    ++position;
    size_t comma = csv.find(',');
    std::string_view raw = csv.substr(0, comma);
    std::string_view item = TrimBlanks(raw);
    std::optional<int64_t> ms = core::ParseDurationMs(item);
    if (!ms || *ms <= 0 || *ms > kMaxDelayMs) {
      return Status::Validation("retry_schedule item " + std::to_string(position) + " '" +
                                std::string(item.substr(0, 32)) +
                                "' must be a duration such as 500ms, 5s, 2m, 1h, 1d, "
                                "greater than 0 and at most 7d");
    }
    delays.push_back(*ms);
    if (delays.size() > kMaxItems) {
      return Status::Validation("retry_schedule must have 1 to " + std::to_string(kMaxItems) +
                                " items");
    }
    if (comma == std::string_view::npos) break;
    csv.remove_prefix(comma + 1);
  }
  return RetrySchedule(std::move(delays));
}

std::optional<int64_t> RetrySchedule::DelayAfterFailure(int failed_attempts,
                                                        double unit_random) const {
  size_t index = failed_attempts < 1 ? 0 : static_cast<size_t>(failed_attempts - 1);
  if (index >= delays_ms_.size()) return std::nullopt;
  if (!(unit_random >= 0.0)) unit_random = 0.0;  // also NaN
  if (unit_random > 1.0) unit_random = 1.0;
  double factor = 1.0 + kJitter * (2.0 * unit_random - 1.0);
  int64_t delay = std::llround(static_cast<double>(delays_ms_[index]) * factor);
  return std::max<int64_t>(delay, 1);
}

std::optional<int64_t> ParseRetryAfterMs(std::string_view header, int64_t now_ms) {
  header = TrimBlanks(header);
  if (AllDigits(header)) {
    // Any number of digits is valid delta-seconds; a huge one is just capped.
    if (header.size() > 7) return kMaxRetryAfterMs;
    int64_t seconds = 0;
    for (char c : header) seconds = seconds * 10 + (c - '0');
    return std::min(seconds * 1000, kMaxRetryAfterMs);
  }
  std::optional<int64_t> at_ms = ParseImfFixdateMs(header);
  if (!at_ms || *at_ms < now_ms) return std::nullopt;
  return std::min(*at_ms - now_ms, kMaxRetryAfterMs);
}

}  // namespace triggers::delivery
