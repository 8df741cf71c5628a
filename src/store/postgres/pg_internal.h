// The PostgreSQL store's internals, shared by its source files: row readers,
// the statements used in more than one place, the commit-order lock and the
// database clock (ORDER_LOCK_SQL, NOW_AT), and the PgStore class (see
// pg_store.cc for what it guarantees). Include only from src/store/postgres/.
#pragma once

#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/crypto.h"
#include "core/idempotency.h"
#include "core/ids.h"
#include "core/json_util.h"
#include "obs/logger.h"
#include "store/delivery_rules.h"
#include "store/fanout.h"
#include "store/migrations.h"
#include "store/postgres/pg_conn.h"
#include "store/purge_chunks.h"
#include "triggers/store.h"

namespace triggers::store::postgres {

using pg::ArrayBuilder;
using pg::Params;
using pg::Rows;

// "triggers" in ASCII: the advisory lock that serializes migrations.
inline constexpr int64_t kMigrationLock = 0x7472696767657273;
// Commit order. An identity value is taken at insert, not at commit, so two
// nodes' transactions could make seq 11 visible before seq 10: a reader
// paging by seq, or admitting an ordering key's next delivery, would pass 10
// for good. Every transaction that takes seq values (ingest, replay) or
// changes what ingest matches (subscription writes) holds this lock from
// before its first insert to its commit, and a commit is visible before its
// locks are released: seq order is commit order, and a subscription change
// is ordered against every ingest commit. ("trgorder" in ASCII.)
#define ORDER_LOCK_SQL "SELECT pg_advisory_xact_lock(8390882784102868338)"

// The database server's clock, in ms: due times, lease expiries and the "now"
// work is judged at come from it, so nodes with skewed clocks agree (see
// PostgresOptions::database_clock). NOW_AT($n) is the caller's now where
// one was passed (an injected clock) and the database's where $n is NULL.
#define DBNOW "(extract(epoch from statement_timestamp())*1000)::bigint"
#define NOW_AT(n) "COALESCE(" n "::bigint," DBNOW ")"
// In a statement run on its own (autocommit), makes its implicit
// transaction commit without waiting for the WAL flush: SET LOCAL in SQL,
// without a BEGIN and a COMMIT round trip. Only where a commit lost in a
// crash of the database is harmless (never ingest).
#define NO_FLUSH "set_config('synchronous_commit','off',true)"

// Runs `body` in a transaction that holds the commit-order lock (see above).
template <typename F>
inline Status OrderedTxn(pg::Conn& c, F&& body) {
  // READ COMMITTED whatever the server's default: every statement after the
  // lock must see what committed before it was granted (a repeatable-read
  // snapshot would be taken before the wait).
  Status s = c.Exec("BEGIN ISOLATION LEVEL READ COMMITTED; " ORDER_LOCK_SQL);
  if (s.ok()) s = body();
  if (s.ok()) s = c.Exec("COMMIT");
  if (!s.ok()) c.Rollback();
  return s;
}

#define SUB_COLS                                                                                  \
  "id,tenant,kind,url,event_types,filter,max_in_flight,rate_limit_per_s,ordered,description,"     \
  "enabled,secret,previous_secret,previous_secret_expires_at,max_receives,created_at,updated_at," \
  "name"
#define DELIVERY_COLS                                                                          \
  "id,tenant,event_id,subscription_id,status,attempts,next_attempt_at,last_error,last_status_" \
  "code,created_at,updated_at"
#define EVENT_COLS "id,tenant,type,source,subject,ordering_key,data,received_at,resources"
#define KEY_COLS "id,tenant,name,scopes,hash,admin,created_at,revoked_at,access_key_id,aws_secret"

inline Subscription ReadSubscription(const Rows& r, int i) {
  Subscription s;
  s.id = r.Text(i, 0);
  s.tenant = r.Text(i, 1);
  s.kind = r.Text(i, 2);
  s.url = r.OptText(i, 3);
  s.event_types_json = r.Text(i, 4);
  s.filter_json = r.OptText(i, 5);
  s.max_in_flight = static_cast<int>(r.Int(i, 6));
  s.rate_limit_per_s = r.Double(i, 7);
  s.ordered = r.Bool(i, 8);
  s.description = r.OptText(i, 9);
  s.enabled = r.Bool(i, 10);
  s.secret = r.Text(i, 11);
  s.previous_secret = r.OptText(i, 12);
  s.previous_secret_expires_at_ms = r.Int(i, 13);
  s.max_receives = static_cast<int>(r.Int(i, 14));
  s.created_at_ms = r.Int(i, 15);
  s.updated_at_ms = r.Int(i, 16);
  s.name = r.OptText(i, 17);
  return s;
}

inline Delivery ReadDelivery(const Rows& r, int i, int c = 0) {
  Delivery d;
  d.id = r.Text(i, c + 0);
  d.tenant = r.Text(i, c + 1);
  d.event_id = r.Text(i, c + 2);
  d.subscription_id = r.Text(i, c + 3);
  d.status = r.Text(i, c + 4);
  d.attempts = static_cast<int>(r.Int(i, c + 5));
  d.next_attempt_at_ms = r.IsNull(i, c + 6) ? 0 : r.Int(i, c + 6);
  d.last_error = r.OptText(i, c + 7);
  if (!r.IsNull(i, c + 8)) d.last_status_code = static_cast<int>(r.Int(i, c + 8));
  d.created_at_ms = r.Int(i, c + 9);
  d.updated_at_ms = r.Int(i, c + 10);
  return d;
}

inline Event ReadEvent(const Rows& r, int i, int c = 0) {
  Event e;
  e.id = r.Text(i, c + 0);
  e.tenant = r.Text(i, c + 1);
  e.type = r.Text(i, c + 2);
  e.source = r.OptText(i, c + 3);
  e.subject = r.OptText(i, c + 4);
  e.ordering_key = r.OptText(i, c + 5);
  e.data = r.Text(i, c + 6);
  e.received_at_ms = r.Int(i, c + 7);
  e.resources = r.OptText(i, c + 8);
  return e;
}

inline ApiKey ReadKey(const Rows& r, int i) {
  ApiKey k;
  k.id = r.Text(i, 0);
  k.tenant = r.Text(i, 1);
  k.name = r.OptText(i, 2);
  k.scopes = static_cast<uint32_t>(r.Int(i, 3));
  k.hash = core::Unhex(r.Text(i, 4));
  k.admin = r.Bool(i, 5);
  k.created_at_ms = r.Int(i, 6);
  if (!r.IsNull(i, 7)) k.revoked_at_ms = r.Int(i, 7);
  if (!r.IsNull(i, 8)) k.access_key_id = r.Text(i, 8);
  if (!r.IsNull(i, 9)) k.sealed_secret = core::Unhex(r.Text(i, 9));
  return k;
}

// Takes a connection of `pool` or returns its failure from the calling function.
#define POOL_CONN_OR_RETURN(pool, var) \
  auto var = (pool).Get();             \
  if (!var) return var.status();       \
  static_assert(true)
// ... of the node's pool, or of the dispatcher's (PgStore::dispatch_pool_).
#define CONN_OR_RETURN(var) POOL_CONN_OR_RETURN(pool_, var)
#define DISPATCH_CONN_OR_RETURN(var) POOL_CONN_OR_RETURN(dispatch_pool_, var)

#define ROWS_OR_RETURN(var, expr)             \
  auto var##_r = (expr);                      \
  if (!var##_r.ok()) return var##_r.status(); \
  Rows var = std::move(var##_r.value())

// Statements (static storage: their addresses key the prepared-statement cache).
// Inserts a batch unless a tenant's subscriptions generation is not the one
// its items were matched at ($17/$18): then nothing is inserted and `stale`
// (the first column) is the number of such tenants. $19-$22: the pending
// fan-out markers of the deliveries beyond the row budget (pg_fanout.cc).
// $23: the events' resources.
inline constexpr char kIngestBulk[] =
    "WITH chk AS (SELECT count(*) AS stale FROM unnest($17::text[],$18::bigint[]) AS x(t,g) "
    "WHERE COALESCE((SELECT generation FROM subscription_generations s WHERE s.tenant=x.t),0)"
    "<>x.g), "
    "e AS (INSERT INTO events(id,tenant,type,source,subject,ordering_key,data,received_at,"
    "resources) SELECT u.* FROM unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::text[],"
    "$6::text[],$7::text[],$8::bigint[],$23::text[]) AS u, chk WHERE chk.stale=0), "
    "d AS (INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,next_attempt_at,"
    "created_at,updated_at,ordering_key) SELECT t.id,t.tenant,t.event_id,t.sub,'pending',"
    "CASE WHEN $13::bigint IS NULL THEN " DBNOW " ELSE t.nat END," NOW_AT("$13") "," NOW_AT("$13")
    ",t.ok FROM unnest($9::text[],$10::text[],$11::text[],$12::text[],$14::bigint[],"
    "$15::text[]) AS t(id,tenant,event_id,sub,nat,ok), chk WHERE chk.stale=0), "
    "f AS (INSERT INTO fanout_pending(tenant,event_ids,subscription_ids,received_at) "
    "SELECT m.* FROM unnest($19::text[],$20::text[],$21::text[],$22::bigint[]) AS m, chk "
    "WHERE chk.stale=0) "
    "SELECT chk.stale, (SELECT count(*) FROM (SELECT pg_notify('triggers_work',$16) "
    "WHERE chk.stale=0 AND cardinality($9::text[])>0) AS n) FROM chk";
inline constexpr char kGenerations[] =
    "SELECT x.t, COALESCE((SELECT generation FROM subscription_generations s WHERE s.tenant=x.t),"
    "0) FROM unnest($1::text[]) AS x(t)";
#define TENANT_SUBS_SQL \
  "SELECT " SUB_COLS " FROM subscriptions WHERE tenant=$1 AND deleted_at IS NULL"
inline constexpr char kTenantSubs[] = TENANT_SUBS_SQL;
inline constexpr char kBumpGeneration[] =
    "INSERT INTO subscription_generations AS g(tenant,generation) VALUES($1,1) "
    "ON CONFLICT(tenant) DO UPDATE SET generation=g.generation+1 RETURNING generation";
inline constexpr char kIdemClaim[] =
    "INSERT INTO idempotency AS i(tenant,key,body_hash,event_id,created_at) "
    "VALUES($1,$2,$3,$4,$5) ON CONFLICT(tenant,key) DO UPDATE SET body_hash=EXCLUDED.body_hash,"
    "event_id=EXCLUDED.event_id,created_at=EXCLUDED.created_at WHERE i.created_at<$6 RETURNING 1";
inline constexpr char kIdemGet[] =
    "SELECT body_hash,event_id,created_at FROM idempotency WHERE tenant=$1 AND key=$2";
inline constexpr char kIdemRepoint[] =
    "UPDATE idempotency SET body_hash=$3,event_id=$4,created_at=$5 WHERE tenant=$1 AND key=$2";
inline constexpr char kGetEvent[] = "SELECT " EVENT_COLS " FROM events WHERE tenant=$1 AND id=$2";

#define AFTER_SEQ                                                                             \
  "COALESCE((SELECT seq FROM events WHERE tenant=$1 AND id=$2),(SELECT max(seq) FROM events " \
  "WHERE tenant=$1 AND id<$2),0)"

class PgStore final : public Store {
 public:
  explicit PgStore(PostgresOptions o)
      : opts_(std::move(o)),
        pool_(opts_.url, opts_.pool_size, opts_.connect_timeout_s),
        dispatch_pool_(opts_.url, 1, opts_.connect_timeout_s, true) {}

  ~PgStore() override {
    StopWorkListener();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  void StopWorkListener() override;

  Status Init();

  Status Ping() override;

  // --- ingest ----------------------------------------------------------------

  Status CommitIngest(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms,
                      IngestMatcher* matcher) override;

  // See pg_fanout.cc.
  Result<FanoutChunk> MaterializeFanout(int64_t now_ms, bool look) override;

  Result<Event> GetEvent(const std::string& tenant, const std::string& id) override;

  // Events are listed in commit order (seq, see kOrderLock), not id order:
  // ids are made by each node's writer, and another node may commit a smaller
  // one later. The cursor names the last event returned; its seq is where
  // the next page starts (if retention purged it meanwhile: after the newest
  // remaining event with a smaller id).
  Result<EventPage> ListEvents(const std::string& tenant, const std::string& type,
                               const ListOptions& opts) override;

  // Every chunk is one statement in its own transaction, committed without
  // waiting for the WAL flush (a purge lost in a crash is simply done again).
  // Nodes purging at once may pick the same rows: the outer conditions are
  // re-checked on the current row version, so a row changed meanwhile (a
  // retried delivery) is left alone.
  Result<PurgeCounts> Purge(int64_t events_before_ms, int64_t idem_before_ms, int64_t now_ms,
                            const PurgeLimits& limits) override;

  // --- subscriptions ---------------------------------------------------------

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

  // --- deliveries ------------------------------------------------------------

  Result<std::vector<Delivery>> ListDeliveries(const std::string& tenant, const DeliveryFilter& f,
                                               const ListOptions& opts) override;

  Result<Delivery> GetDelivery(const std::string& tenant, const std::string& id) override;

  // Under the commit-order lock, like DeleteSubscription: a retry cannot
  // revive a delivery of a subscription whose delete commits meanwhile.
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

  // `tenant` empty: every tenant.
  Status Stats(const std::string& tenant, int64_t now_ms,
               std::vector<std::pair<std::string, int64_t>>* by_state, int64_t* oldest_due_ms);

  // --- API keys --------------------------------------------------------------

  Status CreateKey(const ApiKey& k) override;

  Result<ApiKey> FindKeyByHash(const std::string& hash) override;

  Result<std::vector<ApiKey>> ListKeys(const std::string& tenant, const ListOptions& opts) override;

  Result<std::string> RevokeKey(const std::string& tenant, const std::string& id,
                                int64_t now_ms) override;

  Result<std::vector<std::string>> RevokedKeyHashesSince(int64_t since_ms, int64_t now_ms) override;

  Result<bool> HasAdminKey() override;

  // --- other nodes -----------------------------------------------------------

  void SetWorkListener(std::function<void(const std::vector<std::string>&)> fn) override;

 private:
  // The caller's now, or NULL where the database's clock decides (NOW_AT).
  void AddNow(Params& p, int64_t now_ms) const;

  static void BindSubscription(Params& p, const Subscription& s);

  // In the caller's transaction (which holds the commit-order lock).
  static Status BumpGeneration(pg::Conn& c, const std::string& tenant, int64_t* out);

  // Idempotency, decided in the ingest transaction in item order. The claim
  // is an upsert on (tenant, key): a concurrent claim on another node waits
  // for this transaction and then sees the row, so exactly one event wins.
  Status DecideIdempotency(pg::Conn& c, std::vector<IngestItem*>& items, int64_t now_ms,
                           int64_t window_ms);

  // Inserts the batch if every tenant's generation is the one its items were
  // matched at; otherwise re-matches the stale tenants' items against the
  // subscriptions this transaction reads (under the commit-order lock, which
  // every subscription write takes too: nothing changes until the commit)
  // and inserts then.
  Status InsertMatched(pg::Conn& c, std::vector<IngestItem*>& items, int64_t now_ms,
                       IngestMatcher* matcher);

  // Inserts every still-pending item with its deliveries in one statement,
  // unless a generation is stale: returns the number of stale tenants (0: inserted).
  Result<int64_t> InsertBulk(pg::Conn& c, std::vector<IngestItem*>& items, int64_t now_ms,
                             bool check_generations);

  // Large fan-out (pg_fanout.cc): one marker's next chunk of rows.
  Status MaterializeOne(pg::Conn& c, int64_t now_ms, int64_t budget, FanoutChunk* out,
                        int64_t* considered, bool* found);

  // Tells every node (this one included) that a subscription has work now.
  void Notify(pg::Conn& c, const std::string& sub_id);

  // Leases due deliveries of one subscription, shared safely between nodes:
  // candidates are locked with SKIP LOCKED, so two nodes never take the same
  // row; ordered deliveries (with an ordering_key) are taken only when no
  // earlier unfinished delivery of the same key exists. With max_receives > 0
  // (pull) each gets a fresh receipt and counts a receive; one already
  // received max_receives times goes dead instead. `limited` (push): within
  // the subscription's limits shared by every node (see LeaseSql).
  Result<std::vector<Leased>> Lease(const std::string& sub_id, int64_t now_ms, int max,
                                    int64_t lease_until_ms, const rules::LeasePolicy& policy,
                                    bool limited);

  // Folds the delivery count deltas into delivery_counts (migration 0003).
  Status FoldDeliveryCounts(pg::Conn& c);

  // The LISTEN connection: wakes this node's workers when any node commits
  // deliveries. Reconnects with backoff; after a reconnect it reports "any"
  // (notifications sent while it was away are lost).
  void Listen();

  void WaitWake(int ms);

  PostgresOptions opts_;
  pg::Pool pool_;
  // The dispatcher's statements (due work, push leases, outcomes, releases),
  // on one connection: run every pass, they are planned once per
  // connection, not per execution (the push lease's custom plan, one per
  // subscription id, cost 0.65 ms of the database's CPU per pass, a third of
  // its execution; the generic plans use the same indexes).
  pg::Pool dispatch_pool_;
  std::function<void(const std::vector<std::string>&)> on_work_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  std::thread listener_;
  // This node deferred fan-out since the last empty look (true at open).
  std::atomic<bool> fanout_maybe_{true};
  std::mutex fanout_mu_;
  core::UlidGenerator fanout_ids_;  // under fanout_mu_
};

}  // namespace triggers::store::postgres
