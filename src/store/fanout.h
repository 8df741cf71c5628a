// Large fan-out, shared by both store backends (docs/design.md, "Large
// fan-out"). An ingest transaction writes at most a budget of delivery rows
// itself; the unordered deliveries of the items beyond it are recorded as
// DeferredFanout markers (table fanout_pending) in the same transaction, and
// EventStore::MaterializeFanout writes them later in bounded chunks. A marker
// is the cross product event_ids x subscription_ids (in FanoutRow order);
// `done` of its rows are written.
//
// Not thread-safe; used inside one transaction.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "triggers/store.h"

namespace triggers::store {

struct DeferredFanout {
  std::string tenant;
  int64_t received_at_ms = 0;
  std::vector<std::string_view> event_ids;         // point into the items
  std::vector<std::string_view> subscription_ids;  // unordered ones only
};

// Space-separated (ids never contain a space).
inline std::string JoinIds(const std::vector<std::string_view>& ids) {
  std::string out;
  for (auto id : ids) {
    if (!out.empty()) out += ' ';
    out += id;
  }
  return out;
}

inline std::vector<std::string> SplitIds(std::string_view s) {
  std::vector<std::string> out;
  while (!s.empty()) {
    const size_t sp = s.find(' ');
    out.emplace_back(s.substr(0, sp));
    if (sp == std::string_view::npos) break;
    s.remove_prefix(sp + 1);
  }
  return out;
}

// The order a marker's rows are written in: tiles of kFanoutTileEvents
// events, subscription-major inside a tile. A chunk then adds rows for a few
// dozen subscriptions and events, not for every subscription of one event:
// the deliveries indexes (by subscription, by event) get few dirty pages per
// chunk, where event-major order dirtied a page per subscription in every
// chunk and made a fan-out 3 times slower than one big commit
// (docs/benchmarks.md, "Fan-out fairness").
inline constexpr size_t kFanoutTileEvents = 50;

// Row `i` of a marker of n_events x n_subs: {event index, subscription index}.
inline std::pair<size_t, size_t> FanoutRow(int64_t i, size_t n_events, size_t n_subs) {
  const size_t tile = kFanoutTileEvents * n_subs;
  const size_t b = static_cast<size_t>(i) / tile, j = static_cast<size_t>(i) % tile;
  const size_t in_tile = std::min(kFanoutTileEvents, n_events - b * kFanoutTileEvents);
  return {b * kFanoutTileEvents + j % in_tile, j / in_tile};
}

// Decides, item by item in commit order, which deliveries the ingest
// transaction writes itself. Ordered deliveries are always written (their
// seq must follow commit order, and a later chunk could not keep it).
class FanoutBudget {
 public:
  explicit FanoutBudget(int64_t rows) : left_(rows) {}

  // For a created item: true when its unordered deliveries are deferred
  // (appended to deferred()); the caller then writes only the ordered ones.
  bool Defer(const IngestItem& it) {
    const size_t n = std::min(it.subscription_ids.size(), it.delivery_ids.size());
    if (static_cast<int64_t>(n) <= left_) {
      left_ -= static_cast<int64_t>(n);
      return false;
    }
    std::vector<std::string_view> subs;
    for (size_t k = 0; k < n; ++k) {
      if (k < it.subscription_ordered.size() && it.subscription_ordered[k]) continue;
      subs.push_back(it.subscription_ids[k]);
    }
    left_ -= static_cast<int64_t>(n - subs.size());
    if (subs.empty()) return true;
    // Consecutive items with the same deliveries share one marker.
    if (!deferred_.empty()) {
      DeferredFanout& last = deferred_.back();
      if (last.tenant == it.event.tenant && last.received_at_ms == it.event.received_at_ms &&
          last.subscription_ids == subs) {
        last.event_ids.push_back(it.event.id);
        return true;
      }
    }
    deferred_.push_back({it.event.tenant, it.event.received_at_ms, {it.event.id}, std::move(subs)});
    return true;
  }
  const std::vector<DeferredFanout>& deferred() const { return deferred_; }

 private:
  int64_t left_;
  std::vector<DeferredFanout> deferred_;
};

}  // namespace triggers::store
