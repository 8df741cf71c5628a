// GET /v1/events/stream (live tail, Server-Sent Events) and GET /v1/stats
// (the dashboard's numbers for the key's tenant).
#include <cstdio>

#include "api/event_stream.h"
#include "api/handlers.h"
#include "api/tenant_slots.h"
#include "core/event_pattern.h"
#include "core/json_util.h"
#include "core/time_util.h"
#include "obs/activity.h"

namespace triggers::api {

void StreamEvents(Context& ctx, const Call& call, Respond respond) {
  const Request& req = *call.req;
  std::string glob = QueryParam(req.query, "type").value_or("");
  if (!glob.empty()) {
    if (Status s = core::ValidateTypeGlob(glob); !s.ok()) {
      return respond(StatusResponse(Status::Validation("type: " + s.message()), req.request_id));
    }
  }
  EventStream* stream = ctx.event_stream;
  if (!stream || stream->Full()) {
    return respond(
        ErrorResponse(503, "unavailable", "too many open streams; retry later", req.request_id));
  }
  // The stream holds a slot of its tenant (SPEC 10) from now until it ends.
  std::shared_ptr<TenantSlots::Slot> slot;
  if (ctx.streams) {
    slot = ctx.streams->Acquire(call.who->tenant);
    if (!slot) {
      return respond(StatusResponse(
          Status::LimitExceeded("open streams per tenant: the tenant has reached the limit of " +
                                std::to_string(ctx.streams->limit()) +
                                " live tails open on this server (--max-streams-per-tenant, per "
                                "node); close one first"),
          req.request_id));
    }
  }
  Response r;
  r.status = 200;
  r.content_type = "text/event-stream";
  r.headers.emplace_back("X-Accel-Buffering", "no");  // proxies: do not buffer
  r.stream = [stream, keys = ctx.keys, tenant = call.who->tenant, key_hash = call.who->key_hash,
              glob = std::move(glob), slot](std::shared_ptr<StreamSink> sink) mutable {
    if (slot) sink->OnEnd([slot] { slot->Release(); });
    if (!stream->Add(tenant, key_hash, std::move(glob), sink)) return sink->Close();
    // A revocation since the request was authenticated may have missed the
    // stream (EndKey ran before Add): the revoked flag is set before EndKey
    // runs, so one of the two sees the other.
    if (keys->IsRevoked(key_hash)) stream->EndKey(key_hash);
  };
  respond(std::move(r));
}

namespace {

void AppendCount(std::string& out, const char* name, uint64_t n) {
  out += '"';
  out += name;
  out += "\":";
  out += std::to_string(n);
}

}  // namespace

Response GetStats(Context& ctx, const Call& call) {
  const Request& req = *call.req;
  const std::string& tenant = call.who->tenant;
  const int64_t now = ctx.clock->NowMs();
  std::vector<std::pair<std::string, int64_t>> by_state;
  int64_t oldest_due = 0;
  if (Status s = ctx.store->TenantDeliveryStats(tenant, now, &by_state, &oldest_due); !s.ok()) {
    return StatusResponse(s, req.request_id);
  }
  store::ListOptions opts;
  opts.limit = 100;
  auto subs = ctx.store->ListSubscriptions(tenant, opts);
  if (!subs.ok()) return StatusResponse(subs.status(), req.request_id);

  auto& activity = obs::Activity::Get();
  std::string body = "{\"now\":";
  core::AppendJsonString(body, core::FormatTimeMs(now));
  body += ",\"bucket_s\":" + std::to_string(obs::Activity::kBucketMs / 1000) + ",\"series\":[";
  bool first = true;
  for (const auto& b : activity.TenantSeries(tenant, now)) {
    if (!first) body += ',';
    first = false;
    body += "{\"t\":";
    core::AppendJsonString(body, core::FormatTimeMs(b.start_ms));
    body += ',';
    AppendCount(body, "ingested", b.ingested);
    body += ',';
    AppendCount(body, "delivered", b.delivered);
    body += ',';
    AppendCount(body, "failed", b.failed);
    body += '}';
  }
  body += "],\"deliveries\":{";
  first = true;
  for (const auto& [state, n] : by_state) {
    if (!first) body += ',';
    first = false;
    AppendCount(body, state.c_str(), static_cast<uint64_t>(n));
  }
  char age[32];
  std::snprintf(age, sizeof age, "%.3f",
                oldest_due > 0 ? static_cast<double>(now - oldest_due) / 1000.0 : 0.0);
  body += "},\"oldest_due_age_s\":";
  body += age;
  body += ",\"subscriptions\":[";
  first = true;
  for (const auto& s : subs.value()) {
    if (!first) body += ',';
    first = false;
    auto st = activity.Subscription(s.id, now);
    body += "{\"id\":";
    core::AppendJsonString(body, s.id);
    body += ",\"kind\":";
    core::AppendJsonString(body, s.kind);
    body += ",\"url\":";
    core::AppendJsonStringOrNull(body, s.url ? &*s.url : nullptr);
    body += ",\"enabled\":";
    body += s.enabled ? "true" : "false";
    body += ",\"circuit\":";
    core::AppendJsonString(body, st.circuit);
    body += ',';
    AppendCount(body, "attempts", st.succeeded + st.failed);
    body += ',';
    AppendCount(body, "succeeded", st.succeeded);
    body += ',';
    AppendCount(body, "failed", st.failed);
    body += ",\"success_rate\":";
    if (st.succeeded + st.failed == 0) {
      body += "null";
    } else {
      char rate[32];
      std::snprintf(
          rate, sizeof rate, "%.4f",
          static_cast<double>(st.succeeded) / static_cast<double>(st.succeeded + st.failed));
      body += rate;
    }
    body += '}';
  }
  body += "]}";
  Response r;
  r.status = 200;
  r.body = std::move(body);
  return r;
}

}  // namespace triggers::api
