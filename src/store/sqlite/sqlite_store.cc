// The embedded store: SQLite in WAL mode with synchronous=FULL, so a COMMIT
// returns only after the WAL is fsync'd. One write connection (guarded by
// write_mu_, used by the group-commit writer and the rare admin writes) and a
// pool of read connections that WAL lets run beside it. This file: opening,
// migrations, the connection pool, transactions, ingest and events.
#include "store/sqlite/sqlite_delivery_rows.h"
#include "store/sqlite/sqlite_internal.h"

namespace triggers::store::sqlite {

Status SqliteStore::Ping() {
  // An open connection keeps answering from its file descriptor even when
  // the file is gone: check that the database is still where it belongs.
  struct stat sb;
  if (::stat(opts_.path.c_str(), &sb) != 0)
    return Status::Unavailable("store: database file missing");
  auto r = Reader();
  if (!r.conn) return r.status;
  PREPARE_OR_RETURN(st, *r.conn, "SELECT count(*) FROM (SELECT 1 FROM api_keys LIMIT 1)");
  return st.Step() == SQLITE_ROW ? Status::Ok() : SqlError(r.conn->db(), "ping");
}

Status SqliteStore::CommitIngest(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms,
                                 IngestMatcher* matcher) {
  std::lock_guard lock(write_mu_);
  if (!durable_) EndBookkeeping();
  if (!durable_) return Status::Unavailable("store: cannot restore synchronous=FULL");
  // Durability: COMMIT returns only after the WAL is fsync'd (synchronous=FULL);
  // the caller answers 2xx only after this returns Ok. The write lock
  // (BEGIN IMMEDIATE) orders this transaction against every subscription
  // write, so the generation read here is the one the commit lands on.
  Status s = WriteTxn(false, [&] {
    if (Status m = RematchStale(items, matcher); !m.ok()) return m;
    return WriteItems(items, now_ms, window_ms);
  });
  if (!s.ok()) {
    for (auto* it : items) it->outcome = IngestItem::Outcome::kPending;
  }
  return s;
}

Result<Event> SqliteStore::GetEvent(const std::string& tenant, const std::string& id) {
  auto r = Reader();
  if (!r.conn) return r.status;
  PREPARE_OR_RETURN(st, *r.conn, kGetEvent);
  st.Bind(1, tenant).Bind(2, id);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return ReadEvent(st);
  if (rc == SQLITE_DONE) return Status::NotFound("event not found");
  return SqlError(r.conn->db(), "get event");
}

Result<EventPage> SqliteStore::ListEvents(const std::string& tenant, const std::string& type,
                                          const ListOptions& opts) {
  auto r = Reader();
  if (!r.conn) return r.status;
  PREPARE_OR_RETURN(st, *r.conn, kListEvents);
  // No index on type (it cost a third of the ingest rate): a filtered list
  // walks the tenant's events in id order with a bounded budget.
  const int64_t fetch = type.empty() ? opts.limit + 1 : kTypeFilterScanBudget;
  st.Bind(1, tenant).Bind(2, opts.after_id).Bind(3, fetch);
  EventPage page;
  int rc;
  int64_t scanned = 0;
  std::string last_scanned;
  while ((rc = st.Step()) == SQLITE_ROW) {
    ++scanned;
    if (!type.empty()) {
      auto t = reinterpret_cast<const char*>(sqlite3_column_text(st.raw(), 2));
      last_scanned = st.Text(0);
      if (t == nullptr || type != t) continue;
    }
    if (static_cast<int>(page.events.size()) == opts.limit) {
      page.more = true;
      break;
    }
    page.events.push_back(ReadEvent(st));
  }
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(r.conn->db(), "list events");
  if (!type.empty() && !page.more && scanned == fetch) page.more = true;  // budget spent
  if (page.more) {
    page.resume_after = page.events.size() == static_cast<size_t>(opts.limit) || type.empty()
                            ? page.events.back().id
                            : last_scanned;
  }
  return page;
}

SqliteStore::ReaderHandle SqliteStore::Reader() {
  ReaderHandle h;
  h.self = this;
  {
    std::unique_lock lock(pool_mu_);
    pool_cv_.wait(lock, [&] { return !pool_.empty() || opened_ < opts_.read_connections; });
    if (!pool_.empty()) {
      h.conn = std::move(pool_.back());
      pool_.pop_back();
      return h;
    }
    ++opened_;
  }
  auto c = std::make_unique<Conn>();
  h.status = c->Open(opts_.path, false, 0);
  if (h.status.ok()) {
    h.conn = std::move(c);
  } else {
    std::lock_guard lock(pool_mu_);
    --opened_;
    pool_cv_.notify_one();
  }
  return h;
}

void SqliteStore::Return(std::unique_ptr<Conn> c) {
  std::lock_guard lock(pool_mu_);
  pool_.push_back(std::move(c));
  pool_cv_.notify_one();
}

// Delivery bookkeeping (leases, attempt records) commits without its own
// fsync: the next durable commit (any ingest) syncs it, and losing the last
// few of these in a power cut only means a delivery is attempted again,
// which at-least-once allows. Events and their deliveries stay FULL.
void SqliteStore::AddCount(std::string_view tenant, std::string_view status, int64_t n) {
  // A transaction touches a few (tenant, status) pairs: a linear search.
  for (auto& d : count_deltas_) {
    if (d.tenant == tenant && d.status == status) {
      d.n += n;
      return;
    }
  }
  count_deltas_.push_back({std::string(tenant), std::string(status), n});
}

Status SqliteStore::FlushCounts() {
  for (const auto& d : count_deltas_) {
    if (d.n == 0) continue;
    PREPARE_OR_RETURN(st, writer_,
                      "INSERT INTO delivery_counts(tenant,status,n) VALUES(?1,?2,?3) "
                      "ON CONFLICT(tenant,status) DO UPDATE SET n=n+excluded.n");
    st.Bind(1, d.tenant).Bind(2, d.status).Bind(3, d.n);
    if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "delivery counts");
  }
  return Status::Ok();
}

