// TenantSlots: a tenant holds at most `limit` slots; a slot is given back
// once, by Release() or by its last reference, whichever comes first; other
// tenants are counted apart; racing acquirers never exceed the limit.
#include "api/tenant_slots.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

namespace triggers::api {
namespace {

TEST(TenantSlots, LimitPerTenantAndGivenBackOnce) {
  TenantSlots slots(2);
  auto a = slots.Acquire("a");
  auto b = slots.Acquire("a");
  ASSERT_TRUE(a && b);
  EXPECT_EQ(slots.Acquire("a"), nullptr);
  EXPECT_EQ(slots.held("a"), 2u);
  EXPECT_NE(slots.Acquire("other"), nullptr);  // released at once (temporary)
  a->Release();
  a->Release();  // once only
  EXPECT_EQ(slots.held("a"), 1u);
  a.reset();  // already given back: the destructor gives nothing more
  EXPECT_EQ(slots.held("a"), 1u);
  auto c = slots.Acquire("a");
  ASSERT_TRUE(c);
  EXPECT_EQ(slots.Acquire("a"), nullptr);
  b.reset();  // the last reference gives it back
  c.reset();
  EXPECT_EQ(slots.held("a"), 0u);
  EXPECT_EQ(slots.held("other"), 0u);
}

TEST(TenantSlots, RacingAcquirersNeverExceedTheLimit) {
  TenantSlots slots(3);
  std::atomic<int> held{0}, most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        auto s = slots.Acquire("t");
        if (!s) continue;
        int now = ++held;
        int seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        --held;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(most.load(), 3);
  EXPECT_EQ(slots.held("t"), 0u);
}

}  // namespace
}  // namespace triggers::api
