// `triggers migrate-store`: the embedded SQLite store -> PostgreSQL.
//
// - The SQLite file is opened read-only and read in one read transaction (a
//   consistent snapshot). It must be at the schema version this copy was
//   written for; an older one is upgraded by running `triggers serve` once.
// - The server must be stopped: the data directory's lock (triggers.lock,
//   app/data_dir.h) is taken for the whole copy, so a running server is
//   named by its PID and none can start meanwhile; a store that another
//   process has open is refused too (every SQLite connection in WAL mode
//   holds a lock on the file while open, which is cheap to probe: the
//   `triggers keys` commands take no data-dir lock), and a commit by anyone
//   else during the copy (PRAGMA data_version) makes the copy fail.
// - The target is opened with store::OpenPostgres (which creates the schema),
//   then everything is copied in ONE PostgreSQL transaction: on any failure
//   nothing is committed and the target holds what it held before (at most
//   the empty schema). A target with any row already is refused.
// - Rows go in chunks (1000 rows or 16 MiB) as multi-row inserts, one text
//   array per column through unnest; text is copied byte for byte.
// - deliveries keep their seq (OVERRIDING SYSTEM VALUE), inserted in seq
//   order, and the identity sequence continues after the largest: ordered
//   delivery and "oldest first" depend on seq.
// - Nothing printed names a key hash, a webhook secret or the URL (which may
//   hold a password).
#include "app/migrate_store.h"

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "app/data_dir.h"
#include "core/crypto.h"
#include "core/json_util.h"
#include "store/postgres/pg_conn.h"
#include "triggers/store.h"

