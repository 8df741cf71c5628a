// Percent-decoding, one implementation for query strings, form bodies (the
// SQS query protocol) and SigV4's canonical query.
#pragma once

#include <string>
#include <string_view>

namespace triggers::core {

// %XX escapes decoded (a malformed escape is kept as it is); '+' is a space
// when `plus_is_space` (query strings and form bodies; SigV4 keeps '+').
std::string PercentDecode(std::string_view s, bool plus_is_space);

}  // namespace triggers::core
