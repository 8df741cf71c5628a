#include "aws/envelope.h"

#include <boost/json.hpp>

#include "core/event_parser.h"
#include "core/json_util.h"
#include "core/time_util.h"

namespace triggers::aws {

bool IsValidQueueName(std::string_view name) {
  if (name.empty() || name.size() > 80) return false;
  for (char c : name) {
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
          c == '-'))
      return false;
  }
  return true;
}

std::string EventTypeFromDetailType(std::string_view dt) {
  if (core::IsValidEventType(dt)) return std::string(dt);
  std::string out;
  for (char c : dt.substr(0, 128)) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == ':' || c == '/' || c == '-';
    out += ok ? c : '-';
  }
  return out.empty() ? "-" : out;
}

std::string DetailTypeOf(const Event& ev) {
  if (ev.subject && !ev.subject->empty() && ev.subject->size() <= 128 &&
      EventTypeFromDetailType(*ev.subject) == ev.type)
    return *ev.subject;
  return ev.type;
}

bool IsSqsMessage(const Event& ev) {
  return ev.type == kSqsMessageType && ev.source && *ev.source == kSqsMessageSource &&
         !ev.data.empty() && ev.data.front() == '{';
}

std::string EnvelopeJson(const Event& ev, std::string_view region) {
  std::string out;
  out.reserve(ev.data.size() + 300);
  out += "{\"version\":\"0\",\"id\":";
  core::AppendJsonString(out, ev.id);
  out += ",\"detail-type\":";
  core::AppendJsonString(out, DetailTypeOf(ev));
  out += ",\"source\":";
  core::AppendJsonString(out, ev.source ? *ev.source : std::string("triggers"));
  out += ",\"account\":";
  core::AppendJsonString(out, ev.tenant);
  out += ",\"time\":\"";
  std::string t = core::FormatTimeMs(ev.received_at_ms);  // ...:ss.mmmZ -> ...:ssZ
  if (t.size() == 24) t = t.substr(0, 19) + "Z";
  out += t;
  out += "\",\"region\":";
  core::AppendJsonString(out, region);
  out += ",\"resources\":";
  out += ev.resources ? std::string_view(*ev.resources) : std::string_view("[]");
  out += ",\"detail\":";
  out += ev.data.empty() ? std::string_view("null") : std::string_view(ev.data);
  out += '}';
  return out;
}

void MessageOf(const Event& ev, std::string_view region, std::string* body,
               boost::json::object* attributes) {
  attributes->clear();
  if (IsSqsMessage(ev)) {
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(ev.data, ec);
    const boost::json::object* o = ec ? nullptr : v.if_object();
    const boost::json::value* b = o ? o->if_contains("Body") : nullptr;
    if (b && b->is_string()) {
      *body = std::string(b->as_string());
      const boost::json::value* a = o->if_contains("MessageAttributes");
      if (a && a->is_object()) *attributes = a->as_object();
      return;
    }
  }
  *body = EnvelopeJson(ev, region);
}

}  // namespace triggers::aws