namespace triggers::app {
namespace {

namespace pg = store::pg;

// The SQLite schema (user_version) this copy reads: the files in
// src/store/sqlite/migrations. A migration added there must be handled here
// too (tests/integration/test_migrate_store.py fails until it is).
// (0008_delivery_counts adds only a table derived from deliveries, which is
// not copied: the PostgreSQL store's triggers count the copied rows; 0010
// drops one of its triggers.)
constexpr int kSqliteSchemaVersion = 10;

constexpr size_t kChunkRows = 1000;
constexpr size_t kChunkBytes = 16u << 20;

// How one SQLite column becomes one PostgreSQL array element. A NULL stays
// NULL everywhere (the target's NOT NULL constraints catch what must not be).
enum class Col {
  kText,       // byte for byte; must be UTF-8 without NUL (Postgres text) or the copy fails
  kLossyText,  // error texts from remote servers: invalid bytes become U+FFFD, as the PG store does
  kInt,        // integer -> bigint/integer
  kBool,       // 0/1 -> boolean
  kDouble,     // real -> double precision (round-trips: %.17g)
  kHex,        // BLOB -> lowercase hex text (key hashes, body hashes)
  kScopes,     // the decimal text of the scope bitmask -> bigint
};

struct Table {
  const char* name;
  const char* count;   // SQLite
  const char* select;  // SQLite, in copy order
  const char* insert;  // PostgreSQL; static storage (the prepared-statement cache key)
  std::vector<Col> cols;
  int ident_cols;  // leading columns that identify a row in an error message
};

// In dependency order; deliveries by seq (see above).
const Table kTables[] = {
    {"api_keys",
     "SELECT count(*) FROM api_keys",
     "SELECT id,tenant,name,scopes,hash,admin,created_at,revoked_at,access_key_id,aws_secret "
     "FROM api_keys ORDER BY id",
     "INSERT INTO api_keys(id,tenant,name,scopes,hash,admin,created_at,revoked_at,access_key_id,"
     "aws_secret) "
     "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::bigint[],$5::text[],"
     "$6::boolean[],$7::bigint[],$8::bigint[],$9::text[],$10::text[])",
     {Col::kText, Col::kText, Col::kText, Col::kScopes, Col::kHex, Col::kBool, Col::kInt, Col::kInt,
      Col::kText, Col::kText},
     1},
    {"subscriptions",
     "SELECT count(*) FROM subscriptions",
     "SELECT id,tenant,kind,url,event_types,filter,max_in_flight,rate_limit_per_s,ordered,"
     "description,enabled,secret,previous_secret,previous_secret_expires_at,max_receives,"
     "created_at,updated_at,deleted_at,name FROM subscriptions ORDER BY id",
     "INSERT INTO subscriptions(id,tenant,kind,url,event_types,filter,max_in_flight,"
     "rate_limit_per_s,ordered,description,enabled,secret,previous_secret,"
     "previous_secret_expires_at,max_receives,created_at,updated_at,deleted_at,name) "
     "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::text[],$6::text[],"
     "$7::integer[],$8::double precision[],$9::boolean[],$10::text[],$11::boolean[],$12::text[],"
     "$13::text[],$14::bigint[],$15::integer[],$16::bigint[],$17::bigint[],$18::bigint[],"
     "$19::text[])",
     {Col::kText, Col::kText, Col::kText, Col::kText, Col::kText, Col::kText, Col::kInt,
      Col::kDouble, Col::kBool, Col::kText, Col::kBool, Col::kText, Col::kText, Col::kInt,
      Col::kInt, Col::kInt, Col::kInt, Col::kInt, Col::kText},
     1},
    {"subscription_generations",
     "SELECT count(*) FROM subscription_generations",
     "SELECT tenant,generation FROM subscription_generations ORDER BY tenant",
     "INSERT INTO subscription_generations(tenant,generation) "
     "SELECT * FROM unnest($1::text[],$2::bigint[])",
     {Col::kText, Col::kInt},
     1},
    {"events",
     "SELECT count(*) FROM events",
     "SELECT id,tenant,type,source,subject,ordering_key,data,received_at,resources FROM events "
     "ORDER BY seq",
     "INSERT INTO events(id,tenant,type,source,subject,ordering_key,data,received_at,resources) "
     "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::text[],$6::text[],"
     "$7::text[],$8::bigint[],$9::text[])",
     {Col::kText, Col::kText, Col::kText, Col::kText, Col::kText, Col::kText, Col::kText, Col::kInt,
      Col::kText},
     1},
    {"idempotency",
     "SELECT count(*) FROM idempotency",
     "SELECT tenant,key,body_hash,event_id,created_at FROM idempotency ORDER BY tenant,key",
     "INSERT INTO idempotency(tenant,key,body_hash,event_id,created_at) "
     "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::text[],$5::bigint[])",
     {Col::kText, Col::kText, Col::kHex, Col::kText, Col::kInt},
     2},
    {"deliveries",
     "SELECT count(*) FROM deliveries",
     "SELECT id,seq,tenant,event_id,subscription_id,status,attempts,next_attempt_at,last_error,"
     "last_status_code,created_at,updated_at,ordering_key,receipt FROM deliveries ORDER BY seq",
     "INSERT INTO deliveries(id,seq,tenant,event_id,subscription_id,status,attempts,"
     "next_attempt_at,last_error,last_status_code,created_at,updated_at,ordering_key,receipt) "
     "OVERRIDING SYSTEM VALUE SELECT * FROM unnest($1::text[],$2::bigint[],$3::text[],"
     "$4::text[],$5::text[],$6::text[],$7::integer[],$8::bigint[],$9::text[],$10::integer[],"
     "$11::bigint[],$12::bigint[],$13::text[],$14::text[])",
     {Col::kText, Col::kInt, Col::kText, Col::kText, Col::kText, Col::kText, Col::kInt, Col::kInt,
      Col::kLossyText, Col::kInt, Col::kInt, Col::kInt, Col::kText, Col::kText},
     1},
    {"delivery_attempts",
     "SELECT count(*) FROM delivery_attempts",
     "SELECT delivery_id,n,at,status_code,latency_ms,error,response_snippet FROM "
     "delivery_attempts ORDER BY delivery_id,n",
     "INSERT INTO delivery_attempts(delivery_id,n,at,status_code,latency_ms,error,"
     "response_snippet) SELECT * FROM unnest($1::text[],$2::integer[],$3::bigint[],"
     "$4::integer[],$5::bigint[],$6::text[],$7::text[])",
     {Col::kText, Col::kInt, Col::kInt, Col::kInt, Col::kInt, Col::kLossyText, Col::kLossyText},
     2},
    // Pending fan-out (deliveries not written yet), oldest first; the target
    // numbers them afresh in that order.
    {"fanout_pending",
     "SELECT count(*) FROM fanout_pending",
     "SELECT tenant,event_ids,subscription_ids,received_at,done FROM fanout_pending ORDER BY seq",
     "INSERT INTO fanout_pending(tenant,event_ids,subscription_ids,received_at,done) "
     "SELECT * FROM unnest($1::text[],$2::text[],$3::text[],$4::bigint[],$5::bigint[])",
     {Col::kText, Col::kText, Col::kText, Col::kInt, Col::kInt},
     1},
};
constexpr size_t kTableCount = std::size(kTables);

using Clock = std::chrono::steady_clock;

double SecondsSince(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

Status SqliteError(sqlite3* db, const std::string& what) {
  return Status::Unavailable("SQLite store: " + what + ": " +
                             (db ? sqlite3_errmsg(db) : "out of memory"));
}

// PostgreSQL errors of pg::Conn read "store: query: <message>".
Status PgError(const Status& s, const std::string& what) {
  std::string m = s.message();
  if (m.rfind("store: ", 0) == 0) m = m.substr(7);
  m = "PostgreSQL: " + what + ": " + m;
  return s.code() == Status::Code::kConflict ? Status::Conflict(m) : Status::Unavailable(m);
}

// True when another process holds a lock on the database file. SQLite's unix
// VFS locks bytes from 0x40000000 (PENDING, RESERVED, then the SHARED range),
// and a connection in WAL mode keeps its SHARED lock for as long as it is
// open: a running `triggers serve` (or `keys` command) always shows here.
// F_GETLK never reports this process's own locks, and closing the probe's
// descriptor would drop them: call it while no connection of ours is open.
Result<bool> OpenElsewhere(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::Unavailable("cannot open " + path + ": " + std::strerror(errno));
  struct flock fl;
  std::memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0x40000000;
  fl.l_len = 512;
  int rc = ::fcntl(fd, F_GETLK, &fl);
  int err = errno;
  ::close(fd);
  if (rc != 0)
    return Status::Unavailable("cannot probe the locks of " + path + ": " + std::strerror(err));
  return fl.l_type != F_UNLCK;
}

// A one-row, one-column integer query on SQLite.
Result<int64_t> SqliteInt(sqlite3* db, const char* sql) {
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, sql, -1, &st, nullptr) != SQLITE_OK) {
    return SqliteError(db, std::string("prepare '") + sql + "'");
  }
  int rc = sqlite3_step(st);
  int64_t v = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
  sqlite3_finalize(st);
  if (rc != SQLITE_ROW) return SqliteError(db, std::string("'") + sql + "'");
  return v;
}

void PrintProgress(const char* table, int64_t done, int64_t total) {
  std::printf("  %-18s %" PRId64 " of %" PRId64 " rows\n", table, done, total);
  std::fflush(stdout);
}

struct Copied {
  int64_t rows[kTableCount] = {};
  int64_t lossy = 0;  // error texts whose invalid bytes were replaced
};

std::string RowName(sqlite3_stmt* st, const Table& t) {
  std::string out;
  for (int i = 0; i < t.ident_cols; ++i) {
    auto p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
    if (i) out += ", ";
    out += p ? std::string(p, static_cast<size_t>(sqlite3_column_bytes(st, i))) : "NULL";
  }
  return core::ToValidUtf8(out);
}

// Appends column `i` of the current row to `a`; returns the bytes added, or
// a Status for a value PostgreSQL cannot take as is.
Result<size_t> AppendValue(sqlite3_stmt* st, int i, Col col, const Table& t,
                           const char* const* names, pg::ArrayBuilder& a, Copied& copied) {
  if (sqlite3_column_type(st, i) == SQLITE_NULL) {
    a.AddNull();
    return size_t{4};
  }
  switch (col) {
    case Col::kText:
    case Col::kLossyText: {
      auto p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
      std::string_view v(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, i)));
      if (core::IsValidUtf8(v) && v.find('\0') == std::string_view::npos) {
        a.Add(v);
      } else if (col == Col::kLossyText) {
        a.Add(std::string_view(core::ToValidUtf8(v)));
        ++copied.lossy;
      } else {
        return Status::Validation(std::string(t.name) + " row (" + RowName(st, t) + "): column " +
                                  names[i] +
                                  " is not UTF-8 text without NUL bytes, which PostgreSQL "
                                  "cannot store; nothing was copied");
      }
      return v.size() + 2;
    }
    case Col::kInt:
      a.Add(static_cast<int64_t>(sqlite3_column_int64(st, i)));
      return size_t{20};
    case Col::kBool:
      a.Add(std::string_view(sqlite3_column_int64(st, i) != 0 ? "t" : "f"));
      return size_t{3};
    case Col::kDouble: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(st, i));
      a.Add(std::string_view(buf));
      return std::strlen(buf) + 2;
    }
    case Col::kHex: {
      auto p = static_cast<const char*>(sqlite3_column_blob(st, i));
      std::string hex =
          core::Hex(std::string_view(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, i))));
      a.Add(std::string_view(hex));
      return hex.size() + 2;
    }
    case Col::kScopes: {
      auto p = reinterpret_cast<const char*>(sqlite3_column_text(st, i));
      std::string_view v(p ? p : "", static_cast<size_t>(sqlite3_column_bytes(st, i)));
      uint32_t scopes = 0;
      auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), scopes);
      if (v.empty()) {
        scopes = 0;  // what the SQLite store reads for an empty value
      } else if (ec != std::errc() || end != v.data() + v.size()) {
        return Status::Validation(std::string(t.name) + " row (" + RowName(st, t) +
                                  "): scopes is not a number; nothing was copied");
      }
      a.Add(static_cast<int64_t>(scopes));
      return size_t{12};
    }
  }
  return size_t{0};
}

