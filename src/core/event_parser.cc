#include "core/event_parser.h"

#include "core/json_reader_impl.h"

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

std::string_view TrimRight(std::string_view s) {
  while (!s.empty() &&
         (s.back() == ' ' || s.back() == '\n' || s.back() == '\r' || s.back() == '\t')) {
    s.remove_suffix(1);
  }
  return s;
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
  // A repeated field never gets here: the reader refuses duplicate keys.
  bool seen_type = false;
  for (auto field : obj) {
    std::string_view key;
    if (field.unescaped_key().get(key)) return Status::InvalidJson("malformed object key");
    od::value v;
    if (field.value().get(v)) return Status::InvalidJson("malformed value");
    if (key == "type") {
      seen_type = true;
      std::string_view s;
      if (v.get_string().get(s)) return Status::Validation("type must be a string");
      if (!IsValidEventType(s)) {
        return Status::Validation("type must be 1-128 characters of [A-Za-z0-9._:/-]");
      }
      ev.type.assign(s);
    } else if (key == "data") {
      std::string_view raw;
      if (RawValue(v, raw)) return Status::InvalidJson("malformed data");
      ev.data.assign(raw);
    } else if (key == "source") {
      if (Status s = OptionalString(v, "source", ev.source); !s.ok()) return s;
    } else if (key == "subject") {
      if (Status s = OptionalString(v, "subject", ev.subject); !s.ok()) return s;
    } else if (key == "ordering_key") {
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

struct EventParser::Impl {
  JsonReader reader;  // the one reader of every body (duplicate keys, depth, syntax)
  Status Load(std::string_view body, od::document& doc) { return reader.impl().Load(body, doc); }
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
