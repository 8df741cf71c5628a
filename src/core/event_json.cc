#include "core/event_json.h"

#include "core/json_util.h"
#include "core/time_util.h"

namespace triggers::core {
namespace {

void AppendOptional(std::string& out, const char* key, const std::optional<std::string>& v) {
  out += key;
  if (v) {
    AppendJsonString(out, *v);
  } else {
    out += "null";
  }
}

}  // namespace

void AppendEventJsonOpen(std::string& out, const Event& ev) {
  out += "{\"id\":\"";
  out += ev.id;
  out += "\",\"type\":";
  AppendJsonString(out, ev.type);
  AppendOptional(out, ",\"source\":", ev.source);
  AppendOptional(out, ",\"subject\":", ev.subject);
  AppendOptional(out, ",\"ordering_key\":", ev.ordering_key);
  out += ",\"time\":\"";
  AppendTimeMs(out, ev.received_at_ms);
  out += '"';
  if (ev.resources) {  // PutEvents' Resources, already a compact JSON array
    out += ",\"resources\":";
    out += *ev.resources;
  }
  out += ",\"data\":";
  out += ev.data;  // raw bytes, exactly as received
}

void AppendEventJson(std::string& out, const Event& ev) {
  AppendEventJsonOpen(out, ev);
  out += '}';
}

}  // namespace triggers::core
