// The small parsers of the API's text formats: RFC 3339 times, durations,
// byte sizes, pagination cursors and query parameters. Byte 0 picks the
// parser; the rest is its input. Round trips are checked where the format
// promises one.
#include <string>

#include "api/http_types.h"
#include "core/cursor.h"
#include "core/time_util.h"
#include "targets.h"

namespace triggers::fuzz {
namespace {

// FormatTimeMs writes a four-digit year: 0000-01-01 .. 9999-12-31.
constexpr int64_t kMinFormattableMs = -62167219200000;
constexpr int64_t kMaxFormattableMs = 253402300799999;

void Time(std::string_view in) {
  auto t = core::ParseTimeMs(in);
  if (!t) return;
  if (*t < kMinFormattableMs || *t > kMaxFormattableMs) return;
  std::string text = core::FormatTimeMs(*t);
  auto again = core::ParseTimeMs(text);
  FUZZ_CHECK(again && *again == *t, "time does not survive format and parse");
}

void Cursor(std::string_view in) {
  for (std::string_view prefix : {"evt_", "sub_", "dlv_", "key_"}) {
    auto id = core::DecodeCursor(in, prefix);
    if (id) {
      auto back = core::DecodeCursor(core::EncodeCursor(*id), prefix);
      FUZZ_CHECK(back && *back == *id, "cursor id does not survive encode and decode");
    }
    // Any id the store could hand out encodes to a cursor that gives it back.
    auto made = core::DecodeCursor(core::EncodeCursor(in), prefix);
    if (made) FUZZ_CHECK(*made == in, "a cursor decoded to a different id");
  }
}

void Query(std::string_view in) {
  for (std::string_view name : {"limit", "cursor", "type", "since", "a"}) {
    auto v = api::QueryParam(in, name);
    if (v) FUZZ_CHECK(v->size() <= in.size(), "a decoded parameter is longer than the query");
  }
}

}  // namespace

void ParseOne(const uint8_t* data, size_t size) {
  if (size == 0) return;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  switch (data[0] % 5) {
    case 0: {
      auto d = core::ParseDurationMs(in);
      if (d) FUZZ_CHECK(*d >= 0, "negative duration");
      break;
    }
    case 1: {
      auto b = core::ParseSizeBytes(in);
      if (b) FUZZ_CHECK(*b >= 0, "negative size");
      break;
    }
    case 2:
      Time(in);
      break;
    case 3:
      Cursor(in);
      break;
    case 4:
      Query(in);
      break;
  }
}

}  // namespace triggers::fuzz
