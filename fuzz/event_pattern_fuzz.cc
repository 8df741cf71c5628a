// Subscription matching (SPEC section 5): type globs, and EventBridge filters
// compiled and then matched against an event, as the subscription cache
// builds it. Compilation must validate everything so that matching never
// fails; the fuzzer checks that compile and match neither crash nor hang.
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <vector>

#include "core/event_parser.h"
#include "core/event_pattern.h"
#include "delivery/subscription_cache.h"
#include "targets.h"

namespace triggers::fuzz {
namespace {

namespace json = boost::json;

// Byte 0 even: "<glob> <type>" (globs separated by ',' for a TypeFilter).
void Globs(std::string_view in) {
  size_t sp = in.find(' ');
  std::string_view globs = in.substr(0, sp);
  std::string_view type = sp == std::string_view::npos ? "" : in.substr(sp + 1);
  std::vector<std::string> list;
  while (true) {
    size_t comma = globs.find(',');
    list.emplace_back(globs.substr(0, comma));
    if (comma == std::string_view::npos) break;
    globs.remove_prefix(comma + 1);
  }
  for (const auto& g : list) {
    bool valid = core::ValidateTypeGlob(g).ok();
    bool match = core::TypeGlobMatches(g, type);
    // A valid glob without '*' is a literal: it matches only itself.
    if (valid && g.find('*') == std::string::npos) {
      FUZZ_CHECK(match == (g == type), "a literal glob matched another type");
    }
  }
  auto filter = core::TypeFilter::Compile(list);
  if (filter.ok()) (void)filter.value().Matches(type);
}

// The event as the subscription cache's filters see it
// (delivery::EventDocument); bytes that are not a valid event are
// matched as whatever JSON value they are.
json::value EventDoc(std::string_view in) {
  static thread_local core::EventParser parser;
  json::parse_options opts;
  opts.max_depth = core::kMaxJsonDepth;
  boost::system::error_code ec;
  Event ev;
  if (!parser.ParseEvent(in, ev).ok()) {
    json::value v = json::parse(in, ec, json::storage_ptr(), opts);
    return ec ? json::value(nullptr) : v;
  }
  json::value doc = delivery::EventDocument(ev);
  FUZZ_CHECK(!doc.is_string(), "an accepted event's data does not parse");
  return doc;
}

// Byte 0 odd: "<filter JSON>\0<event JSON>".
void Filter(std::string_view in) {
  size_t nul = in.find('\0');
  std::string_view pattern_text = in.substr(0, nul);
  std::string_view event_text = nul == std::string_view::npos ? "{}" : in.substr(nul + 1);
  // The API reads a subscription body with the depth limit of json_body.cc.
  json::parse_options opts;
  opts.max_depth = 64;
  boost::system::error_code ec;
  json::value pattern = json::parse(pattern_text, ec, json::storage_ptr(), opts);
  if (ec) return;
  auto compiled = core::EventPattern::Compile(pattern);
  if (!compiled.ok()) return;
  json::value event = EventDoc(event_text);
  (void)compiled.value().Matches(event);
  // Copies share the compiled tree and must answer the same.
  core::EventPattern copy = compiled.value();
  FUZZ_CHECK(copy.Matches(event) == compiled.value().Matches(event), "copy answers differently");
}

}  // namespace

void EventPatternOne(const uint8_t* data, size_t size) {
  if (size == 0) return;
  std::string_view in(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    Globs(in);
  } else {
    Filter(in);
  }
}

}  // namespace triggers::fuzz
