// The simdjson side of JsonReader, for the parsers that read the checked
// document further (core/event_parser.cc). Include it only from files built
// with the simdjson compile flags (see CMakeLists.txt): simdjson's inline
// functions must be compiled for one instruction set in the whole program.
#pragma once

#include <simdjson.h>

#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "core/json_reader.h"

namespace triggers::core {

struct JsonReader::Impl {
  simdjson::ondemand::parser parser;
  std::string buffer;  // body + SIMDJSON_PADDING

  // Copies `body` into the padded buffer, checks all of it (the rules of
  // JsonReader) and leaves `doc` rewound to its start, ready to be read.
  Status Load(std::string_view body, simdjson::ondemand::document& doc);

 private:
  // The keys seen so far in the open object at each depth (duplicate check).
  struct Keys {
    std::vector<std::string_view> few;          // linear search while small
    std::unordered_set<std::string_view> many;  // then hashed
    bool Add(std::string_view k);               // false when already present
    void Clear() {
      few.clear();
      if (many.empty()) return;
      // clear() costs the bucket count: a set grown by one huge object is
      // dropped, so later small objects do not pay for it.
      if (many.bucket_count() > 1024) {
        std::unordered_set<std::string_view>().swap(many);
      } else {
        many.clear();
      }
    }
  };
  simdjson::error_code Walk(simdjson::ondemand::value v, int depth);
  std::vector<Keys> keys_;  // by depth
  std::string duplicate_;   // the repeated key, when Walk found one
};

}  // namespace triggers::core