// Copies one table: SQLite rows in `t.select` order, chunk by chunk, into the
// open PostgreSQL transaction.
Status CopyTable(sqlite3* db, pg::Conn& target, size_t index, int64_t total, Copied& copied) {
  const Table& t = kTables[index];
  sqlite3_stmt* st = nullptr;
  if (sqlite3_prepare_v2(db, t.select, -1, &st, nullptr) != SQLITE_OK) {
    return SqliteError(db, std::string("read ") + t.name);
  }
  struct Finalize {
    sqlite3_stmt* s;
    ~Finalize() { sqlite3_finalize(s); }
  } finalize{st};
  const int ncols = static_cast<int>(t.cols.size());
  if (sqlite3_column_count(st) != ncols) {
    return Status::Internal(std::string("migrate-store: column lists of ") + t.name + " differ");
  }
  std::vector<const char*> names(t.cols.size());
  for (int i = 0; i < ncols; ++i) names[i] = sqlite3_column_name(st, i);

  std::vector<pg::ArrayBuilder> arrays(t.cols.size());
  size_t rows = 0, bytes = 0;
  int64_t done = 0;
  auto last_print = Clock::now();
  auto flush = [&]() -> Status {
    if (rows == 0) return Status::Ok();
    pg::Params p;
    for (auto& a : arrays) p.Own(a.Finish());
    auto r = target.Run(t.insert, p);
    if (!r.ok()) return PgError(r.status(), std::string("copying ") + t.name);
    if (r.value().Affected() != static_cast<int64_t>(rows)) {
      return Status::Internal(std::string("PostgreSQL: copying ") + t.name + ": inserted " +
                              std::to_string(r.value().Affected()) + " of " + std::to_string(rows) +
                              " rows");
    }
    arrays.assign(t.cols.size(), pg::ArrayBuilder());
    done += static_cast<int64_t>(rows);
    rows = bytes = 0;
    if (Clock::now() - last_print >= std::chrono::seconds(2)) {
      PrintProgress(t.name, done, total);
      last_print = Clock::now();
    }
    return Status::Ok();
  };

  int rc;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    for (int i = 0; i < ncols; ++i) {
      auto added = AppendValue(st, i, t.cols[i], t, names.data(), arrays[i], copied);
      if (!added.ok()) return added.status();
      bytes += added.value();
    }
    if (++rows >= kChunkRows || bytes >= kChunkBytes) {
      if (Status s = flush(); !s.ok()) return s;
    }
  }
  if (rc != SQLITE_DONE) return SqliteError(db, std::string("read ") + t.name);
  if (Status s = flush(); !s.ok()) return s;
  if (done != total) {
    return Status::Internal(std::string("SQLite store: ") + t.name + ": read " +
                            std::to_string(done) + " rows, counted " + std::to_string(total));
  }
  PrintProgress(t.name, done, total);
  copied.rows[index] = done;
  return Status::Ok();
}

