#include "aws/protocol.h"

#include <algorithm>
#include <cstdlib>

#include "core/json_util.h"
#include "core/url_decode.h"

namespace triggers::aws {
namespace json = boost::json;
namespace {

constexpr std::string_view kSqsXmlns = "http://queue.amazonaws.com/doc/2012-11-05/";

std::string_view HeaderOf(const api::Request& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
          return std::tolower(a) == std::tolower(b);
        }))
      return v;
  }
  return {};
}

// application/x-www-form-urlencoded: '+' is a space.
std::string FormDecode(std::string_view s) { return core::PercentDecode(s, true); }

bool IsIndex(std::string_view s) {
  return !s.empty() && s.size() <= 3 && std::all_of(s.begin(), s.end(), ::isdigit) && s[0] != '0';
}

// Objects whose keys are all list indexes (1-based) become arrays in index order.
json::value Listify(json::value v) {
  json::object* o = v.if_object();
  if (!o) return v;
  bool all_index = !o->empty();
  for (auto& [k, child] : *o) {
    child = Listify(std::move(child));
    all_index = all_index && IsIndex(k);
  }
  if (!all_index) return v;
  std::vector<std::pair<int, json::value>> items;
  for (auto& [k, child] : *o) items.emplace_back(std::atoi(std::string(k).c_str()), child);
  std::sort(items.begin(), items.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  json::array arr;
  for (auto& [i, child] : items) arr.push_back(std::move(child));
  return arr;
}

// {"MessageAttribute":[{"Name":n,"Value":v}]} -> {"MessageAttributes":{n:v}}, and the other
// names the query protocol spells differently from the JSON protocol.
void RenameQueryMembers(json::object& o) {
  static const std::pair<std::string_view, std::string_view> kLists[] = {
      {"AttributeName", "AttributeNames"},
      {"MessageAttributeName", "MessageAttributeNames"},
      {"MessageSystemAttributeName", "MessageSystemAttributeNames"},
      {"DeleteMessageBatchRequestEntry", "Entries"},
      {"ChangeMessageVisibilityBatchRequestEntry", "Entries"},
      {"SendMessageBatchRequestEntry", "Entries"},
  };
  for (auto [from, to] : kLists) {
    if (auto* v = o.if_contains(from)) {
      json::value moved = std::move(*v);
      o.erase(from);
      if (!moved.is_array()) moved = json::array{std::move(moved)};
      o[to] = std::move(moved);
    }
  }
  if (auto* entries = o.if_contains("Entries"); entries && entries->is_array()) {
    for (auto& e : entries->as_array()) {
      if (e.is_object()) RenameQueryMembers(e.as_object());
    }
  }
  if (auto* v = o.if_contains("MessageAttribute")) {
    json::object map;
    if (v->is_array()) {
      for (auto& a : v->as_array()) {
        const json::object* ao = a.if_object();
        if (!ao || !ao->contains("Name") || !ao->at("Name").is_string()) continue;
        map[ao->at("Name").as_string()] = ao->contains("Value") ? ao->at("Value") : json::object();
      }
    }
    o.erase("MessageAttribute");
    o["MessageAttributes"] = std::move(map);
  }
}

void AppendXml(std::string& out, std::string_view name, const json::value& v,
               std::string_view action);

void AppendScalar(std::string& out, const json::value& v) {
  if (v.is_string()) {
    out += XmlEscape(v.as_string());
  } else if (v.is_bool()) {
    out += v.as_bool() ? "true" : "false";
  } else if (!v.is_null()) {
    out += json::serialize(v);
  }
}

void AppendMap(std::string& out, std::string_view entry, const json::object& m,
               std::string_view action) {
  for (const auto& [k, v] : m) {
    out += "<" + std::string(entry) + "><Name>" + XmlEscape(k) + "</Name>";
    AppendXml(out, "Value", v, action);
    out += "</" + std::string(entry) + ">";
  }
}

// Flattened lists and maps, as the SQS query protocol writes them.
void AppendXml(std::string& out, std::string_view name, const json::value& v,
               std::string_view action) {
  if (const json::array* a = v.if_array()) {
    std::string member = name == "Messages"     ? "Message"
                         : name == "QueueUrls"  ? "QueueUrl"
                         : name == "Failed"     ? "BatchResultErrorEntry"
                         : name == "Successful" ? std::string(action) + "ResultEntry"
                                                : std::string(name);
    for (const auto& item : *a) AppendXml(out, member, item, action);
    return;
  }
  if (const json::object* o = v.if_object()) {
    if (name == "Attributes") return AppendMap(out, "Attribute", *o, action);
    if (name == "MessageAttributes") return AppendMap(out, "MessageAttribute", *o, action);
    out += "<" + std::string(name) + ">";
    for (const auto& [k, child] : *o) AppendXml(out, k, child, action);
    out += "</" + std::string(name) + ">";
    return;
  }
  out += "<" + std::string(name) + ">";
  AppendScalar(out, v);
  out += "</" + std::string(name) + ">";
}

}  // namespace

