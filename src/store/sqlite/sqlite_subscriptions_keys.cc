// The embedded store: subscriptions (with the per-tenant generation every
// write bumps) and API keys.
#include "store/sqlite/sqlite_internal.h"

namespace triggers::store::sqlite {

Result<int64_t> SqliteStore::CreateSubscription(const Subscription& s, int64_t max_per_tenant) {
  std::lock_guard lock(write_mu_);
  int64_t gen = 0;
  Status st = WriteTxn(false, [&]() -> Status {
    // The write lock (BEGIN IMMEDIATE) orders this count against every other write.
    if (max_per_tenant > 0) {
      PREPARE_OR_RETURN(cnt, writer_,
                        "SELECT count(*) FROM subscriptions WHERE tenant=? AND deleted_at IS NULL");
      cnt.Bind(1, s.tenant);
      if (cnt.Step() != SQLITE_ROW) return SqlError(writer_.db(), "count subscriptions");
      if (cnt.Int(0) >= max_per_tenant) return Status::LimitExceeded("subscriptions per tenant");
    }
    PREPARE_OR_RETURN(
        ins, writer_,
        "INSERT INTO subscriptions(id,tenant,kind,url,event_types,filter,max_in_flight,"
        "rate_limit_per_s,ordered,description,enabled,secret,previous_secret,"
        "previous_secret_expires_at,max_receives,created_at,updated_at,name) "
        "VALUES(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
    BindSubscription(ins, s);
    if (ins.Step() != SQLITE_DONE) return SqlError(writer_.db(), "create subscription");
    return BumpGeneration(s.tenant, &gen);
  });
  if (!st.ok()) return st;
  return gen;
}

Result<Subscription> SqliteStore::GetSubscription(const std::string& tenant,
                                                  const std::string& id) {
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

Result<std::vector<Subscription>> SqliteStore::ListSubscriptions(const std::string& tenant,
                                                                 const ListOptions& opts) {
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

Result<Subscription> SqliteStore::ModifySubscription(
    const std::string& tenant, const std::string& id,
    const std::function<Status(Subscription*)>& change, int64_t* generation) {
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
                      "previous_secret_expires_at=?14,max_receives=?15,updated_at=?17,name=?18 "
                      "WHERE id=?1 AND tenant=?2 AND deleted_at IS NULL");
    BindSubscription(up, sub);
    if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "update subscription");
    return BumpGeneration(tenant, generation);
  });
  if (!st.ok()) return st;
  return sub;
}