// Locks the target's tables against writers and returns the names of those
// that hold rows already.
Result<std::string> NonEmptyTables(pg::Conn& target) {
  if (Status s = target.Exec("SET LOCAL lock_timeout = '10s'; LOCK TABLE api_keys, subscriptions, "
                             "subscription_generations, events, idempotency, deliveries, "
                             "delivery_attempts, fanout_pending IN EXCLUSIVE MODE");
      !s.ok()) {
    return PgError(s, "locking the tables");
  }
  static const char kNonEmpty[] =
      "SELECT 'api_keys' WHERE EXISTS (SELECT 1 FROM api_keys) UNION ALL "
      "SELECT 'subscriptions' WHERE EXISTS (SELECT 1 FROM subscriptions) UNION ALL "
      "SELECT 'subscription_generations' WHERE EXISTS (SELECT 1 FROM subscription_generations) "
      "UNION ALL "
      "SELECT 'events' WHERE EXISTS (SELECT 1 FROM events) UNION ALL "
      "SELECT 'idempotency' WHERE EXISTS (SELECT 1 FROM idempotency) UNION ALL "
      "SELECT 'deliveries' WHERE EXISTS (SELECT 1 FROM deliveries) UNION ALL "
      "SELECT 'delivery_attempts' WHERE EXISTS (SELECT 1 FROM delivery_attempts) UNION ALL "
      "SELECT 'fanout_pending' WHERE EXISTS (SELECT 1 FROM fanout_pending)";
  auto r = target.Run(kNonEmpty, pg::Params());
  if (!r.ok()) return PgError(r.status(), "checking that the target is empty");
  std::string out;
  for (int i = 0; i < r.value().size(); ++i) {
    if (!out.empty()) out += ", ";
    out += r.value().Text(i, 0);
  }
  return out;
}

