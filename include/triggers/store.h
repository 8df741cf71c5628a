// Store: the one door to persistent state, in narrow interfaces by what they
// hold (EventStore, SubscriptionStore, DeliveryQueue, KeyStore). Every backend
// (SQLite, PostgreSQL) implements all of them; everything in memory can be
// rebuilt from it.
//
// Thread safety: every method may be called from any thread concurrently.
// Failure: a backend that cannot reach its storage returns Unavailable, and
// callers turn that into a 503; a write that returned an error did not commit.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "triggers/model.h"
#include "triggers/status.h"

namespace triggers::store {

// One event submitted to CommitIngest. The caller fills the inputs and a fresh
// id/received_at; the store fills `outcome` (and, for a duplicate, replaces
// id/type/received_at_ms with those of the first event).
struct IngestItem {
  enum class Outcome { kPending, kCreated, kDuplicate, kConflict };
  Event event;  // tenant, type, optional fields, data, id, received_at_ms
  // Matching subscriptions (ids), and the delivery ids assigned to them by the
  // writer (same order). One delivery row each, in the event's transaction.
  std::vector<std::string> subscription_ids;
  std::vector<uint8_t> subscription_ordered;  // parallel: 1 = the subscription is ordered
  std::vector<std::string> delivery_ids;
  // The tenant's subscriptions generation the matches above were decided
  // at (SubscriptionCache::Match). The ingest transaction compares it with
  // the generation it sees and re-matches when they differ.
  int64_t matched_generation = 0;
  // Non-empty: the event is for this subscription alone (SQS SendMessage);
  // a re-match keeps it to that one while it lives, and matches no other.
  std::string only_subscription;
  std::string idempotency_key;  // empty: none
  std::string body_hash;        // SHA-256 of the request body when idempotency_key is set
  Outcome outcome = Outcome::kPending;
};

// Decides again which subscriptions ingest items get, inside the ingest
// transaction, when the subscription state that transaction sees is not the
// one the items were matched against (another node or request changed a
// subscription meanwhile). Called on the writer thread only.
class IngestMatcher {
 public:
  virtual ~IngestMatcher() = default;
  // `subscriptions`: the tenant's live subscriptions as the transaction sees
  // them, at `generation`. Must refill subscription_ids,
  // subscription_ordered and delivery_ids (fresh ids) of every item and set
  // matched_generation = generation.
  virtual void Rematch(const std::string& tenant, int64_t generation,
                       const std::vector<Subscription>& subscriptions,
                       const std::vector<IngestItem*>& items) = 0;
};

// A tenant's live subscriptions and the generation they were read at. The
// generation is read first: the list may be newer than it, never older, so a
// cache labelled with it can only be stale in the safe direction (the next
// ingest transaction sees a newer generation and re-matches).
struct TenantSubscriptions {
  int64_t generation = 0;
  std::vector<Subscription> subscriptions;
};

// One page of events. `more`: another page may follow, starting after
// `resume_after` (with a type filter a page can be short, or even empty, while
// more follow: the scan per page is bounded, like DynamoDB's filtered queries).
struct EventPage {
  std::vector<Event> events;
  bool more = false;
  std::string resume_after;
};

// Rows a type-filtered list examines per page at most.
inline constexpr int kTypeFilterScanBudget = 10000;

struct ListOptions {
  std::string after_id;  // exclusive; empty = from the start
  int limit = 100;
  // Events only, without a type filter: in id order, where listing otherwise
  // follows commit order (PostgreSQL). For a time range, which is an id range
  // (replay); a client paging new events wants commit order.
  bool by_id = false;
};

// The store is split by what it holds; each narrow interface is all a
// component needs (the ingest writer events, the subscription cache
// subscriptions, the dispatcher and the inbox the delivery queue, the key
// cache keys). A backend implements them all as one Store.

// Events and their ingest (with the deliveries it creates).
class EventStore {
 public:
  virtual ~EventStore() = default;
  // --- ingest -------------------------------------------------------------
  // Writes all items in one transaction and makes it durable (fsync) before
  // returning Ok. Idempotency is decided inside the transaction, in order, so
  // two items with the same key in one batch resolve as first-wins. Items
  // older than `idempotency_window_ms` do not count as duplicates.
  // On error nothing of the batch is committed.
  // Which deliveries an item gets is decided against the subscription state
  // this transaction sees: for every tenant whose subscriptions generation
  // differs from the items' matched_generation, `matcher` re-matches them
  // (null: the items' matches are taken as they are; tests only). A
  // subscription write that committed before this transaction is applied;
  // one that commits after it finds these deliveries (and drops them, for a
  // delete).
  // Large fan-out: one call writes at most the store's
  // `fanout_rows_per_commit` unordered delivery rows (ordered ones always);
  // the items' other deliveries are recorded durably, in the same
  // transaction, as pending fan-out that MaterializeFanout writes later.
  virtual Status CommitIngest(std::vector<IngestItem*>& items, int64_t now_ms,
                              int64_t idempotency_window_ms, IngestMatcher* matcher) = 0;