std::string_view ServiceOf(Protocol p) { return p == Protocol::kEventsJson ? "events" : "sqs"; }

const ErrorCodes& CodesOf(ErrorKind kind) {
  static const ErrorCodes kCodes[] = {
      {"MissingAuthenticationToken", "MissingAuthenticationToken",
       "MissingAuthenticationTokenException", 403},
      {"IncompleteSignature", "IncompleteSignature", "IncompleteSignatureException", 400},
      {"InvalidClientTokenId", "InvalidClientTokenId", "UnrecognizedClientException", 403},
      {"SignatureDoesNotMatch", "SignatureDoesNotMatch", "InvalidSignatureException", 403},
      {"RequestExpired", "RequestExpired", "InvalidSignatureException", 400},
      {"AccessDenied", "AccessDenied", "AccessDeniedException", 403},
      {"QueueDoesNotExist", "AWS.SimpleQueueService.NonExistentQueue", "ResourceNotFoundException",
       400},
      {"ReceiptHandleIsInvalid", "ReceiptHandleIsInvalid", "ValidationException", 400},
      {"MessageNotInflight", "AWS.SimpleQueueService.MessageNotInflight", "ValidationException",
       400},
      {"InvalidParameterValue", "InvalidParameterValue", "ValidationException", 400},
      {"MissingParameter", "MissingParameter", "ValidationException", 400},
      {"InvalidAttributeName", "InvalidAttributeName", "ValidationException", 400},
      {"TooManyEntriesInBatchRequest", "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
       "ValidationException", 400},
      {"EmptyBatchRequest", "AWS.SimpleQueueService.EmptyBatchRequest", "ValidationException", 400},
      {"BatchEntryIdsNotDistinct", "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
       "ValidationException", 400},
      {"InvalidBatchEntryId", "AWS.SimpleQueueService.InvalidBatchEntryId", "ValidationException",
       400},
      {"BatchRequestTooLong", "AWS.SimpleQueueService.BatchRequestTooLong", "ValidationException",
       400},
      {"SerializationException", "MalformedQueryString", "SerializationException", 400},
      {"UnsupportedOperation", "InvalidAction", "UnknownOperationException", 400},
      {"RequestThrottled", "RequestThrottled", "ThrottlingException", 400},
      {"ServiceUnavailable", "ServiceUnavailable", "ServiceUnavailable", 503},
      {"InternalError", "InternalError", "InternalException", 500},
  };
  return kCodes[static_cast<int>(kind)];
}

