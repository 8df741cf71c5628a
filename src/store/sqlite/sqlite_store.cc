// The embedded store: SQLite in WAL mode with synchronous=FULL, so a COMMIT
// returns only after the WAL is fsync'd. One write connection (guarded by
// write_mu_, used by the group-commit writer and the rare admin writes) and a
// pool of read connections that WAL lets run beside it.
#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "core/crypto.h"
#include "core/idempotency.h"
#include "core/ids.h"
#include "store/migrations.h"
#include "store/purge_chunks.h"
#include "triggers/store.h"

namespace triggers::store {
namespace {

// Translates an SQLite failure into a Status: the one place that does.
Status SqlError(sqlite3* db, const char* what) {
  int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
  std::string msg = std::string("store: ") + what + ": " + (db ? sqlite3_errmsg(db) : "?");
  if (code == SQLITE_CONSTRAINT) return Status::Conflict(msg);
  return Status::Unavailable(msg);
}

class Stmt {
 public:
  explicit Stmt(sqlite3_stmt* s) : s_(s) {}
  ~Stmt() {
    sqlite3_reset(s_);
    sqlite3_clear_bindings(s_);
  }
  Stmt& Bind(int i, std::string_view v) {
    sqlite3_bind_text(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& Bind(int i, const std::string& v) { return Bind(i, std::string_view(v)); }
  Stmt& BindBlob(int i, std::string_view v) {
    sqlite3_bind_blob(s_, i, v.data(), static_cast<int>(v.size()), SQLITE_STATIC);
    return *this;
  }
  Stmt& Bind(int i, const std::optional<std::string>& v) {
    if (v) return Bind(i, std::string_view(*v));
    sqlite3_bind_null(s_, i);
    return *this;
  }
  Stmt& Bind(int i, double v) {
    sqlite3_bind_double(s_, i, v);
    return *this;
  }
  Stmt& Bind(int i, int v) { return Bind(i, static_cast<int64_t>(v)); }
  Stmt& Bind(int i, const std::optional<int>& v) {
    if (v) return Bind(i, static_cast<int64_t>(*v));
    sqlite3_bind_null(s_, i);
    return *this;
  }
  Stmt& Bind(int i, int64_t v) {
    sqlite3_bind_int64(s_, i, v);
    return *this;
  }
  int Step() { return sqlite3_step(s_); }
  std::string Text(int col) const {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  std::string Blob(int col) const {
    auto p = static_cast<const char*>(sqlite3_column_blob(s_, col));
    return p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(s_, col))) : std::string();
  }
  std::optional<std::string> OptText(int col) const {
    if (sqlite3_column_type(s_, col) == SQLITE_NULL) return std::nullopt;
    return Text(col);
  }
  int64_t Int(int col) const { return sqlite3_column_int64(s_, col); }
  double Double(int col) const { return sqlite3_column_double(s_, col); }
  sqlite3_stmt* raw() const { return s_; }
  bool IsNull(int col) const { return sqlite3_column_type(s_, col) == SQLITE_NULL; }

 private:
  sqlite3_stmt* s_;
};

// One connection and its cache of prepared statements (keyed by SQL text address).
class Conn {
 public:
  ~Conn() {
    for (auto& [k, s] : cache_) sqlite3_finalize(s);
    if (db_) sqlite3_close(db_);
  }
  Status Open(const std::string& path, bool writer, int wal_autocheckpoint) {
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      return SqlError(db_, "open");
    }
    sqlite3_busy_timeout(db_, 5000);
    std::string pragmas =
        "PRAGMA page_size=16384; PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
        "PRAGMA foreign_keys=OFF; PRAGMA temp_store=MEMORY; PRAGMA cache_size=-16000;";
    if (writer) pragmas += "PRAGMA wal_autocheckpoint=" + std::to_string(wal_autocheckpoint) + ";";
    return Exec(pragmas.c_str());
  }
  Status Exec(const char* sql) {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql, nullptr, nullptr, &err) != SQLITE_OK) {
      Status s = SqlError(db_, "exec");
      sqlite3_free(err);
      return s;
    }
    return Status::Ok();
  }
  // Returns nullptr (and sets *status) when the statement cannot be prepared.
  sqlite3_stmt* Prepare(const char* sql, Status* status) {
    auto it = cache_.find(sql);
    if (it != cache_.end()) return it->second;
    sqlite3_stmt* s = nullptr;
    if (sqlite3_prepare_v3(db_, sql, -1, SQLITE_PREPARE_PERSISTENT, &s, nullptr) != SQLITE_OK) {
      *status = SqlError(db_, "prepare");
      return nullptr;
    }
    cache_.emplace(sql, s);
    return s;
  }
  sqlite3* db() { return db_; }

 private:
  sqlite3* db_ = nullptr;
  std::unordered_map<const char*, sqlite3_stmt*> cache_;
};

