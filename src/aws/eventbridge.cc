// EventBridge PutEvents (AWS JSON 1.1): each entry becomes an event of the
// key's tenant through the ingest writer, like POST /v1/events/batch; the
// answer comes only after the commit (fsync'd), entries in request order.
#include <boost/json.hpp>

#include "aws/actions.h"
#include "aws/envelope.h"
#include "core/json_reader.h"
#include "store/ingest_writer.h"

namespace triggers::aws {
namespace json = boost::json;
namespace {

constexpr size_t kMaxEntries = 10;  // EventBridge's own limit

bool ValidResources(const json::value& v) {
  if (!v.is_array()) return false;
  for (const auto& r : v.as_array()) {
    if (!r.is_string() || r.as_string().empty() || r.as_string().size() > 2048) return false;
  }
  return true;
}

// Validates one entry into `ev`; an error message when it is refused.
std::string EntryToEvent(const json::value& v, Event* ev) {
  const json::object* e = v.if_object();
  if (!e) return "each entry must be an object";
  auto str = [&](const char* name) -> const json::string* {
    const json::value* f = e->if_contains(name);
    return f ? f->if_string() : nullptr;
  };
  const json::string* source = str("Source");
  const json::string* detail_type = str("DetailType");
  const json::string* detail = str("Detail");
  if (!source || source->empty() || source->size() > 256) {
    return "Parameter Source is not valid: a string of 1-256 characters is required.";
  }
  if (!detail_type || detail_type->empty() || detail_type->size() > 128) {
    return "Parameter DetailType is not valid: a string of 1-128 characters is required.";
  }
  if (!detail) return "Parameter Detail is not valid: a JSON object is required.";
  json::parse_options opts;
  opts.max_depth = core::kMaxJsonDepth - 1;
  boost::system::error_code ec;
  json::value parsed = json::parse(*detail, ec, {}, opts);
  if (ec || !parsed.is_object()) return "Detail is malformed: it must be a JSON object.";
  const json::value* resources = e->if_contains("Resources");
  if (resources && !ValidResources(*resources)) {
    return "Parameter Resources is not valid: a list of strings of 1-2048 characters is "
           "required.";
  }
  if (const json::value* b = e->if_contains("EventBusName"); b && !b->is_string()) {
    return "Parameter EventBusName is not valid.";
  }
  ev->source = std::string(*source);
  ev->subject = std::string(*detail_type);
  ev->type = EventTypeFromDetailType(*detail_type);
  ev->data = std::string(*detail);
  if (resources && !resources->as_array().empty()) ev->resources = json::serialize(*resources);
  return {};
}

json::object Results(const std::vector<std::string>& errors, const store::IngestBatch& b) {
  json::array entries;
  int64_t failed = 0;
  size_t next = 0;
  for (const auto& err : errors) {
    json::object o;
    if (err.empty()) {
      o["EventId"] = b.items[next++].event.id;
    } else {
      ++failed;
      o["ErrorCode"] = err.substr(0, 6) == "Detail" ? "MalformedDetail" : "InvalidArgument";
      o["ErrorMessage"] = err;
    }
    entries.push_back(std::move(o));
  }
  json::object out;
  out["FailedEntryCount"] = failed;
  out["Entries"] = std::move(entries);
  return out;
}

}  // namespace

void PutEvents(Call call, Done done) {
  const json::value* entries = call->input.if_contains("Entries");
  if (!entries || !entries->is_array() || entries->as_array().empty() ||
      entries->as_array().size() > kMaxEntries) {
    return done(Outcome::Fail(ErrorKind::kInvalidParameterValue,
                              "1 validation error detected: Value at 'entries' failed to satisfy "
                              "constraint: Member must have length between 1 and 10"));
  }
  api::Context& ctx = *call->ctx;
  auto batch = std::make_shared<store::IngestBatch>();
  batch->home = call->req->home;
  auto errors = std::make_shared<std::vector<std::string>>();
  for (const auto& v : entries->as_array()) {
    Event ev;
    errors->push_back(EntryToEvent(v, &ev));
    if (!errors->back().empty()) continue;
    ev.tenant = call->who->tenant;
    batch->items.emplace_back();
    store::IngestItem& item = batch->items.back();
    item.event = std::move(ev);
    item.matched_generation =
        ctx.subscriptions->Match(item.event, &item.subscription_ids, &item.subscription_ordered);
  }
  if (batch->items.empty()) return done(Outcome::Ok(Results(*errors, *batch)));
  store::IngestBatch* raw = batch.get();
  batch->done = [raw, errors, done](const Status& s) {
    if (!s.ok()) {
      return done(Outcome::Fail(ErrorKind::kUnavailable, "the store is unavailable; retry later"));
    }
    done(Outcome::Ok(Results(*errors, *raw)));
  };
  if (!ctx.writer->Submit(std::move(batch))) {
    done(Outcome::Fail(ErrorKind::kUnavailable, "the ingest queue is full; retry later"));
  }
}

}  // namespace triggers::aws
