// The one reader of JSON request bodies. Every body the API takes (events,
// batches, keys, subscriptions, receive, ack, nack, replay, ...) is checked
// here first, so one rule holds on every route: RFC 8259 syntax (numbers by
// the grammar), valid UTF-8, nesting at most kMaxJsonDepth levels, no object
// with the same key twice (at any depth), one value and nothing after it, and
// that value an object. Syntax errors and duplicate keys are InvalidJson (the
// message says where, or names the key); any other top-level value is
// Validation ("body must be a JSON object").
//
// One JsonReader per thread: it owns simdjson buffers and is not thread-safe.
#pragma once

#include <memory>
#include <string_view>

#include "triggers/status.h"

namespace triggers::core {

// The deepest nesting of arrays and objects in a body (the body itself is
// level 1), so an event's `data` holds at most kMaxJsonDepth - 1 levels. The
// one limit of every body, of ingest validation and of filter matching, which
// parses a stored `data` with Boost.JSON's max_depth set to it: every event
// ingest accepts can be matched.
inline constexpr int kMaxJsonDepth = 128;

class JsonReader {
 public:
  JsonReader();
  ~JsonReader();
  JsonReader(const JsonReader&) = delete;
  JsonReader& operator=(const JsonReader&) = delete;

  // Checks `body` against the rules above. No allocation beyond the reader's
  // reusable buffers.
  Status Check(std::string_view body);

  // The simdjson side, for the ingest parser (core/json_reader_impl.h).
  struct Impl;
  Impl& impl() { return *impl_; }

 private:
  std::unique_ptr<Impl> impl_;
};

// The reader of the calling thread (for handlers on the blocking pool).
JsonReader& ThreadJsonReader();

}  // namespace triggers::core