  // What one MaterializeFanout call did.
  struct FanoutChunk {
    int64_t rows = 0;                           // deliveries written
    bool more = false;                          // pending fan-out is left: call again
    std::vector<std::string> subscription_ids;  // the subscriptions that got them
  };
  // Writes, in one durable transaction, up to `fanout_rows_per_commit` of the
  // oldest pending fan-out deliveries, skipping subscriptions deleted since
  // their event was ingested (the DELETE already dropped their unfinished
  // deliveries). Without `look` it answers "nothing" at once unless this
  // store deferred something since its last empty answer; with it, it looks
  // in the store (what a crash or another node left). Called by the ingest
  // writer between group commits, so other requests interleave.
  virtual Result<FanoutChunk> MaterializeFanout(int64_t /*now_ms*/, bool /*look*/) {
    return FanoutChunk{};
  }

  // --- events (always scoped to a tenant) ----------------------------------
  virtual Result<Event> GetEvent(const std::string& tenant, const std::string& id) = 0;
  // Oldest first (by id), at most opts.limit events. `type` empty = all
  // types; otherwise only that type, examining at most kTypeFilterScanBudget rows.
  virtual Result<EventPage> ListEvents(const std::string& tenant, const std::string& type,
                                       const ListOptions& opts) = 0;
  // Retention (see Purge). Four kinds of work, each done in chunks of at most
  // `chunk_rows` rows, every chunk its own short transaction (on SQLite the
  // write lock is released between chunks, so ingest commits interleave).
  struct PurgeLimits {
    int chunk_rows = 1000;  // the most rows of one chunk
    // When > 0, each kind's chunk size adapts (halved or doubled between
    // chunks, within 1..chunk_rows) so that a chunk takes about this long: on
    // SQLite a chunk holds the write lock that ingest commits wait for, and
    // rows differ ~10x in cost (an event against a delivery with attempts).
    // 0: every chunk is chunk_rows rows.
    std::chrono::microseconds chunk_target{0};
    // No chunk starts after this, except that every kind with work left gets
    // one chunk per pass (so none starves behind another): a pass lasts at
    // most until the deadline plus one round of four chunks.
    std::chrono::steady_clock::time_point deadline = std::chrono::steady_clock::time_point::max();
    // When in (0, 1): after a chunk that another write waited for (SQLite:
    // the write lock was handed on when the chunk released it), the purge
    // pauses so that it holds at most this share of the writer's time while
    // others write; with no one waiting it goes on at once. 0: no pause.
    double max_share = 0;
  };
  struct PurgeCounts {
    int64_t events = 0;       // events deleted
    int64_t deliveries = 0;   // finished deliveries deleted (with their attempts)
    int64_t orphans = 0;      // unfinished deliveries of purged events made dead
    int64_t idempotency = 0;  // idempotency records deleted
    int64_t chunks = 0;       // transactions committed
    bool complete = true;     // false: the deadline stopped the pass with work left
  };
  // One retention pass: deletes events received before `events_before_ms`,
  // finished deliveries last updated before it (with their attempts) and
  // idempotency records created before `idempotency_before_ms`; unfinished
  // deliveries whose event is gone become dead (updated_at = `now_ms`). A pass
  // cut short by the deadline (complete = false) is continued by the next
  // one; what a chunk committed stays committed when a later chunk fails.
  virtual Result<PurgeCounts> Purge(int64_t events_before_ms, int64_t idempotency_before_ms,
                                    int64_t now_ms, const PurgeLimits& limits) = 0;
};

// Subscriptions and the per-tenant generation that orders their changes
// against ingest (SPEC 5).
class SubscriptionStore {
 public:
  virtual ~SubscriptionStore() = default;
  // Every subscription write bumps its tenant's subscriptions generation in
  // the same transaction and returns the new one; ingest transactions compare
  // it with what their matches were decided at (see CommitIngest).
  // `max_per_tenant` > 0: the tenant's live subscriptions are counted in
  // the same transaction, after the tenant's generation row is locked (so
  // two creates racing on any nodes are counted one after the other); at
  // `max_per_tenant` already, LimitExceeded and nothing is written.
  virtual Result<int64_t> CreateSubscription(const Subscription& sub,
                                             int64_t max_per_tenant = 0) = 0;
  // NotFound for an unknown id or one of another tenant.
  virtual Result<Subscription> GetSubscription(const std::string& tenant,
                                               const std::string& id) = 0;
  virtual Result<std::vector<Subscription>> ListSubscriptions(const std::string& tenant,
                                                              const ListOptions& opts) = 0;
  // Read-modify-write under the row's lock: `change` gets the stored row and
  // edits it (it may refuse with a status, which is returned and nothing is
  // written); the edited row is stored and returned, with the new generation
  // in *generation. Concurrent changes never undo each other. The mutable
  // fields are url, event_types, filter, enabled, limits, description,
  // secrets and updated_at; id, tenant, kind and created_at are kept.
  virtual Result<Subscription> ModifySubscription(
      const std::string& tenant, const std::string& id,
      const std::function<Status(Subscription*)>& change, int64_t* generation) = 0;
  // Deletes it and drops its unfinished deliveries; returns the new generation.
  virtual Result<int64_t> DeleteSubscription(const std::string& tenant, const std::string& id,
                                             int64_t now_ms) = 0;
  // The subscriptions generation of every tenant that has one (a tenant
  // without a row is at generation 0).
  virtual Result<std::vector<std::pair<std::string, int64_t>>> SubscriptionGenerations() = 0;
  // One tenant's live subscriptions (see TenantSubscriptions).
  virtual Result<TenantSubscriptions> LoadTenantSubscriptions(const std::string& tenant) = 0;
};

// Deliveries: listing, leases (push), receives and settles (pull), attempt
// outcomes, replay and monitoring (SPEC 6). Every lease carries a token.
class DeliveryQueue {
 public:
  virtual ~DeliveryQueue() = default;
  // --- deliveries (SPEC 6) ----------------------------------------------------
  struct DeliveryFilter {
    std::string subscription_id, event_id, status;  // empty = any
  };
  virtual Result<std::vector<Delivery>> ListDeliveries(const std::string& tenant,
                                                       const DeliveryFilter& filter,
                                                       const ListOptions& opts) = 0;
  // With its attempt log.
  virtual Result<Delivery> GetDelivery(const std::string& tenant, const std::string& id) = 0;
  // Puts one delivery back to pending, due now, and returns it as the retry
  // left it (read in the retry's transaction; no attempt log): a read after
  // it could see a dispatcher's send already. NotFound as above; Conflict
  // when it is pending or in flight already.
  virtual Result<Delivery> RetryDelivery(const std::string& tenant, const std::string& id,
                                         int64_t now_ms) = 0;

