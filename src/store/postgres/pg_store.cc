// The shared store: PostgreSQL through libpq, for many nodes on one database.
//
// - Every node is stateless but for caches; rows are the truth. Work is
//   handed out with `FOR UPDATE SKIP LOCKED` and a lease (a token and an
//   expiry on the database's clock).
// - Ingest keeps group commit: the writer's batch is one statement in a
//   transaction that holds the commit-order lock, committed with
//   synchronous_commit=on.
// - Failures: a lost connection turns into Unavailable (503) and reconnects
//   on next use; nothing needs a restart.
// This file: opening, migrations, Ping.
#include "store/postgres/pg_internal.h"

namespace triggers::store::postgres {

Status PgStore::Init() {
  CONN_OR_RETURN(c);
  Status st = c->Txn(false, [&]() -> Status {
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
  if (!st.ok() || opts_.node_id.empty()) return st;
  // This node's previous process died holding these leases (it would have
  // returned them on a clean stop): its attempts ended with it, and their
  // slots would stay taken for every node until the leases ran out.
  // Due again from when they were leased (updated_at), on whatever clock
  // the leases were taken by.
  static const std::string kReturn = "UPDATE deliveries SET " + rules::SetReleased("updated_at") +
                                     " WHERE status='in_flight' AND lease_node=$1";
  auto r = c->Run(kReturn.c_str(), Params().Add(opts_.node_id));
  return r.ok() ? Status::Ok() : r.status();
}

Status PgStore::Ping() {
  CONN_OR_RETURN(c);
  static const char kPing[] = "SELECT 1";
  auto r = c->Run(kPing, Params());
  return r.ok() ? Status::Ok() : r.status();
}

// The caller's now, or NULL where the database's clock decides (NOW_AT).
void PgStore::AddNow(Params& p, int64_t now_ms) const {
  if (opts_.database_clock) {
    p.Null();
  } else {
    p.Add(now_ms);
  }
}

}  // namespace triggers::store::postgres

namespace triggers::store {
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
  auto s = std::make_unique<postgres::PgStore>(options);
  if (Status st = s->Init(); !st.ok()) return st;
  return std::unique_ptr<Store>(std::move(s));
}

}  // namespace triggers::store
