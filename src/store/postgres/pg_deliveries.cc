// The PostgreSQL store: the delivery queue (listing, leases, receives and
// settles, attempt outcomes, replay, statistics) and the retention purge.
#include "store/postgres/pg_internal.h"

namespace triggers::store::postgres {

// Every chunk is one statement in its own transaction, committed without
// waiting for the WAL flush (a purge lost in a crash is simply done again).
// Nodes purging at once may pick the same rows: the outer conditions are
// re-checked on the current row version, so a row changed meanwhile (a
// retried delivery) is left alone.
Result<PgStore::PurgeCounts> PgStore::Purge(int64_t events_before_ms, int64_t idem_before_ms,
                                            int64_t now_ms, const PurgeLimits& limits) {
  CONN_OR_RETURN(c);
  // Keeps the count deltas few on a node that nobody scrapes.
  if (Status f = FoldDeliveryCounts(*c); !f.ok()) return f;
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
  static const std::string kOrphans = "UPDATE deliveries SET " + rules::SetDeadOrphan("$1") +
                                      " WHERE id IN (SELECT id FROM deliveries d WHERE " +
                                      rules::IsOrphan("d") + " LIMIT $2) AND " +
                                      rules::IsOrphan("deliveries");
  static const char kIdem[] =
      "DELETE FROM idempotency WHERE (tenant,key) IN (SELECT tenant,key FROM idempotency WHERE "
      "created_at<$1 LIMIT $2) AND created_at<$1";
  return RunPurgeChunks(limits,
                        {[&](int limit) { return chunk(kEvents, events_before_ms, limit); },
                         [&](int limit) { return chunk(kFinished, events_before_ms, limit); },
                         [&](int limit) { return chunk(kOrphans.c_str(), now_ms, limit); },
                         [&](int limit) { return chunk(kIdem, idem_before_ms, limit); }});
}

// --- deliveries ------------------------------------------------------------

Result<std::vector<Delivery>> PgStore::ListDeliveries(const std::string& tenant,
                                                      const DeliveryFilter& f,
                                                      const ListOptions& opts) {
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

Result<Delivery> PgStore::GetDelivery(const std::string& tenant, const std::string& id) {
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
Result<Delivery> PgStore::RetryDelivery(const std::string& tenant, const std::string& id,
                                        int64_t now_ms) {
  CONN_OR_RETURN(c);
  Delivery out;
  Status done = OrderedTxn(*c, [&]() -> Status {
    static const char kGet[] =
        "SELECT d.status, s.id IS NOT NULL AND s.deleted_at IS NULL FROM deliveries d LEFT JOIN "
        "subscriptions s ON s.id=d.subscription_id WHERE d.id=$1 AND d.tenant=$2 FOR UPDATE OF d";
    ROWS_OR_RETURN(r, c->Run(kGet, Params().Add(id).Add(tenant)));
    if (r.size() == 0) return Status::NotFound("delivery not found");
    if (Status s = rules::CheckRetry(r.Text(0, 0), r.Bool(0, 1)); !s.ok()) return s;
    static const std::string kRetry = "UPDATE deliveries SET " + rules::SetRequeued(NOW_AT("$1")) +
                                      " WHERE id=$2 RETURNING " DELIVERY_COLS;
    auto u = c->Run(kRetry.c_str(), Params().AddOrNull(opts_.database_clock, now_ms).Add(id));
    if (!u.ok()) return u.status();
    if (u->size() != 1) return Status::Internal("retry delivery: the row was not updated");
    out = ReadDelivery(u.value(), 0);
    return Status::Ok();
  });
  if (!done.ok()) return done;
  return out;
}

Result<int64_t> PgStore::RequeueDead(const std::string& tenant, const std::string& sub_id,
                                     const std::string& min_id, const std::string& max_id,
                                     int64_t now_ms) {
  CONN_OR_RETURN(c);
  // Only for a live subscription, under the commit-order lock (see RetryDelivery).
  static const std::string kRequeue =
      "UPDATE deliveries SET " + rules::SetRequeued(NOW_AT("$1")) +
      " WHERE tenant=$2 AND subscription_id=$3 AND status='dead' AND event_id>=$4 AND "
      "event_id<=$5 AND EXISTS (SELECT 1 FROM subscriptions s WHERE s.id=$3 AND s.tenant=$2 "
      "AND s.deleted_at IS NULL)";
  int64_t requeued = 0;
  Status st = OrderedTxn(*c, [&]() -> Status {
    ROWS_OR_RETURN(r, c->Run(kRequeue.c_str(), Params()
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

Result<int64_t> PgStore::CreateMissingDeliveries(const std::string& tenant,
                                                 const std::string& sub_id,
                                                 const std::vector<Event>& events, bool ordered,
                                                 int64_t now_ms) {
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

Result<std::vector<PgStore::Leased>> PgStore::LeaseDue(const std::string& sub_id, int64_t now_ms,
                                                       int max, int64_t lease_until_ms) {
  return Lease(sub_id, now_ms, max, lease_until_ms, rules::PushLease(), true);
}

Result<std::vector<PgStore::Leased>> PgStore::Receive(const std::string& sub_id, int64_t now_ms,
                                                      int max, int64_t visible_again_ms,
                                                      int max_receives) {
  return Lease(sub_id, now_ms, max, visible_again_ms, rules::PullLease(max_receives), false);
}

Result<std::vector<PgStore::ReceiptResult>> PgStore::Settle(
    const std::string& sub_id, const std::vector<std::string>& receipts, bool ack,
    int64_t visible_at_ms, int64_t now_ms) {
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
      static const std::string kAck = "UPDATE deliveries SET " + rules::SetAcked(NOW_AT("$3")) +
                                      " WHERE id=$1 AND subscription_id=$2 AND " +
                                      rules::LiveUnder("$4", NOW_AT("$3"));
      static const std::string kNack =
          "UPDATE deliveries SET " + rules::SetNacked(NOW_AT("$3") "+$5::bigint", NOW_AT("$3")) +
          " WHERE id=$1 AND subscription_id=$2 AND " + rules::LiveUnder("$4", NOW_AT("$3"));
      Params p;
      p.Add(id).Add(sub_id);
      AddNow(p, now_ms);
      p.Add(receipt);
      if (!ack) p.Add(visible_at_ms - now_ms);  // a delay from now
      int64_t changed = 0;
      if (dot != std::string::npos) {
        ROWS_OR_RETURN(u, c->Run(ack ? kAck.c_str() : kNack.c_str(), p));
        changed = u.Affected();
      }
      bool exists = changed > 0;
      if (!exists) {
        static const char kExists[] = "SELECT 1 FROM deliveries WHERE id=$1 AND subscription_id=$2";
        ROWS_OR_RETURN(e, c->Run(kExists, Params().Add(id).Add(sub_id)));
        exists = e.size() > 0;
      }
      rr.status = rules::SettleAnswer(ack, changed > 0, exists);
      out.push_back(std::move(rr));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  if (!ack) Notify(*c, sub_id);
  return out;
}

// The circuit breaker shared by the nodes (the rules of
// delivery::CircuitBreaker with the thresholds of store/delivery_rules.h:
// 10 consecutive failures open it for 5 s, a failed probe re-opens it for
// twice as long, at most 10 min; any success closes it; a new row's
// cool-down is migration 0007's column default, the same 5 s). Per subscription, the recorded
// outcomes of one batch: `ok` when one succeeded, and the failures after the
// last success. A success on a clean row writes nothing (the common case);
// a subscription without a row (never leased through triggers_push_allowance)
// has no shared breaker yet.
#define BRK_NOW NOW_AT("$9")
static const std::string kBreaker =
    std::string(
        "b AS (SELECT sub, bool_or(status='succeeded') AS ok, count(*) FILTER (WHERE "
        "status<>'succeeded' AND ord>coalesce(last_ok,0)) AS fails FROM (SELECT m.sub, m.status, "
        "m.ord, max(m.ord) FILTER (WHERE m.status='succeeded') OVER (PARTITION BY m.sub) AS "
        "last_ok "
        "FROM mine m) x GROUP BY sub ORDER BY sub), "
        "brk AS (UPDATE subscription_limits l SET (failures,open_until,cooldown_ms,probe_until)="
        "(SELECT CASE WHEN t.opens THEN 0 WHEN t.o0=0 THEN t.f0+b.fails ELSE t.f0 END, CASE WHEN "
        "t.opens THEN " BRK_NOW "+t.c0 ELSE t.o0 END, CASE WHEN t.opens THEN least(t.c0*2,") +
    std::to_string(rules::kBreakerMaxCooldownMs) +
    ") ELSE t.c0 END, CASE WHEN "
    "t.opens THEN 0 ELSE t.p0 END FROM (SELECT s0.*, b.fails>0 AND ((s0.o0=0 AND "
    "s0.f0+b.fails>=" +
    std::to_string(rules::kBreakerFailureThreshold) +
    ") OR (s0.o0>0 AND s0.p0>0)) AS opens FROM (SELECT CASE WHEN b.ok THEN 0 "
    "ELSE l.failures END AS f0, CASE WHEN b.ok THEN 0 ELSE l.open_until END AS o0, CASE WHEN "
    "b.ok THEN " +
    std::to_string(rules::kBreakerBaseCooldownMs) +
    " ELSE l.cooldown_ms END AS c0, CASE WHEN b.ok THEN 0 ELSE l.probe_until END "
    "AS p0) s0) t) FROM b WHERE l.subscription_id=b.sub AND (b.fails>0 OR l.failures<>0 OR "
    "l.open_until<>0)), ";
#undef BRK_NOW

Status PgStore::RecordAttempts(const std::vector<AttemptResult>& results, int64_t now_ms) {
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
  DISPATCH_CONN_OR_RETURN(c);
  // Rows whose lease is no longer ours are left out of both the attempt
  // log and the update (the rows are locked first, so the check holds). The
  // breakers of the subscriptions move in the same statement (kBreaker).
  static const std::string kRecord =
      std::string("WITH r AS (SELECT *, " NO_FLUSH " AS nf FROM unnest($1::text[],$2::text[],$3::bigint[],$4::bigint[],"
      "$5::integer[],$6::bigint[],$7::text[],$8::text[],$10::text[]) WITH ORDINALITY AS "
      "r(id,status,nat,at,code,lat,err,snip,lease,ord)), "
      "mine AS (SELECT r.*, d.attempts, d.subscription_id AS sub FROM r JOIN deliveries d ON "
      "d.id=r.id WHERE ") +
      rules::OutcomeAdmitted("r.lease", "d.") + " FOR UPDATE OF d), " + kBreaker +
      "a AS (INSERT INTO delivery_attempts(delivery_id,n,at,status_code,latency_ms,error,"
      "response_snippet) SELECT id,attempts+1,at,code,lat,err,snip FROM mine "
      "ON CONFLICT(delivery_id,n) DO UPDATE SET at=EXCLUDED.at,"
      "status_code=EXCLUDED.status_code,latency_ms=EXCLUDED.latency_ms,error=EXCLUDED.error,"
      "response_snippet=EXCLUDED.response_snippet) "
      "UPDATE deliveries d SET status=m.status, attempts=m.attempts+1, next_attempt_at=CASE WHEN "
      "m.nat IS NULL THEN NULL ELSE " NOW_AT("$9") "+m.nat END, last_error=m.err, "
      "last_status_code=m.code, updated_at=" NOW_AT("$9") " FROM mine m WHERE d.id=m.id";
  // Without its own fsync (NO_FLUSH, in the statement: no BEGIN and COMMIT
  // round trips): losing the last of these in a power cut means a delivery
  // is attempted again, which at-least-once allows.
  auto r = c->Run(kRecord.c_str(), Params()
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
}

Result<std::vector<std::string>> PgStore::SubscriptionsWithDueWork(int64_t now_ms) {
  DISPATCH_CONN_OR_RETURN(c);
  // A loose index scan over deliveries_due: one probe per subscription
  // rather than a walk over every due row. The due test reads the first
  // entry of the subscription in deliveries_due: as an EXISTS the planner
  // expected most rows to match and walked deliveries_sub past every
  // finished delivery of the subscription (7 ms at 17,000 during a drain).
  static const char kDue[] =
      "WITH RECURSIVE s(id) AS ("
      " (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL"
      "  ORDER BY subscription_id LIMIT 1)"
      " UNION ALL"
      " SELECT (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL"
      "  AND subscription_id>s.id ORDER BY subscription_id LIMIT 1) FROM s WHERE s.id IS NOT "
      "NULL) "
      "SELECT s.id FROM s WHERE s.id IS NOT NULL AND (SELECT d.next_attempt_at FROM deliveries d "
      "WHERE d.subscription_id=s.id AND d.next_attempt_at IS NOT NULL ORDER BY d.next_attempt_at "
      "LIMIT 1)<=" NOW_AT("$1");
  ROWS_OR_RETURN(r, c->Run(kDue, Params().AddOrNull(opts_.database_clock, now_ms)));
  std::vector<std::string> out;
  for (int i = 0; i < r.size(); ++i) out.push_back(r.Text(i, 0));
  return out;
}

Status PgStore::ReleaseLeases(const std::vector<LeaseRef>& leases, int64_t now_ms) {
  if (leases.empty()) return Status::Ok();
  DISPATCH_CONN_OR_RETURN(c);
  ArrayBuilder ids, tokens;
  for (const auto& l : leases) {
    ids.Add(std::string_view(l.delivery_id));
    tokens.Add(std::string_view(l.token));
  }
  static const std::string kRelease =
      "UPDATE deliveries d SET " + rules::SetReleased(NOW_AT("$1")) +
      " FROM unnest($2::text[],$3::text[]) AS l(id,token) WHERE d.id=l.id AND " +
      rules::HeldUnder("l.token", "d.");
  auto r = c->Run(
      kRelease.c_str(),
      Params().AddOrNull(opts_.database_clock, now_ms).Own(ids.Finish()).Own(tokens.Finish()));
  return r.ok() ? Status::Ok() : r.status();
}

Status PgStore::DeliveryStats(int64_t now_ms,
                              std::vector<std::pair<std::string, int64_t>>* by_state,
                              int64_t* oldest_due_ms) {
  return Stats("", now_ms, by_state, oldest_due_ms);
}

Status PgStore::TenantDeliveryStats(const std::string& tenant, int64_t now_ms,
                                    std::vector<std::pair<std::string, int64_t>>* by_state,
                                    int64_t* oldest_due_ms) {
  return Stats(tenant, now_ms, by_state, oldest_due_ms);
}

// `tenant` empty: every tenant.
Status PgStore::Stats(const std::string& tenant, int64_t now_ms,
                      std::vector<std::pair<std::string, int64_t>>* by_state,
                      int64_t* oldest_due_ms) {
  CONN_OR_RETURN(c);
  for (const char* st : {kDeliveryPending, kDeliveryInFlight, kDeliverySucceeded, kDeliveryRetrying,
                         kDeliveryDead}) {
    by_state->emplace_back(st, 0);
  }
  // Two statements, not one with ($1='' OR tenant=$1): a generic plan of
  // that would scan every tenant's deliveries for one tenant's stats.
  // Maintained counts (migration 0003): the settled counts plus the deltas
  // not folded in yet, read in one snapshot.
  if (Status f = FoldDeliveryCounts(*c); !f.ok()) return f;
  static const char kStats[] =
      "SELECT status, sum(n)::bigint FROM (SELECT status, n FROM delivery_counts UNION ALL "
      "SELECT status, n FROM delivery_count_deltas) c GROUP BY status";
  static const char kTenantStats[] =
      "SELECT status, sum(n)::bigint FROM (SELECT status, n FROM delivery_counts WHERE tenant=$1 "
      "UNION ALL SELECT status, n FROM delivery_count_deltas WHERE tenant=$1) c GROUP BY status";
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
  // the age from their own now. Per subscription, the first waiting one in
  // index order (a loose scan of deliveries_due), not a walk over every row.
#define FIRST_WAITING                                                              \
  "(SELECT next_attempt_at FROM deliveries d WHERE d.subscription_id=s.id AND "    \
  "d.next_attempt_at IS NOT NULL AND d.status IN ('pending','retrying') ORDER BY " \
  "d.next_attempt_at LIMIT 1)"
  static const char kOldest[] =
      "WITH RECURSIVE s(id) AS ("
      " (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL"
      "  ORDER BY subscription_id LIMIT 1)"
      " UNION ALL"
      " SELECT (SELECT subscription_id FROM deliveries WHERE next_attempt_at IS NOT NULL"
      "  AND subscription_id>s.id ORDER BY subscription_id LIMIT 1) FROM s WHERE s.id IS NOT "
      "NULL), m AS (SELECT min(" FIRST_WAITING
      ") AS at FROM s WHERE s.id IS NOT NULL) "
      "SELECT " NOW_AT("$1") "-m.at FROM m WHERE m.at<=" NOW_AT("$1");
  static const char kTenantOldest[] =
      "WITH s(id) AS (SELECT id FROM subscriptions WHERE tenant=$2), m AS (SELECT "
      "min(" FIRST_WAITING
      ") AS at FROM s) SELECT " NOW_AT("$1") "-m.at FROM m WHERE m.at<=" NOW_AT("$1");
#undef FIRST_WAITING
  Params op;
  AddNow(op, now_ms);
  if (!tenant.empty()) op.Add(tenant);
  ROWS_OR_RETURN(o, c->Run(tenant.empty() ? kOldest : kTenantOldest, op));
  *oldest_due_ms = o.size() == 0 || o.IsNull(0, 0) ? 0 : now_ms - o.Int(0, 0);
  return Status::Ok();
}

// Moves the delta rows the count triggers appended into delivery_counts
// (one row per tenant and state). One fold at a time (a node that finds
// another folding skips: readers sum the deltas anyway); a delta row is
// deleted, and so added, once.
Status PgStore::FoldDeliveryCounts(pg::Conn& c) {
  static const char kFold[] =
      "WITH moved AS (DELETE FROM delivery_count_deltas WHERE "
      "pg_try_advisory_xact_lock(hashtext('triggers_delivery_counts')) RETURNING tenant, status, "
      "n) "
      "INSERT INTO delivery_counts(tenant, status, n) SELECT tenant, status, sum(n) FROM moved "
      "GROUP BY tenant, status ORDER BY tenant, status ON CONFLICT(tenant, status) DO UPDATE SET "
      "n=delivery_counts.n+EXCLUDED.n";
  return c.Txn(true, [&]() -> Status {
    auto r = c.Run(kFold, Params());
    return r.ok() ? Status::Ok() : r.status();
  });
}

// Tells every node (this one included) that a subscription has work now.
void PgStore::Notify(pg::Conn& c, const std::string& sub_id) {
  static const char kNotify[] = "SELECT pg_notify('triggers_work',$1)";
  (void)c.Run(kNotify, Params().Add(sub_id));
}

// The lease statement. Candidates are locked with SKIP LOCKED, so two nodes
// never take the same row; ordered deliveries (with an ordering_key) are
// taken only when no earlier unfinished delivery of the same key exists.
// With max_receives > 0 (pull) each gets a fresh receipt and counts a
// receive; one already received max_receives times goes dead instead
// (store/delivery_rules.h).
//
// `limited` (push): the subscription's limits hold across every node on the
// database (docs/design.md, "Limits across nodes"). triggers_push_allowance
// (migration 0007) takes the subscription's limiter lock, which serialises
// the leases of one subscription until commit, and says how many it may
// take: max_in_flight less the unexpired leases (counted in a snapshot taken
// after the lock), the breaker, the tokens. The same statement spends a token
// per delivery taken and marks the half-open probe as out: one round trip.
static std::string LeaseSql(bool limited) {
  // A push lease commits without waiting for its WAL flush (NO_FLUSH): a
  // lease lost in a crash of the database leaves the delivery due, and it
  // is leased and sent again, which at-least-once allows. A pull receive
  // hands its receipt to a client and keeps the flush.
  std::string sql = limited
                        ? "WITH allow AS (SELECT triggers_push_allowance($1,$3::integer," NOW_AT(
                              "$2") ") AS n, " NO_FLUSH " AS nf), c0 AS ("
                        : "WITH c AS (";
  sql +=
      "SELECT d.id AS did, d.seq AS dseq, d.next_attempt_at AS dnat, "
      "d.attempts AS datt, e.id AS e_id, e.tenant AS e_tenant, e.type AS e_type, "
      "e.source AS e_source, e.subject AS e_subject, e.ordering_key AS e_okey, e.data AS e_data, "
      "e.received_at AS e_received, e.resources AS e_resources FROM deliveries d JOIN events e ON e.tenant=d.tenant AND "
      "e.id=d.event_id WHERE d.subscription_id=$1 AND d.next_attempt_at IS NOT NULL AND "
      "d.next_attempt_at<=" NOW_AT("$2") " AND " +
      rules::Admissible("d") + " ORDER BY " + rules::CandidateOrder("d") +
      " LIMIT $3 FOR UPDATE OF d SKIP LOCKED), " +
      // The allowance trims what was locked (unlocked at commit): a LIMIT
      // the planner cannot see would make it plan for 10% of the backlog
      // (a sequential scan of deliveries per lease).
      (limited ? "c AS (SELECT * FROM c0 ORDER BY dnat, dseq LIMIT (SELECT n FROM allow)), " : "") +
      "dead AS (UPDATE deliveries d SET " +
      rules::SetDeadMaxReceives(NOW_AT("$2")) + " FROM c WHERE d.id=c.did AND " +
      rules::ReceivesExhausted("c.datt", "$5") +
      " RETURNING d.id), "
      "up AS (UPDATE deliveries d SET status='in_flight', next_attempt_at=" NOW_AT(
          "$2") "+$4::bigint, updated_at=" NOW_AT("$2") ", attempts=d.attempts+$6::bigint, receipt="
                                                        "d.id||'.'||left(replace(gen_random_uuid()::"
                                                        "text,'-',''),12)||left(replace(gen_random_"
                                                        "uuid()::text,'-',''),12)" +
      std::string(limited ? ", lease_node=$7" : "") + " FROM c WHERE d.id=c.did AND NOT " +
      rules::ReceivesExhausted("c.datt", "$5") +
      " RETURNING d.id,d.tenant,d.event_id,d.subscription_id,d.status,d.attempts,"
      "d.next_attempt_at,d.last_error,d.last_status_code,d.created_at,d.updated_at,d.receipt) ";
  if (limited) {
    // A token per delivery taken (the interval in whole µs, as the
    // allowance computes it); the probe is out until its lease ends.
#define NOW_US "(" NOW_AT("$2") "*1000)"
    sql +=
        ", lim AS (INSERT INTO subscription_limits AS l(subscription_id,tat_us) SELECT $1," NOW_US
        "+CASE WHEN s.rate_limit_per_s>0 THEN k.n*ceil(1e6/s.rate_limit_per_s)::bigint ELSE 0 END "
        "FROM (SELECT count(*) AS n FROM up) k JOIN subscriptions s ON s.id=$1 WHERE k.n>0 "
        "ON CONFLICT(subscription_id) DO UPDATE SET tat_us=CASE WHEN EXCLUDED.tat_us>" NOW_US
        " THEN greatest(l.tat_us," NOW_US ")+EXCLUDED.tat_us-" NOW_US
        " ELSE l.tat_us END, probe_until=CASE WHEN l.open_until>0 THEN " NOW_AT(
            "$2") "+$4::bigint ELSE l.probe_until END) ";
#undef NOW_US
  }
  sql +=
      "SELECT up.*, c.e_id, c.e_tenant, c.e_type, c.e_source, c.e_subject, c.e_okey, c.e_data, "
      "c.e_received, c.e_resources FROM up JOIN c ON c.did=up.id ORDER BY c.dnat, c.dseq";
  return sql;
}

Result<std::vector<PgStore::Leased>> PgStore::Lease(const std::string& sub_id, int64_t now_ms,
                                                    int max, int64_t lease_until_ms,
                                                    const rules::LeasePolicy& policy,
                                                    bool limited) {
  POOL_CONN_OR_RETURN(limited ? dispatch_pool_ : pool_, c);  // push: the dispatcher's
  static const std::string kLease = LeaseSql(false);
  static const std::string kLimitedLease = LeaseSql(true);
  Params p;
  p.Add(sub_id)
      .AddOrNull(opts_.database_clock, now_ms)
      .Add(max)
      .Add(lease_until_ms - now_ms)  // the lease's length
      .Add(policy.max_receives)
      .Add(policy.receive_increment);
  if (limited && opts_.node_id.empty()) p.Null();
  if (limited && !opts_.node_id.empty()) p.Add(opts_.node_id);
  ROWS_OR_RETURN(r, c->Run(limited ? kLimitedLease.c_str() : kLease.c_str(), p));
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

}  // namespace triggers::store::postgres
