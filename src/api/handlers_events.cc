// POST /v1/events, POST /v1/events/batch, GET /v1/events, GET /v1/events/{id}.
// The ingest handlers run on the I/O thread: parse without a DOM, queue to the
// group-commit writer, and answer from the writer's completion.
#include <charconv>

#include "api/handlers.h"
#include "core/crypto.h"
#include "core/cursor.h"
#include "core/event_json.h"
#include "core/event_parser.h"
#include "core/ids.h"
#include "core/json_util.h"
#include "core/time_util.h"

namespace triggers::api {
namespace {

core::EventParser& Parser() {
  thread_local core::EventParser parser;
  return parser;
}

void AppendAccepted(std::string& out, const Event& ev, bool duplicate) {
  out += "{\"id\":\"";
  out += ev.id;
  out += "\",\"type\":";
  core::AppendJsonString(out, ev.type);
  out += ",\"received_at\":\"";
  core::AppendTimeMs(out, ev.received_at_ms);
  out += duplicate ? "\",\"duplicate\":true}" : "\",\"duplicate\":false}";
}

Response Json(int status, std::string body) {
  Response r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

}  // namespace

namespace {

// 1-255 bytes of UTF-8 text without control characters (stored and compared
// as text by every store).
bool ValidIdempotencyKey(std::string_view k) {
  if (k.empty() || k.size() > 255 || !core::IsValidUtf8(k)) return false;
  for (char c : k) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
  }
  return true;
}

}  // namespace

void PostEvent(Context& ctx, const Call& call, Respond respond) {
  const Request& req = *call.req;
  auto batch = std::make_shared<store::IngestBatch>();
  batch->items.resize(1);
  batch->home = req.home;
  store::IngestItem& item = batch->items[0];
  if (Status s = Parser().ParseEvent(req.body, item.event); !s.ok()) {
    return respond(StatusResponse(s, req.request_id));
  }
  if (req.has_idempotency_key) {
    if (!ValidIdempotencyKey(req.idempotency_key)) {
      return respond(ErrorResponse(400, "validation_error",
                                   "Idempotency-Key must be 1-255 characters of UTF-8 text "
                                   "without control characters",
                                   req.request_id));
    }
    item.idempotency_key.assign(req.idempotency_key);
    item.body_hash = core::Sha256(req.body);
  }
  item.event.tenant = call.who->tenant;
  item.matched_generation =
      ctx.subscriptions->Match(item.event, &item.subscription_ids, &item.subscription_ordered);
  store::IngestBatch* raw = batch.get();
  batch->done = [raw, respond, rid = req.request_id](const Status& s) {
    if (!s.ok()) return respond(StatusResponse(Status::Unavailable(""), rid));
    const store::IngestItem& it = raw->items[0];
    if (it.outcome == store::IngestItem::Outcome::kConflict) {
      return respond(ErrorResponse(
          409, "conflict", "this Idempotency-Key was already used with a different body", rid));
    }
    Response r;
    r.status = 202;
    r.body.reserve(128);
    AppendAccepted(r.body, it.event, it.outcome == store::IngestItem::Outcome::kDuplicate);
    respond(std::move(r));
  };
  if (!ctx.writer->Submit(std::move(batch))) {
    respond(
        ErrorResponse(503, "unavailable", "the ingest queue is full; retry later", req.request_id));
  }
}

void PostEventBatch(Context& ctx, const Call& call, Respond respond) {
  const Request& req = *call.req;
  if (req.has_idempotency_key) {
    return respond(ErrorResponse(400, "validation_error",
                                 "Idempotency-Key is not supported on /v1/events/batch",
                                 req.request_id));
  }
  std::vector<Event> entries;
  auto statuses = std::make_shared<std::vector<Status>>();
  if (Status s = Parser().ParseBatch(req.body, entries, *statuses); !s.ok()) {
    return respond(StatusResponse(s, req.request_id));
  }
  auto batch = std::make_shared<store::IngestBatch>();
  batch->home = req.home;
  for (size_t i = 0; i < entries.size(); ++i) {
    if (!(*statuses)[i].ok()) continue;
    batch->items.emplace_back();
    batch->items.back().event = std::move(entries[i]);
    batch->items.back().event.tenant = call.who->tenant;
    auto& added = batch->items.back();
    added.matched_generation =
        ctx.subscriptions->Match(added.event, &added.subscription_ids, &added.subscription_ordered);
  }
  auto finish = [statuses, respond, rid = req.request_id](const store::IngestBatch* b,
                                                          const Status& s) {
    if (!s.ok()) return respond(StatusResponse(Status::Unavailable(""), rid));
    Response r;
    r.status = 200;
    r.body.reserve(64 + statuses->size() * 96);
    r.body += "{\"results\":[";
    size_t next = 0, failed = 0;
    for (size_t i = 0; i < statuses->size(); ++i) {
      if (i) r.body += ',';
      const Status& st = (*statuses)[i];
      if (st.ok()) {
        AppendAccepted(r.body, b->items[next++].event, false);
        continue;
      }
      ++failed;
      r.body += "{\"error\":{\"code\":";
      core::AppendJsonString(
          r.body, st.code() == Status::Code::kInvalidJson ? "invalid_json" : "validation_error");
      r.body += ",\"message\":";
      core::AppendJsonString(r.body, st.message());
      r.body += "}}";
    }
    r.body += "],\"failed_count\":";
    r.body += std::to_string(failed);
    r.body += '}';
    respond(std::move(r));
  };
  if (batch->items.empty()) return finish(batch.get(), Status::Ok());
  store::IngestBatch* raw = batch.get();
  batch->done = [raw, finish](const Status& s) { finish(raw, s); };
  if (!ctx.writer->Submit(std::move(batch))) {
    respond(
        ErrorResponse(503, "unavailable", "the ingest queue is full; retry later", req.request_id));
  }
}

Status ParseListParams(std::string_view query, std::string_view prefix, int* limit,
                       std::string* after_id) {
  *limit = 100;
  after_id->clear();
  if (auto l = QueryParam(query, "limit")) {
    int v = 0;
    auto [p, ec] = std::from_chars(l->data(), l->data() + l->size(), v);
    if (ec != std::errc() || p != l->data() + l->size() || v < 1 || v > 1000) {
      return Status::Validation("limit must be an integer from 1 to 1000");
    }
    *limit = v;
  }
  if (auto a = QueryParam(query, "after"); a && !a->empty()) {
    auto id = core::DecodeCursor(*a, prefix);
    if (!id) return Status::Validation("after is not a valid cursor");
    *after_id = std::move(*id);
  }
  return Status::Ok();
}

Response ListEvents(Context& ctx, const Call& call) {
  const Request& req = *call.req;
  store::ListOptions opts;
  if (Status s = ParseListParams(req.query, "evt_", &opts.limit, &opts.after_id); !s.ok()) {
    return StatusResponse(s, req.request_id);
  }
  std::string type = QueryParam(req.query, "type").value_or("");
  if (!type.empty() && !core::IsValidEventType(type)) {
    return StatusResponse(Status::Validation("type must be 1-128 characters of [A-Za-z0-9._:/-]"),
                          req.request_id);
  }
  auto r = ctx.store->ListEvents(call.who->tenant, type, opts);
  if (!r.ok()) return StatusResponse(r.status(), req.request_id);
  const auto& events = r->events;
  std::string body;
  size_t total = 64;
  for (const auto& e : events) total += e.data.size() + 256;
  body.reserve(total);
  body += "{\"data\":[";
  for (size_t i = 0; i < events.size(); ++i) {
    if (i) body += ',';
    core::AppendEventJsonOpen(body, events[i]);
    body += '}';
  }
  body += "],\"next_cursor\":";
  if (r->more) {
    core::AppendJsonString(body, core::EncodeCursor(r->resume_after));
  } else {
    body += "null";
  }
  body += '}';
  return Json(200, std::move(body));
}

Response GetEvent(Context& ctx, const Call& call) {
  const Request& req = *call.req;
  if (!core::IsValidId(call.param, "evt_")) {
    return ErrorResponse(404, "not_found", "event not found", req.request_id);
  }
  auto r = ctx.store->GetEvent(call.who->tenant, std::string(call.param));
  if (!r.ok()) {
    if (r.status().IsNotFound())
      return ErrorResponse(404, "not_found", "event not found", req.request_id);
    return StatusResponse(r.status(), req.request_id);
  }
  std::string body;
  body.reserve(r->data.size() + 300);
  core::AppendEventJsonOpen(body, r.value());
  body += ",\"deliveries\":";
  body += DeliverySummaryJson(ctx, call.who->tenant, r->id);
  body += '}';
  return Json(200, std::move(body));
}

}  // namespace triggers::api
