// The PostgreSQL store: large fan-out (docs/design.md, "Large fan-out").
// The ingest statement records the deliveries beyond its row budget as
// fanout_pending markers (kIngestBulk); MaterializeFanout writes them in
// chunks of at most the same budget. A chunk holds the commit-order lock,
// like ingest: delivery seq values follow commit order, and a DELETE of a
// subscription is ordered against it (before: the DELETE drops the chunk's
// rows; after: the chunk skips the subscription). Any node finishes any
// node's markers.
#include "store/fanout.h"
#include "store/postgres/pg_internal.h"

namespace triggers::store::postgres {

namespace {

constexpr char kOldestPending[] =
    "SELECT seq,tenant,event_ids,subscription_ids,received_at,done FROM fanout_pending "
    "ORDER BY seq LIMIT 1";
constexpr char kInsertChunk[] =
    "WITH ins AS (INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,"
    "next_attempt_at,created_at,updated_at,ordering_key) SELECT t.id,$2,t.ev,t.sub,'pending',"
    "CASE WHEN $5::bigint IS NULL THEN " DBNOW " ELSE $6::bigint END," NOW_AT("$5") "," NOW_AT(
        "$5") ",NULL FROM unnest($1::text[],$3::text[],$4::text[]) AS t(id,ev,sub) "
              "WHERE EXISTS (SELECT 1 FROM subscriptions s WHERE s.id=t.sub AND s.deleted_at IS "
              "NULL) RETURNING subscription_id) "
              "SELECT subscription_id, count(*) FROM ins GROUP BY subscription_id";
constexpr char kAdvancePending[] = "UPDATE fanout_pending SET done=$1 WHERE seq=$2";
constexpr char kDeletePending[] = "DELETE FROM fanout_pending WHERE seq=$1";
constexpr char kNotifyMany[] = "SELECT pg_notify('triggers_work',$1)";

}  // namespace

// The oldest marker's next rows, at most `budget` of them (*considered grows
// by how many, written or skipped); *found: there was a marker.
Status PgStore::MaterializeOne(pg::Conn& c, int64_t now_ms, int64_t budget, FanoutChunk* out,
                               int64_t* considered, bool* found) {
  ROWS_OR_RETURN(m, c.Run(kOldestPending, Params()));
  *found = m.size() > 0;
  if (!*found) return Status::Ok();
  const int64_t seq = m.Int(0, 0);
  const std::string tenant = m.Text(0, 1);
  const std::vector<std::string> events = SplitIds(m.Text(0, 2));
  const std::vector<std::string> subs = SplitIds(m.Text(0, 3));
  const int64_t received_at = m.Int(0, 4), done = m.Int(0, 5);
  const int64_t total = static_cast<int64_t>(events.size() * subs.size());
  const int64_t end = std::min(total, done + budget);
  ArrayBuilder ids, evs, sids;
  {
    std::lock_guard lock(fanout_mu_);
    for (int64_t i = done; i < end; ++i) {
      const auto [e, s] = FanoutRow(i, events.size(), subs.size());
      ids.Add(std::string_view(fanout_ids_.Next("dlv_", now_ms)));
      evs.Add(std::string_view(events[e]));
      sids.Add(std::string_view(subs[s]));
    }
  }
  if (end > done) {
    ROWS_OR_RETURN(r, c.Run(kInsertChunk, Params()
                                              .Own(ids.Finish())
                                              .Add(tenant)
                                              .Own(evs.Finish())
                                              .Own(sids.Finish())
                                              .AddOrNull(opts_.database_clock, now_ms)
                                              .Add(received_at)));
    for (int i = 0; i < r.size(); ++i) {
      out->subscription_ids.push_back(r.Text(i, 0));
      out->rows += r.Int(i, 1);
    }
  }
  if (end == total) {
    ROWS_OR_RETURN(d, c.Run(kDeletePending, Params().Add(seq)));
  } else {
    ROWS_OR_RETURN(u, c.Run(kAdvancePending, Params().Add(end).Add(seq)));
  }
  *considered += end - done;
  return Status::Ok();
}

Result<EventStore::FanoutChunk> PgStore::MaterializeFanout(int64_t now_ms, bool look) {
  FanoutChunk out;
  if (!look && !fanout_maybe_.load(std::memory_order_relaxed)) return out;
  CONN_OR_RETURN(c);
  bool found = true;
  Status s = OrderedTxn(*c, [&]() -> Status {
    const int64_t budget = std::max<int64_t>(1, opts_.fanout_rows_per_commit);
    int64_t considered = 0;
    while (found && considered < budget) {
      Status m = MaterializeOne(*c, now_ms, budget - considered, &out, &considered, &found);
      if (!m.ok()) return m;
    }
    std::sort(out.subscription_ids.begin(), out.subscription_ids.end());
    out.subscription_ids.erase(
        std::unique(out.subscription_ids.begin(), out.subscription_ids.end()),
        out.subscription_ids.end());
    if (out.subscription_ids.empty()) return Status::Ok();
    std::string payload;
    for (const auto& id : out.subscription_ids) {
      if (!payload.empty()) payload += ',';
      payload += id;
    }
    if (payload.size() > 7000) payload.clear();  // "any" (NOTIFY payloads are bounded)
    ROWS_OR_RETURN(n, c->Run(kNotifyMany, Params().Add(payload)));
    return Status::Ok();
  });
  if (!s.ok()) {
    // The outcome of a commit whose connection broke is unknown; either way
    // the markers say what is left, and the next call continues from them.
    return s;
  }
  out.more = found;
  if (!found) fanout_maybe_.store(false, std::memory_order_relaxed);
  return out;
}

}  // namespace triggers::store::postgres
