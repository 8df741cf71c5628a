// The PostgreSQL store: ingest (idempotency, the generation check, the bulk
// insert) and reading events.
#include "store/postgres/pg_internal.h"

namespace triggers::store::postgres {

// --- ingest ----------------------------------------------------------------

Status PgStore::CommitIngest(std::vector<IngestItem*>& items, int64_t now_ms, int64_t window_ms,
                             IngestMatcher* matcher) {
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
  for (auto* it : items) saved.push_back({it->event.id, it->event.type, it->event.received_at_ms});
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

Result<Event> PgStore::GetEvent(const std::string& tenant, const std::string& id) {
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
Result<EventPage> PgStore::ListEvents(const std::string& tenant, const std::string& type,
                                      const ListOptions& opts) {
  CONN_OR_RETURN(c);
  EventPage page;
  if (type.empty() && opts.by_id) {
    static const char kListById[] =
        "SELECT " EVENT_COLS " FROM events WHERE tenant=$1 AND id>$2 ORDER BY id LIMIT $3";
    ROWS_OR_RETURN(r,
                   c->Run(kListById, Params().Add(tenant).Add(opts.after_id).Add(opts.limit + 1)));
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
  static const char kScan[] =
      "SELECT id, type=$4 FROM events WHERE tenant=$1 AND seq>" AFTER_SEQ " ORDER BY seq LIMIT $3";
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

// Idempotency, decided in the ingest transaction in item order. The claim
// is an upsert on (tenant, key): a concurrent claim on another node waits
// for this transaction and then sees the row, so exactly one event wins.
Status PgStore::DecideIdempotency(pg::Conn& c, std::vector<IngestItem*>& items, int64_t now_ms,
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
    ROWS_OR_RETURN(
        re,
        c.Run(
            kIdemRepoint,
            Params().Add(ev.tenant).Add(it->idempotency_key).Add(hash_hex).Add(ev.id).Add(now_ms)));
    batch.emplace(ev.id, it);
  }
  return Status::Ok();
}

// Inserts the batch if every tenant's generation is the one its items were
// matched at; otherwise re-matches the stale tenants' items against the
// subscriptions this transaction reads (under the commit-order lock, which
// every subscription write takes too: nothing changes until the commit)
// and inserts then.
Status PgStore::InsertMatched(pg::Conn& c, std::vector<IngestItem*>& items, int64_t now_ms,
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
  if (again.value() != 0) return Status::Unavailable("store: subscriptions changed under the lock");
  return Status::Ok();
}

// Inserts every still-pending item with its deliveries in one statement,
// unless a generation is stale: returns the number of stale tenants (0: inserted).
Result<int64_t> PgStore::InsertBulk(pg::Conn& c, std::vector<IngestItem*>& items, int64_t now_ms,
                                    bool check_generations) {
  ArrayBuilder id, tenant, type, source, subject, okey, data, received, resources;
  ArrayBuilder did, dtenant, devent, dsub, dnat, dkey, gtenant, ggen;
  // Every distinct (tenant, generation) the items were matched at: items of
  // one tenant may have been matched at different generations.
  std::vector<std::pair<std::string_view, int64_t>> gseen;
  std::unordered_set<std::string_view> subs;
  std::string payload;
  FanoutBudget budget(opts_.fanout_rows_per_commit);
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
    resources.Add(ev.resources);
    const std::pair<std::string_view, int64_t> tg{ev.tenant, it->matched_generation};
    if (check_generations && std::find(gseen.begin(), gseen.end(), tg) == gseen.end()) {
      gseen.push_back(tg);
      gtenant.Add(std::string_view(ev.tenant));
      ggen.Add(it->matched_generation);
    }
    const bool deferred = budget.Defer(*it);  // then only the ordered ones now
    for (size_t k = 0; k < it->subscription_ids.size() && k < it->delivery_ids.size(); ++k) {
      const bool ordered = k < it->subscription_ordered.size() && it->subscription_ordered[k];
      if (deferred && !ordered) continue;
      did.Add(std::string_view(it->delivery_ids[k]));
      dtenant.Add(std::string_view(ev.tenant));
      devent.Add(std::string_view(ev.id));
      dsub.Add(std::string_view(it->subscription_ids[k]));
      dnat.Add(ev.received_at_ms);
      if (ordered) {
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
  ArrayBuilder ftenant, fevents, fsubs, freceived;
  for (const DeferredFanout& d : budget.deferred()) {
    ftenant.Add(std::string_view(d.tenant));
    fevents.Add(std::string_view(JoinIds(d.event_ids)));
    fsubs.Add(std::string_view(JoinIds(d.subscription_ids)));
    freceived.Add(d.received_at_ms);
  }
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
                                  .Own(ggen.Finish())
                                  .Own(ftenant.Finish())
                                  .Own(fevents.Finish())
                                  .Own(fsubs.Finish())
                                  .Own(freceived.Finish())
                                  .Own(resources.Finish()));
  if (!r.ok()) return r.status();
  if (r.value().size() != 1) return Status::Unavailable("store: ingest returned no row");
  if (int64_t stale = r.value().Int(0, 0); stale != 0) return stale;
  for (IngestItem* it : items) {
    if (it->outcome == IngestItem::Outcome::kPending) it->outcome = IngestItem::Outcome::kCreated;
  }
  if (!budget.deferred().empty()) fanout_maybe_.store(true, std::memory_order_relaxed);
  return int64_t{0};
}

}  // namespace triggers::store::postgres
