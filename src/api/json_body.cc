#include "api/json_body.h"

#include <boost/json/stream_parser.hpp>
#include <cmath>
#include <vector>

#include "core/json_reader.h"

namespace triggers::api {
namespace {

// Boost.JSON 1.81 reads a number beyond the range of a double (1e999) as
// infinity, and serializes infinity as `Infinity`, which is not JSON (found
// by fuzz/json_body_fuzz.cc). Refused here, once for every route and field,
// so no handler can store or echo a value that does not write back as JSON.
bool AllNumbersFinite(const boost::json::value& root) {
  std::vector<const boost::json::value*> todo{&root};
  while (!todo.empty()) {
    const boost::json::value* v = todo.back();
    todo.pop_back();
    if (const double* d = v->if_double(); d && !std::isfinite(*d)) return false;
    if (const auto* a = v->if_array()) {
      for (const auto& e : *a) todo.push_back(&e);
    } else if (const auto* o = v->if_object()) {
      for (const auto& kv : *o) todo.push_back(&kv.value());
    }
  }
  return true;
}

}  // namespace

Status ParseJsonObject(std::string_view body, boost::json::object* out) {
  // The rules (syntax, depth, duplicate keys, an object) are the one reader's,
  // the same as on the ingest path; Boost.JSON only builds the DOM.
  if (Status s = core::ThreadJsonReader().Check(body); !s.ok()) return s;
  boost::json::parse_options opts;
  opts.max_depth = core::kMaxJsonDepth;
  boost::json::stream_parser p(boost::json::storage_ptr(), opts);
  boost::system::error_code ec;
  size_t n = p.write_some(body.data(), body.size(), ec);
  if (!ec && n < body.size()) ec = boost::json::error::extra_data;
  if (!ec) p.finish(ec);
  if (ec) {
    // Text the reader takes but Boost.JSON does not (e.g. a number beyond a double).
    return Status::InvalidJson("body is not valid JSON at byte " + std::to_string(n) + ": " +
                               ec.message());
  }
  boost::json::value v = p.release();
  if (!v.is_object()) return Status::Validation("body must be a JSON object");
  if (!AllNumbersFinite(v)) {
    return Status::Validation("a number in the body is out of range (beyond +-1.7e308)");
  }
  *out = std::move(v.as_object());
  return Status::Ok();
}

Status CheckFields(const boost::json::object& obj,
                   std::initializer_list<std::string_view> allowed) {
  for (const auto& kv : obj) {
    bool ok = false;
    for (auto a : allowed) ok = ok || kv.key() == a;
    if (!ok) {
      return Status::Validation("unknown field '" + std::string(kv.key().substr(0, 64)) + "'");
    }
  }
  return Status::Ok();
}

}  // namespace triggers::api
