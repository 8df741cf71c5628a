// The management API's request-body reader (src/api/json_body): any bytes
// give Ok or an error, never a crash; an accepted object serializes to JSON
// that reads back to the same value.
#include <algorithm>
#include <boost/json/serialize.hpp>
#include <cfloat>
#include <cmath>
#include <string>

#include "api/json_body.h"
#include "targets.h"

namespace triggers::fuzz {
namespace {

namespace json = boost::json;

// Equal, but doubles within a few ulps: Boost.JSON 1.81's parser is not
// correctly rounded (it has no "precise" mode before 1.83), so a decimal
// that the serializer wrote exactly may read back one ulp off.
bool Same(const json::value& a, const json::value& b) {
  if (a.is_double() && b.is_double()) {
    double x = a.get_double(), y = b.get_double();
    return x == y || std::fabs(x - y) <= 4 * DBL_EPSILON * std::max(std::fabs(x), std::fabs(y));
  }
  if (a.kind() != b.kind()) return false;
  if (a.is_array()) {
    const auto &p = a.get_array(), &q = b.get_array();
    if (p.size() != q.size()) return false;
    for (size_t i = 0; i < p.size(); ++i) {
      if (!Same(p[i], q[i])) return false;
    }
    return true;
  }
  if (a.is_object()) {
    const auto &p = a.get_object(), &q = b.get_object();
    if (p.size() != q.size()) return false;
    for (auto pi = p.begin(), qi = q.begin(); pi != p.end(); ++pi, ++qi) {
      if (pi->key() != qi->key() || !Same(pi->value(), qi->value())) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace

void JsonBodyOne(const uint8_t* data, size_t size) {
  std::string_view body(reinterpret_cast<const char*>(data), size);
  boost::json::object obj;
  Status s = api::ParseJsonObject(body, &obj);
  if (!s.ok()) {
    FUZZ_CHECK(!s.message().empty(), "an error without a message");
    return;
  }
  // The field check the handlers run on every body (names from the
  // subscription API).
  (void)api::CheckFields(obj, {"url", "kind", "event_types", "filter", "enabled"});
  std::string again = boost::json::serialize(obj);
  boost::json::object back;
  FUZZ_CHECK(api::ParseJsonObject(again, &back).ok(), "serialized object does not read back");
  FUZZ_CHECK(Same(json::value(back), json::value(obj)),
             "object changed through serialize and parse");
}

}  // namespace triggers::fuzz
