#include "core/idempotency.h"

#include <gtest/gtest.h>

namespace triggers::core {

constexpr int64_t kDay = 24LL * 3600 * 1000;

TEST(Idempotency, NewWhenNoRecord) {
  EXPECT_EQ(DecideIdempotency(std::nullopt, "h", 1000, kDay), IdempotencyDecision::kNew);
}

TEST(Idempotency, DuplicateWithSameBodyWithinWindow) {
  IdempotencyRecord r{"h", 1000};
  EXPECT_EQ(DecideIdempotency(r, "h", 1000 + kDay - 1, kDay), IdempotencyDecision::kDuplicate);
}

TEST(Idempotency, ConflictWithDifferentBody) {
  IdempotencyRecord r{"h", 1000};
  EXPECT_EQ(DecideIdempotency(r, "other", 2000, kDay), IdempotencyDecision::kConflict);
}

TEST(Idempotency, ExpiredRecordCountsAsNew) {
  IdempotencyRecord r{"h", 1000};
  EXPECT_EQ(DecideIdempotency(r, "other", 1000 + kDay, kDay), IdempotencyDecision::kNew);
  EXPECT_EQ(DecideIdempotency(r, "h", 1000 + kDay, kDay), IdempotencyDecision::kNew);
}

}  // namespace triggers::core