Status SqliteStore::BeginBookkeeping() {
  if (Status s = writer_.Run("PRAGMA synchronous=NORMAL"); !s.ok()) return s;
  Status s = writer_.Run("BEGIN IMMEDIATE");
  if (!s.ok()) EndBookkeeping();
  return s;
}

// Re-matches the items of every tenant whose generation moved since they
// were matched (in the ingest transaction, under the write lock).
Status SqliteStore::RematchStale(std::vector<IngestItem*>& items, IngestMatcher* matcher) {
  if (!matcher) return Status::Ok();
  std::vector<std::string_view> done;
  for (IngestItem* first : items) {
    const std::string& tenant = first->event.tenant;
    if (std::find(done.begin(), done.end(), tenant) != done.end()) continue;
    done.push_back(tenant);
    int64_t gen = 0;
    if (Status s = ReadGeneration(writer_, tenant, &gen); !s.ok()) return s;
    std::vector<IngestItem*> stale;
    for (IngestItem* it : items) {
      if (it->event.tenant == tenant && it->matched_generation != gen) stale.push_back(it);
    }
    if (stale.empty()) continue;
    std::vector<Subscription> subs;
    if (Status s = ReadTenantSubscriptions(writer_, tenant, &subs); !s.ok()) return s;
    matcher->Rematch(tenant, gen, subs, stale);
  }
  return Status::Ok();
}