// After the copy: the identity of deliveries.seq continues after the largest
// copied seq, and every table holds exactly the rows copied.
Status Finish(pg::Conn& target, const Copied& copied) {
  static const char kSetval[] =
      "SELECT setval(pg_get_serial_sequence('deliveries','seq'), max(seq)) FROM deliveries "
      "HAVING max(seq) IS NOT NULL";
  if (auto r = target.Run(kSetval, pg::Params()); !r.ok()) {
    return PgError(r.status(), "moving the deliveries.seq identity past the copied rows");
  }
  static const char kCounts[] =
      "SELECT (SELECT count(*) FROM api_keys), (SELECT count(*) FROM subscriptions), "
      "(SELECT count(*) FROM subscription_generations), (SELECT count(*) FROM events), (SELECT "
      "count(*) FROM idempotency), "
      "(SELECT count(*) FROM deliveries), (SELECT count(*) FROM delivery_attempts), "
      "(SELECT count(*) FROM fanout_pending)";
  auto r = target.Run(kCounts, pg::Params());
  if (!r.ok()) return PgError(r.status(), "counting the copied rows");
  for (size_t i = 0; i < kTableCount; ++i) {
    int64_t n = r.value().Int(0, static_cast<int>(i));
    if (n != copied.rows[i]) {
      return Status::Internal(std::string("PostgreSQL: ") + kTables[i].name + " holds " +
                              std::to_string(n) + " rows after copying " +
                              std::to_string(copied.rows[i]));
    }
  }
  return Status::Ok();
}