  // Replay: dead deliveries of the subscription whose event id lies in
  // [min_event_id, max_event_id] go back to pending, due now. Returns how many.
  virtual Result<int64_t> RequeueDead(const std::string& tenant, const std::string& subscription_id,
                                      const std::string& min_event_id,
                                      const std::string& max_event_id, int64_t now_ms) = 0;
  // Replay "all": a pending delivery for each listed event that has none for
  // this subscription yet. `ordered`: they join their ordering key's sequence.
  // Returns how many.
  virtual Result<int64_t> CreateMissingDeliveries(const std::string& tenant,
                                                  const std::string& subscription_id,
                                                  const std::vector<Event>& events, bool ordered,
                                                  int64_t now_ms) = 0;

  // Work for the dispatcher: leases up to `max` due deliveries of one
  // subscription (pending/retrying due by now, or in_flight whose lease
  // expired), oldest first, marking them in_flight until `lease_until_ms`.
  struct Leased {
    Delivery delivery;
    Event event;
    // The lease token, fresh for every lease: the receipt a pull consumer
    // acks with, and what a webhook attempt's outcome must name to be
    // recorded (AttemptResult::lease_token, LeaseRef::token).
    std::string receipt;
  };
  // One lease held by this process (ReleaseLeases).
  struct LeaseRef {
    std::string delivery_id;
    std::string token;  // Leased::receipt
  };
  virtual Result<std::vector<Leased>> LeaseDue(const std::string& subscription_id, int64_t now_ms,
                                               int max, int64_t lease_until_ms) = 0;
  // Pull (SPEC 6): leases up to `max` due messages until visible_again_ms,
  // each with a fresh receipt, counting a receive; a message received
  // max_receives times already goes dead instead of being returned.
  virtual Result<std::vector<Leased>> Receive(const std::string& subscription_id, int64_t now_ms,
                                              int max, int64_t visible_again_ms,
                                              int max_receives) = 0;
  struct ReceiptResult {
    std::string receipt;
    std::string status;  // acked | nacked | expired | not_found
  };
  // ack=true: done (succeeded). ack=false: visible again at visible_at_ms.
  // A receipt whose lease ran out, or that was superseded by a later
  // receive, is "expired"; one of another subscription is "not_found".
  virtual Result<std::vector<ReceiptResult>> Settle(const std::string& subscription_id,
                                                    const std::vector<std::string>& receipts,
                                                    bool ack, int64_t visible_at_ms,
                                                    int64_t now_ms) = 0;

