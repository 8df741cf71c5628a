// Status and Result<T>: errors as values (LevelDB style). No exceptions cross
// module boundaries on hot paths; every failure carries a code and a message
// that is safe to show to a client (never a key, a secret or a payload).
#pragma once

#include <optional>
#include <string>
#include <utility>

namespace triggers {

class Status {
 public:
  enum class Code {
    kOk = 0,
    kInvalidJson,    // 400 invalid_json
    kValidation,     // 400 validation_error
    kLimitExceeded,  // 400 limit_exceeded: a per-tenant limit (SPEC 10)
    kUnauthorized,   // 401
    kForbidden,      // 403
    kNotFound,       // 404
    kConflict,       // 409
    kTooLarge,       // 413
    kUnavailable,    // 503: store down, shutting down
    kInternal,       // 500: a bug; never a client's fault
  };

  Status() = default;
  static Status Ok() { return Status(); }
  static Status InvalidJson(std::string m) { return Status(Code::kInvalidJson, std::move(m)); }
  static Status Validation(std::string m) { return Status(Code::kValidation, std::move(m)); }
  static Status LimitExceeded(std::string m) { return Status(Code::kLimitExceeded, std::move(m)); }
  static Status Unauthorized(std::string m) { return Status(Code::kUnauthorized, std::move(m)); }
  static Status Forbidden(std::string m) { return Status(Code::kForbidden, std::move(m)); }
  static Status NotFound(std::string m) { return Status(Code::kNotFound, std::move(m)); }
  static Status Conflict(std::string m) { return Status(Code::kConflict, std::move(m)); }
  static Status TooLarge(std::string m) { return Status(Code::kTooLarge, std::move(m)); }
  static Status Unavailable(std::string m) { return Status(Code::kUnavailable, std::move(m)); }
  static Status Internal(std::string m) { return Status(Code::kInternal, std::move(m)); }

  bool ok() const { return code_ == Code::kOk; }
  bool IsNotFound() const { return code_ == Code::kNotFound; }
  bool IsUnavailable() const { return code_ == Code::kUnavailable; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

 private:
  Status(Code c, std::string m) : code_(c), message_(std::move(m)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

// A value or the Status that explains its absence.
template <typename T>
class Result {
 public:
  Result(T value) : value_(std::move(value)) {}          // NOLINT: implicit by design
  Result(Status status) : status_(std::move(status)) {}  // NOLINT
  bool ok() const { return status_.ok(); }
  const Status& status() const { return status_; }
  T& value() { return *value_; }
  const T& value() const { return *value_; }
  T* operator->() { return &*value_; }
  T& operator*() { return *value_; }

 private:
  std::optional<T> value_;
  Status status_;
};

}  // namespace triggers
