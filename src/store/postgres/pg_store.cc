// The shared store: PostgreSQL through libpq, for many nodes on one database.
//
// - Every node is stateless but for caches; rows are the truth. Work is
//   handed out with `FOR UPDATE SKIP LOCKED` and a lease expiry kept in
//   next_attempt_at, exactly like the embedded store's leases.
// - Ingest keeps group commit: the writer's batch is one statement (unnest
//   of arrays) in its own transaction, committed with synchronous_commit=on.
// - Deliveries created by an ingest are announced with NOTIFY; every node
//   LISTENs on a connection of its own and wakes its dispatcher and inbox.
// - Failures: a lost connection turns into Unavailable (503) and reconnects
//   on next use; nothing needs a restart.
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "core/crypto.h"
#include "core/idempotency.h"
#include "core/ids.h"
#include "core/json_util.h"
#include "obs/logger.h"
#include "store/migrations.h"
#include "store/postgres/pg_conn.h"
#include "store/purge_chunks.h"
#include "triggers/store.h"

namespace triggers::store {
namespace {

using pg::ArrayBuilder;
using pg::Params;
using pg::Rows;

// "triggers" in ASCII: the advisory lock that serializes migrations.
constexpr int64_t kMigrationLock = 0x7472696767657273;
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

// Runs `body` in a transaction that holds the commit-order lock (see above).
template <typename F>
Status OrderedTxn(pg::Conn& c, F&& body) {
  // READ COMMITTED whatever the server's default: every statement after the
  // lock must see what committed before it was granted (a repeatable-read
  // snapshot would be taken before the wait).
  Status s = c.Exec("BEGIN ISOLATION LEVEL READ COMMITTED; " ORDER_LOCK_SQL);
  if (s.ok()) s = body();
  if (s.ok()) s = c.Exec("COMMIT");
  if (!s.ok()) c.Rollback();
  return s;
}

#define SUB_COLS                                                                              \
  "id,tenant,kind,url,event_types,filter,max_in_flight,rate_limit_per_s,ordered,description," \
  "enabled,secret,previous_secret,previous_secret_expires_at,max_receives,created_at,updated_at"
#define DELIVERY_COLS                                                                          \
  "id,tenant,event_id,subscription_id,status,attempts,next_attempt_at,last_error,last_status_" \
  "code,created_at,updated_at"
#define EVENT_COLS "id,tenant,type,source,subject,ordering_key,data,received_at"
#define KEY_COLS "id,tenant,name,scopes,hash,admin,created_at,revoked_at"
// For a pull message `attempts` counts receives, which max_receives limits: a
// retried or replayed one starts counting again. A push delivery keeps its
// count (its retry schedule continues where it stopped).
#define PULL_RECEIVES_RESET                                                             \
  "CASE WHEN (SELECT kind FROM subscriptions s WHERE s.id=deliveries.subscription_id)=" \
  "'pull' THEN 0 ELSE attempts END"

Subscription ReadSubscription(const Rows& r, int i) {
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
  return s;
}

Delivery ReadDelivery(const Rows& r, int i, int c = 0) {
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

Event ReadEvent(const Rows& r, int i, int c = 0) {
  Event e;
  e.id = r.Text(i, c + 0);
  e.tenant = r.Text(i, c + 1);
  e.type = r.Text(i, c + 2);
  e.source = r.OptText(i, c + 3);
  e.subject = r.OptText(i, c + 4);
  e.ordering_key = r.OptText(i, c + 5);
  e.data = r.Text(i, c + 6);
  e.received_at_ms = r.Int(i, c + 7);
  return e;
}

ApiKey ReadKey(const Rows& r, int i) {
  ApiKey k;
  k.id = r.Text(i, 0);
  k.tenant = r.Text(i, 1);
  k.name = r.OptText(i, 2);
  k.scopes = static_cast<uint32_t>(r.Int(i, 3));
  k.hash = core::Unhex(r.Text(i, 4));
  k.admin = r.Bool(i, 5);
  k.created_at_ms = r.Int(i, 6);
  if (!r.IsNull(i, 7)) k.revoked_at_ms = r.Int(i, 7);
  return k;
}

// Takes a pool connection or returns its failure from the calling function.
#define CONN_OR_RETURN(var)      \
  auto var = pool_.Get();        \
  if (!var) return var.status(); \
  static_assert(true)

#define ROWS_OR_RETURN(var, expr)             \
  auto var##_r = (expr);                      \
  if (!var##_r.ok()) return var##_r.status(); \
  Rows var = std::move(var##_r.value())

// Statements (static storage: their addresses key the prepared-statement cache).
// Inserts a batch unless a tenant's subscriptions generation is not the one
// its items were matched at ($17/$18): then nothing is inserted and `stale`
// (the first column) is the number of such tenants.
const char kIngestBulk[] =
    "WITH chk AS (SELECT count(*) AS stale FROM unnest($17::text[],$18::bigint[]) AS x(t,g) "
    "WHERE COALESCE((SELECT generation FROM subscription_generations s WHERE s.tenant=x.t),0)"
    "<>x.g), "
    "e AS (INSERT INTO events(id,tenant,type,source,subject,ordering_key,data,received_at) "
    "SELECT u.* FROM unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::text[],$6::text[],"
    "$7::text[],$8::bigint[]) AS u, chk WHERE chk.stale=0), "
    "d AS (INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,next_attempt_at,"
    "created_at,updated_at,ordering_key) SELECT t.id,t.tenant,t.event_id,t.sub,'pending',"
    "CASE WHEN $13::bigint IS NULL THEN " DBNOW " ELSE t.nat END," NOW_AT("$13") "," NOW_AT("$13")
    ",t.ok FROM unnest($9::text[],$10::text[],$11::text[],$12::text[],$14::bigint[],"
    "$15::text[]) AS t(id,tenant,event_id,sub,nat,ok), chk WHERE chk.stale=0) "
    "SELECT chk.stale, (SELECT count(*) FROM (SELECT pg_notify('triggers_work',$16) "
    "WHERE chk.stale=0 AND cardinality($9::text[])>0) AS n) FROM chk";
const char kGenerations[] =
    "SELECT x.t, COALESCE((SELECT generation FROM subscription_generations s WHERE s.tenant=x.t),"
    "0) FROM unnest($1::text[]) AS x(t)";
#define TENANT_SUBS_SQL \
  "SELECT " SUB_COLS " FROM subscriptions WHERE tenant=$1 AND deleted_at IS NULL"
const char kTenantSubs[] = TENANT_SUBS_SQL;
const char kBumpGeneration[] =
    "INSERT INTO subscription_generations AS g(tenant,generation) VALUES($1,1) "
    "ON CONFLICT(tenant) DO UPDATE SET generation=g.generation+1 RETURNING generation";
const char kIdemClaim[] =
    "INSERT INTO idempotency AS i(tenant,key,body_hash,event_id,created_at) "
    "VALUES($1,$2,$3,$4,$5) ON CONFLICT(tenant,key) DO UPDATE SET body_hash=EXCLUDED.body_hash,"
    "event_id=EXCLUDED.event_id,created_at=EXCLUDED.created_at WHERE i.created_at<$6 RETURNING 1";
const char kIdemGet[] =
    "SELECT body_hash,event_id,created_at FROM idempotency WHERE tenant=$1 AND key=$2";
const char kIdemRepoint[] =
    "UPDATE idempotency SET body_hash=$3,event_id=$4,created_at=$5 WHERE tenant=$1 AND key=$2";
const char kGetEvent[] = "SELECT " EVENT_COLS " FROM events WHERE tenant=$1 AND id=$2";

class PgStore final : public Store {
 public:
  explicit PgStore(PostgresOptions o)
      : opts_(std::move(o)), pool_(opts_.url, opts_.pool_size, opts_.connect_timeout_s) {}

  ~PgStore() override {
    StopWorkListener();
    if (wake_fd_ >= 0) ::close(wake_fd_);
  }

  void StopWorkListener() override {
    if (!listener_.joinable()) return;
    stop_.store(true);
    uint64_t one = 1;
    ssize_t n = ::write(wake_fd_, &one, sizeof one);
    (void)n;
    listener_.join();
  }

  Status Init() {
    CONN_OR_RETURN(c);
    return c->Txn(false, [&]() -> Status {
      Params lock;
      lock.Add(kMigrationLock);
      static const char kLock[] = "SELECT pg_advisory_xact_lock($1)";
      if (auto r = c->RunOnce(kLock, lock); !r.ok()) return r.status();
      if (Status s = c->Exec("CREATE TABLE IF NOT EXISTS triggers_schema(version integer NOT NULL);"
                             "INSERT INTO triggers_schema SELECT 0 WHERE NOT EXISTS "
                             "(SELECT 1 FROM triggers_schema)");
          !s.ok()) {
        return s;
      }
      auto v = c->RunOnce("SELECT version FROM triggers_schema", Params());
      if (!v.ok()) return v.status();
      int64_t version = v.value().size() ? v.value().Int(0, 0) : 0;
      const int64_t target = static_cast<int64_t>(kPostgresMigrationsCount);
      if (version > target) {
        return Status::Unavailable("store: database schema version " + std::to_string(version) +
                                   " is newer than this binary supports");
      }
      for (int64_t i = version; i < target; ++i) {
        if (Status s = c->Exec(kPostgresMigrations[i].sql); !s.ok()) return s;
        Params p;
        p.Add(i + 1);
        if (auto r = c->RunOnce("UPDATE triggers_schema SET version=$1", p); !r.ok()) {
          return r.status();
        }
      }
      return Status::Ok();
    });
  }

  Status Ping() override {
    CONN_OR_RETURN(c);
    static const char kPing[] = "SELECT 1";
    auto r = c->Run(kPing, Params());
    return r.ok() ? Status::Ok() : r.status();
  }

  // --- ingest ----------------------------------------------------------------

  Status CommitIngest(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms,
                      IngestMatcher* matcher) override {
    CONN_OR_RETURN(c);
    // Two nodes claiming the same idempotency keys in opposite orders
    // deadlock; the loser's transaction is rolled back and run once more (its
    // items restored first: deciding a duplicate rewrites an item's event).
    struct Saved {
      std::string id, type;
      int64_t received_at_ms;
    };
    std::vector<Saved> saved;
    saved.reserve(items.size());
    for (auto* it : items)
      saved.push_back({it->event.id, it->event.type, it->event.received_at_ms});
    Status s;
    for (int attempt = 0;; ++attempt) {
      s = OrderedTxn(*c, [&]() -> Status {
        if (Status d = DecideIdempotency(*c, items, now_ms, window_ms); !d.ok()) return d;
        return InsertMatched(*c, items, now_ms, matcher);
      });
      if (s.ok() || attempt == 1 || !c->last_failure_retryable()) break;
      for (size_t i = 0; i < items.size(); ++i) {
        items[i]->event.id = saved[i].id;
        items[i]->event.type = saved[i].type;
        items[i]->event.received_at_ms = saved[i].received_at_ms;
        items[i]->outcome = IngestItem::Outcome::kPending;
      }
    }
    if (!s.ok()) {
      for (auto* it : items) it->outcome = IngestItem::Outcome::kPending;
      // Ids are fresh, so a unique violation can only mean that an earlier
      // try of this very batch committed before its connection died: the
      // outcome is not known here, so it is a 503, never a 2xx or a 409.
      if (!s.IsUnavailable()) s = Status::Unavailable(s.message());
    }
    return s;
  }

  Result<Event> GetEvent(const std::string& tenant, const std::string& id) override {
    CONN_OR_RETURN(c);
    ROWS_OR_RETURN(r, c->Run(kGetEvent, Params().Add(tenant).Add(id)));
    if (r.size() == 0) return Status::NotFound("event not found");
    return ReadEvent(r, 0);
  }

  // Events are listed in commit order (seq, see kOrderLock), not id order:
  // ids are made by each node's writer, and another node may commit a smaller
  // one later. The cursor names the last event returned; its seq is where
  // the next page starts (if retention purged it meanwhile: after the newest
  // remaining event with a smaller id).
#define AFTER_SEQ                                                                             \
  "COALESCE((SELECT seq FROM events WHERE tenant=$1 AND id=$2),(SELECT max(seq) FROM events " \
  "WHERE tenant=$1 AND id<$2),0)"
  Result<EventPage> ListEvents(const std::string& tenant, const std::string& type,
                               const ListOptions& opts) override {
    CONN_OR_RETURN(c);
    EventPage page;
    if (type.empty() && opts.by_id) {
      static const char kListById[] =
          "SELECT " EVENT_COLS " FROM events WHERE tenant=$1 AND id>$2 ORDER BY id LIMIT $3";
      ROWS_OR_RETURN(
          r, c->Run(kListById, Params().Add(tenant).Add(opts.after_id).Add(opts.limit + 1)));
      for (int i = 0; i < r.size() && i < opts.limit; ++i) page.events.push_back(ReadEvent(r, i));
      if (r.size() > opts.limit) {
        page.more = true;
        page.resume_after = page.events.back().id;
      }
      return page;
    }
    if (type.empty()) {
      static const char kList[] =
          "SELECT " EVENT_COLS " FROM events WHERE tenant=$1 AND seq>" AFTER_SEQ
          " ORDER BY seq LIMIT $3";
      ROWS_OR_RETURN(r, c->Run(kList, Params().Add(tenant).Add(opts.after_id).Add(opts.limit + 1)));
      for (int i = 0; i < r.size() && i < opts.limit; ++i) page.events.push_back(ReadEvent(r, i));
      if (r.size() > opts.limit) {
        page.more = true;
        page.resume_after = page.events.back().id;
      }
      return page;
    }
    // Same contract as the embedded store: a bounded scan of the tenant's
    // events in id order (only ids and a match flag cross the wire), then
    // the matching rows.
    static const char kScan[] = "SELECT id, type=$4 FROM events WHERE tenant=$1 AND seq>" AFTER_SEQ
                                " ORDER BY seq LIMIT $3";
    ROWS_OR_RETURN(scan, c->Run(kScan, Params()
                                           .Add(tenant)
                                           .Add(opts.after_id)
                                           .Add(static_cast<int64_t>(kTypeFilterScanBudget))
                                           .Add(type)));
    ArrayBuilder ids;
    std::string last_scanned, last_match;
    int matched = 0;
    for (int i = 0; i < scan.size(); ++i) {
      if (!scan.Bool(i, 1)) {
        last_scanned = scan.Text(i, 0);
        continue;
      }
      if (matched == opts.limit) {
        page.more = true;
        break;
      }
      ++matched;
      last_scanned = last_match = scan.Text(i, 0);
      ids.Add(std::string_view(last_match));
    }
    if (!page.more && scan.size() == kTypeFilterScanBudget) page.more = true;
    if (matched > 0) {
      static const char kRows[] =
          "SELECT " EVENT_COLS " FROM events WHERE tenant=$1 AND id=ANY($2::text[]) ORDER BY seq";
      ROWS_OR_RETURN(r, c->Run(kRows, Params().Add(tenant).Own(ids.Finish())));
      for (int i = 0; i < r.size(); ++i) page.events.push_back(ReadEvent(r, i));
    }
    if (page.more) {
      page.resume_after = matched == opts.limit ? last_match : last_scanned;
    }
    return page;
  }

  // Every chunk is one statement in its own transaction, committed without
  // waiting for the WAL flush (a purge lost in a crash is simply done again).
  // Nodes purging at once may pick the same rows: the outer conditions are
  // re-checked on the current row version, so a row changed meanwhile (a
  // retried delivery) is left alone.
  Result<PurgeCounts> Purge(int64_t events_before_ms, int64_t idem_before_ms, int64_t now_ms,
                            const PurgeLimits& limits) override {
    CONN_OR_RETURN(c);
    auto chunk = [&c](const char* sql, int64_t bound, int limit) -> Result<int64_t> {
      int64_t n = 0;
      Status s = c->Txn(true, [&]() -> Status {
        auto r = c->Run(sql, Params().Add(bound).Add(static_cast<int64_t>(limit)));
        if (!r.ok()) return r.status();
        n = r.value().Affected();
        return Status::Ok();
      });
      if (!s.ok()) return s;
      return n;
    };
    static const char kEvents[] =
        "DELETE FROM events WHERE (tenant,id) IN (SELECT tenant,id FROM events WHERE "
        "received_at<$1 LIMIT $2) AND received_at<$1";
    // Finished deliveries (and their attempts) age out with the events; found
    // through the partial index deliveries_finished.
    static const char kFinished[] =
        "WITH d AS (DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries WHERE "
        "next_attempt_at IS NULL AND updated_at<$1 LIMIT $2) AND next_attempt_at IS NULL AND "
        "updated_at<$1 RETURNING id), a AS (DELETE FROM delivery_attempts WHERE delivery_id IN "
        "(SELECT id FROM d)) SELECT id FROM d";
    // Unfinished deliveries whose event is gone can never be sent: dead.
    static const char kOrphans[] =
        "UPDATE deliveries SET status='dead', next_attempt_at=NULL, receipt=NULL, "
        "last_error='the event was purged by retention', updated_at=$1 WHERE id IN (SELECT id "
        "FROM deliveries d WHERE next_attempt_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM "
        "events e WHERE e.tenant=d.tenant AND e.id=d.event_id) LIMIT $2) AND next_attempt_at IS "
        "NOT NULL AND NOT EXISTS (SELECT 1 FROM events e WHERE e.tenant=deliveries.tenant AND "
        "e.id=deliveries.event_id)";
    static const char kIdem[] =
        "DELETE FROM idempotency WHERE (tenant,key) IN (SELECT tenant,key FROM idempotency WHERE "
        "created_at<$1 LIMIT $2) AND created_at<$1";
    return RunPurgeChunks(limits,
                          {[&](int limit) { return chunk(kEvents, events_before_ms, limit); },
                           [&](int limit) { return chunk(kFinished, events_before_ms, limit); },
                           [&](int limit) { return chunk(kOrphans, now_ms, limit); },
                           [&](int limit) { return chunk(kIdem, idem_before_ms, limit); }});
  }

  // --- subscriptions ---------------------------------------------------------

  Result<int64_t> CreateSubscription(const Subscription& s) override {
    CONN_OR_RETURN(c);
    static const char kInsert[] =
        "INSERT INTO subscriptions(" SUB_COLS
        ") VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17)";
    int64_t gen = 0;
    Status st = OrderedTxn(*c, [&]() -> Status {
      Params p;
      BindSubscription(p, s);
      if (auto r = c->Run(kInsert, p); !r.ok()) return r.status();
      return BumpGeneration(*c, s.tenant, &gen);
    });
    if (!st.ok()) return st;
    return gen;
  }

  Result<Subscription> GetSubscription(const std::string& tenant, const std::string& id) override {
    CONN_OR_RETURN(c);
    static const char kGet[] = "SELECT " SUB_COLS
                               " FROM subscriptions WHERE id=$1 AND tenant=$2 AND deleted_at IS "
                               "NULL";
    ROWS_OR_RETURN(r, c->Run(kGet, Params().Add(id).Add(tenant)));
    if (r.size() == 0) return Status::NotFound("subscription not found");
    return ReadSubscription(r, 0);
  }

  Result<std::vector<Subscription>> ListSubscriptions(const std::string& tenant,
                                                      const ListOptions& opts) override {
    CONN_OR_RETURN(c);
    static const char kList[] = "SELECT " SUB_COLS
                                " FROM subscriptions WHERE tenant=$1 AND id>$2 AND deleted_at IS "
                                "NULL ORDER BY id LIMIT $3";
    ROWS_OR_RETURN(r, c->Run(kList, Params().Add(tenant).Add(opts.after_id).Add(opts.limit)));
    std::vector<Subscription> out;
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadSubscription(r, i));
    return out;
  }

  Result<Subscription> ModifySubscription(const std::string& tenant, const std::string& id,
                                          const std::function<Status(Subscription*)>& change,
                                          int64_t* generation) override {
    CONN_OR_RETURN(c);
    static const char kLock[] = "SELECT " SUB_COLS
                                " FROM subscriptions WHERE id=$1 AND tenant=$2 AND deleted_at IS "
                                "NULL FOR UPDATE";
    static const char kUpdate[] =
        "UPDATE subscriptions SET url=$4,event_types=$5,filter=$6,max_in_flight=$7,"
        "rate_limit_per_s=$8,ordered=$9,description=$10,enabled=$11,secret=$12,"
        "previous_secret=$13,previous_secret_expires_at=$14,max_receives=$15,updated_at=$17 "
        "WHERE id=$1 AND tenant=$2 AND kind=$3 AND created_at=$16";
    Subscription sub;
    Status st = OrderedTxn(*c, [&]() -> Status {
      ROWS_OR_RETURN(r, c->Run(kLock, Params().Add(id).Add(tenant)));
      if (r.size() == 0) return Status::NotFound("subscription not found");
      sub = ReadSubscription(r, 0);
      const Subscription stored = sub;
      if (Status ch = change(&sub); !ch.ok()) return ch;
      sub.id = stored.id;
      sub.tenant = stored.tenant;
      sub.kind = stored.kind;
      sub.created_at_ms = stored.created_at_ms;
      Params p;
      BindSubscription(p, sub);
      if (auto u = c->Run(kUpdate, p); !u.ok()) return u.status();
      return BumpGeneration(*c, tenant, generation);
    });
    if (!st.ok()) return st;
    return sub;
  }

  Result<int64_t> DeleteSubscription(const std::string& tenant, const std::string& id,
                                     int64_t now_ms) override {
    CONN_OR_RETURN(c);
    int64_t gen = 0;
    Status st = OrderedTxn(*c, [&]() -> Status {
      static const char kDelete[] =
          "UPDATE subscriptions SET deleted_at=$1, updated_at=$1 WHERE id=$2 AND tenant=$3 AND "
          "deleted_at IS NULL";
      ROWS_OR_RETURN(r, c->Run(kDelete, Params().Add(now_ms).Add(id).Add(tenant)));
      if (r.Affected() == 0) return Status::NotFound("subscription not found");
      static const char kDrop[] =
          "DELETE FROM deliveries WHERE subscription_id=$1 AND next_attempt_at IS NOT NULL";
      if (auto d = c->Run(kDrop, Params().Add(id)); !d.ok()) return d.status();
      return BumpGeneration(*c, tenant, &gen);
    });
    if (!st.ok()) return st;
    return gen;
  }

  Result<std::vector<std::pair<std::string, int64_t>>> SubscriptionGenerations() override {
    CONN_OR_RETURN(c);
    static const char kAll[] = "SELECT tenant, generation FROM subscription_generations";
    ROWS_OR_RETURN(r, c->Run(kAll, Params()));
    std::vector<std::pair<std::string, int64_t>> out;
    for (int i = 0; i < r.size(); ++i) out.emplace_back(r.Text(i, 0), r.Int(i, 1));
    return out;
  }

  Result<TenantSubscriptions> LoadTenantSubscriptions(const std::string& tenant) override {
    CONN_OR_RETURN(c);
    TenantSubscriptions out;
    // The generation first: the list, read by a later statement, may then
    // only be newer than it.
    static const char kGen[] =
        "SELECT COALESCE((SELECT generation FROM subscription_generations WHERE tenant=$1),0)";
    ROWS_OR_RETURN(g, c->Run(kGen, Params().Add(tenant)));
    out.generation = g.Int(0, 0);
    ROWS_OR_RETURN(r, c->Run(kTenantSubs, Params().Add(tenant)));
    for (int i = 0; i < r.size(); ++i) out.subscriptions.push_back(ReadSubscription(r, i));
    return out;
  }

  // --- deliveries ------------------------------------------------------------

  Result<std::vector<Delivery>> ListDeliveries(const std::string& tenant, const DeliveryFilter& f,
                                               const ListOptions& opts) override {
    CONN_OR_RETURN(c);
    std::string sql = "SELECT " DELIVERY_COLS " FROM deliveries WHERE tenant=$1";
    Params p;
    p.Add(tenant);
    int n = 1;
    if (!f.event_id.empty()) {
      sql += " AND event_id=$" + std::to_string(++n);
      p.Add(f.event_id);
    }
    if (!f.subscription_id.empty()) {
      sql += " AND subscription_id=$" + std::to_string(++n);
      p.Add(f.subscription_id);
    }
    if (!f.status.empty()) {
      sql += " AND status=$" + std::to_string(++n);
      p.Add(f.status);
    }
    sql += " AND id>$" + std::to_string(n + 1) + " ORDER BY id LIMIT $" + std::to_string(n + 2);
    p.Add(opts.after_id).Add(opts.limit);
    ROWS_OR_RETURN(r, c->RunOnce(sql, p));
    std::vector<Delivery> out;
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadDelivery(r, i));
    return out;
  }

  Result<Delivery> GetDelivery(const std::string& tenant, const std::string& id) override {
    CONN_OR_RETURN(c);
    static const char kGet[] = "SELECT " DELIVERY_COLS " FROM deliveries WHERE id=$1 AND tenant=$2";
    ROWS_OR_RETURN(r, c->Run(kGet, Params().Add(id).Add(tenant)));
    if (r.size() == 0) return Status::NotFound("delivery not found");
    Delivery d = ReadDelivery(r, 0);
    static const char kAttempts[] =
        "SELECT at,status_code,latency_ms,error,response_snippet FROM delivery_attempts WHERE "
        "delivery_id=$1 ORDER BY n";
    ROWS_OR_RETURN(a, c->Run(kAttempts, Params().Add(id)));
    for (int i = 0; i < a.size(); ++i) {
      DeliveryAttempt at;
      at.at_ms = a.Int(i, 0);
      if (!a.IsNull(i, 1)) at.status_code = static_cast<int>(a.Int(i, 1));
      at.latency_ms = a.Int(i, 2);
      at.error = a.OptText(i, 3);
      at.response_snippet = a.Text(i, 4);
      d.attempt_log.push_back(std::move(at));
    }
    return d;
  }

  // Under the commit-order lock, like DeleteSubscription: a retry cannot
  // revive a delivery of a subscription whose delete commits meanwhile.
  Status RetryDelivery(const std::string& tenant, const std::string& id, int64_t now_ms) override {
    CONN_OR_RETURN(c);
    return OrderedTxn(*c, [&]() -> Status {
      static const char kGet[] =
          "SELECT d.status, s.id IS NOT NULL AND s.deleted_at IS NULL FROM deliveries d LEFT JOIN "
          "subscriptions s ON s.id=d.subscription_id WHERE d.id=$1 AND d.tenant=$2 FOR UPDATE OF d";
      ROWS_OR_RETURN(r, c->Run(kGet, Params().Add(id).Add(tenant)));
      if (r.size() == 0) return Status::NotFound("delivery not found");
      std::string status = r.Text(0, 0);
      if (!r.Bool(0, 1)) return Status::Conflict("the delivery's subscription was deleted");
      if (status == kDeliveryPending || status == kDeliveryInFlight) {
        return Status::Conflict("the delivery is " + status + " already");
      }
      static const char kRetry[] =
          "UPDATE deliveries SET status='pending', next_attempt_at=" NOW_AT("$1") ", updated_at=" NOW_AT("$1") ", "
          "attempts=" PULL_RECEIVES_RESET " WHERE id=$2";
      if (auto u = c->Run(kRetry, Params().AddOrNull(opts_.database_clock, now_ms).Add(id));
          !u.ok()) {
        return u.status();
      }
      return Status::Ok();
    });
  }

  Result<int64_t> RequeueDead(const std::string& tenant, const std::string& sub_id,
                              const std::string& min_id, const std::string& max_id,
                              int64_t now_ms) override {
    CONN_OR_RETURN(c);
    // Only for a live subscription, under the commit-order lock (see RetryDelivery).
    static const char kRequeue[] =
        "UPDATE deliveries SET status='pending', next_attempt_at=" NOW_AT("$1") ", updated_at=" NOW_AT("$1") ", "
        "attempts=" PULL_RECEIVES_RESET
        " WHERE tenant=$2 AND subscription_id=$3 AND status='dead' AND event_id>=$4 AND "
        "event_id<=$5 AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.id=$3 AND s.tenant=$2 "
        "AND s.deleted_at IS NULL)";
    int64_t requeued = 0;
    Status st = OrderedTxn(*c, [&]() -> Status {
      ROWS_OR_RETURN(r, c->Run(kRequeue, Params()
                                             .AddOrNull(opts_.database_clock, now_ms)
                                             .Add(tenant)
                                             .Add(sub_id)
                                             .Add(min_id)
                                             .Add(max_id)));
      requeued = r.Affected();
      return Status::Ok();
    });
    if (!st.ok()) return st;
    return requeued;
  }

  Result<int64_t> CreateMissingDeliveries(const std::string& tenant, const std::string& sub_id,
                                          const std::vector<Event>& events, bool ordered,
                                          int64_t now_ms) override {
    if (events.empty()) return int64_t{0};
    CONN_OR_RETURN(c);
    ArrayBuilder ids, event_ids, keys;
    for (const auto& ev : events) {
      ids.Add(std::string_view(core::NewId("dlv_", now_ms)));
      event_ids.Add(std::string_view(ev.id));
      if (ordered) {
        keys.Add(std::string_view(ev.ordering_key ? *ev.ordering_key : std::string()));
      } else {
        keys.AddNull();
      }
    }
    // In the events' order, so an ordered subscription's sequence follows it.
    // The subscription row is locked so two replays cannot interleave.
    int64_t created = 0;
    Status s = OrderedTxn(*c, [&]() -> Status {
      static const char kLock[] = "SELECT 1 FROM subscriptions WHERE id=$1 FOR UPDATE";
      if (auto l = c->Run(kLock, Params().Add(sub_id)); !l.ok()) return l.status();
      static const char kInsert[] =
          "INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,next_attempt_at,"
          "created_at,updated_at,ordering_key) SELECT t.id,$1,t.event_id,$2,'pending'," NOW_AT("$3") "," NOW_AT("$3") "," NOW_AT("$3") ","
          "t.ok FROM unnest($4::text[],$5::text[],$6::text[]) WITH ORDINALITY AS "
          "t(id,event_id,ok,n) WHERE NOT EXISTS (SELECT 1 FROM deliveries x WHERE x.tenant=$1 AND "
          "x.event_id=t.event_id AND x.subscription_id=$2) AND EXISTS (SELECT 1 FROM "
          "subscriptions s WHERE s.id=$2 AND s.tenant=$1 AND s.deleted_at IS NULL) ORDER BY t.n";
      ROWS_OR_RETURN(r, c->Run(kInsert, Params()
                                            .Add(tenant)
                                            .Add(sub_id)
                                            .AddOrNull(opts_.database_clock, now_ms)
                                            .Own(ids.Finish())
                                            .Own(event_ids.Finish())
                                            .Own(keys.Finish())));
      created = r.Affected();
      return Status::Ok();
    });
    if (!s.ok()) return s;
    if (created > 0) Notify(*c, sub_id);
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
    CONN_OR_RETURN(c);
    std::vector<ReceiptResult> out;
    Status s = c->Txn(true, [&]() -> Status {
      out.clear();
      for (const auto& receipt : receipts) {
        ReceiptResult rr;
        rr.receipt = receipt;
        size_t dot = receipt.find('.');
        std::string id = receipt.substr(0, dot);
        // Only the live receipt of an unexpired lease settles the message.
        static const char kAck[] =
            "UPDATE deliveries SET status='succeeded', next_attempt_at=NULL, receipt=NULL, "
            "updated_at=" NOW_AT("$3") " WHERE id=$1 AND subscription_id=$2 AND receipt=$4 AND "
            "status='in_flight' AND next_attempt_at>" NOW_AT("$3") "";
        static const char kNack[] =
            "UPDATE deliveries SET status='retrying', next_attempt_at=" NOW_AT("$3") "+$5::bigint, receipt=NULL, "
            "updated_at=" NOW_AT("$3") " WHERE id=$1 AND subscription_id=$2 AND receipt=$4 AND "
            "status='in_flight' AND next_attempt_at>" NOW_AT("$3") "";
        Params p;
        p.Add(id).Add(sub_id);
        AddNow(p, now_ms);
        p.Add(receipt);
        if (!ack) p.Add(visible_at_ms - now_ms);  // a delay from now
        int64_t changed = 0;
        if (dot != std::string::npos) {
          ROWS_OR_RETURN(u, c->Run(ack ? kAck : kNack, p));
          changed = u.Affected();
        }
        if (changed > 0) {
          rr.status = ack ? "acked" : "nacked";
        } else {
          static const char kExists[] =
              "SELECT 1 FROM deliveries WHERE id=$1 AND subscription_id=$2";
          ROWS_OR_RETURN(e, c->Run(kExists, Params().Add(id).Add(sub_id)));
          rr.status = e.size() > 0 ? "expired" : "not_found";
        }
        out.push_back(std::move(rr));
      }
      return Status::Ok();
    });
    if (!s.ok()) return s;
    if (!ack) Notify(*c, sub_id);
    return out;
  }

  Status RecordAttempts(const std::vector<AttemptResult>& results, int64_t now_ms) override {
    if (results.empty()) return Status::Ok();
    // One row per delivery per statement (the last outcome wins if a batch
    // holds two for the same delivery).
    std::unordered_map<std::string, size_t> last;
    for (size_t i = 0; i < results.size(); ++i) last[results[i].delivery_id] = i;
    ArrayBuilder ids, statuses, next, at, codes, latency, errors, snippets, tokens;
    for (size_t i = 0; i < results.size(); ++i) {
      const auto& r = results[i];
      if (last[r.delivery_id] != i) continue;
      const bool finished = r.status == kDeliverySucceeded || r.status == kDeliveryDead;
      ids.Add(std::string_view(r.delivery_id));
      statuses.Add(std::string_view(r.status));
      if (finished) {
        next.AddNull();
      } else {
        next.Add(r.next_attempt_at_ms - now_ms);  // a delay from now
      }
      at.Add(r.attempt.at_ms);
      if (r.attempt.status_code) {
        codes.Add(static_cast<int64_t>(*r.attempt.status_code));
      } else {
        codes.AddNull();
      }
      latency.Add(r.attempt.latency_ms);
      if (r.attempt.error) {
        errors.Add(std::string_view(core::ToValidUtf8(*r.attempt.error)));
      } else {
        errors.AddNull();
      }
      snippets.Add(std::string_view(core::ToValidUtf8(r.attempt.response_snippet)));
      tokens.Add(std::string_view(r.lease_token));
    }
    CONN_OR_RETURN(c);
    // Rows whose lease is no longer ours are left out of both the attempt
    // log and the update (the rows are locked first, so the check holds).
    static const char kRecord[] =
        "WITH r AS (SELECT * FROM unnest($1::text[],$2::text[],$3::bigint[],$4::bigint[],"
        "$5::integer[],$6::bigint[],$7::text[],$8::text[],$10::text[]) AS "
        "r(id,status,nat,at,code,lat,err,snip,lease)), "
        "mine AS (SELECT r.*, d.attempts FROM r JOIN deliveries d ON d.id=r.id WHERE r.lease='' OR "
        "(d.status='in_flight' AND d.receipt=r.lease) FOR UPDATE OF d), "
        "a AS (INSERT INTO delivery_attempts(delivery_id,n,at,status_code,latency_ms,error,"
        "response_snippet) SELECT id,attempts+1,at,code,lat,err,snip FROM mine "
        "ON CONFLICT(delivery_id,n) DO UPDATE SET at=EXCLUDED.at,"
        "status_code=EXCLUDED.status_code,latency_ms=EXCLUDED.latency_ms,error=EXCLUDED.error,"
        "response_snippet=EXCLUDED.response_snippet) "
        "UPDATE deliveries d SET status=m.status, attempts=m.attempts+1, next_attempt_at=CASE WHEN "
        "m.nat IS NULL THEN NULL ELSE " NOW_AT("$9") "+m.nat END, last_error=m.err, "
        "last_status_code=m.code, updated_at=" NOW_AT("$9") " FROM mine m WHERE d.id=m.id";
    // Without its own fsync: losing the last of these in a power cut means a
    // delivery is attempted again, which at-least-once allows.
    return c->Txn(true, [&]() -> Status {
      auto r = c->Run(kRecord, Params()
                                   .Own(ids.Finish())
                                   .Own(statuses.Finish())
                                   .Own(next.Finish())
                                   .Own(at.Finish())
                                   .Own(codes.Finish())
                                   .Own(latency.Finish())
                                   .Own(errors.Finish())
                                   .Own(snippets.Finish())
                                   .AddOrNull(opts_.database_clock, now_ms)
                                   .Own(tokens.Finish()));
      return r.ok() ? Status::Ok() : r.status();
    });
  }

  Result<std::vector<std::string>> SubscriptionsWithDueWork(int64_t now_ms) override {
    CONN_OR_RETURN(c);
    // A loose index scan over deliveries_due: one probe per subscription
    // rather than a walk over every due row.
    static const char kDue[] =
        "WITH RECURSIVE s(id) AS ("
        " (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL"
        "  ORDER BY subscription_id LIMIT 1)"
        " UNION ALL"
        " SELECT (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL"
        "  AND subscription_id>s.id ORDER BY subscription_id LIMIT 1) FROM s WHERE s.id IS NOT "
        "NULL) "
        "SELECT s.id FROM s WHERE s.id IS NOT NULL AND EXISTS (SELECT 1 FROM deliveries d WHERE "
        "d.subscription_id=s.id AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at<=" NOW_AT(
            "$1") ")";
    ROWS_OR_RETURN(r, c->Run(kDue, Params().AddOrNull(opts_.database_clock, now_ms)));
    std::vector<std::string> out;
    for (int i = 0; i < r.size(); ++i) out.push_back(r.Text(i, 0));
    return out;
  }

  Status ReleaseLeases(const std::vector<LeaseRef>& leases, int64_t now_ms) override {
    if (leases.empty()) return Status::Ok();
    CONN_OR_RETURN(c);
    ArrayBuilder ids, tokens;
    for (const auto& l : leases) {
      ids.Add(std::string_view(l.delivery_id));
      tokens.Add(std::string_view(l.token));
    }
    static const char kRelease[] =
        "UPDATE deliveries d SET status=CASE WHEN attempts=0 THEN 'pending' ELSE 'retrying' END, "
        "next_attempt_at=" NOW_AT("$1") ", updated_at=" NOW_AT("$1") ", receipt=NULL FROM "
        "unnest($2::text[],$3::text[]) AS "
        "l(id,token) WHERE d.id=l.id AND d.status='in_flight' AND d.receipt=l.token";
    auto r = c->Run(
        kRelease,
        Params().AddOrNull(opts_.database_clock, now_ms).Own(ids.Finish()).Own(tokens.Finish()));
    return r.ok() ? Status::Ok() : r.status();
  }

  Status DeliveryStats(int64_t now_ms, std::vector<std::pair<std::string, int64_t>>* by_state,
                       int64_t* oldest_due_ms) override {
    return Stats("", now_ms, by_state, oldest_due_ms);
  }

  Status TenantDeliveryStats(const std::string& tenant, int64_t now_ms,
                             std::vector<std::pair<std::string, int64_t>>* by_state,
                             int64_t* oldest_due_ms) override {
    return Stats(tenant, now_ms, by_state, oldest_due_ms);
  }

  // `tenant` empty: every tenant.
  Status Stats(const std::string& tenant, int64_t now_ms,
               std::vector<std::pair<std::string, int64_t>>* by_state, int64_t* oldest_due_ms) {
    CONN_OR_RETURN(c);
    for (const char* st : {kDeliveryPending, kDeliveryInFlight, kDeliverySucceeded,
                           kDeliveryRetrying, kDeliveryDead}) {
      by_state->emplace_back(st, 0);
    }
    // Two statements, not one with ($1='' OR tenant=$1): a generic plan of
    // that would scan every tenant's deliveries for one tenant's stats.
    static const char kStats[] = "SELECT status, count(*) FROM deliveries GROUP BY status";
    static const char kTenantStats[] =
        "SELECT status, count(*) FROM deliveries WHERE tenant=$1 GROUP BY status";
    Params sp;
    if (!tenant.empty()) sp.Add(tenant);
    ROWS_OR_RETURN(r, c->Run(tenant.empty() ? kStats : kTenantStats, sp));
    for (int i = 0; i < r.size(); ++i) {
      for (auto& [name, n] : *by_state) {
        if (name == r.Text(i, 0)) n = r.Int(i, 1);
      }
    }
    // How long ago (on the database's clock) the oldest due delivery became
    // due, returned on the caller's clock (now_ms - age): callers compute
    // the age from their own now.
    static const char kOldest[] =
        "SELECT " NOW_AT("$1") "-min(next_attempt_at) FROM deliveries WHERE next_attempt_at IS "
        "NOT NULL AND status IN ('pending','retrying') AND next_attempt_at<=" NOW_AT("$1");
    static const char kTenantOldest[] =
        "SELECT " NOW_AT("$1") "-min(next_attempt_at) FROM deliveries WHERE next_attempt_at IS "
        "NOT NULL AND status IN ('pending','retrying') AND next_attempt_at<=" NOW_AT("$1") " AND "
        "tenant=$2";
    Params op;
    AddNow(op, now_ms);
    if (!tenant.empty()) op.Add(tenant);
    ROWS_OR_RETURN(o, c->Run(tenant.empty() ? kOldest : kTenantOldest, op));
    *oldest_due_ms = o.size() == 0 || o.IsNull(0, 0) ? 0 : now_ms - o.Int(0, 0);
    return Status::Ok();
  }

  // --- API keys --------------------------------------------------------------

  Status CreateKey(const ApiKey& k) override {
    CONN_OR_RETURN(c);
    static const char kInsert[] =
        "INSERT INTO api_keys(id,tenant,name,scopes,hash,admin,created_at) "
        "VALUES($1,$2,$3,$4,$5,$6,$7)";
    auto r = c->Run(kInsert, Params()
                                 .Add(k.id)
                                 .Add(k.tenant)
                                 .Add(k.name)
                                 .Add(static_cast<int64_t>(k.scopes))
                                 .Own(core::Hex(k.hash))
                                 .Add(k.admin)
                                 .Add(k.created_at_ms));
    return r.ok() ? Status::Ok() : r.status();
  }

  Result<ApiKey> FindKeyByHash(const std::string& hash) override {
    CONN_OR_RETURN(c);
    static const char kFind[] = "SELECT " KEY_COLS " FROM api_keys WHERE hash=$1";
    ROWS_OR_RETURN(r, c->Run(kFind, Params().Own(core::Hex(hash))));
    if (r.size() == 0) return Status::NotFound("key not found");
    return ReadKey(r, 0);
  }

  Result<std::vector<ApiKey>> ListKeys(const std::string& tenant,
                                       const ListOptions& opts) override {
    CONN_OR_RETURN(c);
    static const char kAll[] =
        "SELECT " KEY_COLS " FROM api_keys WHERE NOT admin AND id>$1 ORDER BY id LIMIT $2";
    static const char kTenant[] = "SELECT " KEY_COLS
                                  " FROM api_keys WHERE NOT admin AND tenant=$3 AND id>$1 ORDER "
                                  "BY id LIMIT $2";
    Params p;
    p.Add(opts.after_id).Add(opts.limit);
    if (!tenant.empty()) p.Add(tenant);
    ROWS_OR_RETURN(r, c->Run(tenant.empty() ? kAll : kTenant, p));
    std::vector<ApiKey> out;
    for (int i = 0; i < r.size(); ++i) out.push_back(ReadKey(r, i));
    return out;
  }

  Result<std::string> RevokeKey(const std::string& tenant, const std::string& id,
                                int64_t now_ms) override {
    CONN_OR_RETURN(c);
    // Any tenant's key for the admin (tenant empty); never the admin key
    // through a tenant.
    static const char kRevoke[] =
        "UPDATE api_keys SET revoked_at=" NOW_AT("$1") " WHERE id=$2 AND revoked_at IS NULL AND "
        "($3='' OR (tenant=$3 AND NOT admin)) RETURNING hash";
    ROWS_OR_RETURN(
        r, c->Run(kRevoke, Params().AddOrNull(opts_.database_clock, now_ms).Add(id).Add(tenant)));
    if (r.size() == 0) return Status::NotFound("key not found");
    return core::Unhex(r.Text(0, 0));
  }

  Result<std::vector<std::string>> RevokedKeyHashesSince(int64_t since_ms,
                                                         int64_t now_ms) override {
    CONN_OR_RETURN(c);
    // The same look-back, from the database's now (revocations are stamped
    // with it): a node whose clock is off still sees every revocation.
    static const char kRevoked[] =
        "SELECT hash FROM api_keys WHERE revoked_at IS NOT NULL AND "
        "revoked_at>=" NOW_AT("$2") "-$1::bigint";
    ROWS_OR_RETURN(
        r,
        c->Run(kRevoked, Params().Add(now_ms - since_ms).AddOrNull(opts_.database_clock, now_ms)));
    std::vector<std::string> out;
    for (int i = 0; i < r.size(); ++i) out.push_back(core::Unhex(r.Text(i, 0)));
    return out;
  }

  Result<bool> HasAdminKey() override {
    CONN_OR_RETURN(c);
    static const char kAdmin[] = "SELECT 1 FROM api_keys WHERE admin LIMIT 1";
    ROWS_OR_RETURN(r, c->Run(kAdmin, Params()));
    return r.size() > 0;
  }

  // --- other nodes -----------------------------------------------------------

  void SetWorkListener(std::function<void(const std::vector<std::string>&)> fn) override {
    if (!opts_.listen || listener_.joinable() || stop_.load()) return;
    on_work_ = std::move(fn);
    wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    listener_ = std::thread([this] { Listen(); });
  }

 private:
  // The caller's now, or NULL where the database's clock decides (NOW_AT).
  void AddNow(Params& p, int64_t now_ms) const {
    if (opts_.database_clock) {
      p.Null();
    } else {
      p.Add(now_ms);
    }
  }

  static void BindSubscription(Params& p, const Subscription& s) {
    p.Add(s.id).Add(s.tenant).Add(s.kind).Add(s.url).Add(s.event_types_json).Add(s.filter_json);
    p.Add(s.max_in_flight).Add(s.rate_limit_per_s).Add(s.ordered).Add(s.description);
    p.Add(s.enabled).Add(s.secret).Add(s.previous_secret).Add(s.previous_secret_expires_at_ms);
    p.Add(s.max_receives).Add(s.created_at_ms).Add(s.updated_at_ms);
  }

  // In the caller's transaction (which holds the commit-order lock).
  static Status BumpGeneration(pg::Conn& c, const std::string& tenant, int64_t* out) {
    ROWS_OR_RETURN(r, c.Run(kBumpGeneration, Params().Add(tenant)));
    if (r.size() != 1) return Status::Unavailable("store: generation not returned");
    *out = r.Int(0, 0);
    return Status::Ok();
  }

  // Idempotency, decided in the ingest transaction in item order. The claim
  // is an upsert on (tenant, key): a concurrent claim on another node waits
  // for this transaction and then sees the row, so exactly one event wins.
  Status DecideIdempotency(pg::Conn& c, std::vector<IngestItem*>& items, int64_t now_ms,
                           int64_t window_ms) {
    // Events created earlier in this batch, by id (not inserted yet).
    std::unordered_map<std::string, const IngestItem*> batch;
    for (IngestItem* it : items) {
      if (it->idempotency_key.empty()) continue;
      Event& ev = it->event;
      std::string hash_hex = core::Hex(it->body_hash);
      ROWS_OR_RETURN(claim, c.Run(kIdemClaim, Params()
                                                  .Add(ev.tenant)
                                                  .Add(it->idempotency_key)
                                                  .Add(hash_hex)
                                                  .Add(ev.id)
                                                  .Add(now_ms)
                                                  .Add(now_ms - window_ms)));
      if (claim.size() > 0) {
        batch.emplace(ev.id, it);
        continue;  // ours: a new event
      }
      ROWS_OR_RETURN(got, c.Run(kIdemGet, Params().Add(ev.tenant).Add(it->idempotency_key)));
      if (got.size() == 0) return Status::Unavailable("store: idempotency record vanished");
      core::IdempotencyRecord rec{core::Unhex(got.Text(0, 0)), got.Int(0, 2)};
      std::string first_id = got.Text(0, 1);
      auto d = core::DecideIdempotency(rec, it->body_hash, now_ms, window_ms);
      if (d == core::IdempotencyDecision::kConflict) {
        it->outcome = IngestItem::Outcome::kConflict;
        continue;
      }
      if (auto b = batch.find(first_id); b != batch.end()) {
        ev.id = b->second->event.id;
        ev.type = b->second->event.type;
        ev.received_at_ms = b->second->event.received_at_ms;
        it->outcome = IngestItem::Outcome::kDuplicate;
        continue;
      }
      ROWS_OR_RETURN(first, c.Run(kGetEvent, Params().Add(ev.tenant).Add(first_id)));
      if (first.size() > 0) {
        ev.id = first.Text(0, 0);
        ev.type = first.Text(0, 2);
        ev.received_at_ms = first.Int(0, 7);
        it->outcome = IngestItem::Outcome::kDuplicate;
        continue;
      }
      // The first event was purged: this one is new and takes the key over.
      ROWS_OR_RETURN(re, c.Run(kIdemRepoint, Params()
                                                 .Add(ev.tenant)
                                                 .Add(it->idempotency_key)
                                                 .Add(hash_hex)
                                                 .Add(ev.id)
                                                 .Add(now_ms)));
      batch.emplace(ev.id, it);
    }
    return Status::Ok();
  }

  // Inserts the batch if every tenant's generation is the one its items were
  // matched at; otherwise re-matches the stale tenants' items against the
  // subscriptions this transaction reads (under the commit-order lock, which
  // every subscription write takes too: nothing changes until the commit)
  // and inserts then.
  Status InsertMatched(pg::Conn& c, std::vector<IngestItem*>& items, int64_t now_ms,
                       IngestMatcher* matcher) {
    // Without a matcher the items' matches are taken as they are (tests).
    auto stale = InsertBulk(c, items, now_ms, matcher != nullptr);
    if (!stale.ok()) return stale.status();
    if (stale.value() == 0) return Status::Ok();
    ArrayBuilder tenants;
    std::vector<std::string> seen;
    for (const IngestItem* it : items) {
      if (std::find(seen.begin(), seen.end(), it->event.tenant) != seen.end()) continue;
      seen.push_back(it->event.tenant);
      tenants.Add(std::string_view(it->event.tenant));
    }
    ROWS_OR_RETURN(gens, c.Run(kGenerations, Params().Own(tenants.Finish())));
    for (int i = 0; i < gens.size(); ++i) {
      const std::string tenant = gens.Text(i, 0);
      const int64_t gen = gens.Int(i, 1);
      std::vector<IngestItem*> mine;
      for (IngestItem* it : items) {
        if (it->event.tenant == tenant && it->matched_generation != gen) mine.push_back(it);
      }
      if (mine.empty()) continue;
      ROWS_OR_RETURN(rows, c.Run(kTenantSubs, Params().Add(tenant)));
      std::vector<Subscription> subs;
      for (int k = 0; k < rows.size(); ++k) subs.push_back(ReadSubscription(rows, k));
      matcher->Rematch(tenant, gen, subs, mine);
    }
    auto again = InsertBulk(c, items, now_ms, true);
    if (!again.ok()) return again.status();
    if (again.value() != 0)
      return Status::Unavailable("store: subscriptions changed under the lock");
    return Status::Ok();
  }

  // Inserts every still-pending item with its deliveries in one statement,
  // unless a generation is stale: returns the number of stale tenants (0: inserted).
  Result<int64_t> InsertBulk(pg::Conn& c, std::vector<IngestItem*>& items, int64_t now_ms,
                             bool check_generations) {
    ArrayBuilder id, tenant, type, source, subject, okey, data, received;
    ArrayBuilder did, dtenant, devent, dsub, dnat, dkey, gtenant, ggen;
    // Every distinct (tenant, generation) the items were matched at: items of
    // one tenant may have been matched at different generations.
    std::vector<std::pair<std::string_view, int64_t>> gseen;
    std::unordered_set<std::string_view> subs;
    std::string payload;
    for (IngestItem* it : items) {
      if (it->outcome != IngestItem::Outcome::kPending) continue;
      const Event& ev = it->event;
      id.Add(std::string_view(ev.id));
      tenant.Add(std::string_view(ev.tenant));
      type.Add(std::string_view(ev.type));
      source.Add(ev.source);
      subject.Add(ev.subject);
      okey.Add(ev.ordering_key);
      data.Add(std::string_view(ev.data));
      received.Add(ev.received_at_ms);
      const std::pair<std::string_view, int64_t> tg{ev.tenant, it->matched_generation};
      if (check_generations && std::find(gseen.begin(), gseen.end(), tg) == gseen.end()) {
        gseen.push_back(tg);
        gtenant.Add(std::string_view(ev.tenant));
        ggen.Add(it->matched_generation);
      }
      for (size_t k = 0; k < it->subscription_ids.size() && k < it->delivery_ids.size(); ++k) {
        did.Add(std::string_view(it->delivery_ids[k]));
        dtenant.Add(std::string_view(ev.tenant));
        devent.Add(std::string_view(ev.id));
        dsub.Add(std::string_view(it->subscription_ids[k]));
        dnat.Add(ev.received_at_ms);
        if (k < it->subscription_ordered.size() && it->subscription_ordered[k]) {
          dkey.Add(std::string_view(ev.ordering_key ? *ev.ordering_key : std::string()));
        } else {
          dkey.AddNull();
        }
        if (subs.insert(it->subscription_ids[k]).second) {
          if (!payload.empty()) payload += ',';
          payload += it->subscription_ids[k];
        }
      }
    }
    if (id.size() == 0) return int64_t{0};
    // NOTIFY payloads are limited to 8000 bytes: an empty one means "any".
    if (payload.size() > 7000) payload.clear();
    auto r = c.Run(kIngestBulk, Params()
                                    .Own(id.Finish())
                                    .Own(tenant.Finish())
                                    .Own(type.Finish())
                                    .Own(source.Finish())
                                    .Own(subject.Finish())
                                    .Own(okey.Finish())
                                    .Own(data.Finish())
                                    .Own(received.Finish())
                                    .Own(did.Finish())
                                    .Own(dtenant.Finish())
                                    .Own(devent.Finish())
                                    .Own(dsub.Finish())
                                    .AddOrNull(opts_.database_clock, now_ms)
                                    .Own(dnat.Finish())
                                    .Own(dkey.Finish())
                                    .Add(payload)
                                    .Own(gtenant.Finish())
                                    .Own(ggen.Finish()));
    if (!r.ok()) return r.status();
    if (r.value().size() != 1) return Status::Unavailable("store: ingest returned no row");
    if (int64_t stale = r.value().Int(0, 0); stale != 0) return stale;
    for (IngestItem* it : items) {
      if (it->outcome == IngestItem::Outcome::kPending) it->outcome = IngestItem::Outcome::kCreated;
    }
    return int64_t{0};
  }

  // Tells every node (this one included) that a subscription has work now.
  void Notify(pg::Conn& c, const std::string& sub_id) {
    static const char kNotify[] = "SELECT pg_notify('triggers_work',$1)";
    (void)c.Run(kNotify, Params().Add(sub_id));
  }

  // Leases due deliveries of one subscription, shared safely between nodes:
  // candidates are locked with SKIP LOCKED, so two nodes never take the same
  // row; ordered deliveries (with an ordering_key) are taken only when no
  // earlier unfinished delivery of the same key exists. With max_receives > 0
  // (pull) each gets a fresh receipt and counts a receive; one already
  // received max_receives times goes dead instead.
  Result<std::vector<Leased>> Lease(const std::string& sub_id, int64_t now_ms, int max,
                                    int64_t lease_until_ms, int max_receives) {
    CONN_OR_RETURN(c);
    static const char kLease[] =
        "WITH c AS (SELECT d.id AS did, d.seq AS dseq, d.next_attempt_at AS dnat, "
        "d.attempts AS datt, e.id AS e_id, e.tenant AS e_tenant, e.type AS e_type, "
        "e.source AS e_source, e.subject AS e_subject, e.ordering_key AS e_okey, e.data AS e_data, "
        "e.received_at AS e_received FROM deliveries d JOIN events e ON e.tenant=d.tenant AND "
        "e.id=d.event_id "
        "WHERE d.subscription_id=$1 AND d.next_attempt_at IS NOT NULL AND d.next_attempt_at<=" NOW_AT("$2") " "
        "AND (d.ordering_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries p WHERE "
        "p.subscription_id=$1 AND p.ordering_key=d.ordering_key AND p.next_attempt_at IS NOT NULL "
        "AND p.seq<d.seq)) ORDER BY d.next_attempt_at, d.seq LIMIT $3 FOR UPDATE OF d SKIP "
        "LOCKED), "
        "dead AS (UPDATE deliveries d SET status='dead', next_attempt_at=NULL, receipt=NULL, "
        "last_error='received max_receives times without an ack', updated_at=" NOW_AT("$2") " FROM c WHERE "
        "d.id=c.did AND $5>0 AND c.datt>=$5 RETURNING d.id), "
        "up AS (UPDATE deliveries d SET status='in_flight', next_attempt_at=" NOW_AT("$2") "+$4::bigint, updated_at=" NOW_AT("$2") ", "
        "attempts=d.attempts+(CASE WHEN $5>0 THEN 1 ELSE 0 END), receipt="
        "d.id||'.'||left(replace(gen_random_uuid()::text,'-',''),12)||left(replace(gen_random_uuid("
        ")::text,'-',''),12) FROM c WHERE d.id=c.did AND "
        "NOT ($5>0 AND c.datt>=$5) RETURNING "
        "d.id,d.tenant,d.event_id,d.subscription_id,d.status,d.attempts,"
        "d.next_attempt_at,d.last_error,d.last_status_code,d.created_at,d.updated_at,d.receipt) "
        "SELECT up.*, c.e_id, c.e_tenant, c.e_type, c.e_source, c.e_subject, c.e_okey, c.e_data, "
        "c.e_received FROM up JOIN c ON c.did=up.id ORDER BY c.dnat, c.dseq";
    ROWS_OR_RETURN(r, c->Run(kLease, Params()
                                         .Add(sub_id)
                                         .AddOrNull(opts_.database_clock, now_ms)
                                         .Add(max)
                                         .Add(lease_until_ms - now_ms)  // the lease's length
                                         .Add(max_receives)));
    std::vector<Leased> out;
    out.reserve(static_cast<size_t>(r.size()));
    for (int i = 0; i < r.size(); ++i) {
      Leased l;
      l.delivery = ReadDelivery(r, i, 0);
      if (!r.IsNull(i, 11)) l.receipt = r.Text(i, 11);
      l.event = ReadEvent(r, i, 12);
      out.push_back(std::move(l));
    }
    return out;
  }

  // The LISTEN connection: wakes this node's workers when any node commits
  // deliveries. Reconnects with backoff; after a reconnect it reports "any"
  // (notifications sent while it was away are lost).
  void Listen() {
    pthread_setname_np(pthread_self(), "trg-pg-listen");
    PGconn* conn = nullptr;
    int backoff_ms = 100;
    while (!stop_.load()) {
      if (!conn || PQstatus(conn) != CONNECTION_OK) {
        if (conn) PQfinish(conn);
        conn = pg::Connect(opts_.url, opts_.connect_timeout_s);
        pg::ResultPtr r(conn && PQstatus(conn) == CONNECTION_OK
                            ? PQexec(conn, "LISTEN triggers_work")
                            : nullptr);
        if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
          WaitWake(backoff_ms);
          backoff_ms = std::min(backoff_ms * 2, 5000);
          continue;
        }
        backoff_ms = 100;
        on_work_({});
      }
      pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
      int n = ::poll(fds, 2, 1000);
      if (n <= 0 || stop_.load()) continue;
      if (!PQconsumeInput(conn)) {
        PQfinish(conn);
        conn = nullptr;
        continue;
      }
      std::vector<std::string> subs;
      bool any = false;
      while (PGnotify* nf = PQnotifies(conn)) {
        std::string_view payload(nf->extra ? nf->extra : "");
        if (payload.empty()) any = true;
        while (!payload.empty()) {
          size_t comma = payload.find(',');
          subs.emplace_back(payload.substr(0, comma));
          payload =
              comma == std::string_view::npos ? std::string_view() : payload.substr(comma + 1);
        }
        PQfreemem(nf);
      }
      if (any) {
        on_work_({});
      } else if (!subs.empty()) {
        on_work_(subs);
      }
    }
    if (conn) PQfinish(conn);
  }

  void WaitWake(int ms) {
    pollfd fd{wake_fd_, POLLIN, 0};
    ::poll(&fd, 1, ms);
  }

  PostgresOptions opts_;
  pg::Pool pool_;
  std::function<void(const std::vector<std::string>&)> on_work_;
  std::atomic<bool> stop_{false};
  int wake_fd_ = -1;
  std::thread listener_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenPostgres(const PostgresOptions& options) {
  // libpq's own parse errors quote the text around the fault, which may be
  // part of a password: check the URL first and say only that it is bad.
  char* err = nullptr;
  PQconninfoOption* parsed = PQconninfoParse(options.url.c_str(), &err);
  if (!parsed) {
    if (err) PQfreemem(err);
    return Status::Validation(
        "--postgres-url is not a valid PostgreSQL connection URL or string (check its "
        "percent-encoding and key=value pairs)");
  }
  PQconninfoFree(parsed);
  auto s = std::make_unique<PgStore>(options);
  if (Status st = s->Init(); !st.ok()) return st;
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace triggers::store
