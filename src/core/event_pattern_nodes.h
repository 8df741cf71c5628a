// The compiled form of an EventBridge event pattern (see EventPattern in
// core/event_pattern.h), shared by the compiler (event_pattern_compile.cc) and
// the matcher (event_pattern_match.cc). Internal to src/core.
#pragma once

#include <boost/json/value.hpp>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace triggers::core::internal {
namespace json = boost::json;

// Renders client text for an error message: quoted, control characters
// replaced, cut to `max` bytes on a UTF-8 boundary.
std::string Quote(std::string_view s, size_t max = 64);

// A JSON number kept exactly when it is an integer that fits int64.
struct Num {
  bool is_int = false;
  int64_t i = 0;
  double d = 0;
};

inline bool ToNum(const json::value& v, Num& out) {
  switch (v.kind()) {
    case json::kind::int64:
      out = {true, v.get_int64(), static_cast<double>(v.get_int64())};
      return true;
    case json::kind::uint64: {
      uint64_t u = v.get_uint64();
      if (u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        out = {true, static_cast<int64_t>(u), static_cast<double>(u)};
      } else {
        out = {false, 0, static_cast<double>(u)};
      }
      return true;
    }
    case json::kind::double_:
      out = {false, 0, v.get_double()};
      return true;
    default:
      return false;
  }
}

inline int CompareNum(const Num& a, const Num& b) {
  if (a.is_int && b.is_int) return a.i < b.i ? -1 : (a.i > b.i ? 1 : 0);
  return a.d < b.d ? -1 : (a.d > b.d ? 1 : 0);
}

// An exact value from a pattern.
struct Scalar {
  enum class Kind { kString, kNumber, kBool, kNull };
  Kind kind = Kind::kNull;
  std::string s;
  Num n;
  bool b = false;

  bool Equals(const json::value& v) const {
    switch (kind) {
      case Kind::kString:
        return v.is_string() && std::string_view(v.get_string()) == s;
      case Kind::kNumber: {
        Num m;
        return ToNum(v, m) && CompareNum(n, m) == 0;
      }
      case Kind::kBool:
        return v.is_bool() && v.get_bool() == b;
      case Kind::kNull:
        return v.is_null();
    }
    return false;
  }
};

inline char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

inline bool EqualsFolded(std::string_view a, std::string_view lower_b) {
  if (a.size() != lower_b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (Lower(a[i]) != lower_b[i]) return false;
  }
  return true;
}

// One test on a string value.
struct StringTest {
  enum class Op { kEquals, kPrefix, kSuffix, kWildcard };
  Op op = Op::kEquals;
  bool ignore_case = false;        // `text` is then lower-cased
  std::string text;                // kEquals, kPrefix, kSuffix
  std::vector<std::string> parts;  // kWildcard: the literals between the stars

  bool Matches(std::string_view v) const {
    switch (op) {
      case Op::kEquals:
        return ignore_case ? EqualsFolded(v, text) : v == text;
      case Op::kPrefix:
        if (v.size() < text.size()) return false;
        v = v.substr(0, text.size());
        return ignore_case ? EqualsFolded(v, text) : v == text;
      case Op::kSuffix:
        if (v.size() < text.size()) return false;
        v = v.substr(v.size() - text.size());
        return ignore_case ? EqualsFolded(v, text) : v == text;
      case Op::kWildcard:
        return WildcardMatches(v);
    }
    return false;
  }

  // Star-only globs: the first literal anchors the start, the last the end,
  // and the middle ones are found left to right (greedy is exact here).
  bool WildcardMatches(std::string_view v) const {
    if (parts.size() == 1) return v == parts[0];
    const std::string& first = parts.front();
    const std::string& last = parts.back();
    if (v.size() < first.size() + last.size()) return false;
    if (v.substr(0, first.size()) != first) return false;
    if (v.substr(v.size() - last.size()) != last) return false;
    std::string_view mid = v.substr(first.size(), v.size() - first.size() - last.size());
    for (size_t i = 1; i + 1 < parts.size(); ++i) {
      size_t at = mid.find(parts[i]);
      if (at == std::string_view::npos) return false;
      mid.remove_prefix(at + parts[i].size());
    }
    return true;
  }
};

enum class Cmp { kEq, kLt, kLe, kGt, kGe };

inline bool ParseCmp(std::string_view s, Cmp& out) {
  static constexpr std::pair<std::string_view, Cmp> kOps[] = {
      {"=", Cmp::kEq}, {"<", Cmp::kLt}, {"<=", Cmp::kLe}, {">", Cmp::kGt}, {">=", Cmp::kGe}};
  for (const auto& [name, op] : kOps) {
    if (s == name) {
      out = op;
      return true;
    }
  }
  return false;
}

struct Comparison {
  Cmp op = Cmp::kEq;
  Num n;

  bool Holds(const Num& v) const {
    int c = CompareNum(v, n);
    switch (op) {
      case Cmp::kEq:
        return c == 0;
      case Cmp::kLt:
        return c < 0;
      case Cmp::kLe:
        return c <= 0;
      case Cmp::kGt:
        return c > 0;
      case Cmp::kGe:
        return c >= 0;
    }
    return false;
  }
};

// One element of a leaf array.
struct Matcher {
  enum class Kind { kExact, kString, kNumeric, kExists, kAnythingBut, kAnythingButString };
  Kind kind = Kind::kExact;
  Scalar exact;                     // kExact
  std::vector<StringTest> tests;    // kString (one), kAnythingButString (any matching excludes)
  std::vector<Comparison> numeric;  // kNumeric: all must hold
  bool exists = false;              // kExists
  std::vector<Scalar> excluded;     // kAnythingBut

  // `v` is a scalar (not an object or array).
  bool MatchesScalar(const json::value& v) const {
    switch (kind) {
      case Kind::kExact:
        return exact.Equals(v);
      case Kind::kString:
        return v.is_string() && tests[0].Matches(v.get_string());
      case Kind::kNumeric: {
        Num n;
        if (!ToNum(v, n)) return false;
        for (const Comparison& c : numeric) {
          if (!c.Holds(n)) return false;
        }
        return true;
      }
      case Kind::kAnythingBut:
        for (const Scalar& s : excluded) {
          if (s.Equals(v)) return false;
        }
        return true;
      case Kind::kAnythingButString:
        if (!v.is_string()) return true;
        for (const StringTest& t : tests) {
          if (t.Matches(v.get_string())) return false;
        }
        return true;
      case Kind::kExists:
        return false;  // handled by the caller: it looks at the field, not a value
    }
    return false;
  }
};

struct PatternNode {
  struct Field {
    std::string key;
    std::unique_ptr<PatternNode> child;  // a nested object, or
    std::vector<Matcher> leaf;           // a leaf array
  };
  std::vector<Field> fields;
  std::vector<std::vector<PatternNode>> ors;  // each `$or`: one alternative must match
};

}  // namespace triggers::core::internal
