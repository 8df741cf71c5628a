// The embedded store: large fan-out (docs/design.md, "Large fan-out"). The
// ingest transaction records the deliveries beyond its row budget as
// fanout_pending markers (WriteDeferred); MaterializeFanout writes them in
// chunks of at most the same budget, each its own durable transaction under
// write_mu_, so other commits run between chunks.
#include <deque>

#include "store/fanout.h"
#include "store/sqlite/sqlite_delivery_rows.h"
#include "store/sqlite/sqlite_internal.h"

namespace triggers::store::sqlite {

namespace {

constexpr char kInsertPending[] =
    "INSERT INTO fanout_pending(tenant,event_ids,subscription_ids,received_at) VALUES(?,?,?,?)";
constexpr char kOldestPending[] =
    "SELECT seq,tenant,event_ids,subscription_ids,received_at,done FROM fanout_pending "
    "ORDER BY seq LIMIT 1";
constexpr char kLiveSubscription[] =
    "SELECT 1 FROM subscriptions WHERE id=? AND deleted_at IS NULL";
constexpr char kAdvancePending[] = "UPDATE fanout_pending SET done=? WHERE seq=?";
constexpr char kDeletePending[] = "DELETE FROM fanout_pending WHERE seq=?";

}  // namespace

Status SqliteStore::WriteDeferred(const std::vector<DeferredFanout>& deferred) {
  for (const DeferredFanout& d : deferred) {
    const std::string events = JoinIds(d.event_ids), subs = JoinIds(d.subscription_ids);
    PREPARE_OR_RETURN(st, writer_, kInsertPending);
    st.Bind(1, d.tenant).Bind(2, events).Bind(3, subs).Bind(4, d.received_at_ms);
    if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "insert fanout marker");
  }
  if (!deferred.empty()) fanout_maybe_.store(true, std::memory_order_relaxed);
  return Status::Ok();
}

// The oldest marker's next rows, at most `budget` of them (*considered grows
// by how many, written or skipped); *found: there was a marker.
Status SqliteStore::MaterializeOne(int64_t now_ms, int64_t budget, FanoutChunk* out,
                                   int64_t* considered, bool* found) {
  PREPARE_OR_RETURN(st, writer_, kOldestPending);
  const int rc = st.Step();
  if (rc == SQLITE_DONE) {
    *found = false;
    return Status::Ok();
  }
  if (rc != SQLITE_ROW) return SqlError(writer_.db(), "read fanout marker");
  *found = true;
  const int64_t seq = st.Int(0);
  const std::string tenant = st.Text(1);
  const std::vector<std::string> events = SplitIds(st.Text(2));
  const std::vector<std::string> subs = SplitIds(st.Text(3));
  const int64_t received_at = st.Int(4), done = st.Int(5);
  const int64_t total = static_cast<int64_t>(events.size() * subs.size());
  const int64_t end = std::min(total, done + budget);
  // A subscription deleted since the ingest gets nothing: its DELETE took
  // the write lock and dropped its unfinished deliveries, and it is in the
  // past of this transaction.
  std::vector<int8_t> live(subs.size(), -1);
  // The ids the buffered rows point at (a deque: its strings never move).
  std::deque<std::string> ids;
  DeliveryRows rows(writer_);
  for (int64_t i = done; i < end; ++i) {
    const auto [e, s] = FanoutRow(i, events.size(), subs.size());
    if (live[s] < 0) {
      PREPARE_OR_RETURN(q, writer_, kLiveSubscription);
      q.Bind(1, subs[s]);
      const int qrc = q.Step();
      if (qrc != SQLITE_ROW && qrc != SQLITE_DONE) return SqlError(writer_.db(), "fanout sub");
      live[s] = qrc == SQLITE_ROW ? 1 : 0;
      if (live[s]) out->subscription_ids.push_back(subs[s]);
    }
    if (!live[s]) continue;
    ids.push_back(fanout_ids_.Next("dlv_", now_ms));
    DeliveryRows::Row row{ids.back(), tenant, events[e], subs[s], received_at, now_ms, false, {}};
    if (Status a = rows.Add(row); !a.ok()) return a;
    ++out->rows;
  }
  if (Status f = rows.Flush(); !f.ok()) return f;
  PREPARE_OR_RETURN(up, writer_, end == total ? kDeletePending : kAdvancePending);
  if (end == total) {
    up.Bind(1, seq);
  } else {
    up.Bind(1, end).Bind(2, seq);
  }
  if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "advance fanout marker");
  *considered += end - done;
  return Status::Ok();
}

Result<EventStore::FanoutChunk> SqliteStore::MaterializeFanout(int64_t now_ms, bool look) {
  FanoutChunk out;
  if (!look && !fanout_maybe_.load(std::memory_order_relaxed)) return out;
  std::lock_guard lock(write_mu_);
  if (!durable_) EndBookkeeping();
  if (!durable_) return Status::Unavailable("store: cannot restore synchronous=FULL");
  bool found = true;
  // Durable like the ingest it completes (the marker and its rows change
  // together, so a chunk lost in a crash is simply written again).
  Status s = WriteTxn(false, [&]() -> Status {
    const int64_t budget = std::max<int64_t>(1, opts_.fanout_rows_per_commit);
    int64_t considered = 0;
    while (found && considered < budget) {
      Status m = MaterializeOne(now_ms, budget - considered, &out, &considered, &found);
      if (!m.ok()) return m;
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  std::sort(out.subscription_ids.begin(), out.subscription_ids.end());
  out.subscription_ids.erase(std::unique(out.subscription_ids.begin(), out.subscription_ids.end()),
                             out.subscription_ids.end());
  out.more = found;
  if (!found) fanout_maybe_.store(false, std::memory_order_relaxed);
  return out;
}

}  // namespace triggers::store::sqlite
