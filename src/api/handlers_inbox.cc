// Pull inboxes (SPEC 6): receive (with long polling), ack, nack.
#include <boost/json.hpp>

#include "api/handlers.h"
#include "api/inbox.h"
#include "api/json_body.h"
#include "api/tenant_slots.h"
#include "core/event_json.h"
#include "core/ids.h"
#include "core/json_util.h"

namespace triggers::api {
namespace json = boost::json;
namespace {

constexpr int64_t kMaxVisibilityS = 12 * 3600;
constexpr int64_t kMaxWaitS = 20;

// The pull subscription named in the path, of the caller's tenant.
Status LoadPull(Context& ctx, const Call& call, Subscription* out) {
  if (!core::IsValidId(call.param, "sub_")) return Status::NotFound("subscription not found");
  auto r = ctx.store->GetSubscription(call.who->tenant, std::string(call.param));
  if (!r.ok()) return r.status();
  if (r->kind != "pull") {
    return Status::Validation("this is not a pull subscription: its events are pushed to its url");
  }
  *out = std::move(r.value());
  return Status::Ok();
}

Status IntField(const json::object& body, const char* name, int64_t lo, int64_t hi, int64_t* out) {
  const json::value* v = body.if_contains(name);
  if (!v || v->is_null()) return Status::Ok();
  if (!v->is_int64() || v->as_int64() < lo || v->as_int64() > hi) {
    return Status::Validation(std::string(name) + " must be an integer from " + std::to_string(lo) +
                              " to " + std::to_string(hi));
  }
  *out = v->as_int64();
  return Status::Ok();
}

Response MessagesResponse(const std::vector<store::Store::Leased>& msgs) {
  Response r;
  r.status = 200;
  r.body = "{\"data\":[";
  for (size_t i = 0; i < msgs.size(); ++i) {
    if (i) r.body += ',';
    r.body += "{\"receipt\":";
    core::AppendJsonString(r.body, msgs[i].receipt);
    r.body += ",\"attempt\":";
    r.body += std::to_string(msgs[i].delivery.attempts);
    r.body += ",\"delivery_id\":\"";
    r.body += msgs[i].delivery.id;
    r.body += "\",\"event\":";
    core::AppendEventJson(r.body, msgs[i].event);
    r.body += '}';
  }
  r.body += "]}";
  return r;
}

Status ParseReceipts(const json::object& body, std::vector<std::string>* out) {
  const json::value* v = body.if_contains("receipts");
  if (!v || !v->is_array() || v->as_array().empty() || v->as_array().size() > 100) {
    return Status::Validation("receipts must be an array of 1-100 receipts");
  }
  for (const auto& r : v->as_array()) {
    if (!r.is_string() || r.as_string().empty() || r.as_string().size() > 128) {
      return Status::Validation("receipts must be an array of receipt strings");
    }
    out->emplace_back(r.as_string());
  }
  return Status::Ok();
}

Response Settle(Context& ctx, const Call& call, bool ack) {
  const std::string& rid = call.req->request_id;
  json::object body;
  if (Status s = ParseJsonObject(call.req->body, &body); !s.ok()) return StatusResponse(s, rid);
  if (Status s =
          CheckFields(body, ack ? std::initializer_list<std::string_view>{"receipts"}
                                : std::initializer_list<std::string_view>{"receipts", "delay_s"});
      !s.ok()) {
    return StatusResponse(s, rid);
  }
  std::vector<std::string> receipts;
  if (Status s = ParseReceipts(body, &receipts); !s.ok()) return StatusResponse(s, rid);
  int64_t delay_s = 0;
  if (Status s = IntField(body, "delay_s", 0, kMaxVisibilityS, &delay_s); !s.ok()) {
    return StatusResponse(s, rid);
  }
  Subscription sub;
  if (Status s = LoadPull(ctx, call, &sub); !s.ok()) return StatusResponse(s, rid);
  const int64_t now = ctx.clock->NowMs();
  auto r = ctx.store->Settle(sub.id, receipts, ack, now + delay_s * 1000, now);
  if (!r.ok()) return StatusResponse(r.status(), rid);
  if (!ack && delay_s == 0) ctx.inbox_notify({sub.id});  // visible again now
  json::array results;
  for (const auto& rr : r.value()) {
    json::object o;
    o["receipt"] = rr.receipt;
    o["status"] = rr.status;
    results.emplace_back(std::move(o));
  }
  json::object o;
  o["results"] = std::move(results);
  Response resp;
  resp.body = json::serialize(o);
  return resp;
}

// The attempt of one receive: answers and returns true when it got messages
// or on the last turn. Shutdown and revocation answer without touching the
// store, so they take no lease.
Inbox::Attempt ReceiveAttempt(Context& ctx, Respond respond, std::string rid,
                              const Subscription& sub, std::string key_hash, int max,
                              int64_t visibility_s) {
  return [&ctx, respond = std::move(respond), rid = std::move(rid), sub_id = sub.id,
          key_hash = std::move(key_hash), max, visibility_s,
          max_receives = sub.max_receives](Inbox::Turn turn) -> bool {
    if (turn == Inbox::Turn::kShutdown) {
      respond(MessagesResponse({}));
      return true;
    }
    // Also checked here: a revocation may land while this receive is not
    // parked (running, or before it parks) and so miss Inbox::EndKey.
    if (turn == Inbox::Turn::kRevoked || ctx.keys->IsRevoked(key_hash)) {
      respond(ErrorResponse(401, "unauthorized", "this API key has been revoked", rid));
      return true;
    }
    const bool final = turn == Inbox::Turn::kLast;
    const int64_t now = ctx.clock->NowMs();
    auto current = ctx.subscriptions->Get(sub_id);
    // While the subscription is disabled its messages wait (SPEC 5).
    if (current && !current->sub.enabled) {
      if (!final) return false;
      respond(MessagesResponse({}));
      return true;
    }
    auto r = ctx.store->Receive(sub_id, now, max, now + visibility_s * 1000, max_receives);
    if (!r.ok()) {
      respond(StatusResponse(r.status(), rid));
      return true;
    }
    if (r->empty() && !final) return false;
    respond(MessagesResponse(r.value()));
    return true;
  };
}

Response ParkLimitResponse(const Context& ctx, const std::string& rid) {
  return StatusResponse(
      Status::LimitExceeded(
          "parked receives per tenant: the tenant has reached the limit of " +
          std::to_string(ctx.parked_receives->limit()) +
          " receives waiting (wait_s > 0) on this server (--max-parked-receives-per-tenant, per "
          "node); receive with wait_s 0, or when one of them has answered"),
      rid);
}

}  // namespace

void ReceiveMessages(Context& ctx, const Call& call, Respond respond) {
  // Everything here touches the store: continue on the blocking pool.
  auto task = [&ctx, call, respond]() mutable {
    const std::string& rid = call.req->request_id;
    json::object body;
    if (!call.req->body.empty()) {
      if (Status s = ParseJsonObject(call.req->body, &body); !s.ok()) {
        return respond(StatusResponse(s, rid));
      }
    }
    if (Status s = CheckFields(body, {"max", "visibility_timeout_s", "wait_s"}); !s.ok()) {
      return respond(StatusResponse(s, rid));
    }
    int64_t max = 10, visibility_s = 30, wait_s = 0;
    Status s = IntField(body, "max", 1, 100, &max);
    if (s.ok()) s = IntField(body, "visibility_timeout_s", 1, kMaxVisibilityS, &visibility_s);
    if (s.ok()) s = IntField(body, "wait_s", 0, kMaxWaitS, &wait_s);
    if (!s.ok()) return respond(StatusResponse(s, rid));
    Subscription sub;
    if (Status s = LoadPull(ctx, call, &sub); !s.ok()) return respond(StatusResponse(s, rid));
    // The parked receive holds a slot of its tenant (SPEC 10) until it
    // answers: given back before the answer leaves, so a client that sends
    // its next receive on the answer finds the slot free.
    auto slot = std::make_shared<std::shared_ptr<TenantSlots::Slot>>();
    Respond answer = [slot, respond](Response&& r) {
      if (*slot) (*slot)->Release();
      respond(std::move(r));
    };
    Inbox::Attempt attempt = ReceiveAttempt(ctx, answer, rid, sub, call.who->key_hash,
                                            static_cast<int>(max), visibility_s);
    const int64_t deadline = ctx.clock->NowMs() + wait_s * 1000;
    if (attempt(wait_s == 0 ? Inbox::Turn::kLast : Inbox::Turn::kTry)) return;
    // Nothing yet (and nothing leased): park without holding this thread,
    // if the tenant has a slot left.
    if (ctx.parked_receives) {
      *slot = ctx.parked_receives->Acquire(call.who->tenant);
      if (!*slot) return respond(ParkLimitResponse(ctx, rid));
    }
    if (!ctx.inbox->Park(sub.id, call.who->key_hash, deadline, attempt)) {
      attempt(Inbox::Turn::kLast);
    }
  };
  if (!ctx.run_blocking(std::move(task))) {
    respond(ErrorResponse(503, "unavailable", "server busy; retry later", call.req->request_id));
  }
}

Response AckMessages(Context& ctx, const Call& call) { return Settle(ctx, call, true); }
Response NackMessages(Context& ctx, const Call& call) { return Settle(ctx, call, false); }

}  // namespace triggers::api
