// Small JSON helpers for hand-built responses on hot paths.
#pragma once

#include <string>
#include <string_view>

namespace triggers::core {

// Appends `s` as a JSON string literal (with quotes), escaping as RFC 8259 requires.
void AppendJsonString(std::string& out, std::string_view s);
// Appends a JSON string, or null when `s` is nullptr.
void AppendJsonStringOrNull(std::string& out, const std::string* s);
bool IsValidUtf8(std::string_view s);
// `s` with every byte that is not part of valid UTF-8, and NUL, replaced by
// U+FFFD (for bytes from outside, e.g. a webhook endpoint's response).
std::string ToValidUtf8(std::string_view s);

}  // namespace triggers::core
