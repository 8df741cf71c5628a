// Content filters: compiles a subscription's `filter` into the node tree that
// event_pattern_match.cc walks, validating everything and bounding its size.
#include <cmath>
#include <string>

#include "core/event_pattern.h"
#include "core/event_pattern_nodes.h"

namespace triggers::core {
namespace json = boost::json;

namespace internal {

std::string Quote(std::string_view s, size_t max) {
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

}  // namespace internal

namespace {

using namespace internal;  // NOLINT: the compiled form

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

}  // namespace

Result<EventPattern> EventPattern::Compile(const json::value& pattern, std::string_view root) {
  auto node = std::make_shared<PatternNode>();
  Compiler compiler(root);
  Status s = compiler.CompileRoot(pattern, *node);
  if (!s.ok()) return s;
  return EventPattern(std::move(node));
}

}  // namespace triggers::core
