// Validation of event bodies on the ingest path (SPEC section 4), without a
// DOM: simdjson On-Demand validates the whole body (every value is visited,
// so malformed JSON anywhere is refused), then the known fields are read and
// `data` is kept as the exact bytes the producer sent.
//
// One EventParser per thread: it owns simdjson buffers and is not thread-safe.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/json_reader.h"
#include "triggers/model.h"
#include "triggers/status.h"

namespace triggers::core {

inline constexpr size_t kMaxTypeLength = 128;
inline constexpr size_t kMaxAttributeLength = 256;
inline constexpr size_t kMaxBatchEntries = 500;

// True when `type` is 1-128 chars of [A-Za-z0-9._:/-].
bool IsValidEventType(std::string_view type);

class EventParser {
 public:
  EventParser();
  ~EventParser();

  // Parses one event body into `out` (type, source, subject, ordering_key,
  // data). InvalidJson (message says at which byte) or Validation (message
  // names the field).
  Status ParseEvent(std::string_view body, Event& out);

  // Parses {"events":[...]}: the body must be valid JSON with 1-500 entries;
  // then each entry is validated on its own (`entries[i]` and `statuses[i]`).
  Status ParseBatch(std::string_view body, std::vector<Event>& entries,
                    std::vector<Status>& statuses);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace triggers::core
