#include "store/purge_chunks.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "core/fifo_mutex.h"

namespace triggers::store {
namespace {

using std::chrono::microseconds;

TEST(NextChunkRows, HalvesAboveTheTargetDoublesBelowHalfOfIt) {
  const microseconds target(2000);
  EXPECT_EQ(NextChunkRows(64, microseconds(2500), target, 1000), 32);
  EXPECT_EQ(NextChunkRows(1, microseconds(9000), target, 1000), 1);
  EXPECT_EQ(NextChunkRows(64, microseconds(900), target, 1000), 128);
  EXPECT_EQ(NextChunkRows(800, microseconds(10), target, 1000), 1000);
  EXPECT_EQ(NextChunkRows(64, microseconds(1500), target, 1000), 64);
}

// One kind with `total` rows; records the limit of every chunk.
struct FakeKind {
  explicit FakeKind(int64_t rows) : left(rows) {}
  int64_t left;
  std::chrono::milliseconds each{0};  // how long every chunk takes
  std::vector<int> limits;
  PurgeChunk Chunk() {
    return [this](int limit) -> Result<int64_t> {
      limits.push_back(limit);
      if (each.count() > 0) std::this_thread::sleep_for(each);
      int64_t n = std::min<int64_t>(left, limit);
      left -= n;
      return n;
    };
  }
};

TEST(RunPurgeChunks, FixedSizeWithoutATarget) {
  FakeKind a{25}, none{0};
  Store::PurgeLimits limits;
  limits.chunk_rows = 10;
  auto n = RunPurgeChunks(limits, {a.Chunk(), none.Chunk(), none.Chunk(), none.Chunk()});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->events, 25);
  EXPECT_EQ(a.limits, (std::vector<int>{10, 10, 10}));
  EXPECT_TRUE(n->complete);
}

TEST(RunPurgeChunks, CheapChunksGrowToTheMaximum) {
  FakeKind a{2000}, none{0};
  Store::PurgeLimits limits;
  limits.chunk_rows = 500;
  limits.chunk_target = std::chrono::hours(1);  // every chunk is far below it
  auto n = RunPurgeChunks(limits, {a.Chunk(), none.Chunk(), none.Chunk(), none.Chunk()});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->events, 2000);
  EXPECT_EQ(a.limits, (std::vector<int>{32, 64, 128, 256, 500, 500, 500, 500}));
}

TEST(RunPurgeChunks, SlowChunksShrinkEachKindApart) {
  FakeKind slow{64}, fast{100}, none{0};
  slow.each = std::chrono::milliseconds(3);  // every chunk above the 1 ms target
  Store::PurgeLimits limits;
  limits.chunk_target = std::chrono::milliseconds(1);
  auto n = RunPurgeChunks(limits, {slow.Chunk(), fast.Chunk(), none.Chunk(), none.Chunk()});
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->events, 64);
  EXPECT_EQ(n->deliveries, 100);
  EXPECT_EQ(slow.limits, (std::vector<int>{32, 16, 8, 4, 2, 1, 1, 1}));
  EXPECT_EQ(fast.limits.front(), 32);  // each kind starts small on its own
}

TEST(PauseAfterChunk, KeepsThePurgeWithinItsShareOnlyWhenOthersWait) {
  const microseconds took(5000);
  EXPECT_EQ(PauseAfterChunk(took, 0.25, true), microseconds(15000));
  EXPECT_EQ(PauseAfterChunk(took, 0.5, true), microseconds(5000));
  EXPECT_EQ(PauseAfterChunk(took, 0.25, false), microseconds(0));  // idle writer: no pause
  EXPECT_EQ(PauseAfterChunk(took, 0, true), microseconds(0));      // pacing off
  EXPECT_EQ(PauseAfterChunk(took, 1, true), microseconds(0));
}

// A pass on a fake clock: every chunk takes 4 ms, the pause advances the
// clock by what it was asked; `waiting` says, chunk by chunk, whether another
// write waited.
struct PacedPass {
  std::chrono::steady_clock::time_point t{};
  std::vector<microseconds> pauses;
  std::vector<bool> waiting;
  size_t asked = 0;
  PurgeEnv Env() {
    PurgeEnv env;
    env.now = [this] { return t; };
    env.pause = [this](microseconds d) {
      pauses.push_back(d);
      t += d;
    };
    env.others_waiting = [this] { return asked < waiting.size() && waiting[asked++]; };
    return env;
  }
  PurgeChunk Chunk(int64_t* left) {
    return [this, left](int limit) -> Result<int64_t> {
      t += std::chrono::milliseconds(4);
      int64_t n = std::min<int64_t>(*left, limit);
      *left -= n;
      return n;
    };
  }
};

