#include "store/ingest_writer.h"

#include <pthread.h>

#include <algorithm>

#include "core/ids.h"
#include "obs/activity.h"
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

void IngestWriter::Run() {
  pthread_setname_np(pthread_self(), "trg-writer");
  core::UlidGenerator ids;
  std::vector<std::shared_ptr<IngestBatch>> work;
  std::vector<IngestItem*> items;
  for (;;) {
    {
      std::unique_lock lock(mu_);
      while (!stopping_ && queue_.empty()) {
        waiting_ = true;
        cv_.wait(lock);
      }
      waiting_ = false;
      if (queue_.empty()) return;  // stopping and drained
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
    }
    // Ids are assigned here, by the one writer, so they increase in commit order.
    const int64_t now = clock_->NowMs();
    items.clear();
    for (auto& b : work) {
      for (auto& it : b->items) {
        it.event.id = ids.Next("evt_", now);
        it.event.received_at_ms = now;
        it.delivery_ids.clear();
        for (size_t k = 0; k < it.subscription_ids.size(); ++k) {
          it.delivery_ids.push_back(ids.Next("dlv_", now));
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
      // Counted per tenant, in runs (a commit usually holds one or few tenants).
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
      if (opts_.on_committed) opts_.on_committed(items);
    }
    // Subscriptions that got deliveries (decided in the transaction: it may
    // have re-matched).
    std::vector<std::string> touched;
    for (const IngestItem* it : items) {
      if (!s.ok() || it->outcome != IngestItem::Outcome::kCreated) continue;
      for (const auto& sid : it->subscription_ids) {
        if (std::find(touched.begin(), touched.end(), sid) == touched.end()) touched.push_back(sid);
      }
    }
    if (s.ok()) {
      commits_.fetch_add(1, std::memory_order_relaxed);
      items_.fetch_add(items.size(), std::memory_order_relaxed);
    }
    // We reply only now, after the commit: a 2xx promises the event is on disk.
    if (opts_.complete) {
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
    } else {
      for (auto& b : work) b->done(s);
      work.clear();
    }
    // After the replies: waking the dispatcher and parked receivers must never
    // hold back a 202.
    if (s.ok() && !touched.empty() && opts_.on_deliveries) opts_.on_deliveries(touched);
  }
}

}  // namespace triggers::store
