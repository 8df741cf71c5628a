// SQS SendMessage(Batch): each message becomes an event for that queue
// alone (IngestItem::only_subscription), through the ingest writer like
// POST /v1/events: the answer comes after the commit (fsync'd). The body and
// message attributes are kept as sent (envelope.h) and come back unchanged.
#include "aws/actions.h"
#include "aws/envelope.h"
#include "aws/sqs_common.h"
#include "core/json_util.h"
#include "store/ingest_writer.h"

namespace triggers::aws {
namespace json = boost::json;
namespace {

constexpr size_t kMaxMessageBytes = 262144;  // SQS's 256 KiB

struct Entry {
  std::string id;
  std::string body;
  json::object attrs;
  std::string error;  // non-empty: refused (InvalidParameterValue)
};

std::string CheckAttributes(const json::object& attrs) {
  if (attrs.size() > 10)
    return "Number of message attributes [" + std::to_string(attrs.size()) +
           "] exceeds the allowed maximum [10].";
  for (const auto& [k, v] : attrs) {
    bool name_ok = !k.empty() && k.size() <= 256;
    for (char c : k) {
      name_ok = name_ok &&
                (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.');
    }
    const json::object* a = v.if_object();
    std::string type = a ? StrParam(*a, "DataType").value_or("") : "";
    bool type_ok = type.rfind("String", 0) == 0 || type.rfind("Number", 0) == 0 ||
                   type.rfind("Binary", 0) == 0;
    bool value_ok = a && (type.rfind("Binary", 0) == 0 ? StrParam(*a, "BinaryValue").has_value()
                                                       : StrParam(*a, "StringValue").has_value());
    if (!name_ok || !type_ok || !value_ok) {
      return "Message attribute '" + std::string(k).substr(0, 64) +
             "' must have a valid name, a DataType of String, Number or Binary and its value.";
    }
  }
  return {};
}

Entry ReadEntry(const json::object& in) {
  Entry e;
  e.id = StrParam(in, "Id").value_or("");
  auto body = StrParam(in, "MessageBody");
  int64_t delay = 0;
  Error err{ErrorKind::kInternal, ""};
  if (!body || body->empty()) {
    e.error = "The request must contain the parameter MessageBody.";
  } else if (body->size() > kMaxMessageBytes) {
    e.error =
        "One or more parameters are invalid. Reason: Message must be shorter than 262144 "
        "bytes.";
  } else if (!core::IsValidUtf8(*body)) {
    e.error = "The message body must be valid UTF-8.";
  } else if (!IntParam(in, "DelaySeconds", 0, 0, 0, &delay, &err)) {
    e.error = "DelaySeconds is not supported: it must be 0.";
  } else if (const json::value* a = in.if_contains("MessageAttributes"); a && !a->is_object()) {
    e.error = "MessageAttributes must be a map.";
  } else {
    if (a) e.attrs = a->as_object();
    e.error = CheckAttributes(e.attrs);
    e.body = std::move(*body);
  }
  return e;
}

json::object Sent(const Entry& e, const Event& ev) {
  json::object o;
  if (!e.id.empty()) o["Id"] = e.id;
  o["MessageId"] = ev.id;
  o["MD5OfMessageBody"] = Md5Hex(e.body);
  if (!e.attrs.empty()) o["MD5OfMessageAttributes"] = Md5OfMessageAttributes(e.attrs);
  return o;
}

void Submit(Call call, Queue q, std::shared_ptr<std::vector<Entry>> entries, bool batch,
            Done done) {
  api::Context& ctx = *call->ctx;
  auto ib = std::make_shared<store::IngestBatch>();
  ib->home = call->req->home;
  for (const Entry& e : *entries) {
    if (!e.error.empty()) continue;
    store::IngestItem& item = ib->items.emplace_back();
    item.event.tenant = call->who->tenant;
    item.event.type = kSqsMessageType;
    item.event.source = std::string(kSqsMessageSource);
    item.event.subject = q->sub.name;
    json::object data{{"Body", e.body}, {"MessageAttributes", e.attrs}};
    item.event.data = json::serialize(data);
    item.only_subscription = q->sub.id;
    item.matched_generation = ctx.subscriptions->Generation(item.event.tenant);
    if (q->sub.enabled) {
      item.subscription_ids.push_back(q->sub.id);
      item.subscription_ordered.push_back(q->sub.ordered ? 1 : 0);
    }
  }
  store::IngestBatch* raw = ib.get();
  auto finish = [entries, batch, done, raw](const Status& s) {
    if (!s.ok()) return done(Outcome::Fail(ErrorKind::kUnavailable, "the store is unavailable"));
    if (!batch) return done(Outcome::Ok(Sent((*entries)[0], raw->items[0].event)));
    json::array ok, failed;
    size_t next = 0;
    for (const Entry& e : *entries) {
      if (e.error.empty()) {
        ok.push_back(Sent(e, raw->items[next++].event));
      } else {
        failed.push_back(FailedEntry(e.id, ErrorKind::kInvalidParameterValue, e.error));
      }
    }
    done(Outcome::Ok(json::object{{"Successful", std::move(ok)}, {"Failed", std::move(failed)}}));
  };
  if (ib->items.empty()) return finish(Status::Ok());
  ib->done = finish;
  if (!ctx.writer->Submit(std::move(ib))) {
    done(Outcome::Fail(ErrorKind::kUnavailable, "the ingest queue is full; retry later"));
  }
}

}  // namespace

void SendMessage(Call call, Done done) {
  Queue q;
  Error err{ErrorKind::kInternal, ""};
  if (!ResolveQueue(*call, &q, &err)) return done(Outcome::Fail(err.kind, err.message));
  auto entries = std::make_shared<std::vector<Entry>>();
  entries->push_back(ReadEntry(call->input));
  if (!(*entries)[0].error.empty()) {
    ErrorKind k = call->input.contains("MessageBody") ? ErrorKind::kInvalidParameterValue
                                                      : ErrorKind::kMissingParameter;
    return done(Outcome::Fail(k, (*entries)[0].error));
  }
  Submit(call, q, entries, false, std::move(done));
}

void SendMessageBatch(Call call, Done done) {
  Queue q;
  Error err{ErrorKind::kInternal, ""};
  const json::array* list = nullptr;
  if (!ResolveQueue(*call, &q, &err) || !BatchEntries(call->input, &list, &err)) {
    return done(Outcome::Fail(err.kind, err.message));
  }
  auto entries = std::make_shared<std::vector<Entry>>();
  size_t total = 0;
  for (const auto& v : *list) {
    entries->push_back(ReadEntry(v.as_object()));
    total += entries->back().body.size();
  }
  if (total > kMaxMessageBytes) {
    return done(Outcome::Fail(ErrorKind::kBatchRequestTooLong,
                              "Batch requests cannot be longer than 262144 bytes."));
  }
  Submit(call, q, entries, true, std::move(done));
}

}  // namespace triggers::aws
