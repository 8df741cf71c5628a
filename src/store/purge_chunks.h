// The schedule of a retention pass shared by the stores (Store::Purge): the
// backend supplies one chunk of each kind of work, this decides the order and
// when to stop.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>

#include "triggers/store.h"

namespace triggers::store {

// One chunk of one kind: does at most `limit` rows in its own transaction
// and returns how many it did (fewer than `limit`: that kind is done).
using PurgeChunk = std::function<Result<int64_t>(int limit)>;

// Runs rounds of one chunk per unfinished kind (events, finished deliveries,
// orphans, idempotency, in that order: orphans follow the events they lost)
// until every kind is done or the deadline has passed after a full round. The
// first error ends the pass (chunks already committed stay).
inline Result<Store::PurgeCounts> RunPurgeChunks(const Store::PurgeLimits& limits,
                                                 const std::array<PurgeChunk, 4>& kinds) {
  Store::PurgeCounts counts;
  std::array<int64_t*, 4> totals{&counts.events, &counts.deliveries, &counts.orphans,
                                 &counts.idempotency};
  std::array<bool, 4> done{};
  const int limit = limits.chunk_rows > 0 ? limits.chunk_rows : 1;
  for (;;) {
    bool left = false;
    for (size_t k = 0; k < kinds.size(); ++k) {
      if (done[k]) continue;
      auto n = kinds[k](limit);
      if (!n.ok()) return n.status();
      *totals[k] += n.value();
      ++counts.chunks;
      // Orphans keep appearing while events are deleted: not done before them.
      done[k] = n.value() < limit && (k != 2 || done[0]);
      left = left || !done[k];
    }
    if (!left) return counts;
    if (std::chrono::steady_clock::now() >= limits.deadline) {
      counts.complete = false;
      return counts;
    }
  }
}

}  // namespace triggers::store
