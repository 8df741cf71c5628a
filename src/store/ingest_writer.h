// IngestWriter: group commit. Ingest requests from every I/O thread queue
// here; one writer thread takes everything queued, writes it in a single
// transaction with a single fsync (Store::CommitIngest) and then completes
// each request. No I/O thread ever waits on the disk.
//
// Large fan-out: a commit writes a bounded number of delivery rows and
// leaves the rest as pending fan-out in the store; between group commits
// the writer materializes one bounded chunk of it (Store::MaterializeFanout),
// so other requests wait for at most one chunk (docs/design.md, "Large
// fan-out"). It also looks for pending fan-out at start and when idle for
// `fanout_poll_ms` (what a crash or another node left).
//
// Thread safety: Submit() from any thread. Callbacks run where
// Options::complete runs them (the writer thread by default) and must not block.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "core/ids.h"
#include "triggers/clock.h"
#include "triggers/store.h"

namespace triggers::store {

// One request's events (1 for POST /v1/events, up to 500 for a batch).
struct IngestBatch {
  std::vector<IngestItem> items;
  int home = 0;  // where `done` should run (see Options::complete)
  // Called once, after the commit (Ok: every item has its outcome) or its failure.
  std::function<void(const Status&)> done;
};

class IngestWriter {
 public:
  struct Options {
    size_t max_queued_items = 50000;  // beyond this Submit refuses (503): bounded memory
    size_t max_items_per_commit = 2000;
    int64_t idempotency_window_ms = 24LL * 3600 * 1000;
    // Runs the completions of one commit in one go per `home` (one post per
    // I/O thread, not one per request). Default: inline on the writer thread.
    std::function<void(int home, std::function<void()>)> complete;
    // Called after a commit that created deliveries, with the subscriptions
    // that got them (wakes the dispatcher and parked pull receivers).
    std::function<void(const std::vector<std::string>& subscription_ids)> on_deliveries;
    // Called after a successful commit, before the replies, with every item
    // of it (outcome kCreated for the new events). Must be quick (live tail).
    std::function<void(const std::vector<IngestItem*>& items)> on_committed;
    // Re-matches items whose subscriptions generation is stale, inside the
    // ingest transaction (Store::CommitIngest). Null: matches are kept.
    IngestMatcher* matcher = nullptr;
    // How long the writer idles before it looks for pending fan-out left by
    // a crash or by another node.
    int64_t fanout_poll_ms = 5000;
    // Test hook (crash tests): stop materializing after this many chunks
    // and log "fan-out paused (test hook)". Negative: never.
    int64_t fanout_pause_after_chunks = -1;
  };
  IngestWriter(EventStore* store, Clock* clock, Options options);
  ~IngestWriter();  // Stop()s

  // Queues the batch. Returns false (and does not call done) when the queue
  // is full or the writer is stopping: the caller answers 503.
  bool Submit(std::shared_ptr<IngestBatch> batch);
  // Writes what is queued, then stops the thread. Idempotent.
  void Stop();

  uint64_t commits() const { return commits_.load(std::memory_order_relaxed); }
  uint64_t committed_items() const { return items_.load(std::memory_order_relaxed); }
  // Time spent inside Store::CommitIngest (writes and fsync), in total.
  uint64_t commit_ns() const { return commit_ns_.load(std::memory_order_relaxed); }
  // Pending fan-out chunks written.
  uint64_t fanout_chunks() const { return fanout_chunks_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // Moves up to one commit's worth of queued batches into `work`; with
  // `block`, waits for some first (at most fanout_poll_ms: *timed_out).
  // False: stopping and drained.
  bool Take(std::vector<std::shared_ptr<IngestBatch>>& work, bool block, bool* timed_out);
  // Commits `work` and answers its requests.
  void CommitGroup(std::vector<std::shared_ptr<IngestBatch>>& work);
  void CountCommitted(const std::vector<IngestItem*>& items, int64_t now);
  void Reply(std::vector<std::shared_ptr<IngestBatch>>& work, const Status& s);
  // One chunk of pending fan-out; returns whether more is left.
  bool MaterializeChunk(bool look);

  EventStore* store_;
  Clock* clock_;
  Options opts_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::shared_ptr<IngestBatch>> queue_;
  size_t queued_items_ = 0;
  bool stopping_ = false;
  bool waiting_ = false;  // the writer sleeps on cv_: Submit must wake it
  std::atomic<uint64_t> commits_{0};
  std::atomic<uint64_t> items_{0};
  std::atomic<uint64_t> commit_ns_{0};
  std::atomic<uint64_t> fanout_chunks_{0};
  core::UlidGenerator ids_;     // writer thread only
  bool paused_logged_ = false;  // writer thread only
  std::thread thread_;
};

}  // namespace triggers::store
