// A thin layer over libpq for the PostgreSQL store: connections that
// reconnect themselves, per-connection prepared statements, text parameters,
// Postgres array literals, and a pool. Nothing here knows the schema.
#pragma once

#include <libpq-fe.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "triggers/status.h"

namespace triggers::store::pg {

struct ResultDeleter {
  void operator()(PGresult* r) const { PQclear(r); }
};
using ResultPtr = std::unique_ptr<PGresult, ResultDeleter>;

// A query result: rows of text values.
class Rows {
 public:
  Rows() = default;
  explicit Rows(ResultPtr r) : r_(std::move(r)) {}
  int size() const { return r_ ? PQntuples(r_.get()) : 0; }
  bool IsNull(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
  std::string Text(int row, int col) const {
    return std::string(PQgetvalue(r_.get(), row, col),
                       static_cast<size_t>(PQgetlength(r_.get(), row, col)));
  }
  std::optional<std::string> OptText(int row, int col) const {
    if (IsNull(row, col)) return std::nullopt;
    return Text(row, col);
  }
  int64_t Int(int row, int col) const;
  double Double(int row, int col) const;
  bool Bool(int row, int col) const { return PQgetvalue(r_.get(), row, col)[0] == 't'; }
  // Rows changed by an INSERT/UPDATE/DELETE.
  int64_t Affected() const;

 private:
  ResultPtr r_;
};

// Parameters of one statement, sent as text. Strings are referenced, not
// copied: they must outlive the call. Numbers are formatted into owned storage.
class Params {
 public:
  Params& Add(const std::string& v) {
    if (v.find('\0') != std::string::npos) has_nul_ = true;
    values_.push_back(v.c_str());
    return *this;
  }
  Params& Add(const char* v) {
    values_.push_back(v);
    return *this;
  }
  Params& Add(const std::optional<std::string>& v) {
    if (v) return Add(*v);
    values_.push_back(nullptr);
    return *this;
  }
  Params& Add(int64_t v) {
    owned_.push_back(std::to_string(v));
    values_.push_back(owned_.back().c_str());
    return *this;
  }
  Params& Add(int v) { return Add(static_cast<int64_t>(v)); }
  Params& Add(const std::optional<int>& v) {
    if (!v) return Null();
    return Add(static_cast<int64_t>(*v));
  }
  Params& Add(double v);
  Params& Add(bool v) {
    values_.push_back(v ? "t" : "f");
    return *this;
  }
  Params& Null() {
    values_.push_back(nullptr);
    return *this;
  }
  // NULL when `null`, else v.
  Params& AddOrNull(bool null, int64_t v) { return null ? Null() : Add(v); }
  // Takes ownership of a built value (an array literal, a hex string).
  Params& Own(std::string v) {
    if (v.find('\0') != std::string::npos) has_nul_ = true;
    owned_.push_back(std::move(v));
    values_.push_back(owned_.back().c_str());
    return *this;
  }
  int size() const { return static_cast<int>(values_.size()); }
  const char* const* values() const { return values_.data(); }
  // A value holds a NUL byte: text parameters cannot carry it (the
  // statement is refused with Validation instead of sending a cut value).
  bool has_nul() const { return has_nul_; }

 private:
  bool has_nul_ = false;
  std::vector<const char*> values_;
  std::deque<std::string> owned_;  // stable addresses
};

// Builds a Postgres array literal ({"a","b",NULL}) for unnest($n::text[]).
class ArrayBuilder {
 public:
  void Add(std::string_view v);
  void Add(const std::optional<std::string>& v) {
    if (v) {
      Add(std::string_view(*v));
    } else {
      AddNull();
    }
  }
  void Add(int64_t v);
  void AddNull();
  std::string Finish() {
    out_ += '}';
    return std::move(out_);
  }
  size_t size() const { return n_; }

 private:
  void Sep() {
    if (n_++ > 0) out_ += ',';
  }
  std::string out_ = "{";
  size_t n_ = 0;
};

// One connection. Reconnects on the next use after it broke.
class Conn {
 public:
  // `generic_plans`: the session plans its prepared statements once
  // (plan_cache_mode=force_generic_plan) instead of once per execution.
  Conn(std::string url, int connect_timeout_s, bool generic_plans = false)
      : url_(std::move(url)),
        connect_timeout_s_(connect_timeout_s),
        generic_plans_(generic_plans) {}
  ~Conn();
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // Connected and ready, or Unavailable.
  Status Ensure();
  // A parameterised statement, prepared once per connection (keyed by the
  // address of `sql`, which must be a string with static storage).
  Result<Rows> Run(const char* sql, const Params& p);
  // A parameterised statement that is not kept prepared (dynamic SQL).
  Result<Rows> RunOnce(const std::string& sql, const Params& p);
  // One or more statements without parameters.
  Status Exec(const char* sql);
  // Runs `body` in a transaction: committed when it returns Ok, else rolled
  // back. `no_fsync`: the commit does not wait for the WAL flush
  // (synchronous_commit=off for this transaction only).
  template <typename F>
  Status Txn(bool no_fsync, F&& body) {
    Status s = Exec(no_fsync ? "BEGIN; SET LOCAL synchronous_commit=off" : "BEGIN");
    if (!s.ok()) return s;
    s = body();
    if (s.ok()) s = Exec("COMMIT");
    if (!s.ok()) Rollback();
    return s;
  }
  void Rollback();
  // The last statement failed with a deadlock or a serialization failure
  // (SQLSTATE 40P01 / 40001): running the whole transaction again is safe.
  bool last_failure_retryable() const { return last_retryable_; }
  // Pool use: drops the connection if the server closed it while idle.
  void DropIfDeadWhileIdle();
  PGconn* raw() const { return c_; }
  bool broken() const { return c_ == nullptr || PQstatus(c_) != CONNECTION_OK; }

 private:
  Result<Rows> Check(PGresult* r, const char* what);

  std::string url_;
  int connect_timeout_s_;
  bool generic_plans_;
  PGconn* c_ = nullptr;
  bool last_retryable_ = false;
  std::unordered_map<const char*, std::string> prepared_;
};

// Opens a raw libpq connection with our defaults (the URL's own settings win).
PGconn* Connect(const std::string& url, int connect_timeout_s);

// A fixed-size pool. Get() waits for a free connection; a connection that
// cannot (re)connect yields Unavailable at once, and after a failed connect
// further callers fail fast for a short while instead of queueing up behind
// connect timeouts (the database is down: answer 503 quickly).
class Pool {
 public:
  // `generic_plans`: see Conn.
  Pool(std::string url, int size, int connect_timeout_s, bool generic_plans = false);

  class Handle {
   public:
    Handle() = default;
    Handle(Handle&& o) noexcept : pool_(o.pool_), conn_(std::move(o.conn_)), status_(o.status_) {
      o.pool_ = nullptr;
    }
    ~Handle() {
      if (pool_ && conn_) pool_->Return(std::move(conn_));
    }
    Conn* operator->() const { return conn_.get(); }
    Conn& operator*() const { return *conn_; }
    explicit operator bool() const { return conn_ != nullptr; }
    const Status& status() const { return status_; }

   private:
    friend class Pool;
    Pool* pool_ = nullptr;
    std::unique_ptr<Conn> conn_;
    Status status_;
  };
  Handle Get();

 private:
  void Return(std::unique_ptr<Conn> c);
  std::string url_;
  int size_;
  int connect_timeout_s_;
  bool generic_plans_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<Conn>> idle_;
  int created_ = 0;
  std::chrono::steady_clock::time_point fail_until_{};
};

}  // namespace triggers::store::pg
