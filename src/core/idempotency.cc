#include "core/idempotency.h"

#include "core/crypto.h"

namespace triggers::core {

IdempotencyDecision DecideIdempotency(const std::optional<IdempotencyRecord>& existing,
                                      const std::string& body_hash, int64_t now_ms,
                                      int64_t window_ms) {
  if (!existing || existing->created_at_ms + window_ms <= now_ms) {
    return IdempotencyDecision::kNew;
  }
  return ConstantTimeEquals(existing->body_hash, body_hash) ? IdempotencyDecision::kDuplicate
                                                            : IdempotencyDecision::kConflict;
}

}  // namespace triggers::core
