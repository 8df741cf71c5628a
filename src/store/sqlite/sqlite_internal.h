// The embedded store's internals, shared by its source files: the SQLite
// connection and statement wrappers, the statements and row readers used in
// more than one place, and the SqliteStore class (see sqlite_store.cc for
// what it guarantees). Not an interface: include only from src/store/sqlite/.
#pragma once

#include <sqlite3.h>
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "core/crypto.h"
#include "core/fifo_mutex.h"
#include "core/idempotency.h"
#include "core/ids.h"
#include "store/delivery_rules.h"
#include "store/fanout.h"
#include "store/migrations.h"
#include "store/purge_chunks.h"
#include "triggers/store.h"

namespace triggers::store::sqlite {

// Translates an SQLite failure into a Status: the one place that does.
inline Status SqlError(sqlite3* db, const char* what) {
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
  // A fixed statement (BEGIN, COMMIT, a PRAGMA; a string literal) run from
  // the statement cache: sqlite3_exec parsed each again for every transaction,
  // four times per delivery bookkeeping transaction.
  Status Run(const char* literal) {
    Status status;
    sqlite3_stmt* s = Prepare(literal, &status);
    if (!s) return status;
    const int rc = sqlite3_step(s);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW) status = SqlError(db_, "exec");
    sqlite3_reset(s);
    return status;
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

inline constexpr char kInsertEvent[] =
    "INSERT INTO events(id,tenant,type,source,subject,ordering_key,data,received_at,resources) "
    "VALUES(?,?,?,?,?,?,?,?,?)";
inline constexpr char kSubCols[] =
    "id,tenant,kind,url,event_types,filter,max_in_flight,rate_limit_per_s,ordered,description,"
    "enabled,secret,previous_secret,previous_secret_expires_at,max_receives,created_at,updated_at,"
    "name";
inline constexpr char kDeliveryCols[] =
    "id,tenant,event_id,subscription_id,status,attempts,next_attempt_at,last_error,"
    "last_status_code,created_at,updated_at";

inline constexpr char kGetIdem[] =
    "SELECT body_hash, event_id, created_at FROM idempotency WHERE tenant=? AND key=?";
inline constexpr char kPutIdem[] =
    "INSERT OR REPLACE INTO idempotency(tenant,key,body_hash,event_id,created_at) "
    "VALUES(?,?,?,?,?)";
inline constexpr char kGetEvent[] =
    "SELECT id,tenant,type,source,subject,ordering_key,data,received_at,resources FROM events "
    "WHERE tenant=? AND id=?";
inline constexpr char kListEvents[] =
    "SELECT id,tenant,type,source,subject,ordering_key,data,received_at,resources FROM events "
    "WHERE tenant=? AND id>? ORDER BY id LIMIT ?";

inline Subscription ReadSubscription(const Stmt& st) {
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
  s.name = st.OptText(17);
  return s;
}

inline Delivery ReadDelivery(const Stmt& st, int c = 0) {
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

inline Event ReadEvent(const Stmt& st, int c = 0) {
  Event e;
  e.id = st.Text(c + 0);
  e.tenant = st.Text(c + 1);
  e.type = st.Text(c + 2);
  e.source = st.OptText(c + 3);
  e.subject = st.OptText(c + 4);
  e.ordering_key = st.OptText(c + 5);
  e.data = st.Text(c + 6);
  e.received_at_ms = st.Int(c + 7);
  e.resources = st.OptText(c + 8);
  return e;
}

inline ApiKey ReadKey(const Stmt& st) {
  ApiKey k;
  k.id = st.Text(0);
  k.tenant = st.Text(1);
  k.name = st.OptText(2);
  k.scopes = static_cast<uint32_t>(std::stoul(st.Text(3).empty() ? "0" : st.Text(3)));
  k.hash = st.Blob(4);
  k.admin = st.Int(5) != 0;
  k.created_at_ms = st.Int(6);
  if (!st.IsNull(7)) k.revoked_at_ms = st.Int(7);
  if (!st.IsNull(8)) k.access_key_id = st.Text(8);
  if (!st.IsNull(9)) k.sealed_secret = core::Unhex(st.Text(9));
  return k;
}

class SqliteStore final : public Store {
 public:
  explicit SqliteStore(SqliteOptions o) : opts_(std::move(o)) {}
  Status Init() {
    if (Status s = writer_.Open(opts_.path, true, opts_.wal_autocheckpoint); !s.ok()) return s;
    return Migrate();
  }

  Status Ping() override;

  Status CommitIngest(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms,
                      IngestMatcher* matcher) override;

  // See sqlite_fanout.cc.
  Result<FanoutChunk> MaterializeFanout(int64_t now_ms, bool look) override;

  Result<Event> GetEvent(const std::string& tenant, const std::string& id) override;

  Result<EventPage> ListEvents(const std::string& tenant, const std::string& type,
                               const ListOptions& opts) override;

  // Every chunk is a bookkeeping transaction (no fsync of its own): a purge
  // lost in a power cut is simply done again. write_mu_ is taken per chunk,
  // so ingest commits run between chunks.
  Result<PurgeCounts> Purge(int64_t events_before_ms, int64_t idem_before_ms, int64_t now_ms,
                            const PurgeLimits& limits) override;

  // Rows are appended in received_at order, so the expired events are a
  // prefix by seq.
  Result<int64_t> PurgeEventsChunk(int64_t before_ms, int limit);

  // Finished deliveries (and their attempts) age out with the events; found
  // through the partial index deliveries_finished.
  Result<int64_t> PurgeFinishedChunk(int64_t before_ms, int limit);

  // Unfinished deliveries whose event is gone can never be sent: dead. The
  // search (a scan of the unfinished ones) runs on a reader, outside the
  // write lock; the writer re-checks each candidate.
  Result<int64_t> PurgeOrphansChunk(int64_t now_ms, int limit);

  Result<int64_t> PurgeIdempotencyChunk(int64_t before_ms, int limit);

  Result<int64_t> CreateSubscription(const Subscription& s, int64_t max_per_tenant) override;

  Result<Subscription> GetSubscription(const std::string& tenant, const std::string& id) override;

  Result<std::vector<Subscription>> ListSubscriptions(const std::string& tenant,
                                                      const ListOptions& opts) override;

  Result<Subscription> ModifySubscription(const std::string& tenant, const std::string& id,
                                          const std::function<Status(Subscription*)>& change,
                                          int64_t* generation) override;

  Result<int64_t> DeleteSubscription(const std::string& tenant, const std::string& id,
                                     int64_t now_ms) override;

  Result<std::vector<std::pair<std::string, int64_t>>> SubscriptionGenerations() override;

  Result<TenantSubscriptions> LoadTenantSubscriptions(const std::string& tenant) override;

  Result<std::vector<Delivery>> ListDeliveries(const std::string& tenant, const DeliveryFilter& f,
                                               const ListOptions& opts) override;

  Result<Delivery> GetDelivery(const std::string& tenant, const std::string& id) override;

  Result<Delivery> RetryDelivery(const std::string& tenant, const std::string& id,
                                 int64_t now_ms) override;

  Result<int64_t> RequeueDead(const std::string& tenant, const std::string& sub_id,
                              const std::string& min_id, const std::string& max_id,
                              int64_t now_ms) override;

  Result<int64_t> CreateMissingDeliveries(const std::string& tenant, const std::string& sub_id,
                                          const std::vector<Event>& events, bool ordered,
                                          int64_t now_ms) override;

  Result<std::vector<Leased>> LeaseDue(const std::string& sub_id, int64_t now_ms, int max,
                                       int64_t lease_until_ms) override;

  Result<std::vector<Leased>> Receive(const std::string& sub_id, int64_t now_ms, int max,
                                      int64_t visible_again_ms, int max_receives) override;

  Result<std::vector<ReceiptResult>> Settle(const std::string& sub_id,
                                            const std::vector<std::string>& receipts, bool ack,
                                            int64_t visible_at_ms, int64_t now_ms) override;
  // SQS (sqlite_sqs.cc / pg_sqs.cc).
  Result<std::vector<ReceiptResult>> ChangeVisibility(const std::string& sub_id,
                                                      const std::vector<std::string>& receipts,
                                                      int64_t visible_at_ms,
                                                      int64_t now_ms) override;
  Status QueueCounts(const std::string& sub_id, int64_t now_ms, QueueCount* out) override;

  Status RecordAttempts(const std::vector<AttemptResult>& results, int64_t now_ms) override;

  Result<std::vector<std::string>> SubscriptionsWithDueWork(int64_t now_ms) override;

  Status ReleaseLeases(const std::vector<LeaseRef>& leases, int64_t now_ms) override;

  Status DeliveryStats(int64_t now_ms, std::vector<std::pair<std::string, int64_t>>* by_state,
                       int64_t* oldest_due_ms) override;

  Status TenantDeliveryStats(const std::string& tenant, int64_t now_ms,
                             std::vector<std::pair<std::string, int64_t>>* by_state,
                             int64_t* oldest_due_ms) override;

  Status Stats(const std::string* tenant, int64_t now_ms,
               std::vector<std::pair<std::string, int64_t>>* by_state, int64_t* oldest_due_ms);

  Status CreateKey(const ApiKey& k) override;

  Result<ApiKey> FindKeyByHash(const std::string& hash) override;

  Result<std::vector<ApiKey>> ListKeys(const std::string& tenant, const ListOptions& opts) override;

  Result<std::string> RevokeKey(const std::string& tenant, const std::string& id,
                                int64_t now_ms) override;

  Result<std::vector<std::string>> RevokedKeyHashesSince(int64_t since_ms, int64_t) override;

  Result<bool> HasAdminKey() override;

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

  ReaderHandle Reader();

  void Return(std::unique_ptr<Conn> c);

  // Delivery bookkeeping (leases, attempt records) commits without its own
  // fsync: the next durable commit (any ingest) syncs it, and losing the last
  // few of these in a power cut only means a delivery is attempted again,
  // which at-least-once allows. Events and their deliveries stay FULL.
  Status BeginBookkeeping();
  // Back to FULL; if even that fails, the writer connection must not be used
  // for durable commits: CommitIngest checks `durable_` and answers 503.
  void EndBookkeeping() { durable_ = writer_.Run("PRAGMA synchronous=FULL").ok(); }

  // Leases due deliveries of one subscription. Ordered deliveries (with an
  // ordering_key) are taken only when no earlier unfinished delivery of the
  // same key exists: one at a time per key, in ingestion order. With
  // max_receives > 0 (pull) each gets a fresh receipt and counts a receive;
  // one already received max_receives times goes dead instead.
  Result<std::vector<Leased>> Lease(const std::string& sub_id, int64_t now_ms, int max,
                                    int64_t lease_until_ms, const rules::LeasePolicy& policy);

  // Runs `body` in one write transaction on the writer connection (the
  // caller holds write_mu_): committed when it returns Ok, rolled back
  // otherwise. `bookkeeping`: without its own fsync (see BeginBookkeeping).
  template <typename F>
  Status WriteTxn(bool bookkeeping, F&& body) {
    Status s = bookkeeping ? BeginBookkeeping() : writer_.Run("BEGIN IMMEDIATE");
    if (!s.ok()) return s;
    count_deltas_.clear();
    s = body();
    if (s.ok()) s = FlushCounts();
    if (s.ok()) s = writer_.Run("COMMIT");
    if (!s.ok()) writer_.Run("ROLLBACK");
    count_deltas_.clear();
    if (bookkeeping) EndBookkeeping();
    return s;
  }

  // delivery_counts follows inserts and deletes through the triggers of
  // migration 0008; status changes are counted here instead (migration 0010
  // dropped the per-row update trigger: two counter statements per changed
  // row were the largest cost of a lease and of an outcome). Every UPDATE of
  // deliveries.status runs inside WriteTxn and reports what it changed, `n`
  // rows of `tenant` from `from` to `to`; WriteTxn writes the sums just
  // before its COMMIT, so the counts change atomically with the rows.
  void CountMove(std::string_view tenant, std::string_view from, std::string_view to,
                 int64_t n = 1) {
    if (from == to || n == 0) return;
    AddCount(tenant, from, -n);
    AddCount(tenant, to, n);
  }
  void AddCount(std::string_view tenant, std::string_view status, int64_t n);
  Status FlushCounts();

  static void BindSubscription(Stmt& st, const Subscription& s);

  // The tenant's subscriptions generation as `conn` sees it (0: none yet).
  static Status ReadGeneration(Conn& conn, const std::string& tenant, int64_t* out);

  static Status ReadTenantSubscriptions(Conn& conn, const std::string& tenant,
                                        std::vector<Subscription>* out);

  static Status ReadSubscriptionRow(Conn& conn, const std::string& tenant, const std::string& id,
                                    Subscription* out);

  // In the caller's write transaction.
  Status BumpGeneration(const std::string& tenant, int64_t* out);

  // Re-matches the items of every tenant whose generation moved since they
  // were matched (in the ingest transaction, under the write lock).
  Status RematchStale(std::vector<IngestItem*>& items, IngestMatcher* matcher);

  Status WriteItems(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms);

  // Large fan-out (sqlite_fanout.cc): the markers of the deliveries an
  // ingest transaction defers, and one marker's next chunk of rows.
  Status WriteDeferred(const std::vector<DeferredFanout>& deferred);
  Status MaterializeOne(int64_t now_ms, int64_t budget, FanoutChunk* out, int64_t* considered,
                        bool* found);

  Status Migrate();

  SqliteOptions opts_;
  // FIFO: the purge and fan-out take it per chunk in a loop; see FifoMutex.
  core::FifoMutex write_mu_;
  bool durable_ = true;  // the writer connection is at synchronous=FULL
  Conn writer_;
  std::mutex pool_mu_;
  std::condition_variable pool_cv_;
  std::vector<std::unique_ptr<Conn>> pool_;
  int opened_ = 0;
  // Pending fan-out may exist (true at open: a crash may have left some).
  std::atomic<bool> fanout_maybe_{true};
  core::UlidGenerator fanout_ids_;  // under write_mu_
  struct CountDelta {
    std::string tenant;
    std::string status;
    int64_t n = 0;
  };
  std::vector<CountDelta> count_deltas_;  // the open write transaction's (under write_mu_)
};

}  // namespace triggers::store::sqlite
