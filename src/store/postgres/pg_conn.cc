#include "store/postgres/pg_conn.h"

#include <poll.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "obs/logger.h"

namespace triggers::store::pg {

int64_t Rows::Int(int row, int col) const {
  const char* p = PQgetvalue(r_.get(), row, col);
  int64_t v = 0;
  std::from_chars(p, p + PQgetlength(r_.get(), row, col), v);
  return v;
}

double Rows::Double(int row, int col) const {
  return std::strtod(PQgetvalue(r_.get(), row, col), nullptr);
}

int64_t Rows::Affected() const {
  const char* n = r_ ? PQcmdTuples(r_.get()) : "";
  return *n ? std::strtoll(n, nullptr, 10) : 0;
}

Params& Params::Add(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  owned_.emplace_back(buf);
  values_.push_back(owned_.back().c_str());
  return *this;
}

void ArrayBuilder::Add(std::string_view v) {
  Sep();
  out_ += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') out_ += '\\';
    out_ += c;
  }
  out_ += '"';
}

void ArrayBuilder::Add(int64_t v) {
  Sep();
  out_ += std::to_string(v);
}

void ArrayBuilder::AddNull() {
  Sep();
  out_ += "NULL";
}

static void DebugNotice(void*, const char* message) {
  std::string m = message ? message : "";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  obs::LogLine(obs::Level::kDebug, "postgres notice").Str("message", m).Emit();
}