class SqliteDb {
 public:
  ~SqliteDb() { Close(); }
  sqlite3*& ptr() { return db_; }
  sqlite3* get() const { return db_; }
  void Close() {
    if (db_) sqlite3_close(db_);
    db_ = nullptr;
  }

 private:
  sqlite3* db_ = nullptr;
};

Status Migrate(const Config& cfg) {
  const auto t0 = Clock::now();
  const std::string path = cfg.DbPath();
  struct stat sb;
  if (::stat(path.c_str(), &sb) != 0) {
    return Status::NotFound("no SQLite store at " + path + " (check --data-dir)");
  }
  // The data directory's lock, held to the end: a `triggers serve` that has
  // it is named by its PID, and none can start on this store meanwhile.
  std::unique_ptr<DataDirLock> lock;
  if (Status s = DataDirLock::Acquire(cfg.data_dir, &lock); !s.ok()) {
    if (s.code() != Status::Code::kConflict) return s;
    return Status::Conflict(s.message() +
                            ": stop `triggers serve` (or the other migrate-store) before "
                            "migrating");
  }
  // Before any connection of ours is open (see OpenElsewhere): a process
  // without the lock, such as a `triggers keys` command.
  auto busy = OpenElsewhere(path);
  if (!busy.ok()) return busy.status();
  if (busy.value()) {
    return Status::Conflict(path +
                            " is open in another process: stop `triggers serve` (and any other "
                            "program using the store) before migrating");
  }

  SqliteDb db;
  if (sqlite3_open_v2(path.c_str(), &db.ptr(), SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX,
                      nullptr) != SQLITE_OK) {
    return SqliteError(db.get(), "open " + path);
  }
  sqlite3_busy_timeout(db.get(), 5000);
  auto version = SqliteInt(db.get(), "PRAGMA user_version");
  if (!version.ok()) return version.status();
  if (version.value() == 0) {
    return Status::Validation(path + " is not a Triggers store (schema version 0)");
  }
  if (version.value() < kSqliteSchemaVersion) {
    return Status::Validation(
        path + " has schema version " + std::to_string(version.value()) + "; this version needs " +
        std::to_string(kSqliteSchemaVersion) +
        ": run `triggers serve` of this version once on it (it upgrades the store at start), "
        "stop it, then migrate");
  }
  if (version.value() > kSqliteSchemaVersion) {
    return Status::Validation(path + " has schema version " + std::to_string(version.value()) +
                              ", newer than this binary knows (" +
                              std::to_string(kSqliteSchemaVersion) +
                              "): migrate with the version of triggers that wrote it");
  }
  auto data_version = SqliteInt(db.get(), "PRAGMA data_version");
  if (!data_version.ok()) return data_version.status();

  // The target: the schema first (OpenPostgres migrates it, under its lock),
  // then one connection of our own for the copy.
  {
    store::PostgresOptions o;
    o.url = cfg.postgres_url;
    o.pool_size = 1;
    o.connect_timeout_s = 10;
    o.listen = false;
    auto schema = store::OpenPostgres(o);
    if (!schema.ok()) return PgError(schema.status(), "opening the target");
  }
  pg::Conn target(cfg.postgres_url, 10);
  if (Status s = target.Ensure(); !s.ok()) return PgError(s, "connecting");
  std::printf("migrate-store: from %s (schema %d) to PostgreSQL database \"%s\" on %s:%s\n",
              path.c_str(), kSqliteSchemaVersion, PQdb(target.raw()), PQhost(target.raw()),
              PQport(target.raw()));
  std::fflush(stdout);

  // One read transaction on SQLite: every table from the same snapshot.
  char* err = nullptr;
  if (sqlite3_exec(db.get(), "BEGIN", nullptr, nullptr, &err) != SQLITE_OK) {
    sqlite3_free(err);
    return SqliteError(db.get(), "begin");
  }
  int64_t totals[kTableCount];
  for (size_t i = 0; i < kTableCount; ++i) {
    auto n = SqliteInt(db.get(), kTables[i].count);
    if (!n.ok()) return n.status();
    totals[i] = n.value();
  }

  Copied copied;
  Status s = target.Txn(false, [&]() -> Status {
    auto non_empty = NonEmptyTables(target);
    if (!non_empty.ok()) return non_empty.status();
    if (!non_empty.value().empty()) {
      return Status::Conflict("the PostgreSQL database already holds Triggers data (rows in " +
                              non_empty.value() +
                              "); migrate-store copies into an empty database only (one that "
                              "no server has started on: a first start creates an admin key)");
    }
    for (size_t i = 0; i < kTableCount; ++i) {
      if (Status c = CopyTable(db.get(), target, i, totals[i], copied); !c.ok()) return c;
    }
    if (Status f = Finish(target, copied); !f.ok()) return f;
    // The snapshot must still be the store: nobody committed to it meanwhile,
    // and nobody has it open now (checked with our connection closed).
    sqlite3_exec(db.get(), "COMMIT", nullptr, nullptr, nullptr);
    auto after = SqliteInt(db.get(), "PRAGMA data_version");
    if (!after.ok()) return after.status();
    db.Close();
    auto busy_now = OpenElsewhere(path);
    if (!busy_now.ok()) return busy_now.status();
    if (busy_now.value()) {
      return Status::Conflict(path +
                              " was opened by another process during the copy (is `triggers "
                              "serve` running?); nothing was committed: stop it and run "
                              "migrate-store again");
    }
    if (after.value() != data_version.value()) {
      return Status::Conflict(path +
                              " was written by another process during the copy (was `triggers "
                              "serve` started?); nothing was committed: stop it and run "
                              "migrate-store again");
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;

  std::printf("committed in %.1f s; rows copied:\n", SecondsSince(t0));
  for (size_t i = 0; i < kTableCount; ++i) {
    std::printf("  %-18s %" PRId64 "\n", kTables[i].name, copied.rows[i]);
  }
  if (copied.lossy > 0) {
    std::printf(
        "note: %" PRId64
        " delivery error texts held bytes that are not UTF-8; they were stored with U+FFFD in "
        "their place\n",
        copied.lossy);
  }
  std::printf(
      "next: start the server on PostgreSQL with the same data directory (admin.key stays "
      "valid):\n  triggers serve --data-dir %s --store postgres --postgres-url <the same URL>\n"
      "The SQLite store was not changed: keep it as a backup, but do not serve from it any more "
      "(the two stores do not sync).\n",
      cfg.data_dir.c_str());
  std::fflush(stdout);
  return Status::Ok();
}

}  // namespace

int RunMigrateStore(Config& cfg) {
  if (cfg.postgres_url.empty()) {
    std::fprintf(stderr, "triggers: migrate-store needs --postgres-url postgresql://...\n");
    return 2;
  }
  if (Status s = Migrate(cfg); !s.ok()) {
    // One line: libpq's messages can span several.
    std::string line;
    for (char c : s.message()) {
      if (c == '\n' || c == '\r' || c == '\t') {
        if (!line.empty() && line.back() != ' ') line += ' ';
      } else {
        line += c;
      }
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    std::fflush(stdout);
    std::fprintf(stderr, "triggers: migrate-store: %s\n", line.c_str());
    return 1;
  }
  return 0;
}

}  // namespace triggers::app
