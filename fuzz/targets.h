// The fuzz targets' bodies as plain functions, in one library used twice:
// by the libFuzzer executables (fuzz_main.cc, built with TRIGGERS_FUZZ=ON
// and clang) and by the replay test (tests/unit/fuzz/fuzz_replay_test.cc,
// run by `make test`), which feeds them every seed in fuzz/corpus/ and every
// input once found to crash in fuzz/regressions/.
//
// Each function returns normally for any input; a broken invariant aborts
// with a message (FUZZ_CHECK), which libFuzzer reports as a crash.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>

#define FUZZ_CHECK(cond, what)                                                                \
  do {                                                                                        \
    if (!(cond)) {                                                                            \
      std::fprintf(stderr, "fuzz check failed at %s:%d: %s (%s)\n", __FILE__, __LINE__, what, \
                   #cond);                                                                    \
      std::abort();                                                                           \
    }                                                                                         \
  } while (0)

namespace triggers::fuzz {

using Entry = void (*)(const uint8_t* data, size_t size);

// src/core/event_parser: one event body, and the same bytes as a batch.
void EventParserOne(const uint8_t* data, size_t size);
// src/core/event_pattern: byte 0 picks type globs or an EventBridge filter
// (then pattern and event are separated by the first NUL byte).
void EventPatternOne(const uint8_t* data, size_t size);
// src/api/json_body: the management API's request-body reader.
void JsonBodyOne(const uint8_t* data, size_t size);
// src/core/time_util, src/core/cursor, api::QueryParam: byte 0 picks which.
void ParseOne(const uint8_t* data, size_t size);
// src/http + src/api: the bytes of one connection through the server's
// request parsing, the router and the handlers, to serialized responses.
void HttpRequestOne(const uint8_t* data, size_t size);

struct Target {
  std::string_view name;  // the directory under fuzz/corpus/ and fuzz/regressions/
  Entry entry;
};

inline constexpr Target kTargets[] = {
    {"event_parser", EventParserOne}, {"event_pattern", EventPatternOne},
    {"json_body", JsonBodyOne},       {"parse", ParseOne},
    {"http_request", HttpRequestOne},
};

}  // namespace triggers::fuzz
