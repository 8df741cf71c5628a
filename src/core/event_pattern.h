// Subscription matching (SPEC section 5), pure logic: event type globs
// (`event_types`) and content filters in the AWS EventBridge event-pattern
// syntax (`filter`). Both are compiled once when a subscription is created or
// changed, then matched against every ingested event, so compilation
// validates everything and bounds the cost of a match; matching never fails.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "triggers/status.h"

namespace boost {
namespace json {
class value;
}  // namespace json
}  // namespace boost

namespace triggers::core {

// ---- Event type globs --------------------------------------------------------

inline constexpr size_t kMaxTypeGlobLength = 128;

// Ok when `pattern` is 1-128 characters of [A-Za-z0-9._:/-*], every `*` is a
// whole dot-segment (`order.*`, not `order.cre*`), and `**` appears only as the
// whole last segment. Otherwise Validation, naming the pattern.
Status ValidateTypeGlob(std::string_view pattern);

// True when `type` matches `pattern` (which should have passed
// ValidateTypeGlob; other patterns give an unspecified answer, never a crash):
// a literal segment matches itself, `*` matches exactly one non-empty segment,
// and a trailing `**` matches one or more further segments (`order.**`
// matches `order.a` and `order.a.b`, not `order`).
bool TypeGlobMatches(std::string_view pattern, std::string_view type);

// A subscription's `event_types`: an event passes when its type matches any
// glob. An empty list (and a default-constructed filter) passes every type.
// Immutable after Compile; safe to share between threads.
class TypeFilter {
 public:
  TypeFilter() = default;

  // Validation naming the entry (`event_types[1]: ...`) when a glob is bad.
  static Result<TypeFilter> Compile(const std::vector<std::string>& globs);

  bool Matches(std::string_view type) const;
  bool matches_all() const { return exact_.empty() && globs_.empty(); }

 private:
  std::vector<std::string> exact_;  // entries without `*`
  std::vector<std::string> globs_;  // entries with `*`
};

// ---- Content filters ---------------------------------------------------------

namespace internal {
struct PatternNode;  // defined in event_pattern_nodes.h
}  // namespace internal

// A compiled EventBridge event pattern. The pattern is a JSON object whose
// leaves are non-empty arrays: every listed field must match (AND), any value
// of an array may match (OR), nested objects match nested fields, and when the
// event's field is an array the leaf matches if any element does. A leaf
// element is an exact value (string; number, compared numerically so 5 equals
// 5.0; true/false; null) or an object with exactly one operator:
//   {"prefix": "x"}, {"suffix": "x"}  (or {"prefix": {"equals-ignore-case": "x"}})
//   {"equals-ignore-case": "x"}       (ASCII case folding)
//   {"wildcard": "a*b"}               (`*` any run of characters, `\*` a star)
//   {"anything-but": v | [v...] | {"prefix"|"suffix"|"equals-ignore-case"|"wildcard": ...}}
//   {"numeric": [">", 0, "<=", 5]}    (one comparison, or one lower and one upper bound)
//   {"exists": true | false}
// and {"$or": [pattern, pattern...]} may stand beside the fields of an object.
// A missing field matches only {"exists": false}; in particular anything-but
// does not match a missing field. `exists` looks for a scalar value: an object,
// or an array holding no scalar, counts as absent. A nested pattern applied to
// an array of objects matches when one element matches the whole sub-pattern.
//
// Immutable after Compile and cheap to copy (shared); Matches is thread-safe.
class EventPattern {
 public:
  static constexpr int kMaxDepth = 32;       // nested objects, the top one included
  static constexpr size_t kMaxValues = 256;  // leaf values and operator operands in total

  // A default-constructed pattern matches every event (a subscription with no filter).
  EventPattern() = default;

  // Compiles the parsed `filter` object of a subscription. Validation with a
  // message that names the path of the bad part, rooted at `root`, e.g.
  // `filter.data.total[0]: unknown operator "numerc"`.
  static Result<EventPattern> Compile(const boost::json::value& pattern,
                                      std::string_view root = "filter");

  // `event` is the stored event object {"id","type","source","subject",
  // "ordering_key","time","data"}; anything that is not an object has no fields.
  bool Matches(const boost::json::value& event) const;

 private:
  explicit EventPattern(std::shared_ptr<const internal::PatternNode> root)
      : root_(std::move(root)) {}

  std::shared_ptr<const internal::PatternNode> root_;  // null: matches everything
};

}  // namespace triggers::core
