// The schedule of a retention pass shared by the stores (Store::Purge): the
// backend supplies one chunk of each kind of work, this decides the order and
// when to stop.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>

#include "triggers/store.h"

namespace triggers::store {

// One chunk of one kind: does at most `limit` rows in its own transaction
// and returns how many it did (fewer than `limit`: that kind is done).
using PurgeChunk = std::function<Result<int64_t>(int limit)>;

// The size of a kind's next chunk after one of `rows` rows took `took`
// (limits.chunk_target > 0): halved above the target, doubled below half of it.
inline int NextChunkRows(int rows, std::chrono::microseconds took, std::chrono::microseconds target,
                         int max_rows) {
  if (took > target) return std::max(1, rows / 2);
  if (took * 2 < target) return std::min(max_rows, rows * 2);
  return rows;
}

// The first chunk of each kind when chunk sizes adapt: small, so that the
// first chunk of an expensive kind cannot hold the lock for long.
inline constexpr int kFirstAdaptiveChunkRows = 32;

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
  const int max_rows = limits.chunk_rows > 0 ? limits.chunk_rows : 1;
  const bool adapt = limits.chunk_target.count() > 0;
  std::array<int, 4> rows;
  rows.fill(adapt ? std::min(max_rows, kFirstAdaptiveChunkRows) : max_rows);
  for (;;) {
    bool left = false;
    for (size_t k = 0; k < kinds.size(); ++k) {
      if (done[k]) continue;
      const auto started = std::chrono::steady_clock::now();
      auto n = kinds[k](rows[k]);
      if (!n.ok()) return n.status();
      *totals[k] += n.value();
      ++counts.chunks;
      // Orphans keep appearing while events are deleted: not done before them.
      done[k] = n.value() < rows[k] && (k != 2 || done[0]);
      if (adapt) {
        auto took = std::chrono::duration_cast<std::chrono::microseconds>(
            std::chrono::steady_clock::now() - started);
        rows[k] = NextChunkRows(rows[k], took, limits.chunk_target, max_rows);
      }
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