  // SQS ChangeMessageVisibility: a live receipt stays valid and its message
  // becomes visible again at visible_at_ms (its lease moves; at or before
  // now, the lease ends and the receipt with it). Statuses as Settle's, with
  // "changed" for a live receipt.
  virtual Result<std::vector<ReceiptResult>> ChangeVisibility(
      const std::string& subscription_id, const std::vector<std::string>& receipts,
      int64_t visible_at_ms, int64_t now_ms) {
    (void)subscription_id, (void)receipts, (void)visible_at_ms, (void)now_ms;
    return Status::Internal("not supported by this store");
  }
  // SQS GetQueueAttributes: a pull subscription's messages by visibility.
  struct QueueCount {
    int64_t visible = 0;      // due now (pending, retrying due, or a lease that expired)
    int64_t not_visible = 0;  // received, lease running
    int64_t delayed = 0;      // handed back with a delay that has not passed
  };
  virtual Status QueueCounts(const std::string& subscription_id, int64_t now_ms, QueueCount* out) {
    (void)subscription_id, (void)now_ms, (void)out;
    return Status::Internal("not supported by this store");
  }

  // The outcome of one attempt: the attempt is logged and the delivery moves
  // to `status` (succeeded, retrying with next_attempt_at_ms, or dead).
  struct AttemptResult {
    std::string delivery_id;
    DeliveryAttempt attempt;
    std::string status;
    int64_t next_attempt_at_ms = 0;
    // The lease the attempt was made under (Leased::receipt); when set, the
    // outcome is written only if the delivery is still in flight under that
    // lease: after it expired and another worker (node) leased the delivery
    // again, the newer lease owns it and this outcome is dropped.
    std::string lease_token;
  };
  // Writes many outcomes in one transaction.
  virtual Status RecordAttempts(const std::vector<AttemptResult>& results, int64_t now_ms) = 0;
  // Subscriptions with deliveries due at or before `now_ms` (ids).
  virtual Result<std::vector<std::string>> SubscriptionsWithDueWork(int64_t now_ms) = 0;
  // Returns leased (in_flight) deliveries to their previous state, due now
  // (shutdown, a probe given back), each only while it is still in flight
  // under that lease (another worker's newer lease is left alone).
  virtual Status ReleaseLeases(const std::vector<LeaseRef>& leases, int64_t now_ms) = 0;

  // --- monitoring ------------------------------------------------------------
  // Deliveries per state (every state listed, zeros included), and the
  // next_attempt_at of the most overdue pending/retrying delivery (0: none due).
  virtual Status DeliveryStats(int64_t now_ms,
                               std::vector<std::pair<std::string, int64_t>>* by_state,
                               int64_t* oldest_due_ms) = 0;
  // The same for one tenant's deliveries (the dashboard).
  virtual Status TenantDeliveryStats(const std::string& tenant, int64_t now_ms,
                                     std::vector<std::pair<std::string, int64_t>>* by_state,
                                     int64_t* oldest_due_ms) = 0;

