#include "core/event_pattern.h"

#include <boost/json/value.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

namespace triggers::core {
namespace json = boost::json;

namespace {

// Renders client text for an error message: quoted, control characters
// replaced, cut to `max` bytes on a UTF-8 boundary.
std::string Quote(std::string_view s, size_t max = 64) {
  std::string out = "\"";
  size_t n = s.size();
  bool cut = false;
  if (n > max) {
    n = max;
    while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
    cut = true;
  }
  for (size_t i = 0; i < n; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    out.push_back(c < 0x20 || c == 0x7F ? '?' : static_cast<char>(c));
  }
  if (cut) out += "...";
  out += '"';
  return out;
}

bool IsGlobChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == ':' || c == '/' || c == '-' || c == '*';
}

}  // namespace

// ---- Event type globs --------------------------------------------------------

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

// ---- Content filters: compiled form ---------------------------------------------

namespace {

// A JSON number kept exactly when it is an integer that fits int64.
struct Num {
  bool is_int = false;
  int64_t i = 0;
  double d = 0;
};

bool ToNum(const json::value& v, Num& out) {
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

int CompareNum(const Num& a, const Num& b) {
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

char Lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool EqualsFolded(std::string_view a, std::string_view lower_b) {
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

bool ParseCmp(std::string_view s, Cmp& out) {
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

}  // namespace

namespace internal {

struct PatternNode {
  struct Field {
    std::string key;
    std::unique_ptr<PatternNode> child;  // a nested object, or
    std::vector<Matcher> leaf;           // a leaf array
  };
  std::vector<Field> fields;
  std::vector<std::vector<PatternNode>> ors;  // each `$or`: one alternative must match
};

}  // namespace internal

// ---- Content filters: compilation -----------------------------------------------

namespace {

using internal::PatternNode;

class Compiler {
 public:
  explicit Compiler(std::string_view root) : path_(root) {}

  Status CompileRoot(const json::value& v, PatternNode& out) {
    const json::object* o = v.if_object();
    if (!o) return Fail("must be a JSON object");
    if (o->empty()) return Status::Ok();  // no constraints: matches every event
    return CompileObject(*o, 1, out);
  }

 private:
  Status Fail(std::string_view why) const {
    return Status::Validation(path_ + ": " + std::string(why));
  }

  // Appends to the path, restoring it when the scope ends.
  class PathScope {
   public:
    PathScope(std::string& path, std::string_view key) : path_(path), size_(path.size()) {
      path_ += '.';
      AppendKey(key);
    }
    PathScope(std::string& path, size_t index) : path_(path), size_(path.size()) {
      path_ += '[' + std::to_string(index) + ']';
    }
    ~PathScope() { path_.resize(size_); }
    PathScope(const PathScope&) = delete;
    PathScope& operator=(const PathScope&) = delete;

   private:
    void AppendKey(std::string_view key) {
      std::string q = Quote(key);
      path_.append(q, 1, q.size() - 2);  // unquoted, but sanitized and bounded
    }
    std::string& path_;
    size_t size_;
  };

  Status CountValue() {
    if (++values_ > EventPattern::kMaxValues) {
      return Fail("the pattern has more than " + std::to_string(EventPattern::kMaxValues) +
                  " values in total");
    }
    return Status::Ok();
  }

  Status CompileObject(const json::object& o, int depth, PatternNode& out) {
    if (depth > EventPattern::kMaxDepth) {
      return Fail("nesting deeper than " + std::to_string(EventPattern::kMaxDepth) + " levels");
    }
    if (o.empty()) return Fail("must not be an empty object");
    for (const auto& kv : o) {
      PathScope scope(path_, kv.key());
      if (kv.key() == "$or") {
        Status s = CompileOr(kv.value(), depth, out);
        if (!s.ok()) return s;
        continue;
      }
      PatternNode::Field field;
      field.key = std::string(kv.key());
      if (const json::object* child = kv.value().if_object()) {
        field.child = std::make_unique<PatternNode>();
        Status s = CompileObject(*child, depth + 1, *field.child);
        if (!s.ok()) return s;
      } else if (const json::array* leaf = kv.value().if_array()) {
        Status s = CompileLeaf(*leaf, field.leaf);
        if (!s.ok()) return s;
      } else {
        return Fail("must be an array of values to match (or an object of nested fields)");
      }
      out.fields.push_back(std::move(field));
    }
    return Status::Ok();
  }

  Status CompileOr(const json::value& v, int depth, PatternNode& out) {
    const json::array* alts = v.if_array();
    if (!alts || alts->empty()) return Fail("must be a non-empty array of patterns");
    std::vector<PatternNode> compiled(alts->size());
    for (size_t i = 0; i < alts->size(); ++i) {
      PathScope scope(path_, i);
      const json::object* o = (*alts)[i].if_object();
      if (!o) return Fail("must be a JSON object");
      Status s = CompileObject(*o, depth + 1, compiled[i]);
      if (!s.ok()) return s;
    }
    out.ors.push_back(std::move(compiled));
    return Status::Ok();
  }

  Status CompileLeaf(const json::array& a, std::vector<Matcher>& out) {
    if (a.empty()) return Fail("must not be an empty array");
    out.reserve(a.size());
    for (size_t i = 0; i < a.size(); ++i) {
      PathScope scope(path_, i);
      Status s = CountValue();
      if (!s.ok()) return s;
      Matcher m;
      if (const json::object* op = a[i].if_object()) {
        s = CompileOperator(*op, m);
      } else if (!ToScalar(a[i], m.exact)) {
        s = Fail("must be a string, number, boolean, null or an operator object");
      }
      if (!s.ok()) return s;
      out.push_back(std::move(m));
    }
    return Status::Ok();
  }

  static bool ToScalar(const json::value& v, Scalar& out) {
    switch (v.kind()) {
      case json::kind::string:
        out.kind = Scalar::Kind::kString;
        out.s = std::string(v.get_string());
        return true;
      case json::kind::int64:
      case json::kind::uint64:
      case json::kind::double_:
        out.kind = Scalar::Kind::kNumber;
        return ToNum(v, out.n) && std::isfinite(out.n.d);
      case json::kind::bool_:
        out.kind = Scalar::Kind::kBool;
        out.b = v.get_bool();
        return true;
      case json::kind::null:
        out.kind = Scalar::Kind::kNull;
        return true;
      default:
        return false;
    }
  }

  Status CompileOperator(const json::object& o, Matcher& m) {
    if (o.size() != 1) return Fail("an operator object must have exactly one key");
    const auto& kv = *o.begin();
    std::string_view name = kv.key();
    const json::value& arg = kv.value();
    StringTest t;
    bool string_op = ParseStringOp(name, arg, t, /*nested_ignore_case=*/true);
    if (!string_op && name != "exists" && name != "numeric" && name != "anything-but") {
      return Fail("unknown operator " + Quote(name));
    }
    PathScope scope(path_, name);
    if (name == "exists") {
      if (!arg.is_bool()) return Fail("must be true or false");
      m.kind = Matcher::Kind::kExists;
      m.exists = arg.get_bool();
      return Status::Ok();
    }
    if (name == "numeric") {
      m.kind = Matcher::Kind::kNumeric;
      return CompileNumeric(arg, m.numeric);
    }
    if (name == "anything-but") return CompileAnythingBut(arg, m);
    bool nested_ok = t.op == StringTest::Op::kPrefix || t.op == StringTest::Op::kSuffix;
    if (!arg.is_string() && !(nested_ok && IsIgnoreCaseObject(arg))) {
      return Fail(nested_ok ? "must be a string or {\"equals-ignore-case\": string}"
                            : "must be a string");
    }
    m.kind = Matcher::Kind::kString;
    m.tests.push_back(std::move(t));
    return Status::Ok();
  }

  static bool IsIgnoreCaseObject(const json::value& v) {
    const json::object* o = v.if_object();
    if (!o || o->size() != 1) return false;
    const auto& kv = *o->begin();
    return kv.key() == "equals-ignore-case" && kv.value().is_string();
  }

  // Fills `t` for the string operators; false when `name` is not one. The
  // argument's type is checked by the caller; a bad one leaves `t` unusable.
  static bool ParseStringOp(std::string_view name, const json::value& arg, StringTest& t,
                            bool nested_ignore_case) {
    if (name == "prefix") {
      t.op = StringTest::Op::kPrefix;
    } else if (name == "suffix") {
      t.op = StringTest::Op::kSuffix;
    } else if (name == "equals-ignore-case") {
      t.op = StringTest::Op::kEquals;
      t.ignore_case = true;
    } else if (name == "wildcard") {
      t.op = StringTest::Op::kWildcard;
    } else {
      return false;
    }
    std::string_view text;
    if (arg.is_string()) {
      text = arg.get_string();
    } else if (nested_ignore_case &&
               (t.op == StringTest::Op::kPrefix || t.op == StringTest::Op::kSuffix) &&
               IsIgnoreCaseObject(arg)) {
      text = arg.get_object().begin()->value().get_string();
      t.ignore_case = true;
    }
    if (t.ignore_case) {
      t.text.reserve(text.size());
      for (char c : text) t.text.push_back(Lower(c));
    } else {
      t.text = std::string(text);
    }
    if (t.op == StringTest::Op::kWildcard) SplitWildcard(text, t.parts);
    return true;
  }

  // `a*b\*c` -> {"a", "b*c"}; `\\` is a backslash.
  static void SplitWildcard(std::string_view text, std::vector<std::string>& parts) {
    parts.assign(1, std::string());
    for (size_t i = 0; i < text.size(); ++i) {
      if (text[i] == '\\' && i + 1 < text.size() && (text[i + 1] == '*' || text[i + 1] == '\\')) {
        parts.back().push_back(text[++i]);
      } else if (text[i] == '*') {
        parts.emplace_back();
      } else {
        parts.back().push_back(text[i]);
      }
    }
  }

  Status CompileNumeric(const json::value& arg, std::vector<Comparison>& out) {
    static constexpr std::string_view kShape =
        "must be an array of one or two comparisons, e.g. [\">\", 0, \"<=\", 5]";
    const json::array* a = arg.if_array();
    if (!a || (a->size() != 2 && a->size() != 4)) return Fail(kShape);
    for (size_t i = 0; i < a->size(); i += 2) {
      Comparison c;
      {
        PathScope scope(path_, i);
        const json::string* op = (*a)[i].if_string();
        if (!op) return Fail("must be one of \"=\", \"<\", \"<=\", \">\", \">=\"");
        std::string_view s = *op;
        if (!ParseCmp(s, c.op)) {
          return Fail("unknown comparison " + Quote(s) + " (use =, <, <=, >, >=)");
        }
      }
      {
        PathScope scope(path_, i + 1);
        if (!ToNum((*a)[i + 1], c.n) || !std::isfinite(c.n.d)) return Fail("must be a number");
        Status s = CountValue();
        if (!s.ok()) return s;
      }
      out.push_back(c);
    }
    if (out.size() == 2) {
      auto lower = [](Cmp op) { return op == Cmp::kGt || op == Cmp::kGe; };
      auto upper = [](Cmp op) { return op == Cmp::kLt || op == Cmp::kLe; };
      bool ok = (lower(out[0].op) && upper(out[1].op)) || (upper(out[0].op) && lower(out[1].op));
      if (!ok) return Fail("two comparisons must be one lower (>, >=) and one upper (<, <=) bound");
    }
    return Status::Ok();
  }

  Status CompileAnythingBut(const json::value& arg, Matcher& m) {
    if (const json::object* o = arg.if_object()) {
      if (o->size() != 1) return Fail("an operator object must have exactly one key");
      const auto& kv = *o->begin();
      PathScope scope(path_, kv.key());
      m.kind = Matcher::Kind::kAnythingButString;
      if (kv.key() == "equals-ignore-case" && kv.value().is_array()) {
        return CompileStringList(kv.value().get_array(), kv.key(), m.tests);
      }
      StringTest t;
      if (!ParseStringOp(kv.key(), kv.value(), t, /*nested_ignore_case=*/false)) {
        return Fail(
            "unknown operator (anything-but takes prefix, suffix, "
            "equals-ignore-case or wildcard)");
      }
      if (!kv.value().is_string()) return Fail("must be a string");
      m.tests.push_back(std::move(t));
      return Status::Ok();
    }
    m.kind = Matcher::Kind::kAnythingBut;
    if (const json::array* a = arg.if_array()) {
      if (a->empty()) return Fail("must not be an empty array");
      for (size_t i = 0; i < a->size(); ++i) {
        PathScope scope(path_, i);
        Status s = CountValue();
        if (!s.ok()) return s;
        Scalar v;
        if (!ToScalar((*a)[i], v)) return Fail("must be a string, number, boolean or null");
        m.excluded.push_back(std::move(v));
      }
      return Status::Ok();
    }
    Scalar v;
    if (!ToScalar(arg, v)) return Fail("must be a value, an array of values or an operator object");
    m.excluded.push_back(std::move(v));
    return Status::Ok();
  }

  Status CompileStringList(const json::array& a, std::string_view op,
                           std::vector<StringTest>& out) {
    if (a.empty()) return Fail("must not be an empty array");
    for (size_t i = 0; i < a.size(); ++i) {
      PathScope scope(path_, i);
      Status s = CountValue();
      if (!s.ok()) return s;
      if (!a[i].is_string()) return Fail("must be a string");
      StringTest t;
      ParseStringOp(op, a[i], t, /*nested_ignore_case=*/false);
      out.push_back(std::move(t));
    }
    return Status::Ok();
  }

  std::string path_;
  size_t values_ = 0;
};

// ---- Content filters: matching -----------------------------------------------

// Calls `fn` on the scalars of a field: the value itself, or the scalars of an
// array (nested arrays flattened; objects skipped). True when `fn` is.
template <typename Fn>
bool AnyScalar(const json::value& v, const Fn& fn) {
  if (const json::array* a = v.if_array()) {
    for (const json::value& e : *a) {
      if (AnyScalar(e, fn)) return true;
    }
    return false;
  }
  if (v.is_object()) return false;
  return fn(v);
}

bool MatchLeaf(const std::vector<Matcher>& leaf, const json::value* v) {
  for (const Matcher& m : leaf) {
    if (m.kind == Matcher::Kind::kExists) {
      bool present = v && AnyScalar(*v, [](const json::value&) { return true; });
      if (present == m.exists) return true;
    } else if (v && AnyScalar(*v, [&m](const json::value& s) { return m.MatchesScalar(s); })) {
      return true;
    }
  }
  return false;
}

bool MatchNode(const PatternNode& node, const json::object* obj);

// Any object in `a` (nested arrays flattened) matching `node`; `saw_object`
// tells the caller whether there was one at all.
bool AnyObjectMatches(const PatternNode& node, const json::array& a, bool& saw_object) {
  for (const json::value& e : a) {
    if (const json::object* o = e.if_object()) {
      saw_object = true;
      if (MatchNode(node, o)) return true;
    } else if (const json::array* inner = e.if_array()) {
      if (AnyObjectMatches(node, *inner, saw_object)) return true;
    }
  }
  return false;
}

bool MatchChild(const PatternNode& node, const json::value* v) {
  if (v) {
    if (const json::object* o = v->if_object()) return MatchNode(node, o);
    if (const json::array* a = v->if_array()) {
      bool saw_object = false;
      if (AnyObjectMatches(node, *a, saw_object)) return true;
      if (saw_object) return false;
    }
  }
  return MatchNode(node, nullptr);  // no nested fields here: all of them are missing
}

bool MatchNode(const PatternNode& node, const json::object* obj) {
  for (const PatternNode::Field& f : node.fields) {
    const json::value* v = obj ? obj->if_contains(f.key) : nullptr;
    bool ok = f.child ? MatchChild(*f.child, v) : MatchLeaf(f.leaf, v);
    if (!ok) return false;
  }
  for (const std::vector<PatternNode>& alternatives : node.ors) {
    bool any = false;
    for (const PatternNode& alt : alternatives) {
      if (MatchNode(alt, obj)) {
        any = true;
        break;
      }
    }
    if (!any) return false;
  }
  return true;
}

}  // namespace

Result<EventPattern> EventPattern::Compile(const json::value& pattern, std::string_view root) {
  auto node = std::make_shared<PatternNode>();
  Compiler compiler(root);
  Status s = compiler.CompileRoot(pattern, *node);
  if (!s.ok()) return s;
  return EventPattern(std::move(node));
}

bool EventPattern::Matches(const json::value& event) const {
  if (!root_) return true;
  return MatchNode(*root_, event.if_object());
}

}  // namespace triggers::core
