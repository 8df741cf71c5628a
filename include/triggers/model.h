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
};

}  // namespace triggers
