// Event type globs (`event_types` of a subscription): validation and matching.
#include <string>

#include "core/event_pattern.h"
#include "core/event_pattern_nodes.h"

namespace triggers::core {
namespace json = boost::json;

using internal::Quote;

namespace {

bool IsGlobChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '/' || c == '-' || c == '*';
}

}  // namespace

Status ValidateTypeGlob(std::string_view pattern) {
  auto fail = [&](std::string_view why) {
    return Status::Validation("event type pattern " + Quote(pattern, kMaxTypeGlobLength) + " " +
                              std::string(why));
  };
  if (pattern.empty() || pattern.size() > kMaxTypeGlobLength) {
    return fail("must be 1-128 characters of [A-Za-z0-9._:/-*]");
  }
  for (char c : pattern) {
    if (!IsGlobChar(c)) return fail("must be 1-128 characters of [A-Za-z0-9._:/-*]");
  }
  std::string_view rest = pattern;
  while (true) {
    size_t dot = rest.find('.');
    std::string_view seg = rest.substr(0, dot);
    bool last = dot == std::string_view::npos;
    if (seg.find('*') != std::string_view::npos) {
      if (seg == "**") {
        if (!last) return fail("may use \"**\" only as the whole last segment");
      } else if (seg != "*") {
        return fail("may use \"*\" only as a whole dot-segment");
      }
    }
    if (last) return Status::Ok();
    rest.remove_prefix(dot + 1);
  }
}

bool TypeGlobMatches(std::string_view pattern, std::string_view type) {
  while (true) {
    size_t pdot = pattern.find('.');
    std::string_view pseg = pattern.substr(0, pdot);
    if (pdot == std::string_view::npos && pseg == "**") return !type.empty();
    size_t tdot = type.find('.');
    std::string_view tseg = type.substr(0, tdot);
    if (pseg == "*") {
      if (tseg.empty()) return false;
    } else if (pseg != tseg) {
      return false;
    }
    if (pdot == std::string_view::npos || tdot == std::string_view::npos) {
      return pdot == std::string_view::npos && tdot == std::string_view::npos;
    }
    pattern.remove_prefix(pdot + 1);
    type.remove_prefix(tdot + 1);
  }
}

Result<TypeFilter> TypeFilter::Compile(const std::vector<std::string>& globs) {
  TypeFilter f;
  for (size_t i = 0; i < globs.size(); ++i) {
    Status s = ValidateTypeGlob(globs[i]);
    if (!s.ok()) {
      return Status::Validation("event_types[" + std::to_string(i) + "]: " + s.message());
    }
    (globs[i].find('*') == std::string::npos ? f.exact_ : f.globs_).push_back(globs[i]);
  }
  return f;
}

bool TypeFilter::Matches(std::string_view type) const {
  if (matches_all()) return true;
  for (const std::string& e : exact_) {
    if (e == type) return true;
  }
  for (const std::string& g : globs_) {
    if (TypeGlobMatches(g, type)) return true;
  }
  return false;
}

}  // namespace triggers::core
