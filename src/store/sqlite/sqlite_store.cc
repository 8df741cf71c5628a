// The embedded store: SQLite in WAL mode with synchronous=FULL, so a COMMIT
// returns only after the WAL is fsync'd. One write connection (guarded by
// write_mu_, used by the group-commit writer and the rare admin writes) and a
// pool of read connections that WAL lets run beside it.
#include <sqlite3.h>
#include <sys/stat.h>

#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "core/idempotency.h"
#include "triggers/store.h"

namespace triggers::store {
namespace {

// Versioned migrations: index i brings the schema to user_version i+1.
const char* const kMigrations[] = {
    R"sql(
CREATE TABLE api_keys(
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT,
  scopes TEXT NOT NULL,
  hash BLOB NOT NULL UNIQUE,
  admin INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant, id);
CREATE INDEX api_keys_revoked ON api_keys(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE events(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  tenant TEXT NOT NULL,
  type TEXT NOT NULL,
  source TEXT,
  subject TEXT,
  ordering_key TEXT,
  data TEXT NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_tenant_id ON events(tenant, id);
CREATE TABLE idempotency(
  tenant TEXT NOT NULL,
  key TEXT NOT NULL,
  body_hash BLOB NOT NULL,
  event_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY(tenant, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency(created_at);
)sql",
    // 2: builds before the type filter became a bounded scan had this index.
    "DROP INDEX IF EXISTS events_tenant_type;",
};

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

Event ReadEvent(const Stmt& st) {
  Event e;
  e.id = st.Text(0);
  e.tenant = st.Text(1);
  e.type = st.Text(2);
  e.source = st.OptText(3);
  e.subject = st.OptText(4);
  e.ordering_key = st.OptText(5);
  e.data = st.Text(6);
  e.received_at_ms = st.Int(7);
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

  Status CommitIngest(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms) override {
    std::lock_guard lock(write_mu_);
    if (Status s = writer_.Exec("BEGIN IMMEDIATE"); !s.ok()) return s;
    Status s = WriteItems(items, now_ms, window_ms);
    // Durability: COMMIT returns only after the WAL is fsync'd (synchronous=FULL);
    // the caller answers 2xx only after this returns Ok.
    if (s.ok()) s = writer_.Exec("COMMIT");
    if (!s.ok()) {
      writer_.Exec("ROLLBACK");
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

  Result<int64_t> Purge(int64_t events_before_ms, int64_t idem_before_ms) override {
    int64_t deleted = 0;
    // Rows are appended in received_at order, so the expired ones are a prefix
    // by seq: delete it in chunks, each its own short transaction.
    for (;;) {
      std::lock_guard lock(write_mu_);
      int64_t last = -1;
      int n = 0;
      {
        PREPARE_OR_RETURN(st, writer_,
                          "SELECT seq, received_at FROM events ORDER BY seq LIMIT 1000");
        int rc;
        while ((rc = st.Step()) == SQLITE_ROW) {
          ++n;
          if (st.Int(1) >= events_before_ms) break;
          last = st.Int(0);
        }
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(writer_.db(), "purge scan");
      }
      if (last < 0) break;
      PREPARE_OR_RETURN(del, writer_, "DELETE FROM events WHERE seq<=?");
      del.Bind(1, last);
      if (del.Step() != SQLITE_DONE) return SqlError(writer_.db(), "purge events");
      deleted += sqlite3_changes(writer_.db());
      if (n < 1000) break;
    }
    std::lock_guard lock(write_mu_);
    PREPARE_OR_RETURN(st, writer_, "DELETE FROM idempotency WHERE created_at<?");
    st.Bind(1, idem_before_ms);
    if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "purge idempotency");
    return deleted;
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

  Result<std::vector<std::string>> RevokedKeyHashesSince(int64_t since_ms) override {
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
    const int64_t target = static_cast<int64_t>(std::size(kMigrations));
    Status s;
    for (int64_t v = version; v < target && s.ok(); ++v) {
      s = writer_.Exec(kMigrations[v]);
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