  // --- other nodes -------------------------------------------------------------
  // `fn(subscription_ids)` is called (from a store thread) when another node
  // (or this one) committed deliveries, so waiting workers look now instead of
  // at their next poll. An empty list means "any subscription". Backends
  // shared by several processes implement it (PostgreSQL: LISTEN/NOTIFY);
  // the embedded store has one process and never calls it. Set before use.
  virtual void SetWorkListener(std::function<void(const std::vector<std::string>&)> fn) {
    (void)fn;
  }
  // Stops calling the listener (joins its thread); after this returns it is
  // never called again. Idempotent. Call before what the listener uses dies.
  virtual void StopWorkListener() {}
};

// API keys (SPEC 3).
class KeyStore {
 public:
  virtual ~KeyStore() = default;
  virtual Status CreateKey(const ApiKey& key) = 0;
  // NotFound when no key has this hash. Revoked keys are returned (revoked_at set).
  virtual Result<ApiKey> FindKeyByHash(const std::string& hash) = 0;
  // `tenant` empty = every tenant. Admin keys are not listed.
  virtual Result<std::vector<ApiKey>> ListKeys(const std::string& tenant,
                                               const ListOptions& opts) = 0;
  // Marks a key revoked and returns its hash. `tenant` empty = any tenant
  // (admin). NotFound when the id is unknown, of another tenant, or already revoked.
  virtual Result<std::string> RevokeKey(const std::string& tenant, const std::string& id,
                                        int64_t now_ms) = 0;
  // Hashes of keys revoked at or after `since_ms` (for cache invalidation),
  // both times on the caller's clock; a store whose clock is the database's
  // looks back now_ms - since_ms from its own now.
  virtual Result<std::vector<std::string>> RevokedKeyHashesSince(int64_t since_ms,
                                                                 int64_t now_ms) = 0;
  // True when an admin key row exists.
  virtual Result<bool> HasAdminKey() = 0;
};

class Store : public EventStore, public SubscriptionStore, public DeliveryQueue, public KeyStore {
 public:
  ~Store() override = default;

  // Cheap liveness check of the storage. Ok or Unavailable.
  virtual Status Ping() = 0;
};

struct SqliteOptions {
  std::string path;          // the database file
  int read_connections = 4;  // pool of readers (WAL allows them beside the writer)
  // Pages. The commit that crosses it checkpoints, on the writer thread: a
  // checkpointer thread beside the writer was measured and removed
  // (docs/benchmarks.md, "Durable ingest").
  int wal_autocheckpoint = 100;
  // Unordered delivery rows one ingest transaction writes at most, and one
  // MaterializeFanout chunk (see EventStore::CommitIngest). 1,000 on SQLite:
  // half the chunk halved the other tenants' p99 during a 500,000-row
  // fan-out, 500 did not lower it further and made the fan-out slower
  // (docs/benchmarks.md, "Fan-out fairness").
  int64_t fanout_rows_per_commit = 1000;
};

// Opens (creating if needed) the database and applies pending migrations.
Result<std::unique_ptr<Store>> OpenSqlite(const SqliteOptions& options);

struct PostgresOptions {
  std::string url;    // libpq connection string or postgresql:// URL
  int pool_size = 8;  // connections for API reads and writes
  int connect_timeout_s = 3;
  bool listen = true;  // run the LISTEN connection (SetWorkListener)
  // Times that order work between nodes (due times, lease expiries, the
  // "now" a lease or settle is judged at, revocation stamps) come from the
  // database server's clock, not the calling node's: the now_ms arguments
  // only give durations (a lease of lease_until - now). False: the callers'
  // now_ms are used as given (tests that inject the clock).
  bool database_clock = true;
  // As SqliteOptions::fanout_rows_per_commit.
  int64_t fanout_rows_per_commit = 2000;
  // This node across restarts (serve: host name and data directory), or
  // empty. Push leases carry it; on open, the in-flight leases carrying it
  // are returned (its previous process died holding them): they count
  // against max_in_flight for every node until they run out otherwise.
  std::string node_id;
};

// Connects, applies pending migrations under an advisory lock (several nodes
// may start at once) and returns the store. Unavailable when the server
// cannot be reached.
Result<std::unique_ptr<Store>> OpenPostgres(const PostgresOptions& options);

}  // namespace triggers::store