json::object NestForm(std::string_view form) {
  json::object root;
  while (!form.empty()) {
    size_t amp = form.find('&');
    std::string_view part = form.substr(0, amp);
    form = amp == std::string_view::npos ? std::string_view() : form.substr(amp + 1);
    size_t eq = part.find('=');
    std::string key = FormDecode(part.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : FormDecode(part.substr(eq + 1));
    if (key.empty() || key.size() > 256) continue;
    json::object* at = &root;
    std::string_view rest = key;
    for (int depth = 0; depth < 8; ++depth) {
      size_t dot = rest.find('.');
      std::string_view comp = rest.substr(0, dot);
      if (dot == std::string_view::npos || depth == 7) {
        (*at)[rest] = value;
        break;
      }
      json::value& child = (*at)[comp];
      if (!child.is_object()) child = json::object();
      at = &child.as_object();
      rest = rest.substr(dot + 1);
    }
  }
  json::value v = Listify(std::move(root));
  json::object out = v.is_object() ? std::move(v.as_object()) : json::object();
  RenameQueryMembers(out);
  return out;
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      case '\r':
        out += "&#xD;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

bool ParseInput(Protocol p, const api::Request& req, std::string* action, json::object* input,
                Error* err) {
  if (p == Protocol::kSqsQuery) {
    std::string_view form = req.method == "GET" ? req.query : req.body;
    *input = NestForm(form);
    if (req.method != "GET" && !req.query.empty()) {
      // Parameters may also come in the URL (signed there); the body wins.
      for (auto& [k, v] : NestForm(req.query)) {
        if (!input->contains(k)) (*input)[k] = v;
      }
    }
    const json::value* a = input->if_contains("Action");
    if (!a || !a->is_string() || a->as_string().empty()) {
      *err = {ErrorKind::kMissingParameter, "The request must contain the parameter Action."};
      return false;
    }
    *action = a->as_string();
    return true;
  }
  std::string_view target = HeaderOf(req, "X-Amz-Target");
  *action = std::string(target.substr(target.find('.') + 1));
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 32;
  json::value v = json::parse(req.body.empty() ? std::string_view("{}") : req.body, ec, {}, opts);
  if (ec || !v.is_object()) {
    *err = {ErrorKind::kSerialization, "the body must be a JSON object"};
    return false;
  }
  *input = std::move(v.as_object());
  return true;
}

api::Response RenderResult(Protocol p, std::string_view action, const json::object& output,
                           const std::string& request_id) {
  api::Response r;
  r.status = 200;
  r.headers.emplace_back("x-amzn-RequestId", request_id);
  if (p != Protocol::kSqsQuery) {
    r.content_type =
        p == Protocol::kEventsJson ? "application/x-amz-json-1.1" : "application/x-amz-json-1.0";
    r.body = json::serialize(output);
    return r;
  }
  r.content_type = "text/xml";
  std::string a(action);
  r.body = "<?xml version=\"1.0\"?><" + a + "Response xmlns=\"" + std::string(kSqsXmlns) + "\">";
  // Actions with an output shape always carry their Result element (the
  // clients' parsers look for it even when it is empty).
  if (!output.empty() || (action != "DeleteMessage" && action != "ChangeMessageVisibility")) {
    r.body += "<" + a + "Result>";
    for (const auto& [k, v] : output) AppendXml(r.body, k, v, action);
    r.body += "</" + a + "Result>";
  }
  r.body += "<ResponseMetadata><RequestId>" + XmlEscape(request_id) +
            "</RequestId></ResponseMetadata></" + a + "Response>";
  return r;
}

api::Response RenderError(Protocol p, const Error& e, const std::string& request_id) {
  const ErrorCodes& c = CodesOf(e.kind);
  api::Response r;
  r.status = c.status;
  r.headers.emplace_back("x-amzn-RequestId", request_id);
  const bool sender = c.status < 500;
  if (p == Protocol::kSqsQuery) {
    r.content_type = "text/xml";
    r.body = "<?xml version=\"1.0\"?><ErrorResponse xmlns=\"" + std::string(kSqsXmlns) +
             "\"><Error><Type>" + (sender ? "Sender" : "Receiver") + "</Type><Code>" +
             std::string(c.sqs_query) + "</Code><Message>" + XmlEscape(e.message) +
             "</Message><Detail/></Error><RequestId>" + XmlEscape(request_id) +
             "</RequestId></ErrorResponse>";
    return r;
  }
  json::object o;
  if (p == Protocol::kSqsJson) {
    r.content_type = "application/x-amz-json-1.0";
    o["__type"] = "com.amazonaws.sqs#" + std::string(c.sqs_json);
    r.headers.emplace_back("x-amzn-query-error",
                           std::string(c.sqs_query) + (sender ? ";Sender" : ";Receiver"));
  } else {
    r.content_type = "application/x-amz-json-1.1";
    o["__type"] = c.events;
  }
  o["message"] = e.message;
  r.body = json::serialize(o);
  return r;
}

}  // namespace triggers::aws
