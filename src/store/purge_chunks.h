// The schedule of a retention pass shared by the stores (Store::Purge): the
// backend supplies one chunk of each kind of work, this decides the order and
// when to stop.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <thread>

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

// How long the purge pauses after a chunk that took `took` while another
// write waited for the writer, so that the purge holds at most `share` of
// the writer's time while others write: took * (1 - share) / share. Without
// waiters (or with `share` outside (0, 1)) there is no pause: on an idle
// writer the purge runs freely. A chunk handed straight to the next waiter
// (core::FifoMutex) otherwise alternates ~5 ms of purge with one ~0.6 ms
// group commit: the purge took ~90% of the writer and ingest fell by a
// third.
inline std::chrono::microseconds PauseAfterChunk(std::chrono::microseconds took, double share,
                                                 bool others_waited) {
  if (!others_waited || share <= 0 || share >= 1) return std::chrono::microseconds(0);
  return std::chrono::microseconds(static_cast<int64_t>(took.count() * (1 - share) / share));
}

// What the schedule needs from around it; tests replace the clock and the
// pause. `others_waiting` (null: never) is asked right after each chunk.
struct PurgeEnv {
  std::function<bool()> others_waiting;
  std::function<void(std::chrono::microseconds)> pause = [](std::chrono::microseconds d) {
    std::this_thread::sleep_for(d);
  };
  std::function<std::chrono::steady_clock::time_point()> now = [] {
    return std::chrono::steady_clock::now();
  };
};

// Runs rounds of one chunk per unfinished kind (events, finished deliveries,
// orphans, idempotency, in that order: orphans follow the events they lost)
// until every kind is done or the deadline has passed after a full round. The
// first error ends the pass (chunks already committed stay). After each
// chunk: its kind's next size (limits.chunk_target) and the pause that keeps
// the purge within limits.max_share of the writer.
inline Result<Store::PurgeCounts> RunPurgeChunks(const Store::PurgeLimits& limits,
                                                 const std::array<PurgeChunk, 4>& kinds,
                                                 const PurgeEnv& env = {}) {
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
      const auto started = env.now();
      auto n = kinds[k](rows[k]);
      if (!n.ok()) return n.status();
      const auto took = std::chrono::duration_cast<std::chrono::microseconds>(env.now() - started);
      *totals[k] += n.value();
      ++counts.chunks;
      // Orphans keep appearing while events are deleted: not done before them.
      done[k] = n.value() < rows[k] && (k != 2 || done[0]);
      if (adapt) rows[k] = NextChunkRows(rows[k], took, limits.chunk_target, max_rows);
      left = left || !done[k];
      const bool waited = env.others_waiting && env.others_waiting();
      if (auto p = PauseAfterChunk(took, limits.max_share, waited); p.count() > 0) env.pause(p);
    }
    if (!left) return counts;
    if (env.now() >= limits.deadline) {
      counts.complete = false;
      return counts;
    }
  }
}

}  // namespace triggers::store
