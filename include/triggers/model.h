// Value types shared by the API, the store and the delivery workers.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace triggers {

// Scopes of an API key, as a bit set.
enum Scope : uint32_t {
  kScopeIngest = 1u << 0,
  kScopeRead = 1u << 1,
  kScopeConsume = 1u << 2,
  kScopeManage = 1u << 3,
};

struct ApiKey {
  std::string id;       // key_<ulid>
  std::string tenant;   // empty for the admin key
  uint32_t scopes = 0;  // Scope bits
  std::optional<std::string> name;
  std::string hash;  // 32 raw bytes of SHA-256(plain key)
  bool admin = false;
  int64_t created_at_ms = 0;
  std::optional<int64_t> revoked_at_ms;
  // AWS credentials (SPEC 12; src/aws/credentials.h): both empty for a trg_
  // key. `sealed_secret` is the secret access key encrypted under the
  // server key (raw bytes), never the plain secret.
  std::string access_key_id;
  std::string sealed_secret;
};

// An event as stored and as delivered.
struct Event {
  std::string id;  // evt_<ulid>
  std::string tenant;
  std::string type;
  std::optional<std::string> source;
  std::optional<std::string> subject;
  std::optional<std::string> ordering_key;
  std::string data;  // raw JSON bytes, exactly as received
  int64_t received_at_ms = 0;
  // EventBridge Resources of an event put through PutEvents: a JSON array of
  // strings (compact), absent for every other event.
  std::optional<std::string> resources;
};

}  // namespace triggers

namespace triggers {

// A subscription as stored (SPEC section 5). `event_types` and `filter` are
// kept as the JSON text the client sent (compiled in memory for matching).
struct Subscription {
  std::string id;  // sub_<ulid>
  std::string tenant;
  std::string kind = "webhook";  // webhook | pull
  std::optional<std::string> url;
  std::string event_types_json = "[]";  // JSON array of globs; [] = all types
  std::optional<std::string> filter_json;
  int max_in_flight = 16;
  double rate_limit_per_s = 0;
  bool ordered = false;
  std::optional<std::string> description;
  bool enabled = true;
  std::string secret;  // whsec_...
  std::optional<std::string> previous_secret;
  int64_t previous_secret_expires_at_ms = 0;
  int max_receives = 10;
  // Pull only: the SQS queue name (SPEC 12), 1-80 of [A-Za-z0-9_-], unique per tenant.
  std::optional<std::string> name;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
};

// Delivery states (SPEC section 6).
inline constexpr const char* kDeliveryPending = "pending";
inline constexpr const char* kDeliveryInFlight = "in_flight";
inline constexpr const char* kDeliverySucceeded = "succeeded";
inline constexpr const char* kDeliveryRetrying = "retrying";
inline constexpr const char* kDeliveryDead = "dead";

struct DeliveryAttempt {
  int64_t at_ms = 0;
  std::optional<int> status_code;
  int64_t latency_ms = 0;
  std::optional<std::string> error;
  std::string response_snippet;
};

struct Delivery {
  std::string id;  // dlv_<ulid>
  std::string tenant;
  std::string event_id;
  std::string subscription_id;
  std::string status;
  int attempts = 0;
  int64_t next_attempt_at_ms = 0;
  std::optional<std::string> last_error;
  std::optional<int> last_status_code;
  int64_t created_at_ms = 0;
  int64_t updated_at_ms = 0;
  std::vector<DeliveryAttempt> attempt_log;  // filled by GetDelivery only
};

}  // namespace triggers