Result<int64_t> SqliteStore::DeleteSubscription(const std::string& tenant, const std::string& id,
                                                int64_t now_ms) {
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

Result<std::vector<std::pair<std::string, int64_t>>> SqliteStore::SubscriptionGenerations() {
  auto r = Reader();
  if (!r.conn) return r.status;
  PREPARE_OR_RETURN(st, *r.conn, "SELECT tenant, generation FROM subscription_generations");
  std::vector<std::pair<std::string, int64_t>> out;
  int rc;
  while ((rc = st.Step()) == SQLITE_ROW) out.emplace_back(st.Text(0), st.Int(1));
  if (rc != SQLITE_DONE) return SqlError(r.conn->db(), "subscription generations");
  return out;
}

Result<TenantSubscriptions> SqliteStore::LoadTenantSubscriptions(const std::string& tenant) {
  auto r = Reader();
  if (!r.conn) return r.status;
  TenantSubscriptions out;
  // The generation first: the list may then only be newer than it.
  if (Status s = ReadGeneration(*r.conn, tenant, &out.generation); !s.ok()) return s;
  if (Status s = ReadTenantSubscriptions(*r.conn, tenant, &out.subscriptions); !s.ok()) return s;
  return out;
}

Status SqliteStore::CreateKey(const ApiKey& k) {
  std::lock_guard lock(write_mu_);
  PREPARE_OR_RETURN(st, writer_,
                    "INSERT INTO api_keys(id,tenant,name,scopes,hash,admin,created_at,"
                    "access_key_id,aws_secret) VALUES(?,?,?,?,?,?,?,?,?)");
  std::string scopes = std::to_string(k.scopes);
  st.Bind(1, k.id).Bind(2, k.tenant).Bind(3, k.name).Bind(4, scopes).BindBlob(5, k.hash);
  st.Bind(6, static_cast<int64_t>(k.admin ? 1 : 0)).Bind(7, k.created_at_ms);
  std::optional<std::string> akid, sealed;
  if (!k.access_key_id.empty()) akid = k.access_key_id, sealed = core::Hex(k.sealed_secret);
  st.Bind(8, akid).Bind(9, sealed);
  if (st.Step() != SQLITE_DONE) return SqlError(writer_.db(), "create key");
  return Status::Ok();
}

Result<ApiKey> SqliteStore::FindKeyByHash(const std::string& hash) {
  auto r = Reader();
  if (!r.conn) return r.status;
  PREPARE_OR_RETURN(
      st, *r.conn,
      "SELECT id,tenant,name,scopes,hash,admin,created_at,revoked_at,access_key_id,aws_secret "
      "FROM api_keys WHERE hash=?");
  st.BindBlob(1, hash);
  int rc = st.Step();
  if (rc == SQLITE_ROW) return ReadKey(st);
  if (rc == SQLITE_DONE) return Status::NotFound("key not found");
  return SqlError(r.conn->db(), "find key");
}

Result<std::vector<ApiKey>> SqliteStore::ListKeys(const std::string& tenant,
                                                  const ListOptions& opts) {
  auto r = Reader();
  if (!r.conn) return r.status;
  const char* sql =
      tenant.empty()
          ? "SELECT "
            "id,tenant,name,scopes,hash,admin,created_at,revoked_at,access_key_id,aws_secret "
            "FROM api_keys WHERE admin=0 AND id>? ORDER BY id LIMIT ?"
          : "SELECT "
            "id,tenant,name,scopes,hash,admin,created_at,revoked_at,access_key_id,aws_secret "
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

Result<std::string> SqliteStore::RevokeKey(const std::string& tenant, const std::string& id,
                                           int64_t now_ms) {
  std::lock_guard lock(write_mu_);
  std::string hash;
  {
    PREPARE_OR_RETURN(st, writer_,
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

Result<std::vector<std::string>> SqliteStore::RevokedKeyHashesSince(int64_t since_ms, int64_t) {
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

Result<bool> SqliteStore::HasAdminKey() {
  auto r = Reader();
  if (!r.conn) return r.status;
  PREPARE_OR_RETURN(st, *r.conn, "SELECT 1 FROM api_keys WHERE admin=1 LIMIT 1");
  int rc = st.Step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  return SqlError(r.conn->db(), "admin key");
}

void SqliteStore::BindSubscription(Stmt& st, const Subscription& s) {
  st.Bind(1, s.id).Bind(2, s.tenant).Bind(3, s.kind).Bind(4, s.url).Bind(5, s.event_types_json);
  st.Bind(6, s.filter_json).Bind(7, s.max_in_flight).Bind(8, s.rate_limit_per_s);
  st.Bind(9, s.ordered ? 1 : 0).Bind(10, s.description).Bind(11, s.enabled ? 1 : 0);
  st.Bind(12, s.secret).Bind(13, s.previous_secret).Bind(14, s.previous_secret_expires_at_ms);
  st.Bind(15, s.max_receives).Bind(16, s.created_at_ms).Bind(17, s.updated_at_ms);
  st.Bind(18, s.name);
}

// The tenant's subscriptions generation as `conn` sees it (0: none yet).
Status SqliteStore::ReadGeneration(Conn& conn, const std::string& tenant, int64_t* out) {
  PREPARE_OR_RETURN(st, conn, "SELECT generation FROM subscription_generations WHERE tenant=?");
  st.Bind(1, tenant);
  int rc = st.Step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(conn.db(), "generation");
  *out = rc == SQLITE_ROW ? st.Int(0) : 0;
  return Status::Ok();
}

Status SqliteStore::ReadTenantSubscriptions(Conn& conn, const std::string& tenant,
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

Status SqliteStore::ReadSubscriptionRow(Conn& conn, const std::string& tenant,
                                        const std::string& id, Subscription* out) {
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
Status SqliteStore::BumpGeneration(const std::string& tenant, int64_t* out) {
  PREPARE_OR_RETURN(st, writer_,
                    "INSERT INTO subscription_generations(tenant,generation) VALUES(?,1) "
                    "ON CONFLICT(tenant) DO UPDATE SET generation=generation+1 "
                    "RETURNING generation");
  st.Bind(1, tenant);
  if (st.Step() != SQLITE_ROW) return SqlError(writer_.db(), "bump generation");
  *out = st.Int(0);
  return Status::Ok();
}

}  // namespace triggers::store::sqlite
