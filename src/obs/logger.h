// Structured logs: one JSON object per line on stderr. Lines are queued and
// written by a background thread in batches, so request threads never block
// on stderr. The queue is bounded: past it, lines are dropped and counted.
// Never pass a key, a secret or a payload to a log line.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace triggers::obs {

enum class Level { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

bool ParseLevel(std::string_view s, Level* out);
void SetLogLevel(Level level);
bool LogEnabled(Level level);
// Starts the background writer (without it, lines are written synchronously).
void StartAsyncLogging();
// Writes what is queued and stops the background writer.
void StopAsyncLogging();

// Builds one line: LogLine(Level::kInfo, "listening").Str("addr", a).Emit();
class LogLine {
 public:
  LogLine(Level level, std::string_view msg);
  LogLine& Str(std::string_view key, std::string_view value);
  LogLine& Int(std::string_view key, int64_t value);
  LogLine& Num(std::string_view key, double value);
  LogLine& Null(std::string_view key);
  void Emit();

 private:
  bool enabled_;
  std::string buf_;
};

}  // namespace triggers::obs
