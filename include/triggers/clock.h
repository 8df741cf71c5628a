// Clock: the one door to the time of day and to monotonic time, so tests can
// substitute a FakeClock. Thread-safe.
#pragma once

#include <cstdint>

namespace triggers {

class Clock {
 public:
  virtual ~Clock() = default;
  // Milliseconds since the Unix epoch (wall clock).
  virtual int64_t NowMs() const = 0;
  // Monotonic nanoseconds (arbitrary origin), for latencies and timeouts.
  virtual int64_t MonoNs() const = 0;
};

// The process clock. Returns a static instance; never null.
Clock* SystemClock();

}  // namespace triggers
