// Time-ordered identifiers: a type prefix and a 26-char ULID (48-bit ms time,
// 80 random bits, Crockford base32). One generator is monotonic: within the
// same millisecond it increments the random part, so its ids sort in creation
// order. Not thread-safe: use one generator per thread (or under a lock).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace triggers::core {

class UlidGenerator {
 public:
  UlidGenerator();  // seeded from the OS CSPRNG
  explicit UlidGenerator(uint64_t seed);
  // Appends prefix + 26 chars.
  std::string Next(std::string_view prefix, int64_t now_ms);

 private:
  uint64_t NextRandom();
  uint64_t state_[2];
  int64_t last_ms_ = -1;
  uint16_t rand_hi_ = 0;  // 16 high bits of the 80 random bits
  uint64_t rand_lo_ = 0;  // 64 low bits
};

// True when `id` is `prefix` followed by a well-formed ULID.
bool IsValidId(std::string_view id, std::string_view prefix);
// The millisecond timestamp of a valid ULID-based id (after the prefix).
int64_t IdTimeMs(std::string_view id, std::string_view prefix);

// The smallest (upper=false) or largest (upper=true) 26-char ULID of the
// millisecond `ms`: bounds of an id range by time.
std::string UlidBound(int64_t ms, bool upper);

// An id from a thread-local generator (convenience for non-hot paths).
std::string NewId(std::string_view prefix, int64_t now_ms);

}  // namespace triggers::core
