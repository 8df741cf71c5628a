#include "core/json_reader.h"

#include <boost/json/stream_parser.hpp>
#include <cstring>

#include "core/json_reader_impl.h"
#include "core/json_util.h"

namespace triggers::core {
namespace od = simdjson::ondemand;
using simdjson::error_code;

namespace {

constexpr size_t kFewKeys = 16;  // beyond this an object's keys are hashed

// RFC 8259 number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
// (simdjson 3.0's get_number() refuses valid integers beyond 64 bits).
bool IsJsonNumber(std::string_view s) {
  size_t i = 0, n = s.size();
  auto digits = [&] {
    size_t start = i;
    while (i < n && s[i] >= '0' && s[i] <= '9') ++i;
    return i > start;
  };
  if (i < n && s[i] == '-') ++i;
  if (i < n && s[i] == '0') {
    ++i;
  } else if (!digits()) {
    return false;
  }
  if (i < n && s[i] == '.') {
    ++i;
    if (!digits()) return false;
  }
  if (i < n && (s[i] == 'e' || s[i] == 'E')) {
    ++i;
    if (i < n && (s[i] == '+' || s[i] == '-')) ++i;
    if (!digits()) return false;
  }
  return i == n;
}

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
}

// Where Boost.JSON finds the first syntax error (body.size() if it finds none).
size_t ErrorOffset(std::string_view body) {
  boost::json::parse_options opts;
  opts.max_depth = kMaxJsonDepth;
  boost::json::stream_parser p(boost::json::storage_ptr(), opts);
  boost::system::error_code ec;
  size_t n = p.write_some(body.data(), body.size(), ec);
  if (ec) return n;
  if (n < body.size()) return n;
  return body.size();
}

}  // namespace

bool JsonReader::Impl::Keys::Add(std::string_view k) {
  if (many.empty()) {
    for (std::string_view f : few) {
      if (f == k) return false;
    }
    few.push_back(k);
    if (few.size() > kFewKeys) many.insert(few.begin(), few.end());
    return true;
  }
  return many.insert(k).second;
}

// Visits every value below `v`, so that the whole text is checked. Keys are
// views into the parser's string buffer, valid until the next iterate().
// `depth` is the level of `v` counted in arrays and objects (the body is
// level 1), as Boost.JSON's max_depth counts it: matching re-parses stored
// `data` with that option, so both sides apply the same kMaxJsonDepth.
error_code JsonReader::Impl::Walk(od::value v, int depth) {
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  if ((t == od::json_type::array || t == od::json_type::object) && depth > kMaxJsonDepth) {
    return simdjson::DEPTH_ERROR;
  }
  switch (t) {
    case od::json_type::array: {
      od::array a;
      if (auto e = v.get_array().get(a)) return e;
      for (auto el : a) {
        od::value x;
        if (auto e = el.get(x)) return e;
        if (auto e = Walk(x, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::object: {
      od::object o;
      if (auto e = v.get_object().get(o)) return e;
      if (keys_.size() <= static_cast<size_t>(depth)) keys_.resize(depth + 1);
      keys_[depth].Clear();
      for (auto f : o) {
        std::string_view k;
        if (auto e = f.unescaped_key().get(k)) return e;
        if (!keys_[depth].Add(k)) {
          duplicate_.assign(k);
          return simdjson::TAPE_ERROR;
        }
        od::value x;
        if (auto e = f.value().get(x)) return e;
        if (auto e = Walk(x, depth + 1)) return e;
      }
      return simdjson::SUCCESS;
    }
    case od::json_type::number: {
      std::string_view tok = v.raw_json_token();
      return IsJsonNumber(TrimRight(tok)) ? simdjson::SUCCESS : simdjson::NUMBER_ERROR;
    }
    case od::json_type::string: {
      std::string_view s;
      return v.get_string().get(s);
    }
    case od::json_type::boolean: {
      bool b;
      return v.get_bool().get(b);
    }
    case od::json_type::null: {
      bool is_null = false;
      if (auto e = v.is_null().get(is_null)) return e;
      return is_null ? simdjson::SUCCESS : simdjson::N_ATOM_ERROR;
    }
  }
  return simdjson::TAPE_ERROR;
}

Status JsonReader::Impl::Load(std::string_view body, od::document& doc) {
  buffer.resize(body.size() + simdjson::SIMDJSON_PADDING);
  std::memcpy(buffer.data(), body.data(), body.size());
  std::memset(buffer.data() + body.size(), 0, simdjson::SIMDJSON_PADDING);
  if (body.empty()) return Status::InvalidJson("body is empty; expected a JSON object");
  duplicate_.clear();
  bool doc_valid = false;
  auto fail = [&](error_code e) {
    if (!duplicate_.empty()) {
      // The key is the client's own text: cut and made valid UTF-8 for the message.
      std::string name = ToValidUtf8(std::string_view(duplicate_).substr(0, 64));
      return Status::InvalidJson("body is not valid JSON: the key '" + name +
                                 "' appears more than once in one object");
    }
    // The error path only: a second, precise parser tells where it broke.
    size_t offset = ErrorOffset(body);
    const char* loc = nullptr;
    if (offset == body.size() && doc_valid &&
        doc.current_location().get(loc) == simdjson::SUCCESS && loc >= buffer.data() &&
        loc <= buffer.data() + body.size()) {
      offset = static_cast<size_t>(loc - buffer.data());
    }
    std::string why =
        e == simdjson::DEPTH_ERROR
            ? "nesting deeper than " + std::to_string(kMaxJsonDepth) + " levels"
            : std::string(simdjson::error_message(e));
    return Status::InvalidJson("body is not valid JSON at byte " + std::to_string(offset) + ": " +
                               why);
  };
  if (auto e = parser.iterate(buffer.data(), body.size(), buffer.size()).get(doc)) {
    return fail(e);
  }
  doc_valid = true;
  od::json_type t;
  if (auto e = doc.type().get(t)) return fail(e);
  if (t == od::json_type::object || t == od::json_type::array) {
    od::value root;
    if (auto e = doc.get_value().get(root)) return fail(e);
    if (auto e = Walk(root, 1)) return fail(e);
  } else {
    // A scalar document: valid JSON, but not what any route takes.
    if (ErrorOffset(body) < body.size()) return fail(simdjson::TAPE_ERROR);
    return Status::Validation("body must be a JSON object");
  }
  // Past the end, current_location() fails: anything else is trailing content.
  const char* trailing = nullptr;
  if (doc.current_location().get(trailing) == simdjson::SUCCESS) {
    return fail(simdjson::TRAILING_CONTENT);
  }
  doc.rewind();
  if (t != od::json_type::object) return Status::Validation("body must be a JSON object");
  return Status::Ok();
}

JsonReader::JsonReader() : impl_(std::make_unique<Impl>()) {}
JsonReader::~JsonReader() = default;

Status JsonReader::Check(std::string_view body) {
  od::document doc;
  return impl_->Load(body, doc);
}

JsonReader& ThreadJsonReader() {
  thread_local JsonReader reader;
  return reader;
}

}  // namespace triggers::core
