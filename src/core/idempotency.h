// The idempotency rule of POST /v1/events (SPEC section 4): the same key from
// the same tenant within the window returns the first event; the same key
// with a different body is a conflict; an expired record no longer counts.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace triggers::core {

struct IdempotencyRecord {
  std::string body_hash;
  int64_t created_at_ms = 0;
};

enum class IdempotencyDecision { kNew, kDuplicate, kConflict };

IdempotencyDecision DecideIdempotency(const std::optional<IdempotencyRecord>& existing,
                                      const std::string& body_hash, int64_t now_ms,
                                      int64_t window_ms);

}  // namespace triggers::core