Status SqliteStore::WriteItems(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms) {
  FanoutBudget budget(opts_.fanout_rows_per_commit);
  // The rows point into the items, which outlive the flush at the end.
  DeliveryRows deliveries(writer_);
  for (IngestItem* it : items) {
    Event& ev = it->event;
    if (!it->idempotency_key.empty()) {
      std::optional<core::IdempotencyRecord> existing;
      std::string first_id;
      {
        PREPARE_OR_RETURN(st, writer_, kGetIdem);
        st.Bind(1, ev.tenant).Bind(2, it->idempotency_key);
        int rc = st.Step();
        if (rc == SQLITE_ROW) {
          existing = core::IdempotencyRecord{st.Blob(0), st.Int(2)};
          first_id = st.Text(1);
        } else if (rc != SQLITE_DONE) {
          return SqlError(writer_.db(), "idempotency lookup");
        }
      }
      auto d = core::DecideIdempotency(existing, it->body_hash, now_ms, window_ms);
      if (d == core::IdempotencyDecision::kConflict) {
        it->outcome = IngestItem::Outcome::kConflict;
        continue;
      }
      if (d == core::IdempotencyDecision::kDuplicate) {
        PREPARE_OR_RETURN(st, writer_, kGetEvent);
        st.Bind(1, ev.tenant).Bind(2, first_id);
        int rc = st.Step();
        if (rc == SQLITE_ROW) {
          ev.id = st.Text(0);
          ev.type = st.Text(2);
          ev.received_at_ms = st.Int(7);
          it->outcome = IngestItem::Outcome::kDuplicate;
          continue;
        }
        if (rc != SQLITE_DONE) return SqlError(writer_.db(), "idempotency event");
        // The first event was purged: treat this one as new.
      }
      PREPARE_OR_RETURN(put, writer_, kPutIdem);
      put.Bind(1, ev.tenant).Bind(2, it->idempotency_key).BindBlob(3, it->body_hash);
      put.Bind(4, ev.id).Bind(5, now_ms);
      if (put.Step() != SQLITE_DONE) return SqlError(writer_.db(), "idempotency insert");
    }
    PREPARE_OR_RETURN(st, writer_, kInsertEvent);
    st.Bind(1, ev.id).Bind(2, ev.tenant).Bind(3, ev.type).Bind(4, ev.source);
    st.Bind(5, ev.subject).Bind(6, ev.ordering_key).Bind(7, ev.data);
    st.Bind(8, ev.received_at_ms).Bind(9, ev.resources);
    if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "insert event");
    const bool deferred = budget.Defer(*it);  // then only the ordered ones now
    for (size_t k = 0; k < it->subscription_ids.size() && k < it->delivery_ids.size(); ++k) {
      const bool ordered = k < it->subscription_ordered.size() && it->subscription_ordered[k];
      if (deferred && !ordered) continue;
      DeliveryRows::Row row{it->delivery_ids[k], ev.tenant, ev.id,   it->subscription_ids[k],
                            ev.received_at_ms,   now_ms,    ordered, std::string_view("")};
      // An ordered row without an ordering_key gets '' (NULL: unordered).
      if (ordered && ev.ordering_key) row.ordering_key = *ev.ordering_key;
      if (Status s = deliveries.Add(row); !s.ok()) return s;
    }
    it->outcome = IngestItem::Outcome::kCreated;
  }
  if (Status s = deliveries.Flush(); !s.ok()) return s;
  return WriteDeferred(budget.deferred());
}

Status SqliteStore::Migrate() {
  std::lock_guard lock(write_mu_);
  // BEGIN IMMEDIATE takes the write lock first, so two processes starting
  // together apply each migration once.
  if (Status s = writer_.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
  int64_t version = 0;
  {
    Status ps;
    sqlite3_stmt* raw = writer_.Prepare("PRAGMA user_version", &ps);
    if (!raw) {
      writer_.Exec("ROLLBACK");
      return ps;
    }
    Stmt st(raw);
    if (st.Step() == SQLITE_ROW) version = st.Int(0);
  }
  const int64_t target = static_cast<int64_t>(kSqliteMigrationsCount);
  Status s;
  for (int64_t v = version; v < target && s.ok(); ++v) {
    s = writer_.Exec(kSqliteMigrations[v].sql);
    if (s.ok()) s = writer_.Exec(("PRAGMA user_version=" + std::to_string(v + 1)).c_str());
  }
  if (s.ok() && version > target) {
    s = Status::Unavailable("store: database schema version " + std::to_string(version) +
                            " is newer than this binary supports");
  }
  if (s.ok()) s = writer_.Exec("COMMIT");
  if (!s.ok()) writer_.Exec("ROLLBACK");
  return s;
}

}  // namespace triggers::store::sqlite

namespace triggers::store {
Result<std::unique_ptr<Store>> OpenSqlite(const SqliteOptions& options) {
  auto s = std::make_unique<sqlite::SqliteStore>(options);
  if (Status st = s->Init(); !st.ok()) return st;
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace triggers::store
