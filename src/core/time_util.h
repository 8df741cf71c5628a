// Time and size formats of the API: RFC 3339 UTC with milliseconds, durations
// such as 500ms/15s/2m/1h/7d, byte sizes such as 262144/256KiB/1MiB.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace triggers::core {

// "2026-11-25T20:50:32.123Z"
std::string FormatTimeMs(int64_t unix_ms);
// Appends the same format to `out` (no allocation beyond growth of `out`).
void AppendTimeMs(std::string& out, int64_t unix_ms);
// Accepts "YYYY-MM-DDTHH:MM:SS[.fff...](Z|+hh:mm|-hh:mm)". nullopt when malformed.
std::optional<int64_t> ParseTimeMs(std::string_view s);

// "500ms", "15s", "2m", "1h", "7d" (a positive integer and one unit) -> ms.
std::optional<int64_t> ParseDurationMs(std::string_view s);
// "262144", "256KiB", "1MiB", "64KB" -> bytes.
std::optional<int64_t> ParseSizeBytes(std::string_view s);

}  // namespace triggers::core
