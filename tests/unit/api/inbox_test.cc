// Inbox: how parked receivers end. A revocation answers the receivers of
// that key (kRevoked) and no others; shutdown answers every parked receiver
// with kShutdown, never with a receive (kTry/kLast would take leases).
#include "api/inbox.h"

#include <gtest/gtest.h>

#include <mutex>
#include <vector>

namespace triggers::api {
namespace {

using Turn = Inbox::Turn;

// Records the turns one receiver was given; it answers every turn but kTry.
struct Receiver {
  std::mutex mu;
  std::vector<Turn> turns;
  int answers = 0;

  Inbox::Attempt attempt() {
    return [this](Turn t) {
      std::lock_guard lock(mu);
      turns.push_back(t);
      if (t == Turn::kTry) return false;
      ++answers;
      return true;
    };
  }
  std::vector<Turn> Turns() {
    std::lock_guard lock(mu);
    return turns;
  }
  int Answers() {
    std::lock_guard lock(mu);
    return answers;
  }
};

// Attempts run inline: the Inbox's own thread and the test's thread are the
// only callers.
Inbox MakeInbox() {
  return Inbox(
      [](std::function<void()> fn) {
        fn();
        return true;
      },
      SystemClock());
}

int64_t Later() { return SystemClock()->NowMs() + 60'000; }

bool OnlyTries(const std::vector<Turn>& turns) {
  for (Turn t : turns) {
    if (t != Turn::kTry) return false;
  }
  return true;
}

TEST(Inbox, EndKeyAnswersOnlyThatKeysReceiversWithRevoked) {
  Inbox inbox = MakeInbox();
  Receiver a1, a2, b;
  ASSERT_TRUE(inbox.Park("sub_1", "hash-a", Later(), a1.attempt()));
  ASSERT_TRUE(inbox.Park("sub_2", "hash-a", Later(), a2.attempt()));
  ASSERT_TRUE(inbox.Park("sub_1", "hash-b", Later(), b.attempt()));
  inbox.EndKey("hash-a");
  EXPECT_EQ(a1.Turns().back(), Turn::kRevoked);
  EXPECT_EQ(a2.Turns().back(), Turn::kRevoked);
  EXPECT_EQ(a1.Answers(), 1);
  EXPECT_EQ(a2.Answers(), 1);
  EXPECT_EQ(b.Answers(), 0);
  EXPECT_TRUE(OnlyTries(b.Turns()));
  // Answered receivers are gone: a wake-up of their subscription finds b only.
  inbox.Notify({"sub_1", "sub_2"});
  EXPECT_EQ(a1.Answers(), 1);
  EXPECT_EQ(a2.Answers(), 1);
  EXPECT_EQ(b.Answers(), 0);
  inbox.Shutdown();
  EXPECT_EQ(b.Turns().back(), Turn::kShutdown);
  EXPECT_EQ(b.Answers(), 1);
}

TEST(Inbox, ShutdownAnswersParkedReceiversWithoutAReceive) {
  Inbox inbox = MakeInbox();
  Receiver r1, r2;
  ASSERT_TRUE(inbox.Park("sub_1", "hash-a", Later(), r1.attempt()));
  ASSERT_TRUE(inbox.Park("sub_1", "hash-b", Later(), r2.attempt()));
  inbox.Shutdown();
  for (Receiver* r : {&r1, &r2}) {
    std::vector<Turn> turns = r->Turns();
    ASSERT_FALSE(turns.empty());
    EXPECT_EQ(turns.back(), Turn::kShutdown);
    turns.pop_back();
    EXPECT_TRUE(OnlyTries(turns));  // no kLast: that would receive (and lease)
    EXPECT_EQ(r->Answers(), 1);
  }
}

TEST(Inbox, ParkAfterShutdownAnswersAtOnce) {
  Inbox inbox = MakeInbox();
  inbox.Shutdown();
  Receiver r;
  EXPECT_TRUE(inbox.Park("sub_1", "hash-a", Later(), r.attempt()));
  EXPECT_EQ(r.Turns(), std::vector<Turn>{Turn::kShutdown});
  // A wake-up after shutdown finds nothing parked.
  inbox.Notify({});
  EXPECT_EQ(r.Answers(), 1);
}

TEST(Inbox, EndKeyOfAnUnknownKeyChangesNothing) {
  Inbox inbox = MakeInbox();
  Receiver r;
  ASSERT_TRUE(inbox.Park("sub_1", "hash-a", Later(), r.attempt()));
  inbox.EndKey("hash-z");
  EXPECT_EQ(r.Answers(), 0);
  inbox.Shutdown();
  EXPECT_EQ(r.Answers(), 1);
}

}  // namespace
}  // namespace triggers::api
