// The PostgreSQL store: subscriptions (with the per-tenant generation every
// write bumps, under the commit-order lock) and API keys.
#include "store/postgres/pg_internal.h"

namespace triggers::store::postgres {

// --- subscriptions ---------------------------------------------------------

Result<int64_t> PgStore::CreateSubscription(const Subscription& s, int64_t max_per_tenant) {
  CONN_OR_RETURN(c);
  static const char kInsert[] =
      "INSERT INTO subscriptions(" SUB_COLS
      ") VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18)";
  static const char kCount[] =
      "SELECT count(*) FROM subscriptions WHERE tenant=$1 AND deleted_at IS NULL";
  int64_t gen = 0;
  Status st = OrderedTxn(*c, [&]() -> Status {
    // The bump first: it locks the tenant's generation row until the commit,
    // so the count below (a statement of its own, READ COMMITTED) sees every
    // create of this tenant that committed before, on any node, whatever
    // other lock the transaction holds.
    if (Status b = BumpGeneration(*c, s.tenant, &gen); !b.ok()) return b;
    if (max_per_tenant > 0) {
      ROWS_OR_RETURN(n, c->Run(kCount, Params().Add(s.tenant)));
      if (n.size() != 1) return Status::Unavailable("store: count not returned");
      if (n.Int(0, 0) >= max_per_tenant) return Status::LimitExceeded("subscriptions per tenant");
    }
    Params p;
    BindSubscription(p, s);
    if (auto r = c->Run(kInsert, p); !r.ok()) return r.status();
    return Status::Ok();
  });
  if (!st.ok()) return st;
  return gen;
}

Result<Subscription> PgStore::GetSubscription(const std::string& tenant, const std::string& id) {
  CONN_OR_RETURN(c);
  static const char kGet[] = "SELECT " SUB_COLS
                             " FROM subscriptions WHERE id=$1 AND tenant=$2 AND deleted_at IS "
                             "NULL";
  ROWS_OR_RETURN(r, c->Run(kGet, Params().Add(id).Add(tenant)));
  if (r.size() == 0) return Status::NotFound("subscription not found");
  return ReadSubscription(r, 0);
}

Result<std::vector<Subscription>> PgStore::ListSubscriptions(const std::string& tenant,
                                                             const ListOptions& opts) {
  CONN_OR_RETURN(c);
  static const char kList[] = "SELECT " SUB_COLS
                              " FROM subscriptions WHERE tenant=$1 AND id>$2 AND deleted_at IS "
                              "NULL ORDER BY id LIMIT $3";
  ROWS_OR_RETURN(r, c->Run(kList, Params().Add(tenant).Add(opts.after_id).Add(opts.limit)));
  std::vector<Subscription> out;
  for (int i = 0; i < r.size(); ++i) out.push_back(ReadSubscription(r, i));
  return out;
}

Result<Subscription> PgStore::ModifySubscription(const std::string& tenant, const std::string& id,
                                                 const std::function<Status(Subscription*)>& change,
                                                 int64_t* generation) {
  CONN_OR_RETURN(c);
  static const char kLock[] = "SELECT " SUB_COLS
                              " FROM subscriptions WHERE id=$1 AND tenant=$2 AND deleted_at IS "
                              "NULL FOR UPDATE";
  static const char kUpdate[] =
      "UPDATE subscriptions SET url=$4,event_types=$5,filter=$6,max_in_flight=$7,"
      "rate_limit_per_s=$8,ordered=$9,description=$10,enabled=$11,secret=$12,"
      "previous_secret=$13,previous_secret_expires_at=$14,max_receives=$15,updated_at=$17,name=$18 "
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

Result<int64_t> PgStore::DeleteSubscription(const std::string& tenant, const std::string& id,
                                            int64_t now_ms) {
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

Result<std::vector<std::pair<std::string, int64_t>>> PgStore::SubscriptionGenerations() {
  CONN_OR_RETURN(c);
  static const char kAll[] = "SELECT tenant, generation FROM subscription_generations";
  ROWS_OR_RETURN(r, c->Run(kAll, Params()));
  std::vector<std::pair<std::string, int64_t>> out;
  for (int i = 0; i < r.size(); ++i) out.emplace_back(r.Text(i, 0), r.Int(i, 1));
  return out;
}

Result<TenantSubscriptions> PgStore::LoadTenantSubscriptions(const std::string& tenant) {
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

// --- API keys --------------------------------------------------------------

Status PgStore::CreateKey(const ApiKey& k) {
  CONN_OR_RETURN(c);
  static const char kInsert[] =
      "INSERT INTO api_keys(id,tenant,name,scopes,hash,admin,created_at,access_key_id,aws_secret) "
      "VALUES($1,$2,$3,$4,$5,$6,$7,$8,$9)";
  std::optional<std::string> akid, sealed;
  if (!k.access_key_id.empty()) akid = k.access_key_id, sealed = core::Hex(k.sealed_secret);
  auto r = c->Run(kInsert, Params()
                               .Add(k.id)
                               .Add(k.tenant)
                               .Add(k.name)
                               .Add(static_cast<int64_t>(k.scopes))
                               .Own(core::Hex(k.hash))
                               .Add(k.admin)
                               .Add(k.created_at_ms)
                               .Add(akid)
                               .Add(sealed));
  return r.ok() ? Status::Ok() : r.status();
}

Result<ApiKey> PgStore::FindKeyByHash(const std::string& hash) {
  CONN_OR_RETURN(c);
  static const char kFind[] = "SELECT " KEY_COLS " FROM api_keys WHERE hash=$1";
  ROWS_OR_RETURN(r, c->Run(kFind, Params().Own(core::Hex(hash))));
  if (r.size() == 0) return Status::NotFound("key not found");
  return ReadKey(r, 0);
}

Result<std::vector<ApiKey>> PgStore::ListKeys(const std::string& tenant, const ListOptions& opts) {
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

Result<std::string> PgStore::RevokeKey(const std::string& tenant, const std::string& id,
                                       int64_t now_ms) {
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

Result<std::vector<std::string>> PgStore::RevokedKeyHashesSince(int64_t since_ms, int64_t now_ms) {
  CONN_OR_RETURN(c);
  // The same look-back, from the database's now (revocations are stamped
  // with it): a node whose clock is off still sees every revocation.
  static const char kRevoked[] =
      "SELECT hash FROM api_keys WHERE revoked_at IS NOT NULL AND "
      "revoked_at>=" NOW_AT("$2") "-$1::bigint";
  ROWS_OR_RETURN(
      r, c->Run(kRevoked, Params().Add(now_ms - since_ms).AddOrNull(opts_.database_clock, now_ms)));
  std::vector<std::string> out;
  for (int i = 0; i < r.size(); ++i) out.push_back(core::Unhex(r.Text(i, 0)));
  return out;
}

Result<bool> PgStore::HasAdminKey() {
  CONN_OR_RETURN(c);
  static const char kAdmin[] = "SELECT 1 FROM api_keys WHERE admin LIMIT 1";
  ROWS_OR_RETURN(r, c->Run(kAdmin, Params()));
  return r.size() > 0;
}

void PgStore::BindSubscription(Params& p, const Subscription& s) {
  p.Add(s.id).Add(s.tenant).Add(s.kind).Add(s.url).Add(s.event_types_json).Add(s.filter_json);
  p.Add(s.max_in_flight).Add(s.rate_limit_per_s).Add(s.ordered).Add(s.description);
  p.Add(s.enabled).Add(s.secret).Add(s.previous_secret).Add(s.previous_secret_expires_at_ms);
  p.Add(s.max_receives).Add(s.created_at_ms).Add(s.updated_at_ms).Add(s.name);
}

// In the caller's transaction (which holds the commit-order lock).
Status PgStore::BumpGeneration(pg::Conn& c, const std::string& tenant, int64_t* out) {
  ROWS_OR_RETURN(r, c.Run(kBumpGeneration, Params().Add(tenant)));
  if (r.size() != 1) return Status::Unavailable("store: generation not returned");
  *out = r.Int(0, 0);
  return Status::Ok();
}

}  // namespace triggers::store::postgres
