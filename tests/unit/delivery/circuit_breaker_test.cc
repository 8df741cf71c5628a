#include "delivery/circuit_breaker.h"

#include <gtest/gtest.h>

namespace triggers::delivery {
namespace {

using State = CircuitBreaker::State;

void FailTimes(CircuitBreaker& cb, int n, int64_t now_ms) {
  for (int i = 0; i < n; ++i) {
    ASSERT_TRUE(cb.AllowRequest(now_ms));
    cb.OnFailure(now_ms);
  }
}

TEST(CircuitBreaker, StaysClosedBelowTheThreshold) {
  CircuitBreaker cb;
  FailTimes(cb, 9, 1000);
  EXPECT_EQ(cb.state(1000), State::kClosed);
  EXPECT_EQ(cb.consecutive_failures(), 9);
  EXPECT_TRUE(cb.AllowRequest(1000));
  cb.OnSuccess(1000);  // resets the count
  EXPECT_EQ(cb.consecutive_failures(), 0);
  FailTimes(cb, 9, 1000);
  EXPECT_EQ(cb.state(1000), State::kClosed);
  EXPECT_EQ(cb.open_until_ms(), 0);
}

TEST(CircuitBreaker, OpensAfterTenConsecutiveFailuresForFiveSeconds) {
  CircuitBreaker cb;
  FailTimes(cb, 10, 1000);
  EXPECT_EQ(cb.state(1000), State::kOpen);
  EXPECT_EQ(cb.open_until_ms(), 6000);
  EXPECT_FALSE(cb.AllowRequest(1000));
  EXPECT_FALSE(cb.AllowRequest(5999));
  EXPECT_EQ(cb.state(5999), State::kOpen);
  EXPECT_EQ(cb.state(6000), State::kHalfOpen);
}

TEST(CircuitBreaker, HalfOpenAllowsExactlyOneProbe) {
  CircuitBreaker cb;
  FailTimes(cb, 10, 0);
  EXPECT_TRUE(cb.AllowRequest(5000));   // the probe
  EXPECT_FALSE(cb.AllowRequest(5000));  // no second one while it is out
  EXPECT_FALSE(cb.AllowRequest(60000));
  EXPECT_EQ(cb.state(5000), State::kHalfOpen);
  EXPECT_EQ(cb.state(60000), State::kHalfOpen);
}

TEST(CircuitBreaker, ProbeSuccessClosesAndResetsTheCooldown) {
  CircuitBreaker cb;
  FailTimes(cb, 10, 0);
  ASSERT_TRUE(cb.AllowRequest(5000));
  cb.OnFailure(5000);  // probe failed: 10 s now
  EXPECT_EQ(cb.open_until_ms(), 15000);
  ASSERT_TRUE(cb.AllowRequest(15000));
  cb.OnSuccess(15100);
  EXPECT_EQ(cb.state(15100), State::kClosed);
  EXPECT_EQ(cb.consecutive_failures(), 0);
  EXPECT_EQ(cb.open_until_ms(), 0);
  for (int i = 0; i < 5; ++i) EXPECT_TRUE(cb.AllowRequest(15100));
  // Opening again starts from 5 s.
  FailTimes(cb, 10, 20000);
  EXPECT_EQ(cb.open_until_ms(), 25000);
}

TEST(CircuitBreaker, ProbeFailuresDoubleTheCooldownUpToTenMinutes) {
  CircuitBreaker cb;
  int64_t now = 0;
  FailTimes(cb, 10, now);
  const int64_t expected[] = {5000,   10000,  20000,  40000,  80000,
                              160000, 320000, 600000, 600000, 600000};
  for (int64_t cooldown : expected) {
    EXPECT_EQ(cb.open_until_ms() - now, cooldown);
    EXPECT_FALSE(cb.AllowRequest(cb.open_until_ms() - 1));
    now = cb.open_until_ms();
    ASSERT_TRUE(cb.AllowRequest(now));
    now += 250;  // the probe's latency
    cb.OnFailure(now);
    EXPECT_EQ(cb.state(now), State::kOpen);
  }
}

TEST(CircuitBreaker, LateResultsOfRequestsSentBeforeOpening) {
  CircuitBreaker cb;
  FailTimes(cb, 10, 0);
  // Failures of requests that were in flight when it opened: no extension.
  cb.OnFailure(1000);
  cb.OnFailure(4000);
  EXPECT_EQ(cb.open_until_ms(), 5000);
  cb.OnFailure(6000);  // cool-down over but the probe not yet sent
  EXPECT_EQ(cb.open_until_ms(), 5000);
  EXPECT_EQ(cb.state(6000), State::kHalfOpen);
  // A late success proves the endpoint alive: closed.
  cb.OnSuccess(6500);
  EXPECT_EQ(cb.state(6500), State::kClosed);
  EXPECT_TRUE(cb.AllowRequest(6500));
}

TEST(CircuitBreaker, CustomOptions) {
  CircuitBreaker cb({.failure_threshold = 2, .base_cooldown_ms = 100, .max_cooldown_ms = 300});
  FailTimes(cb, 2, 0);
  EXPECT_EQ(cb.open_until_ms(), 100);
  ASSERT_TRUE(cb.AllowRequest(100));
  cb.OnFailure(100);
  EXPECT_EQ(cb.open_until_ms(), 300);
  ASSERT_TRUE(cb.AllowRequest(300));
  cb.OnFailure(300);
  EXPECT_EQ(cb.open_until_ms(), 600);  // 400 capped at 300
  EXPECT_EQ(cb.next_cooldown_ms(), 300);
}

constexpr int64_t kSec = 1'000'000'000;

TEST(TokenBucket, StartsFullAndRefillsAtTheRate) {
  TokenBucket b(/*rate_per_s=*/2, /*burst=*/3);
  const int64_t t0 = 50 * kSec;
  EXPECT_TRUE(b.TryTake(t0));
  EXPECT_TRUE(b.TryTake(t0));
  EXPECT_TRUE(b.TryTake(t0));
  EXPECT_FALSE(b.TryTake(t0));
  EXPECT_EQ(b.NextAvailableNs(t0), t0 + kSec / 2);
  EXPECT_FALSE(b.TryTake(t0 + kSec / 2 - 1));
  EXPECT_TRUE(b.TryTake(t0 + kSec / 2));
  EXPECT_FALSE(b.TryTake(t0 + kSec / 2));
  EXPECT_EQ(b.NextAvailableNs(t0 + kSec / 2), t0 + kSec);
  // A long idle spell refills to the burst, not beyond.
  const int64_t t1 = t0 + 100 * kSec;
  EXPECT_EQ(b.NextAvailableNs(t1), t1);
  int taken = 0;
  while (b.TryTake(t1)) ++taken;
  EXPECT_EQ(taken, 3);
}

TEST(TokenBucket, SteadyRateOverTime) {
  TokenBucket b(10, 1);
  int taken = 0;
  // Poll every millisecond for 10 s: 1 + 10 per second (the first is the full bucket).
  for (int64_t t = 0; t <= 10 * kSec; t += kSec / 1000) {
    if (b.TryTake(t)) ++taken;
  }
  EXPECT_EQ(taken, 101);
}

TEST(TokenBucket, NextAvailableIsWhenTryTakeSucceeds) {
  TokenBucket b(3, 1);  // 333333333 ns per token
  int64_t now = 7;
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(b.TryTake(now));
    int64_t next = b.NextAvailableNs(now);
    EXPECT_GT(next, now);
    EXPECT_FALSE(b.TryTake(next - 1));
    now = next;
  }
}

TEST(TokenBucket, FractionalRatesAndDegenerateArguments) {
  TokenBucket slow(0.5, 1);  // one every 2 s
  EXPECT_TRUE(slow.TryTake(0));
  EXPECT_EQ(slow.NextAvailableNs(0), 2 * kSec);

  TokenBucket unlimited(0, 0);
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(unlimited.TryTake(0));
  EXPECT_EQ(unlimited.NextAvailableNs(42), 42);

  TokenBucket tiny_burst(1, 0.1);  // taken as 1
  EXPECT_TRUE(tiny_burst.TryTake(0));
  EXPECT_FALSE(tiny_burst.TryTake(0));

  TokenBucket negative(-5, 3);  // unlimited
  EXPECT_TRUE(negative.TryTake(0));

  // Time going backwards neither refills nor breaks it.
  TokenBucket b(1, 1);
  EXPECT_TRUE(b.TryTake(10 * kSec));
  EXPECT_FALSE(b.TryTake(5 * kSec));
  EXPECT_EQ(b.NextAvailableNs(5 * kSec), 11 * kSec);
}

}  // namespace
}  // namespace triggers::delivery
