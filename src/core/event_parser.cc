#include "core/event_parser.h"

#include <simdjson.h>

#include <boost/json/stream_parser.hpp>
#include <cstring>

namespace triggers::core {
namespace od = simdjson::ondemand;
using simdjson::error_code;

bool IsValidEventType(std::string_view type) {
  if (type.empty() || type.size() > kMaxTypeLength) return false;
  for (char c : type) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
    if (!ok) return false;
  }
  return true;
}

namespace {

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

// Visits every value below `v`, so that the whole text is checked. `depth`
// is the level of `v` counted in arrays and objects (the body is level 1),
// as Boost.JSON's max_depth counts it: matching re-parses `data` with that
// option, so both sides apply the same kMaxJsonDepth.
error_code Walk(od::value v, int depth) {
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
      for (auto f : o) {
        std::string_view k;
        if (auto e = f.unescaped_key().get(k)) return e;
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

// Raw bytes of a value (any type), consuming it.
error_code RawValue(od::value v, std::string_view& out) {
  od::json_type t;
  if (auto e = v.type().get(t)) return e;
  if (t == od::json_type::array) {
    od::array a;
    if (auto e = v.get_array().get(a)) return e;
    if (auto e = a.raw_json().get(out)) return e;
  } else if (t == od::json_type::object) {
    od::object o;
    if (auto e = v.get_object().get(o)) return e;
    if (auto e = o.raw_json().get(out)) return e;
  } else {
    out = v.raw_json_token();
  }
  out = TrimRight(out);
  return simdjson::SUCCESS;
}

Status OptionalString(od::value v, std::string_view field, std::optional<std::string>& out) {
  bool is_null = false;
  if (v.is_null().get(is_null) == simdjson::SUCCESS && is_null) {
    out.reset();
    return Status::Ok();
  }
  std::string_view s;
  if (v.get_string().get(s) != simdjson::SUCCESS) {
    return Status::Validation(std::string(field) + " must be a string or null");
  }
  if (s.size() > kMaxAttributeLength) {
    return Status::Validation(std::string(field) + " must be at most 256 characters");
  }
  // Attributes are matched, indexed and shown as text; a NUL character
  // (\u0000) has no place there (PostgreSQL text cannot even hold it).
  if (s.find('\0') != std::string_view::npos) {
    return Status::Validation(std::string(field) + " must not contain the NUL character (\\u0000)");
  }
  out.emplace(s);
  return Status::Ok();
}

Status ExtractEvent(od::object obj, Event& ev) {
  ev.type.clear();
  ev.source.reset();
  ev.subject.reset();
  ev.ordering_key.reset();
  ev.data.assign("null");
  bool seen_type = false, seen_data = false, seen_source = false, seen_subject = false,
       seen_ok = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return Status::InvalidJson("malformed object key");
    od::value v;
    if (field.value().get(v)) return Status::InvalidJson("malformed value");
    auto dup = [&](bool& seen) {
      bool was = seen;
      seen = true;
      return was;
    };
    if (key == "type") {
      if (dup(seen_type)) return Status::Validation("type appears more than once");
      std::string_view s;
      if (v.get_string().get(s)) return Status::Validation("type must be a string");
      if (!IsValidEventType(s)) {
        return Status::Validation("type must be 1-128 characters of [A-Za-z0-9._:/-]");
      }
      ev.type.assign(s);
    } else if (key == "data") {
      if (dup(seen_data)) return Status::Validation("data appears more than once");
      std::string_view raw;
      if (RawValue(v, raw)) return Status::InvalidJson("malformed data");
      ev.data.assign(raw);
    } else if (key == "source") {
      if (dup(seen_source)) return Status::Validation("source appears more than once");
      if (Status s = OptionalString(v, "source", ev.source); !s.ok()) return s;
    } else if (key == "subject") {
      if (dup(seen_subject)) return Status::Validation("subject appears more than once");
      if (Status s = OptionalString(v, "subject", ev.subject); !s.ok()) return s;
    } else if (key == "ordering_key") {
      if (dup(seen_ok)) return Status::Validation("ordering_key appears more than once");
      if (Status s = OptionalString(v, "ordering_key", ev.ordering_key); !s.ok()) return s;
    } else {
      std::string name(key.substr(0, 64));
      return Status::Validation("unknown field '" + name +
                                "': allowed fields are type, data, source, subject, "
                                "ordering_key (put your own fields inside data)");
    }
  }
  if (!seen_type) return Status::Validation("type is required");
  return Status::Ok();
}

}  // namespace

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

struct EventParser::Impl {
  od::parser parser;
  std::string buffer;  // body + SIMDJSON_PADDING

  // Copies the body into the padded buffer and validates all of it.
  Status Load(std::string_view body, od::document& doc) {
    buffer.resize(body.size() + simdjson::SIMDJSON_PADDING);
    std::memcpy(buffer.data(), body.data(), body.size());
    std::memset(buffer.data() + body.size(), 0, simdjson::SIMDJSON_PADDING);
    if (body.empty()) return Status::InvalidJson("body is empty; expected a JSON object");
    bool doc_valid = false;
    auto fail = [&](error_code e) {
      // The error path only: a second, precise parser tells where it broke.
      size_t offset = ErrorOffset(body);
      const char* loc = nullptr;
      if (offset == body.size() && doc_valid &&
          doc.current_location().get(loc) == simdjson::SUCCESS && loc >= buffer.data() &&
          loc <= buffer.data() + body.size()) {
        offset = static_cast<size_t>(loc - buffer.data());
      }
      std::string why = e == simdjson::DEPTH_ERROR
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
};

EventParser::EventParser() : impl_(std::make_unique<Impl>()) {}
EventParser::~EventParser() = default;

Status EventParser::ParseEvent(std::string_view body, Event& out) {
  od::document doc;
  if (Status s = impl_->Load(body, doc); !s.ok()) return s;
  od::object obj;
  if (doc.get_object().get(obj)) return Status::Validation("body must be a JSON object");
  return ExtractEvent(obj, out);
}

Status EventParser::ParseBatch(std::string_view body, std::vector<Event>& entries,
                               std::vector<Status>& statuses) {
  entries.clear();
  statuses.clear();
  od::document doc;
  if (Status s = impl_->Load(body, doc); !s.ok()) return s;
  od::object obj;
  if (doc.get_object().get(obj)) return Status::Validation("body must be a JSON object");
  bool seen = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return Status::InvalidJson("malformed object key");
    if (key != "events") {
      return Status::Validation("unknown field '" + std::string(key.substr(0, 64)) +
                                "': a batch is {\"events\":[...]}");
    }
    if (seen) return Status::Validation("events appears more than once");
    seen = true;
    od::array arr;
    if (field.value().get_array().get(arr)) {
      return Status::Validation("events must be an array of 1-500 events");
    }
    for (auto el : arr) {
      if (entries.size() >= kMaxBatchEntries) {
        return Status::Validation("events must be an array of 1-500 events");
      }
      entries.emplace_back();
      od::object eo;
      if (el.get_object().get(eo)) {
        statuses.push_back(Status::Validation("each entry of events must be a JSON object"));
        continue;
      }
      statuses.push_back(ExtractEvent(eo, entries.back()));
    }
  }
  if (!seen) return Status::Validation("events is required");
  if (entries.empty()) return Status::Validation("events must be an array of 1-500 events");
  return Status::Ok();
}

}  // namespace triggers::core