TEST(RunPurgeChunks, PausesOnlyAfterChunksOthersWaitedFor) {
  PacedPass pass;
  pass.waiting = {true, false, true, false};
  int64_t left = 35, none = 0;
  Store::PurgeLimits limits;
  limits.chunk_rows = 10;
  limits.max_share = 0.25;
  auto n = RunPurgeChunks(
      limits, {pass.Chunk(&left), pass.Chunk(&none), pass.Chunk(&none), pass.Chunk(&none)},
      pass.Env());
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(n->events, 35);
  // Asked after every chunk; the 1st (events) and the 3rd (orphans, not
  // done before the events) were waited for: 4 ms at a quarter share, 12 ms.
  EXPECT_EQ(pass.pauses, (std::vector<microseconds>{microseconds(12000), microseconds(12000)}));
}

TEST(RunPurgeChunks, UnderContentionThePurgeHoldsItsShareAndThePausesCountTowardTheDeadline) {
  PacedPass pass;
  pass.waiting.assign(1000, true);
  int64_t left = 1000000, none = 0;
  Store::PurgeLimits limits;
  limits.chunk_rows = 10;
  limits.max_share = 0.25;
  limits.deadline = pass.t + std::chrono::milliseconds(100);
  const auto started = pass.t;
  auto n = RunPurgeChunks(
      limits, {pass.Chunk(&left), pass.Chunk(&none), pass.Chunk(&none), pass.Chunk(&none)},
      pass.Env());
  ASSERT_TRUE(n.ok());
  EXPECT_FALSE(n->complete);
  // Every chunk (4 ms) is followed by a 12 ms pause: the purge held a quarter
  // of the time. Rounds: 4 chunks (64 ms), then events and orphans (32 ms
  // each); the one that passed 100 ms is the last.
  EXPECT_EQ(n->chunks, 8);
  EXPECT_EQ(n->events, 30);
  EXPECT_EQ(pass.pauses.size(), 8u);
  EXPECT_EQ(pass.t - started, std::chrono::milliseconds(8 * 16));
}

// A thread that takes the lock again right after releasing it does not pass
// a thread already waiting: the waiter gets the next turn.
TEST(FifoMutex, AWaiterGetsTheNextTurn) {
  core::FifoMutex mu;
  std::atomic<bool> got{false};
  std::atomic<int> holds_while_waiting{0};
  mu.lock();
  std::thread waiter([&] {
    mu.lock();
    got = true;
    mu.unlock();
  });
  while (mu.waiters() == 0) std::this_thread::yield();
  mu.unlock();
  // The releasing thread loops on the lock, as a purge does per chunk.
  for (int i = 0; i < 100 && !got; ++i) {
    mu.lock();
    if (!got) ++holds_while_waiting;
    mu.unlock();
  }
  waiter.join();
  EXPECT_TRUE(got);
  EXPECT_EQ(holds_while_waiting.load(), 0);
  EXPECT_TRUE(mu.try_lock());
  EXPECT_FALSE(mu.try_lock());
  mu.unlock();
}

// busy() right after an unlock says whether the lock went on to a waiter
// (what the purge asks after each chunk).
TEST(FifoMutex, BusyAfterUnlockOnlyWhenHandedToAWaiter) {
  core::FifoMutex mu;
  mu.lock();
  mu.unlock();
  EXPECT_FALSE(mu.busy());
  mu.lock();
  std::atomic<bool> release{false};
  std::thread waiter([&] {
    mu.lock();
    while (!release) std::this_thread::yield();
    mu.unlock();
  });
  while (mu.waiters() == 0) std::this_thread::yield();
  mu.unlock();
  EXPECT_TRUE(mu.busy());  // the waiter holds it now
  release = true;
  waiter.join();
  EXPECT_FALSE(mu.busy());
}

}  // namespace
}  // namespace triggers::store