PGconn* Connect(const std::string& url, int connect_timeout_s) {
  // Our defaults first: with expand_dbname the URL (in "dbname") overrides them.
  std::string timeout = std::to_string(connect_timeout_s);
  const char* keys[] = {"connect_timeout",     "application_name", "keepalives", "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "dbname",     nullptr};
  const char* vals[] = {timeout.c_str(), "triggers", "1", "10", "5", "3", url.c_str(), nullptr};
  PGconn* c = PQconnectdbParams(keys, vals, 1);
  // libpq prints notices and server messages to stderr by default; our
  // stderr carries JSON lines only.
  if (c) PQsetNoticeProcessor(c, &DebugNotice, nullptr);
  return c;
}

Conn::~Conn() {
  if (c_) PQfinish(c_);
}

// libpq's messages name the server and the failure, never the password.
static std::string ConnError(PGconn* c) {
  std::string m = c ? PQerrorMessage(c) : "out of memory";
  while (!m.empty() && (m.back() == '\n' || m.back() == ' ')) m.pop_back();
  return m;
}

Status Conn::Ensure() {
  if (c_ && PQstatus(c_) == CONNECTION_OK) return Status::Ok();
  if (c_) PQfinish(c_);
  prepared_.clear();
  c_ = Connect(url_, connect_timeout_s_);
  if (!c_ || PQstatus(c_) != CONNECTION_OK) {
    Status s = Status::Unavailable("store: cannot connect to PostgreSQL: " + ConnError(c_));
    if (c_) PQfinish(c_);
    c_ = nullptr;
    return s;
  }
  // A 2xx promises an fsync'd write: never run with the commit unflushed,
  // whatever the server's default (remote_write/remote_apply are kept).
  static const std::string kFlush =
      "SELECT CASE WHEN current_setting('synchronous_commit') IN ('off','local') "
      "THEN set_config('synchronous_commit','on',false) END";
  static const std::string kFlushGeneric =
      kFlush + ", set_config('plan_cache_mode','force_generic_plan',false)";
  ResultPtr r(PQexec(c_, (generic_plans_ ? kFlushGeneric : kFlush).c_str()));
  if (!r || PQresultStatus(r.get()) != PGRES_TUPLES_OK) {
    Status s = Status::Unavailable("store: cannot configure the session: " + ConnError(c_));
    PQfinish(c_);
    c_ = nullptr;
    return s;
  }
  return Status::Ok();
}

Result<Rows> Conn::Check(PGresult* raw, const char* what) {
  ResultPtr r(raw);
  ExecStatusType st = r ? PQresultStatus(r.get()) : PGRES_FATAL_ERROR;
  last_retryable_ = false;
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return Rows(std::move(r));
  std::string state, msg;
  if (r) {
    const char* s = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    const char* m = PQresultErrorField(r.get(), PG_DIAG_MESSAGE_PRIMARY);
    if (s) state = s;
    if (m) msg = m;  // the primary message only: DETAIL may quote row values
  }
  if (msg.empty()) msg = ConnError(c_);
  std::string text = std::string("store: ") + what + ": " + msg;
  last_retryable_ = state == "40P01" || state == "40001";
  if (state == "23505") return Status::Conflict(text);
  // Class 22, data exception: the value itself is bad (e.g. bytes that are
  // not UTF-8), not the database: the caller's 400, never a 503.
  if (state.size() == 5 && state.compare(0, 2, "22") == 0) return Status::Validation(text);
  return Status::Unavailable(text);
}

Result<Rows> Conn::Run(const char* sql, const Params& p) {
  if (p.has_nul()) return Status::Validation("store: text cannot contain a NUL character");
  if (Status s = Ensure(); !s.ok()) return s;
  auto it = prepared_.find(sql);
  if (it == prepared_.end()) {
    std::string name = "s" + std::to_string(prepared_.size());
    auto r = Check(PQprepare(c_, name.c_str(), sql, 0, nullptr), "prepare");
    if (!r.ok()) return r.status();
    it = prepared_.emplace(sql, std::move(name)).first;
  }
  return Check(PQexecPrepared(c_, it->second.c_str(), p.size(), p.values(), nullptr, nullptr, 0),
               "query");
}

Result<Rows> Conn::RunOnce(const std::string& sql, const Params& p) {
  if (p.has_nul()) return Status::Validation("store: text cannot contain a NUL character");
  if (Status s = Ensure(); !s.ok()) return s;
  return Check(PQexecParams(c_, sql.c_str(), p.size(), nullptr, p.values(), nullptr, nullptr, 0),
               "query");
}

Status Conn::Exec(const char* sql) {
  if (Status s = Ensure(); !s.ok()) return s;
  auto r = Check(PQexec(c_, sql), "exec");
  return r.ok() ? Status::Ok() : r.status();
}

// An idle connection has nothing to read. When it does, the server has
// said goodbye (a restart sends FATAL and closes) or the peer reset it:
// drop it now, so the next statement runs on a new connection instead of
// failing on this one. (Statements are never re-sent: one that failed may
// have run.)
void Conn::DropIfDeadWhileIdle() {
  if (!c_ || PQstatus(c_) != CONNECTION_OK) return;
  pollfd fd{PQsocket(c_), POLLIN, 0};
  if (::poll(&fd, 1, 0) <= 0) return;
  PQconsumeInput(c_);
  PQfinish(c_);
  c_ = nullptr;
  prepared_.clear();
}

void Conn::Rollback() {
  if (!c_ || PQstatus(c_) != CONNECTION_OK) return;
  if (PQtransactionStatus(c_) == PQTRANS_IDLE) return;
  ResultPtr r(PQexec(c_, "ROLLBACK"));
  if (PQtransactionStatus(c_) != PQTRANS_IDLE) {
    // Cannot get back to a clean state: drop the connection.
    PQfinish(c_);
    c_ = nullptr;
  }
}

Pool::Pool(std::string url, int size, int connect_timeout_s, bool generic_plans)
    : url_(std::move(url)),
      size_(std::max(1, size)),
      connect_timeout_s_(connect_timeout_s),
      generic_plans_(generic_plans) {}

Pool::Handle Pool::Get() {
  Handle h;
  {
    std::unique_lock lock(mu_);
    // Bounded: a saturated pool answers 503 rather than holding a request
    // (or a health check) indefinitely.
    if (!cv_.wait_for(lock, std::chrono::seconds(5),
                      [&] { return !idle_.empty() || created_ < size_; })) {
      h.status_ = Status::Unavailable("store: no free PostgreSQL connection within 5 s");
      return h;
    }
    if (!idle_.empty()) {
      h.conn_ = std::move(idle_.back());
      idle_.pop_back();
      h.conn_->DropIfDeadWhileIdle();
    } else {
      ++created_;
      h.conn_ = std::make_unique<Conn>(url_, connect_timeout_s_, generic_plans_);
    }
    h.pool_ = this;
    if (h.conn_->broken() && std::chrono::steady_clock::now() < fail_until_) {
      h.status_ = Status::Unavailable("store: PostgreSQL is unreachable");
      idle_.push_back(std::move(h.conn_));
      cv_.notify_one();
      return h;
    }
  }
  if (h.conn_->broken()) {
    Status s = h.conn_->Ensure();
    if (!s.ok()) {
      h.status_ = s;
      std::lock_guard lock(mu_);
      fail_until_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(200);
      idle_.push_back(std::move(h.conn_));
      cv_.notify_one();
    }
  }
  return h;
}

void Pool::Return(std::unique_ptr<Conn> c) {
  // A connection left inside a transaction (an error path) is cleaned first.
  if (c->raw() && PQstatus(c->raw()) == CONNECTION_OK &&
      PQtransactionStatus(c->raw()) != PQTRANS_IDLE) {
    c->Rollback();
  }
  std::lock_guard lock(mu_);
  idle_.push_back(std::move(c));
  cv_.notify_one();
}

}  // namespace triggers::store::pg
