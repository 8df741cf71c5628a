// Content filters: matches an event against a compiled pattern. Never fails;
// the compiler bounded the work.
#include "core/event_pattern.h"
#include "core/event_pattern_nodes.h"

namespace triggers::core {
namespace json = boost::json;

namespace {

using namespace internal;  // NOLINT: the compiled form

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

bool EventPattern::Matches(const json::value& event) const {
  if (!root_) return true;
  return MatchNode(*root_, event.if_object());
}

}  // namespace triggers::core
