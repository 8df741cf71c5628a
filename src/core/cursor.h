// Opaque pagination cursors: base64url("c1:" + last id). Clients must treat
// them as opaque; the version tag lets the format change later.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace triggers::core {

std::string EncodeCursor(std::string_view last_id);
// The id inside a cursor made by EncodeCursor with an id of `prefix`;
// nullopt when the cursor is malformed.
std::optional<std::string> DecodeCursor(std::string_view cursor, std::string_view prefix);

}  // namespace triggers::core
