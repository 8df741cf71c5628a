#include "store/ingest_writer.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <mutex>

#include "core/ids.h"
#include "fakes/fake_store.h"

namespace triggers::store {
namespace {

// Waits for `n` done() calls, with a deadline.
struct Completions {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<Status> statuses;
  void Add(const Status& s) {
    std::lock_guard lock(mu);
    statuses.push_back(s);
    cv.notify_all();
  }
  bool WaitFor(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(5), [&] { return statuses.size() >= n; });
  }
};

std::shared_ptr<IngestBatch> Batch(int events, Completions* c) {
  auto b = std::make_shared<IngestBatch>();
  b->items.resize(static_cast<size_t>(events));
  b->done = [c](const Status& s) { c->Add(s); };
  return b;
}

TEST(IngestWriter, CompletesOnlyAfterCommitAndAssignsIncreasingIds) {
  testing::FakeStore store;
  testing::FakeClock clock;
  IngestWriter w(&store, &clock, {});
  Completions c;
  for (int i = 0; i < 20; ++i) ASSERT_TRUE(w.Submit(Batch(3, &c)));
  ASSERT_TRUE(c.WaitFor(20));
  for (auto& s : c.statuses) EXPECT_TRUE(s.ok());
  std::lock_guard lock(store.mu);
  ASSERT_EQ(store.committed_ids.size(), 60u);
  for (size_t i = 1; i < store.committed_ids.size(); ++i) {
    EXPECT_LT(store.committed_ids[i - 1], store.committed_ids[i]);
    EXPECT_TRUE(core::IsValidId(store.committed_ids[i], "evt_"));
  }
}

TEST(IngestWriter, AFailedCommitFailsEveryRequestOfIt) {
  testing::FakeStore store;
  store.commit_status = Status::Unavailable("disk full");
  testing::FakeClock clock;
  IngestWriter w(&store, &clock, {});
  Completions c;
  auto b = Batch(2, &c);
  ASSERT_TRUE(w.Submit(b));
  ASSERT_TRUE(c.WaitFor(1));
  EXPECT_TRUE(c.statuses[0].IsUnavailable());
  // Nothing of a failed commit may look created.
  for (auto& it : b->items) EXPECT_NE(it.outcome, IngestItem::Outcome::kCreated);
}

TEST(IngestWriter, RefusesBeyondTheQueueBound) {
  testing::FakeStore store;
  testing::FakeClock clock;
  IngestWriter::Options o;
  o.max_queued_items = 5;
  IngestWriter w(&store, &clock, o);
  Completions c;
  EXPECT_FALSE(w.Submit(Batch(6, &c)));  // larger than the whole queue: refused at once
}

TEST(IngestWriter, GroupsCompletionsByHome) {
  testing::FakeStore store;
  testing::FakeClock clock;
  std::mutex mu;
  std::vector<int> homes;
  IngestWriter::Options o;
  o.complete = [&](int home, std::function<void()> fn) {
    {
      std::lock_guard lock(mu);
      homes.push_back(home);
    }
    fn();
  };
  IngestWriter w(&store, &clock, o);
  Completions c;
  for (int i = 0; i < 10; ++i) {
    auto b = Batch(1, &c);
    b->home = i % 2;
    ASSERT_TRUE(w.Submit(b));
  }
  ASSERT_TRUE(c.WaitFor(10));
  std::lock_guard lock(mu);
  // At most one post per home per commit.
  EXPECT_LE(homes.size(), 2u * static_cast<size_t>(store.commits.load()));
}

TEST(IngestWriter, StopDrainsTheQueue) {
  testing::FakeStore store;
  testing::FakeClock clock;
  Completions c;
  {
    IngestWriter w(&store, &clock, {});
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(w.Submit(Batch(1, &c)));
    w.Stop();
    EXPECT_FALSE(w.Submit(Batch(1, &c)));
  }
  EXPECT_EQ(c.statuses.size(), 50u);
}

}  // namespace
}  // namespace triggers::store
