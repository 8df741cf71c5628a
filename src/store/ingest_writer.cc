#include "store/ingest_writer.h"

#include <pthread.h>

#include <algorithm>
#include <string_view>
#include <unordered_set>

#include "core/ids.h"
#include "obs/activity.h"
#include "obs/logger.h"
#include "obs/metrics.h"

namespace triggers::store {

IngestWriter::IngestWriter(EventStore* store, Clock* clock, Options options)
    : store_(store), clock_(clock), opts_(options), thread_([this] { Run(); }) {}

IngestWriter::~IngestWriter() { Stop(); }

bool IngestWriter::Submit(std::shared_ptr<IngestBatch> batch) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || queued_items_ + batch->items.size() > opts_.max_queued_items) return false;
    queued_items_ += batch->items.size();
    queue_.push_back(std::move(batch));
    // While the writer is busy committing, it will find this batch when it
    // looks again: no wake-up (and no futex call) needed.
    if (!waiting_) return true;
    waiting_ = false;
  }
  cv_.notify_one();
  return true;
}

void IngestWriter::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

bool IngestWriter::Take(std::vector<std::shared_ptr<IngestBatch>>& work, bool block,
                        bool* timed_out) {
  std::unique_lock lock(mu_);
  *timed_out = false;
  while (block && !stopping_ && queue_.empty() && !*timed_out) {
    waiting_ = true;
    if (opts_.fanout_poll_ms > 0) {
      *timed_out = cv_.wait_for(lock, std::chrono::milliseconds(opts_.fanout_poll_ms)) ==
                   std::cv_status::timeout;
    } else {
      cv_.wait(lock);
    }
  }
  waiting_ = false;
  if (queue_.empty()) return !stopping_;  // false: stopping and drained
  // Take batches up to the per-commit cap (at least one).
  size_t n = 0, taken = 0;
  while (taken < queue_.size() &&
         (taken == 0 || n + queue_[taken]->items.size() <= opts_.max_items_per_commit)) {
    n += queue_[taken]->items.size();
    ++taken;
  }
  work.assign(std::make_move_iterator(queue_.begin()),
              std::make_move_iterator(queue_.begin() + static_cast<ptrdiff_t>(taken)));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<ptrdiff_t>(taken));
  queued_items_ -= n;
  return true;
}

void IngestWriter::Run() {
  pthread_setname_np(pthread_self(), "trg-writer");
  std::vector<std::shared_ptr<IngestBatch>> work;
  // At start: finish what a crash left (the markers are in the store).
  bool fanout_more = MaterializeChunk(true);
  for (;;) {
    // With pending fan-out the writer does not sleep: one group commit (of
    // whatever is queued), then one chunk, so requests interleave with it.
    // Stopping leaves the markers for the next start.
    bool timed_out = false;
    if (!Take(work, !fanout_more, &timed_out)) return;
    if (!work.empty()) CommitGroup(work);
    fanout_more = MaterializeChunk(timed_out);
  }
}

void IngestWriter::CommitGroup(std::vector<std::shared_ptr<IngestBatch>>& work) {
  // Ids are assigned here, by the one writer, so they increase in commit order.
  const int64_t now = clock_->NowMs();
  std::vector<IngestItem*> items;
  for (auto& b : work) {
    for (auto& it : b->items) {
      it.event.id = ids_.Next("evt_", now);
      it.event.received_at_ms = now;
      it.delivery_ids.clear();
      for (size_t k = 0; k < it.subscription_ids.size(); ++k) {
        it.delivery_ids.push_back(ids_.Next("dlv_", now));
      }
      items.push_back(&it);
    }
  }
  const int64_t t0 = clock_->MonoNs();
  Status s = store_->CommitIngest(items, now, opts_.idempotency_window_ms, opts_.matcher);
  const int64_t took_ns = clock_->MonoNs() - t0;
  commit_ns_.fetch_add(static_cast<uint64_t>(took_ns), std::memory_order_relaxed);
  if (s.ok()) {
    obs::Metrics::Get().GroupCommit(items.size(), static_cast<double>(took_ns) / 1e9);
    CountCommitted(items, now);
    if (opts_.on_committed) opts_.on_committed(items);
  }
  // Subscriptions that got deliveries (decided in the transaction: it may
  // have re-matched).
  // A set, not a scan of the list: a batch to 1,000 subscriptions is 500,000
  // ids (the scan took about 0.5 s of writer time before the replies).
  std::vector<std::string> touched;
  std::unordered_set<std::string_view> seen;
  for (const IngestItem* it : items) {
    if (!s.ok() || it->outcome != IngestItem::Outcome::kCreated) continue;
    for (const auto& sid : it->subscription_ids) {
      if (seen.insert(sid).second) touched.push_back(sid);
    }
  }
  if (s.ok()) {
    commits_.fetch_add(1, std::memory_order_relaxed);
    items_.fetch_add(items.size(), std::memory_order_relaxed);
  }
  // We reply only now, after the commit: a 2xx promises the event is on disk.
  Reply(work, s);
  // After the replies: waking the dispatcher and parked receivers must never
  // hold back a 202.
  if (s.ok() && !touched.empty() && opts_.on_deliveries) opts_.on_deliveries(touched);
}

// Counted per tenant, in runs (a commit usually holds one or few tenants).
void IngestWriter::CountCommitted(const std::vector<IngestItem*>& items, int64_t now) {
  size_t i = 0;
  while (i < items.size()) {
    size_t j = i;
    uint64_t created = 0;
    while (j < items.size() && items[j]->event.tenant == items[i]->event.tenant) {
      created += items[j]->outcome == IngestItem::Outcome::kCreated ? 1 : 0;
      ++j;
    }
    if (created) {
      obs::Metrics::Get().EventsIngested(items[i]->event.tenant, created);
      obs::Activity::Get().Ingested(items[i]->event.tenant, created, now);
    }
    i = j;
  }
}

void IngestWriter::Reply(std::vector<std::shared_ptr<IngestBatch>>& work, const Status& s) {
  if (!opts_.complete) {
    for (auto& b : work) b->done(s);
    work.clear();
    return;
  }
  // Group by home: usually one or two posts per commit.
  while (!work.empty()) {
    const int home = work.front()->home;
    std::vector<std::shared_ptr<IngestBatch>> mine, rest;
    for (auto& b : work) (b->home == home ? mine : rest).push_back(std::move(b));
    opts_.complete(home, [mine = std::move(mine), s]() {
      for (auto& b : mine) b->done(s);
    });
    work = std::move(rest);
  }
}

bool IngestWriter::MaterializeChunk(bool look) {
  if (opts_.fanout_pause_after_chunks >= 0 &&
      fanout_chunks_.load(std::memory_order_relaxed) >=
          static_cast<uint64_t>(opts_.fanout_pause_after_chunks)) {
    if (!paused_logged_) {
      obs::LogLine(obs::Level::kInfo, "fan-out paused (test hook)").Emit();
      paused_logged_ = true;
    }
    return false;
  }
  auto r = store_->MaterializeFanout(clock_->NowMs(), look);
  if (!r.ok()) {
    // The markers stay; the next poll (or the next commit) tries again.
    obs::LogLine(obs::Level::kWarn, "writing pending fan-out failed")
        .Str("error", r.status().message())
        .Emit();
    return false;
  }
  if (r.value().rows > 0 || r.value().more) fanout_chunks_.fetch_add(1, std::memory_order_relaxed);
  if (!r.value().subscription_ids.empty() && opts_.on_deliveries) {
    opts_.on_deliveries(r.value().subscription_ids);
  }
  return r.value().more;
}

}  // namespace triggers::store
