#include "core/ids.h"

#include <gtest/gtest.h>

#include <set>

namespace triggers::core {

TEST(Ulid, FormatAndPrefix) {
  UlidGenerator g(42);
  std::string id = g.Next("evt_", 1764103832123);
  EXPECT_EQ(id.size(), 4u + 26u);
  EXPECT_TRUE(IsValidId(id, "evt_"));
  EXPECT_FALSE(IsValidId(id, "sub_"));
  EXPECT_EQ(IdTimeMs(id, "evt_"), 1764103832123);
}

TEST(Ulid, MonotonicWithinAndAcrossMilliseconds) {
  UlidGenerator g(7);
  std::string prev = g.Next("evt_", 1000);
  for (int i = 0; i < 10000; ++i) {
    std::string next = g.Next("evt_", 1000 + i / 100);
    EXPECT_LT(prev, next);
    prev = next;
  }
}

TEST(Ulid, ClockGoingBackwardsKeepsOrder) {
  UlidGenerator g(9);
  std::string a = g.Next("evt_", 5000);
  std::string b = g.Next("evt_", 4000);
  EXPECT_LT(a, b);
}

TEST(Ulid, UniqueAcrossGenerators) {
  std::set<std::string> seen;
  UlidGenerator a, b;
  for (int i = 0; i < 1000; ++i) {
    EXPECT_TRUE(seen.insert(a.Next("k_", 1)).second);
    EXPECT_TRUE(seen.insert(b.Next("k_", 1)).second);
  }
}

TEST(Ulid, RejectsMalformed) {
  EXPECT_FALSE(IsValidId("evt_", "evt_"));
  EXPECT_FALSE(IsValidId("evt_01ARZ3NDEKTSV4RRFFQ69G5FA", "evt_"));    // 25 chars
  EXPECT_FALSE(IsValidId("evt_01ARZ3NDEKTSV4RRFFQ69G5FAVV", "evt_"));  // 27 chars
  EXPECT_FALSE(IsValidId("evt_01ARZ3NDEKTSV4RRFFQ69G5FAU", "evt_"));   // U is not Crockford
  EXPECT_FALSE(IsValidId("evt_01arz3ndektsv4rrffq69g5fav", "evt_"));   // lower case
  EXPECT_FALSE(IsValidId("evt_81ARZ3NDEKTSV4RRFFQ69G5FAV", "evt_"));   // time overflow
  EXPECT_TRUE(IsValidId("evt_01ARZ3NDEKTSV4RRFFQ69G5FAV", "evt_"));
}

}  // namespace triggers::core

namespace triggers::core {

TEST(Ulid, TimeBoundsEncloseEveryIdOfTheirMillisecond) {
  UlidGenerator g(3);
  for (int64_t ms : {0LL, 1LL, 1795639832123LL}) {
    std::string id = g.Next("", ms);
    EXPECT_LE(UlidBound(ms, false), id);
    EXPECT_GE(UlidBound(ms, true), id);
    EXPECT_LT(UlidBound(ms, true), UlidBound(ms + 1, false));
    EXPECT_EQ(IdTimeMs("evt_" + UlidBound(ms, true), "evt_"), ms);
  }
}

}  // namespace triggers::core
