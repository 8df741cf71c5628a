#include "core/cursor.h"

#include "core/crypto.h"
#include "core/ids.h"

namespace triggers::core {

std::string EncodeCursor(std::string_view last_id) {
  std::string raw = "c1:";
  raw.append(last_id);
  return Base64Url(raw);
}

std::optional<std::string> DecodeCursor(std::string_view cursor, std::string_view prefix) {
  if (cursor.size() > 128) return std::nullopt;
  std::string raw;
  if (!Base64UrlDecode(cursor, raw)) return std::nullopt;
  if (raw.size() < 3 || raw.compare(0, 3, "c1:") != 0) return std::nullopt;
  std::string id = raw.substr(3);
  if (!IsValidId(id, prefix)) return std::nullopt;
  return id;
}

}  // namespace triggers::core
