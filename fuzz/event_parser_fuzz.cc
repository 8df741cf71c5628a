// Ingest validation (SPEC section 4) on arbitrary bytes. Beyond "no crash":
// every event the parser accepts has a valid type and a `data` that the
// filter matcher can parse (same depth limit), so it can be matched.
#include <boost/json/parse.hpp>
#include <string>
#include <vector>

#include "core/event_parser.h"
#include "targets.h"

namespace triggers::fuzz {
namespace {

void CheckAccepted(const Event& ev) {
  FUZZ_CHECK(core::IsValidEventType(ev.type), "accepted event has an invalid type");
  boost::json::parse_options opts;
  opts.max_depth = core::kMaxJsonDepth;
  boost::system::error_code ec;
  boost::json::parse(ev.data, ec, boost::json::storage_ptr(), opts);
  FUZZ_CHECK(!ec, "accepted event's data does not parse for matching");
}

}  // namespace

void EventParserOne(const uint8_t* data, size_t size) {
  // One parser per thread, as on the ingest path: reusing it across inputs
  // also tests that no state leaks from one body to the next.
  static thread_local core::EventParser parser;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  Event ev;
  if (parser.ParseEvent(body, ev).ok()) CheckAccepted(ev);
  std::vector<Event> entries;
  std::vector<Status> statuses;
  if (parser.ParseBatch(body, entries, statuses).ok()) {
    FUZZ_CHECK(entries.size() == statuses.size(), "batch entries and statuses differ in count");
    FUZZ_CHECK(!entries.empty() && entries.size() <= core::kMaxBatchEntries,
               "accepted batch size out of range");
    for (size_t i = 0; i < entries.size(); ++i) {
      if (statuses[i].ok()) CheckAccepted(entries[i]);
    }
  }
}

}  // namespace triggers::fuzz