#define PREPARE_OR_RETURN(var, conn, sql)                       \
  Status var##_status;                                          \
  sqlite3_stmt* var##_raw = (conn).Prepare(sql, &var##_status); \
  if (!var##_raw) return var##_status;                          \
  Stmt var(var##_raw)

const char kInsertEvent[] =
    "INSERT INTO events(id,tenant,type,source,subject,ordering_key,data,received_at) "
    "VALUES(?,?,?,?,?,?,?,?)";
const char kInsertDelivery[] =
    "INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,next_attempt_at,"
    "created_at,updated_at,ordering_key) VALUES(?,?,?,?,'pending',?,?,?6,?7)";
const char kSubCols[] =
    "id,tenant,kind,url,event_types,filter,max_in_flight,rate_limit_per_s,ordered,description,"
    "enabled,secret,previous_secret,previous_secret_expires_at,max_receives,created_at,updated_at";
const char kDeliveryCols[] =
    "id,tenant,event_id,subscription_id,status,attempts,next_attempt_at,last_error,"
    "last_status_code,created_at,updated_at";
// For a pull message `attempts` counts receives, which max_receives limits: a
// retried or replayed one starts counting again. A push delivery keeps its
// count (its retry schedule continues where it stopped).
#define PULL_RECEIVES_RESET                                                             \
  "CASE WHEN (SELECT kind FROM subscriptions s WHERE s.id=deliveries.subscription_id)=" \
  "'pull' THEN 0 ELSE attempts END"

const char kGetIdem[] =
    "SELECT body_hash, event_id, created_at FROM idempotency WHERE tenant=? AND key=?";
const char kPutIdem[] =
    "INSERT OR REPLACE INTO idempotency(tenant,key,body_hash,event_id,created_at) "
    "VALUES(?,?,?,?,?)";
const char kGetEvent[] =
    "SELECT id,tenant,type,source,subject,ordering_key,data,received_at FROM events "
    "WHERE tenant=? AND id=?";
const char kListEvents[] =
    "SELECT id,tenant,type,source,subject,ordering_key,data,received_at FROM events "
    "WHERE tenant=? AND id>? ORDER BY id LIMIT ?";

Subscription ReadSubscription(const Stmt& st) {
  Subscription s;
  s.id = st.Text(0);
  s.tenant = st.Text(1);
  s.kind = st.Text(2);
  s.url = st.OptText(3);
  s.event_types_json = st.Text(4);
  s.filter_json = st.OptText(5);
  s.max_in_flight = static_cast<int>(st.Int(6));
  s.rate_limit_per_s = st.Double(7);
  s.ordered = st.Int(8) != 0;
  s.description = st.OptText(9);
  s.enabled = st.Int(10) != 0;
  s.secret = st.Text(11);
  s.previous_secret = st.OptText(12);
  s.previous_secret_expires_at_ms = st.Int(13);
  s.max_receives = static_cast<int>(st.Int(14));
  s.created_at_ms = st.Int(15);
  s.updated_at_ms = st.Int(16);
  return s;
}

Delivery ReadDelivery(const Stmt& st, int c = 0) {
  Delivery d;
  d.id = st.Text(c + 0);
  d.tenant = st.Text(c + 1);
  d.event_id = st.Text(c + 2);
  d.subscription_id = st.Text(c + 3);
  d.status = st.Text(c + 4);
  d.attempts = static_cast<int>(st.Int(c + 5));
  d.next_attempt_at_ms = st.IsNull(c + 6) ? 0 : st.Int(c + 6);
  d.last_error = st.OptText(c + 7);
  if (!st.IsNull(c + 8)) d.last_status_code = static_cast<int>(st.Int(c + 8));
  d.created_at_ms = st.Int(c + 9);
  d.updated_at_ms = st.Int(c + 10);
  return d;
}

Event ReadEvent(const Stmt& st, int c = 0) {
  Event e;
  e.id = st.Text(c + 0);
  e.tenant = st.Text(c + 1);
  e.type = st.Text(c + 2);
  e.source = st.OptText(c + 3);
  e.subject = st.OptText(c + 4);
  e.ordering_key = st.OptText(c + 5);
  e.data = st.Text(c + 6);
  e.received_at_ms = st.Int(c + 7);
  return e;
}

ApiKey ReadKey(const Stmt& st) {
  ApiKey k;
  k.id = st.Text(0);
  k.tenant = st.Text(1);
  k.name = st.OptText(2);
  k.scopes = static_cast<uint32_t>(std::stoul(st.Text(3).empty() ? "0" : st.Text(3)));
  k.hash = st.Blob(4);
  k.admin = st.Int(5) != 0;
  k.created_at_ms = st.Int(6);
  if (!st.IsNull(7)) k.revoked_at_ms = st.Int(7);
  return k;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(SqliteOptions o) : opts_(std::move(o)) {}

  Status Init() {
    if (Status s = writer_.Open(opts_.path, true, opts_.wal_autocheckpoint); !s.ok()) return s;
    return Migrate();
  }

  Status Ping() override {
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

  Status CommitIngest(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms,
                      IngestMatcher* matcher) override {
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

  Result<Event> GetEvent(const std::string& tenant, const std::string& id) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    PREPARE_OR_RETURN(st, *r.conn, kGetEvent);
    st.Bind(1, tenant).Bind(2, id);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return ReadEvent(st);
    if (rc == SQLITE_DONE) return Status::NotFound("event not found");
    return SqlError(r.conn->db(), "get event");
  }

  Result<EventPage> ListEvents(const std::string& tenant, const std::string& type,
                               const ListOptions& opts) override {
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

  // Every chunk is a bookkeeping transaction (no fsync of its own): a purge
  // lost in a power cut is simply done again. write_mu_ is taken per chunk,
  // so ingest commits run between chunks.
  Result<PurgeCounts> Purge(int64_t events_before_ms, int64_t idem_before_ms, int64_t now_ms,
                            const PurgeLimits& limits) override {
    return RunPurgeChunks(
        limits, {[&](int limit) { return PurgeEventsChunk(events_before_ms, limit); },
                 [&](int limit) { return PurgeFinishedChunk(events_before_ms, limit); },
                 [&](int limit) { return PurgeOrphansChunk(now_ms, limit); },
                 [&](int limit) { return PurgeIdempotencyChunk(idem_before_ms, limit); }});
  }

  // Rows are appended in received_at order, so the expired events are a
  // prefix by seq.
  Result<int64_t> PurgeEventsChunk(int64_t before_ms, int limit) {
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
  Result<int64_t> PurgeFinishedChunk(int64_t before_ms, int limit) {
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
  Result<int64_t> PurgeOrphansChunk(int64_t now_ms, int limit) {
    std::vector<int64_t> candidates;
    {
      auto r = Reader();
      if (!r.conn) return r.status;
      PREPARE_OR_RETURN(st, *r.conn,
                        "SELECT seq FROM deliveries d WHERE next_attempt_at IS NOT NULL AND NOT "
                        "EXISTS (SELECT 1 FROM events e WHERE e.tenant=d.tenant AND "
                        "e.id=d.event_id) LIMIT ?");
      st.Bind(1, static_cast<int64_t>(limit));
      int rc;
      while ((rc = st.Step()) == SQLITE_ROW) candidates.push_back(st.Int(0));
      if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "purge orphans scan");
    }
    if (candidates.empty()) return int64_t{0};
    std::lock_guard lock(write_mu_);
    int64_t changed = 0;
    Status s = WriteTxn(true, [&]() -> Status {
      PREPARE_OR_RETURN(up, writer_,
                        "UPDATE deliveries SET status='dead', next_attempt_at=NULL, receipt=NULL, "
                        "last_error='the event was purged by retention', updated_at=?1 WHERE "
                        "seq=?2 AND next_attempt_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
                        "events e WHERE e.tenant=deliveries.tenant AND e.id=deliveries.event_id)");
      for (int64_t seq : candidates) {
        up.Bind(1, now_ms).Bind(2, seq);
        if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "purge orphans");
        changed += sqlite3_changes(writer_.db());
        sqlite3_reset(up.raw());
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return changed;
  }

  Result<int64_t> PurgeIdempotencyChunk(int64_t before_ms, int limit) {
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

  Result<int64_t> CreateSubscription(const Subscription& s) override {
    std::lock_guard lock(write_mu_);
    int64_t gen = 0;
    Status st = WriteTxn(false, [&]() -> Status {
      PREPARE_OR_RETURN(
          ins, writer_,
          "INSERT INTO subscriptions(id,tenant,kind,url,event_types,filter,max_in_flight,"
          "rate_limit_per_s,ordered,description,enabled,secret,previous_secret,"
          "previous_secret_expires_at,max_receives,created_at,updated_at) "
          "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
      BindSubscription(ins, s);
      if (ins.Step() != SQLITE_DONE) return SqlError(writer_.db(), "create subscription");
      return BumpGeneration(s.tenant, &gen);
    });
    if (!st.ok()) return st;
    return gen;
  }

  Result<Subscription> GetSubscription(const std::string& tenant, const std::string& id) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    static const std::string sql =
        std::string("SELECT ") + kSubCols +
        " FROM subscriptions WHERE id=? AND tenant=? AND deleted_at IS NULL";
    PREPARE_OR_RETURN(st, *r.conn, sql.c_str());
    st.Bind(1, id).Bind(2, tenant);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return ReadSubscription(st);
    if (rc == SQLITE_DONE) return Status::NotFound("subscription not found");
    return SqlError(r.conn->db(), "get subscription");
  }

  Result<std::vector<Subscription>> ListSubscriptions(const std::string& tenant,
                                                      const ListOptions& opts) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    static const std::string sql = std::string("SELECT ") + kSubCols +
                                   " FROM subscriptions WHERE tenant=? AND id>? AND deleted_at IS "
                                   "NULL ORDER BY id LIMIT ?";
    PREPARE_OR_RETURN(st, *r.conn, sql.c_str());
    st.Bind(1, tenant).Bind(2, opts.after_id).Bind(3, static_cast<int64_t>(opts.limit));
    std::vector<Subscription> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadSubscription(st));
    if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "list subscriptions");
    return out;
  }

  Result<Subscription> ModifySubscription(const std::string& tenant, const std::string& id,
                                          const std::function<Status(Subscription*)>& change,
                                          int64_t* generation) override {
    std::lock_guard lock(write_mu_);
    Subscription sub;
    Status st = WriteTxn(false, [&]() -> Status {
      if (Status r = ReadSubscriptionRow(writer_, tenant, id, &sub); !r.ok()) return r;
      const Subscription stored = sub;
      if (Status c = change(&sub); !c.ok()) return c;
      sub.id = stored.id;
      sub.tenant = stored.tenant;
      sub.kind = stored.kind;
      sub.created_at_ms = stored.created_at_ms;
      PREPARE_OR_RETURN(up, writer_,
                        "UPDATE subscriptions SET url=?4,event_types=?5,filter=?6,"
                        "max_in_flight=?7,rate_limit_per_s=?8,ordered=?9,description=?10,"
                        "enabled=?11,secret=?12,previous_secret=?13,"
                        "previous_secret_expires_at=?14,max_receives=?15,updated_at=?17 "
                        "WHERE id=?1 AND tenant=?2 AND deleted_at IS NULL");
      BindSubscription(up, sub);
      if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "update subscription");
      return BumpGeneration(tenant, generation);
    });
    if (!st.ok()) return st;
    return sub;
  }

  Result<int64_t> DeleteSubscription(const std::string& tenant, const std::string& id,
                                     int64_t now_ms) override {
    std::lock_guard lock(write_mu_);
    int64_t gen = 0;
    Status s = WriteTxn(false, [&]() -> Status {
      PREPARE_OR_RETURN(st, writer_,
                        "UPDATE subscriptions SET deleted_at=?1, updated_at=?1 WHERE id=?2 AND "
                        "tenant=?3 AND deleted_at IS NULL");
      st.Bind(1, now_ms).Bind(2, id).Bind(3, tenant);
      if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "delete subscription");
      if (sqlite3_changes(writer_.db()) == 0) return Status::NotFound("subscription not found");
      PREPARE_OR_RETURN(
          dd, writer_,
          "DELETE FROM deliveries WHERE subscription_id=? AND next_attempt_at IS NOT NULL");
      dd.Bind(1, id);
      if (dd.Step() != SQLITE_DONE) return SqlError(writer_.db(), "delete deliveries");
      return BumpGeneration(tenant, &gen);
    });
    if (!s.ok()) return s;
    return gen;
  }

  Result<std::vector<std::pair<std::string, int64_t>>> SubscriptionGenerations() override {
    auto r = Reader();
    if (!r.conn) return r.status;
    PREPARE_OR_RETURN(st, *r.conn, "SELECT tenant, generation FROM subscription_generations");
    std::vector<std::pair<std::string, int64_t>> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.emplace_back(st.Text(0), st.Int(1));
    if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "subscription generations");
    return out;
  }

  Result<TenantSubscriptions> LoadTenantSubscriptions(const std::string& tenant) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    TenantSubscriptions out;
    // The generation first: the list may then only be newer than it.
    if (Status s = ReadGeneration(*r.conn, tenant, &out.generation); !s.ok()) return s;
    if (Status s = ReadTenantSubscriptions(*r.conn, tenant, &out.subscriptions); !s.ok()) return s;
    return out;
  }

  Result<std::vector<Delivery>> ListDeliveries(const std::string& tenant, const DeliveryFilter& f,
                                               const ListOptions& opts) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    // One statement per filter shape, each able to use an index.
    std::string sql = std::string("SELECT ") + kDeliveryCols + " FROM deliveries WHERE tenant=?1";
    if (!f.event_id.empty()) sql += " AND event_id=?2";
    if (!f.subscription_id.empty()) sql += " AND subscription_id=?3";
    if (!f.status.empty()) sql += " AND status=?4";
    sql += " AND id>?5 ORDER BY id LIMIT ?6";
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(r.conn->db(), sql.c_str(), -1, &raw, nullptr) != SQLITE_OK) {
      return SqlError(r.conn->db(), "list deliveries");
    }
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> owner(raw, sqlite3_finalize);
    Stmt st(raw);
    st.Bind(1, tenant).Bind(5, opts.after_id).Bind(6, static_cast<int64_t>(opts.limit));
    if (!f.event_id.empty()) st.Bind(2, f.event_id);
    if (!f.subscription_id.empty()) st.Bind(3, f.subscription_id);
    if (!f.status.empty()) st.Bind(4, f.status);
    std::vector<Delivery> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadDelivery(st));
    if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "list deliveries");
    return out;
  }

  Result<Delivery> GetDelivery(const std::string& tenant, const std::string& id) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    Delivery d;
    {
      static const std::string sql =
          std::string("SELECT ") + kDeliveryCols + " FROM deliveries WHERE id=? AND tenant=?";
      PREPARE_OR_RETURN(st, *r.conn, sql.c_str());
      st.Bind(1, id).Bind(2, tenant);
      int rc = st.Step();
      if (rc == SQLITE_DONE) return Status::NotFound("delivery not found");
      if (rc != SQLITE_ROW) return SqlError(r.conn->db(), "get delivery");
      d = ReadDelivery(st);
    }
    PREPARE_OR_RETURN(st, *r.conn,
                      "SELECT at,status_code,latency_ms,error,response_snippet FROM "
                      "delivery_attempts WHERE delivery_id=? ORDER BY n");
    st.Bind(1, id);
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) {
      DeliveryAttempt a;
      a.at_ms = st.Int(0);
      if (!st.IsNull(1)) a.status_code = static_cast<int>(st.Int(1));
      a.latency_ms = st.Int(2);
      a.error = st.OptText(3);
      a.response_snippet = st.Text(4);
      d.attempt_log.push_back(std::move(a));
    }
    if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "get attempts");
    return d;
  }

  Status RetryDelivery(const std::string& tenant, const std::string& id, int64_t now_ms) override {
    std::lock_guard lock(write_mu_);
    PREPARE_OR_RETURN(
        get, writer_,
        "SELECT d.status, s.deleted_at IS NULL AND s.id IS NOT NULL FROM deliveries d "
        "LEFT JOIN subscriptions s ON s.id=d.subscription_id WHERE d.id=? AND d.tenant=?");
    get.Bind(1, id).Bind(2, tenant);
    int rc = get.Step();
    if (rc == SQLITE_DONE) return Status::NotFound("delivery not found");
    if (rc != SQLITE_ROW) return SqlError(writer_.db(), "retry delivery");
    std::string status = get.Text(0);
    if (get.Int(1) == 0) return Status::Conflict("the delivery's subscription was deleted");
    if (status == kDeliveryPending || status == kDeliveryInFlight) {
      return Status::Conflict("the delivery is " + status + " already");
    }
    PREPARE_OR_RETURN(st, writer_,
                      "UPDATE deliveries SET status='pending', next_attempt_at=?1, updated_at=?1, "
                      "attempts=" PULL_RECEIVES_RESET " WHERE id=?2");
    st.Bind(1, now_ms).Bind(2, id);
    if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "retry delivery");
    return Status::Ok();
  }

  Result<int64_t> RequeueDead(const std::string& tenant, const std::string& sub_id,
                              const std::string& min_id, const std::string& max_id,
                              int64_t now_ms) override {
    std::lock_guard lock(write_mu_);
    PREPARE_OR_RETURN(st, writer_,
                      "UPDATE deliveries SET status='pending', next_attempt_at=?1, updated_at=?1, "
                      "attempts=" PULL_RECEIVES_RESET
                      " WHERE tenant=?2 AND subscription_id=?3 AND "
                      "status='dead' AND event_id>=?4 AND event_id<=?5 AND EXISTS (SELECT 1 FROM "
                      "subscriptions s WHERE s.id=?3 AND s.tenant=?2 AND s.deleted_at IS NULL)");
    st.Bind(1, now_ms).Bind(2, tenant).Bind(3, sub_id).Bind(4, min_id).Bind(5, max_id);
    if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "requeue dead");
    return static_cast<int64_t>(sqlite3_changes(writer_.db()));
  }

  Result<int64_t> CreateMissingDeliveries(const std::string& tenant, const std::string& sub_id,
                                          const std::vector<Event>& events, bool ordered,
                                          int64_t now_ms) override {
    if (events.empty()) return int64_t{0};
    std::lock_guard lock(write_mu_);
    int64_t created = 0;
    Status s = WriteTxn(false, [&]() -> Status {
      for (const auto& ev : events) {
        PREPARE_OR_RETURN(
            ins, writer_,
            "INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,"
            "next_attempt_at,created_at,updated_at,ordering_key) SELECT ?1,?2,?3,?4,'pending',"
            "?5,?5,?5,?6 "
            "WHERE NOT EXISTS (SELECT 1 FROM deliveries WHERE tenant=?2 AND "
            "event_id=?3 AND subscription_id=?4) AND EXISTS (SELECT 1 FROM subscriptions s "
            "WHERE s.id=?4 AND s.tenant=?2 AND s.deleted_at IS NULL)");
        std::string id = core::NewId("dlv_", now_ms);
        ins.Bind(1, id).Bind(2, tenant).Bind(3, ev.id).Bind(4, sub_id).Bind(5, now_ms);
        if (ordered) ins.Bind(6, ev.ordering_key ? std::string_view(*ev.ordering_key) : "");
        if (ins.Step() != SQLITE_DONE) return SqlError(writer_.db(), "replay insert");
        created += sqlite3_changes(writer_.db());
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return created;
  }

  Result<std::vector<Leased>> LeaseDue(const std::string& sub_id, int64_t now_ms, int max,
                                       int64_t lease_until_ms) override {
    return Lease(sub_id, now_ms, max, lease_until_ms, 0);
  }

  Result<std::vector<Leased>> Receive(const std::string& sub_id, int64_t now_ms, int max,
                                      int64_t visible_again_ms, int max_receives) override {
    return Lease(sub_id, now_ms, max, visible_again_ms, std::max(1, max_receives));
  }

  Result<std::vector<ReceiptResult>> Settle(const std::string& sub_id,
                                            const std::vector<std::string>& receipts, bool ack,
                                            int64_t visible_at_ms, int64_t now_ms) override {
    std::lock_guard lock(write_mu_);
    std::vector<ReceiptResult> out;
    Status s = WriteTxn(true, [&]() -> Status {
      for (const auto& receipt : receipts) {
        ReceiptResult rr;
        rr.receipt = receipt;
        rr.status = "not_found";
        size_t dot = receipt.find('.');
        std::string id = receipt.substr(0, dot);
        {
          PREPARE_OR_RETURN(
              get, writer_,
              "SELECT status, receipt, next_attempt_at FROM deliveries WHERE id=? AND "
              "subscription_id=?");
          get.Bind(1, id).Bind(2, sub_id);
          int rc = get.Step();
          if (rc == SQLITE_ROW) {
            bool live = get.Text(0) == kDeliveryInFlight && !get.IsNull(2) && get.Int(2) > now_ms &&
                        dot != std::string::npos && get.Text(1) == receipt;
            rr.status = live ? (ack ? "acked" : "nacked") : "expired";
          } else if (rc != SQLITE_DONE) {
            return SqlError(writer_.db(), "receipt");
          }
        }
        if (rr.status == "acked" || rr.status == "nacked") {
          PREPARE_OR_RETURN(up, writer_,
                            ack ? "UPDATE deliveries SET status='succeeded', next_attempt_at=NULL, "
                                  "receipt=NULL, updated_at=?2 WHERE id=?1"
                                : "UPDATE deliveries SET status='retrying', next_attempt_at=?3, "
                                  "receipt=NULL, updated_at=?2 WHERE id=?1");
          up.Bind(1, id).Bind(2, now_ms);
          if (!ack) up.Bind(3, visible_at_ms);
          if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "settle");
        }
        out.push_back(std::move(rr));
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  Status RecordAttempts(const std::vector<AttemptResult>& results, int64_t now_ms) override {
    if (results.empty()) return Status::Ok();
    std::lock_guard lock(write_mu_);
    Status s = WriteTxn(true, [&]() -> Status {
      for (const auto& r : results) {
        {
          PREPARE_OR_RETURN(ins, writer_,
                            "INSERT OR REPLACE INTO delivery_attempts(delivery_id,n,at,status_code,"
                            "latency_ms,error,response_snippet) SELECT ?1, attempts+1, ?2, ?3, ?4, "
                            "?5, ?6 FROM deliveries WHERE id=?1 AND (?7='' OR "
                            "(status='in_flight' AND receipt=?7))");
          ins.Bind(1, r.delivery_id).Bind(2, r.attempt.at_ms).Bind(3, r.attempt.status_code);
          ins.Bind(4, r.attempt.latency_ms).Bind(5, r.attempt.error);
          ins.Bind(6, r.attempt.response_snippet).Bind(7, r.lease_token);
          if (ins.Step() != SQLITE_DONE) return SqlError(writer_.db(), "record attempt");
        }
        const bool finished = r.status == kDeliverySucceeded || r.status == kDeliveryDead;
        PREPARE_OR_RETURN(
            up, writer_,
            "UPDATE deliveries SET status=?2, attempts=attempts+1, next_attempt_at=?3,"
            " last_error=?4, last_status_code=?5, updated_at=?6 WHERE id=?1 AND (?7='' OR "
            "(status='in_flight' AND receipt=?7))");
        up.Bind(1, r.delivery_id).Bind(2, r.status);
        if (finished) {
          sqlite3_bind_null(up.raw(), 3);
        } else {
          up.Bind(3, r.next_attempt_at_ms);
        }
        up.Bind(4, r.attempt.error).Bind(5, r.attempt.status_code).Bind(6, now_ms);
        up.Bind(7, r.lease_token);
        if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "record attempt");
      }
      return Status::Ok();
    });
    return s;
  }

  Result<std::vector<std::string>> SubscriptionsWithDueWork(int64_t now_ms) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    PREPARE_OR_RETURN(st, *r.conn,
                      "SELECT DISTINCT subscription_id FROM deliveries WHERE next_attempt_at IS "
                      "NOT NULL AND next_attempt_at<=?");
    st.Bind(1, now_ms);
    std::vector<std::string> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(st.Text(0));
    if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "due work");
    return out;
  }

  Status ReleaseLeases(const std::vector<LeaseRef>& leases, int64_t now_ms) override {
    if (leases.empty()) return Status::Ok();
    std::lock_guard lock(write_mu_);
    Status s = WriteTxn(true, [&]() -> Status {
      for (const auto& l : leases) {
        PREPARE_OR_RETURN(up, writer_,
                          "UPDATE deliveries SET status=CASE WHEN attempts=0 THEN 'pending' ELSE "
                          "'retrying' END, next_attempt_at=?1, updated_at=?1, receipt=NULL "
                          "WHERE id=?2 AND status='in_flight' AND receipt=?3");
        up.Bind(1, now_ms).Bind(2, l.delivery_id).Bind(3, l.token);
        if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "release");
      }
      return Status::Ok();
    });
    return s;
  }

  Status DeliveryStats(int64_t now_ms, std::vector<std::pair<std::string, int64_t>>* by_state,
                       int64_t* oldest_due_ms) override {
    return Stats(nullptr, now_ms, by_state, oldest_due_ms);
  }

  Status TenantDeliveryStats(const std::string& tenant, int64_t now_ms,
                             std::vector<std::pair<std::string, int64_t>>* by_state,
                             int64_t* oldest_due_ms) override {
    return Stats(&tenant, now_ms, by_state, oldest_due_ms);
  }

  Status Stats(const std::string* tenant, int64_t now_ms,
               std::vector<std::pair<std::string, int64_t>>* by_state, int64_t* oldest_due_ms) {
    auto r = Reader();
    if (!r.conn) return r.status;
    for (const char* st : {kDeliveryPending, kDeliveryInFlight, kDeliverySucceeded,
                           kDeliveryRetrying, kDeliveryDead}) {
      by_state->emplace_back(st, 0);
    }
    {
      PREPARE_OR_RETURN(st, *r.conn,
                        tenant ? "SELECT status, count(*) FROM deliveries WHERE tenant=? GROUP BY "
                                 "status"
                               : "SELECT status, count(*) FROM deliveries GROUP BY status");
      if (tenant) st.Bind(1, *tenant);
      int rc;
      while ((rc = st.Step()) == SQLITE_ROW) {
        for (auto& [name, n] : *by_state) {
          if (name == st.Text(0)) n = st.Int(1);
        }
      }
      if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "delivery stats");
    }
    PREPARE_OR_RETURN(
        st, *r.conn,
        tenant ? "SELECT min(next_attempt_at) FROM deliveries WHERE next_attempt_at IS NOT NULL "
                 "AND status IN ('pending','retrying') AND next_attempt_at<=?1 AND tenant=?2"
               : "SELECT min(next_attempt_at) FROM deliveries WHERE next_attempt_at IS NOT NULL "
                 "AND status IN ('pending','retrying') AND next_attempt_at<=?1");
    st.Bind(1, now_ms);
    if (tenant) st.Bind(2, *tenant);
    int rc = st.Step();
    if (rc != SQLITE_ROW) return SqlError(r.conn->db(), "oldest due");
    *oldest_due_ms = st.IsNull(0) ? 0 : st.Int(0);
    return Status::Ok();
  }

  Status CreateKey(const ApiKey& k) override {
    std::lock_guard lock(write_mu_);
    PREPARE_OR_RETURN(st, writer_,
                      "INSERT INTO api_keys(id,tenant,name,scopes,hash,admin,created_at) "
                      "VALUES(?,?,?,?,?,?,?)");
    std::string scopes = std::to_string(k.scopes);
    st.Bind(1, k.id).Bind(2, k.tenant).Bind(3, k.name).Bind(4, scopes).BindBlob(5, k.hash);
    st.Bind(6, static_cast<int64_t>(k.admin ? 1 : 0)).Bind(7, k.created_at_ms);
    if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "create key");
    return Status::Ok();
  }

  Result<ApiKey> FindKeyByHash(const std::string& hash) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    PREPARE_OR_RETURN(st, *r.conn,
                      "SELECT id,tenant,name,scopes,hash,admin,created_at,revoked_at "
                      "FROM api_keys WHERE hash=?");
    st.BindBlob(1, hash);
    int rc = st.Step();
    if (rc == SQLITE_ROW) return ReadKey(st);
    if (rc == SQLITE_DONE) return Status::NotFound("key not found");
    return SqlError(r.conn->db(), "find key");
  }

  Result<std::vector<ApiKey>> ListKeys(const std::string& tenant,
                                       const ListOptions& opts) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    const char* sql = tenant.empty()
                          ? "SELECT id,tenant,name,scopes,hash,admin,created_at,revoked_at "
                            "FROM api_keys WHERE admin=0 AND id>? ORDER BY id LIMIT ?"
                          : "SELECT id,tenant,name,scopes,hash,admin,created_at,revoked_at "
                            "FROM api_keys WHERE admin=0 AND tenant=? AND id>? ORDER BY id LIMIT ?";
    PREPARE_OR_RETURN(st, *r.conn, sql);
    int i = 1;
    if (!tenant.empty()) st.Bind(i++, tenant);
    st.Bind(i, opts.after_id);
    st.Bind(i + 1, static_cast<int64_t>(opts.limit));
    std::vector<ApiKey> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(ReadKey(st));
    if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "list keys");
    return out;
  }

  Result<std::string> RevokeKey(const std::string& tenant, const std::string& id,
                                int64_t now_ms) override {
    std::lock_guard lock(write_mu_);
    std::string hash;
    {
      PREPARE_OR_RETURN(
          st, writer_,
          "SELECT hash, tenant, admin FROM api_keys WHERE id=? AND revoked_at IS NULL");
      st.Bind(1, id);
      int rc = st.Step();
      if (rc == SQLITE_DONE) return Status::NotFound("key not found");
      if (rc != SQLITE_ROW) return SqlError(writer_.db(), "revoke key");
      if (!tenant.empty() && (st.Text(1) != tenant || st.Int(2) != 0)) {
        return Status::NotFound("key not found");
      }
      hash = st.Blob(0);
    }
    PREPARE_OR_RETURN(st, writer_, "UPDATE api_keys SET revoked_at=? WHERE id=?");
    st.Bind(1, now_ms).Bind(2, id);
    if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "revoke key");
    return hash;
  }

  Result<std::vector<std::string>> RevokedKeyHashesSince(int64_t since_ms, int64_t) override {
    auto r = Reader();
    if (!r.conn) return r.status;
    PREPARE_OR_RETURN(st, *r.conn,
                      "SELECT hash FROM api_keys WHERE revoked_at IS NOT NULL AND revoked_at>=?");
    st.Bind(1, since_ms);
    std::vector<std::string> out;
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out.push_back(st.Blob(0));
    if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "revoked keys");
    return out;
  }

  Result<bool> HasAdminKey() override {
    auto r = Reader();
    if (!r.conn) return r.status;
    PREPARE_OR_RETURN(st, *r.conn, "SELECT 1 FROM api_keys WHERE admin=1 LIMIT 1");
    int rc = st.Step();
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return SqlError(r.conn->db(), "admin key");
  }

 private:
  // A read connection checked out of the pool for one call.
  struct ReaderHandle {
    SqliteStore* self = nullptr;
    std::unique_ptr<Conn> conn;
    Status status;
    ReaderHandle() = default;
    ReaderHandle(ReaderHandle&&) = default;
    ~ReaderHandle() {
      if (self && conn) self->Return(std::move(conn));
    }
  };

  ReaderHandle Reader() {
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

  void Return(std::unique_ptr<Conn> c) {
    std::lock_guard lock(pool_mu_);
    pool_.push_back(std::move(c));
    pool_cv_.notify_one();
  }

  // Delivery bookkeeping (leases, attempt records) commits without its own
  // fsync: the next durable commit (any ingest) syncs it, and losing the last
  // few of these in a power cut only means a delivery is attempted again,
  // which at-least-once allows. Events and their deliveries stay FULL.
  Status BeginBookkeeping() {
    if (Status s = writer_.Exec("PRAGMA synchronous=NORMAL"); !s.ok()) return s;
    Status s = writer_.Exec("BEGIN IMMEDIATE");
    if (!s.ok()) EndBookkeeping();
    return s;
  }
  // Back to FULL; if even that fails, the writer connection must not be used
  // for durable commits: CommitIngest checks `durable_` and answers 503.
  void EndBookkeeping() { durable_ = writer_.Exec("PRAGMA synchronous=FULL").ok(); }

  // Leases due deliveries of one subscription. Ordered deliveries (with an
  // ordering_key) are taken only when no earlier unfinished delivery of the
  // same key exists: one at a time per key, in ingestion order. With
  // max_receives > 0 (pull) each gets a fresh receipt and counts a receive;
  // one already received max_receives times goes dead instead.
  Result<std::vector<Leased>> Lease(const std::string& sub_id, int64_t now_ms, int max,
                                    int64_t lease_until_ms, int max_receives) {
    std::lock_guard lock(write_mu_);
    std::vector<Leased> out;
    Status s = WriteTxn(true, [&]() -> Status {
      static const std::string sql = std::string(
          "SELECT d.id,d.tenant,d.event_id,d.subscription_id,d.status,d.attempts,"
          "d.next_attempt_at,d.last_error,d.last_status_code,d.created_at,d.updated_at,"
          "e.id,e.tenant,e.type,e.source,e.subject,e.ordering_key,e.data,e.received_at "
          "FROM deliveries d JOIN events e ON e.tenant=d.tenant AND e.id=d.event_id "
          "WHERE d.subscription_id=?1 AND d.next_attempt_at IS NOT NULL AND "
          "d.next_attempt_at<=?2 AND (d.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM "
          "deliveries p WHERE p.subscription_id=?1 AND p.ordering_key=d.ordering_key AND "
          "p.next_attempt_at IS NOT NULL AND p.seq<d.seq)) "
          "ORDER BY d.next_attempt_at, d.seq LIMIT ?3");
      std::vector<Leased> candidates;
      {
        PREPARE_OR_RETURN(st, writer_, sql.c_str());
        st.Bind(1, sub_id).Bind(2, now_ms).Bind(3, static_cast<int64_t>(max + 16));
        int rc;
        while ((rc = st.Step()) == SQLITE_ROW) {
          Leased l;
          l.delivery = ReadDelivery(st, 0);
          l.event = ReadEvent(st, 11);
          candidates.push_back(std::move(l));
        }
        if (rc != SQLITE_DONE) return SqlError(writer_.db(), "lease scan");
      }
      for (auto& l : candidates) {
        if (static_cast<int>(out.size()) >= max) break;
        if (max_receives > 0 && l.delivery.attempts >= max_receives) {
          PREPARE_OR_RETURN(
              dead, writer_,
              "UPDATE deliveries SET status='dead', next_attempt_at=NULL, receipt=NULL,"
              " last_error='received max_receives times without an ack', "
              "updated_at=? WHERE id=?");
          dead.Bind(1, now_ms).Bind(2, l.delivery.id);
          if (dead.Step() != SQLITE_DONE) return SqlError(writer_.db(), "dead");
          continue;
        }
        // A fresh token for every lease (the pull receipt).
        l.receipt = l.delivery.id + "." + core::Hex(core::RandomBytes(12));
        if (max_receives > 0) l.delivery.attempts += 1;
        PREPARE_OR_RETURN(up, writer_,
                          "UPDATE deliveries SET status='in_flight', next_attempt_at=?1, "
                          "updated_at=?2, receipt=?3, attempts=attempts+?4 WHERE id=?5");
        up.Bind(1, lease_until_ms).Bind(2, now_ms).Bind(3, l.receipt);
        up.Bind(4, static_cast<int64_t>(max_receives > 0 ? 1 : 0)).Bind(5, l.delivery.id);
        if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "lease");
        // An ordered key yields one delivery per lease: later ones of the same
        // key wait for this one to finish.
        out.push_back(std::move(l));
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    return out;
  }

  // Runs `body` in one write transaction on the writer connection (the
  // caller holds write_mu_): committed when it returns Ok, rolled back
  // otherwise. `bookkeeping`: without its own fsync (see BeginBookkeeping).
  template <typename F>
  Status WriteTxn(bool bookkeeping, F&& body) {
    Status s = bookkeeping ? BeginBookkeeping() : writer_.Exec("BEGIN IMMEDIATE");
    if (!s.ok()) return s;
    s = body();
    if (s.ok()) s = writer_.Exec("COMMIT");
    if (!s.ok()) writer_.Exec("ROLLBACK");
    if (bookkeeping) EndBookkeeping();
    return s;
  }

  static void BindSubscription(Stmt& st, const Subscription& s) {
    st.Bind(1, s.id).Bind(2, s.tenant).Bind(3, s.kind).Bind(4, s.url).Bind(5, s.event_types_json);
    st.Bind(6, s.filter_json).Bind(7, s.max_in_flight).Bind(8, s.rate_limit_per_s);
    st.Bind(9, s.ordered ? 1 : 0).Bind(10, s.description).Bind(11, s.enabled ? 1 : 0);
    st.Bind(12, s.secret).Bind(13, s.previous_secret).Bind(14, s.previous_secret_expires_at_ms);
    st.Bind(15, s.max_receives).Bind(16, s.created_at_ms).Bind(17, s.updated_at_ms);
  }

  // The tenant's subscriptions generation as `conn` sees it (0: none yet).
  static Status ReadGeneration(Conn& conn, const std::string& tenant, int64_t* out) {
    PREPARE_OR_RETURN(st, conn, "SELECT generation FROM subscription_generations WHERE tenant=?");
    st.Bind(1, tenant);
    int rc = st.Step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(conn.db(), "generation");
    *out = rc == SQLITE_ROW ? st.Int(0) : 0;
    return Status::Ok();
  }

  static Status ReadTenantSubscriptions(Conn& conn, const std::string& tenant,
                                        std::vector<Subscription>* out) {
    static const std::string sql = std::string("SELECT ") + kSubCols +
                                   " FROM subscriptions WHERE tenant=? AND deleted_at IS NULL";
    PREPARE_OR_RETURN(st, conn, sql.c_str());
    st.Bind(1, tenant);
    int rc;
    while ((rc = st.Step()) == SQLITE_ROW) out->push_back(ReadSubscription(st));
    if (rc != SQLITE_DONE) return SqlError(conn.db(), "tenant subscriptions");
    return Status::Ok();
  }

  static Status ReadSubscriptionRow(Conn& conn, const std::string& tenant, const std::string& id,
                                    Subscription* out) {
    static const std::string sql =
        std::string("SELECT ") + kSubCols +
        " FROM subscriptions WHERE id=? AND tenant=? AND deleted_at IS NULL";
    PREPARE_OR_RETURN(st, conn, sql.c_str());
    st.Bind(1, id).Bind(2, tenant);
    int rc = st.Step();
    if (rc == SQLITE_ROW) {
      *out = ReadSubscription(st);
      return Status::Ok();
    }
    if (rc == SQLITE_DONE) return Status::NotFound("subscription not found");
    return SqlError(conn.db(), "get subscription");
  }

  // In the caller's write transaction.
  Status BumpGeneration(const std::string& tenant, int64_t* out) {
    PREPARE_OR_RETURN(st, writer_,
                      "INSERT INTO subscription_generations(tenant,generation) VALUES(?,1) "
                      "ON CONFLICT(tenant) DO UPDATE SET generation=generation+1 "
                      "RETURNING generation");
    st.Bind(1, tenant);
    if (st.Step() != SQLITE_ROW) return SqlError(writer_.db(), "bump generation");
    *out = st.Int(0);
    return Status::Ok();
  }

  // Re-matches the items of every tenant whose generation moved since they
  // were matched (in the ingest transaction, under the write lock).
  Status RematchStale(std::vector<IngestItem*>& items, IngestMatcher* matcher) {
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

  Status WriteItems(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms) {
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
      st.Bind(8, ev.received_at_ms);
      if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "insert event");
      for (size_t k = 0; k < it->subscription_ids.size() && k < it->delivery_ids.size(); ++k) {
        PREPARE_OR_RETURN(d, writer_, kInsertDelivery);
        d.Bind(1, it->delivery_ids[k]).Bind(2, ev.tenant).Bind(3, ev.id);
        d.Bind(4, it->subscription_ids[k]).Bind(5, ev.received_at_ms).Bind(6, now_ms);
        if (k < it->subscription_ordered.size() && it->subscription_ordered[k]) {
          d.Bind(7, ev.ordering_key ? std::string_view(*ev.ordering_key) : std::string_view(""));
        }
        if (d.Step() != SQLITE_DONE) return SqlError(writer_.db(), "insert delivery");
      }
      it->outcome = IngestItem::Outcome::kCreated;
    }
    return Status::Ok();
  }

  Status Migrate() {
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

  SqliteOptions opts_;
  std::mutex write_mu_;
  bool durable_ = true;  // the writer connection is at synchronous=FULL
  Conn writer_;
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Conn>> pool_;
  int opened_ = 0;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenSqlite(const SqliteOptions& options) {
  auto s = std::make_unique<SqliteStore>(options);
  if (Status st = s->Init(); !st.ok()) return st;
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace triggers::store
