// The embedded store: the retention purge, in chunks (see purge_chunks.h).
#include "store/sqlite/sqlite_internal.h"

namespace triggers::store::sqlite {

// Every chunk is a bookkeeping transaction (no fsync of its own): a purge
// lost in a power cut is simply done again. write_mu_ is taken per chunk,
// so ingest commits run between chunks; when the lock went straight to a
// waiter, the purge pauses (limits.max_share) so that they run for longer.
Result<SqliteStore::PurgeCounts> SqliteStore::Purge(int64_t events_before_ms,
                                                    int64_t idem_before_ms, int64_t now_ms,
                                                    const PurgeLimits& limits) {
  PurgeEnv env;
  env.others_waiting = [this] { return write_mu_.busy(); };
  return RunPurgeChunks(limits,
                        {[&](int limit) { return PurgeEventsChunk(events_before_ms, limit); },
                         [&](int limit) { return PurgeFinishedChunk(events_before_ms, limit); },
                         [&](int limit) { return PurgeOrphansChunk(now_ms, limit); },
                         [&](int limit) { return PurgeIdempotencyChunk(idem_before_ms, limit); }},
                        env);
}

// Rows are appended in received_at order, so the expired events are a
// prefix by seq.
Result<int64_t> SqliteStore::PurgeEventsChunk(int64_t before_ms, int limit) {
  std::lock_guard lock(write_mu_);
  int64_t deleted = 0;
  Status s = WriteTxn(true, [&]() -> Status {
    int64_t last = -1;
    {
      PREPARE_OR_RETURN(st, writer_, "SELECT seq, received_at FROM events ORDER BY seq LIMIT ?");
      st.Bind(1, static_cast<int64_t>(limit));
      int rc;
      while ((rc = st.Step()) == SQLITE_ROW && st.Int(1) < before_ms) last = st.Int(0);
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(writer_.db(), "purge scan");
    }
    if (last < 0) return Status::Ok();
    PREPARE_OR_RETURN(del, writer_, "DELETE FROM events WHERE seq<=?");
    del.Bind(1, last);
    if (del.Step() != SQLITE_DONE) return SqlError(writer_.db(), "purge events");
    deleted = sqlite3_changes(writer_.db());
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return deleted;
}

// Finished deliveries (and their attempts) age out with the events; found
// through the partial index deliveries_finished.
Result<int64_t> SqliteStore::PurgeFinishedChunk(int64_t before_ms, int limit) {
  std::lock_guard lock(write_mu_);
  int64_t deleted = 0;
  Status s = WriteTxn(true, [&]() -> Status {
    std::vector<std::pair<int64_t, std::string>> rows;
    {
      PREPARE_OR_RETURN(sel, writer_,
                        "SELECT seq, id FROM deliveries WHERE next_attempt_at IS NULL AND "
                        "updated_at<?1 LIMIT ?2");
      sel.Bind(1, before_ms).Bind(2, static_cast<int64_t>(limit));
      int rc;
      while ((rc = sel.Step()) == SQLITE_ROW) rows.emplace_back(sel.Int(0), sel.Text(1));
      if (rc != SQLITE_DONE) return SqlError(writer_.db(), "purge deliveries scan");
    }
    PREPARE_OR_RETURN(da, writer_, "DELETE FROM delivery_attempts WHERE delivery_id=?");
    PREPARE_OR_RETURN(dd, writer_, "DELETE FROM deliveries WHERE seq=?");
    for (const auto& [seq, id] : rows) {
      da.Bind(1, id);
      if (da.Step() != SQLITE_DONE) return SqlError(writer_.db(), "purge attempts");
      sqlite3_reset(da.raw());
      dd.Bind(1, seq);
      if (dd.Step() != SQLITE_DONE) return SqlError(writer_.db(), "purge deliveries");
      sqlite3_reset(dd.raw());
    }
    deleted = static_cast<int64_t>(rows.size());
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return deleted;
}

// Unfinished deliveries whose event is gone can never be sent: dead. The
// search (a scan of the unfinished ones) runs on a reader, outside the
// write lock; the writer re-checks each candidate.
Result<int64_t> SqliteStore::PurgeOrphansChunk(int64_t now_ms, int limit) {
  std::vector<int64_t> candidates;
  {
    auto r = Reader();
    if (!r.conn) return r.status;
    static const std::string sql =
        "SELECT seq FROM deliveries d WHERE " + rules::IsOrphan("d") + " LIMIT ?";
    PREPARE_OR_RETURN(st, *r.conn, sql.c_str());
    st.Bind(1, static_cast<int64_t>(limit));
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) candidates.push_back(st.Int(0));
    if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "purge orphans scan");
  }
  if (candidates.empty()) return int64_t{0};
  std::lock_guard lock(write_mu_);
  int64_t changed = 0;
  Status s = WriteTxn(true, [&]() -> Status {
    // The state it leaves (for the counts), then the change.
    static const std::string get_sql =
        "SELECT tenant, status FROM deliveries d WHERE seq=?1 AND " + rules::IsOrphan("d");
    static const std::string sql =
        "UPDATE deliveries SET " + rules::SetDeadOrphan("?1") + " WHERE seq=?2";
    PREPARE_OR_RETURN(get, writer_, get_sql.c_str());
    PREPARE_OR_RETURN(up, writer_, sql.c_str());
    for (int64_t seq : candidates) {
      get.Bind(1, seq);
      int rc = get.Step();
      if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(writer_.db(), "purge orphans");
      if (rc == SQLITE_ROW) {
        const std::string tenant = get.Text(0), was = get.Text(1);
        up.Bind(1, now_ms).Bind(2, seq);
        if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "purge orphans");
        changed += sqlite3_changes(writer_.db());
        CountMove(tenant, was, kDeliveryDead, sqlite3_changes(writer_.db()));
        sqlite3_reset(up.raw());
      }
      sqlite3_reset(get.raw());
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return changed;
}

Result<int64_t> SqliteStore::PurgeIdempotencyChunk(int64_t before_ms, int limit) {
  std::lock_guard lock(write_mu_);
  int64_t deleted = 0;
  Status s = WriteTxn(true, [&]() -> Status {
    PREPARE_OR_RETURN(st, writer_,
                      "DELETE FROM idempotency WHERE (tenant,key) IN (SELECT tenant,key FROM "
                      "idempotency WHERE created_at<?1 LIMIT ?2)");
    st.Bind(1, before_ms).Bind(2, static_cast<int64_t>(limit));
    if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "purge idempotency");
    deleted = sqlite3_changes(writer_.db());
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return deleted;
}

}  // namespace triggers::store::sqlite
