// API key format, tenant names and scopes (SPEC section 3).
// A key is "trg_" followed by 43 base62 characters (256 bits from the CSPRNG);
// only its SHA-256 is stored.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace triggers::core {

inline constexpr std::string_view kKeyPrefix = "trg_";
inline constexpr size_t kKeyBodyLength = 43;

std::string GenerateApiKey();
// Shape check only (prefix, length, alphabet): cheap rejection before hashing.
bool LooksLikeApiKey(std::string_view key);
// Extracts the key from `Authorization: Bearer <key>` (scheme case-insensitive)
// or from X-API-Key; empty when neither carries one.
std::string_view ExtractKey(std::string_view authorization, std::string_view x_api_key);

bool IsValidTenant(std::string_view tenant);  // [a-z0-9_-]{1,64}
// "ingest" -> kScopeIngest, ...; nullopt for an unknown name.
std::optional<uint32_t> ScopeFromName(std::string_view name);
std::vector<std::string> ScopeNames(uint32_t scopes);  // in canonical order
std::string ScopesToCsv(uint32_t scopes);
// "ingest,read" -> bits; nullopt when a name is unknown or the list is empty.
std::optional<uint32_t> ScopesFromCsv(std::string_view csv);

}  // namespace triggers::core
