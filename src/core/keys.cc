#include "core/keys.h"

#include "core/crypto.h"
#include "triggers/model.h"

namespace triggers::core {
namespace {

constexpr char kBase62[] = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

bool IsBase62(char c) {
  return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

struct ScopeName {
  std::string_view name;
  uint32_t bit;
};
constexpr ScopeName kScopes[] = {{"ingest", kScopeIngest},
                                 {"read", kScopeRead},
                                 {"consume", kScopeConsume},
                                 {"manage", kScopeManage}};

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

}  // namespace

std::string GenerateApiKey() {
  std::string key(kKeyPrefix);
  while (key.size() < kKeyPrefix.size() + kKeyBodyLength) {
    std::string bytes = RandomBytes(64);
    for (unsigned char b : bytes) {
      if (b >= 248) continue;  // rejection sampling: 248 = 4 * 62, no modulo bias
      key += kBase62[b % 62];
      if (key.size() == kKeyPrefix.size() + kKeyBodyLength) break;
    }
  }
  return key;
}

bool LooksLikeApiKey(std::string_view key) {
  if (key.size() != kKeyPrefix.size() + kKeyBodyLength) return false;
  if (key.substr(0, kKeyPrefix.size()) != kKeyPrefix) return false;
  for (char c : key.substr(kKeyPrefix.size())) {
    if (!IsBase62(c)) return false;
  }
  return true;
}

std::string_view ExtractKey(std::string_view authorization, std::string_view x_api_key) {
  if (!authorization.empty()) {
    if (authorization.size() > 7 && IEquals(authorization.substr(0, 7), "bearer ")) {
      std::string_view k = authorization.substr(7);
      while (!k.empty() && k.front() == ' ') k.remove_prefix(1);
      while (!k.empty() && k.back() == ' ') k.remove_suffix(1);
      return k;
    }
    return {};
  }
  return x_api_key;
}

bool IsValidTenant(std::string_view t) {
  if (t.empty() || t.size() > 64) return false;
  for (char c : t) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-')) return false;
  }
  return true;
}

std::optional<uint32_t> ScopeFromName(std::string_view name) {
  for (const auto& s : kScopes) {
    if (s.name == name) return s.bit;
  }
  return std::nullopt;
}

std::vector<std::string> ScopeNames(uint32_t scopes) {
  std::vector<std::string> out;
  for (const auto& s : kScopes) {
    if (scopes & s.bit) out.emplace_back(s.name);
  }
  return out;
}

std::string ScopesToCsv(uint32_t scopes) {
  std::string out;
  for (const auto& s : kScopes) {
    if (!(scopes & s.bit)) continue;
    if (!out.empty()) out += ',';
    out += s.name;
  }
  return out;
}

std::optional<uint32_t> ScopesFromCsv(std::string_view csv) {
  uint32_t bits = 0;
  while (!csv.empty()) {
    size_t comma = csv.find(',');
    std::string_view part = csv.substr(0, comma);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    auto bit = ScopeFromName(part);
    if (!bit) return std::nullopt;
    bits |= *bit;
    if (comma == std::string_view::npos) break;
    csv.remove_prefix(comma + 1);
  }
  if (bits == 0) return std::nullopt;
  return bits;
}

}  // namespace triggers::core
