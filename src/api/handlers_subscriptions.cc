// Subscriptions (SPEC 5) and deliveries (SPEC 6: list, get, retry).
#include <arpa/inet.h>
#include <netdb.h>

#include <boost/json.hpp>
#include <cmath>

#include "api/handlers.h"
#include "api/json_body.h"
#include "aws/envelope.h"
#include "core/cursor.h"
#include "core/ids.h"
#include "core/json_util.h"
#include "core/time_util.h"
#include "core/webhook_signing.h"
#include "delivery/ssrf.h"

namespace triggers::api {
namespace json = boost::json;
namespace {

constexpr int64_t kPreviousSecretValidityMs = 24LL * 3600 * 1000;

Response JsonResponse(int status, const json::value& v) {
  Response r;
  r.status = status;
  r.body = json::serialize(v);
  return r;
}

json::value OptStr(const std::optional<std::string>& s) {
  return s ? json::value(*s) : json::value(nullptr);
}

json::object SubscriptionJson(const Subscription& s, bool with_secret) {
  json::object o;
  o["id"] = s.id;
  o["kind"] = s.kind;
  o["url"] = OptStr(s.url);
  boost::system::error_code ec;
  o["event_types"] = json::parse(s.event_types_json, ec);
  o["filter"] = s.filter_json ? json::parse(*s.filter_json, ec) : json::value(nullptr);
  o["max_in_flight"] = s.max_in_flight;
  if (s.rate_limit_per_s == std::floor(s.rate_limit_per_s)) {
    o["rate_limit_per_s"] = static_cast<int64_t>(s.rate_limit_per_s);
  } else {
    o["rate_limit_per_s"] = s.rate_limit_per_s;
  }
  o["ordered"] = s.ordered;
  o["max_receives"] = s.max_receives;
  o["description"] = OptStr(s.description);
  o["name"] = OptStr(s.name);
  o["enabled"] = s.enabled;
  o["created_at"] = core::FormatTimeMs(s.created_at_ms);
  o["updated_at"] = core::FormatTimeMs(s.updated_at_ms);
  if (with_secret && s.kind == "webhook") o["secret"] = s.secret;
  return o;
}

// Refuses a URL whose host resolves to a private/loopback/metadata address
// (unless --allow-private-destinations). A name that does not resolve now is
// accepted: the check runs again at every connection.
Status CheckDestination(const Context& ctx, const std::string& url) {
  std::string host;
  int port = 0;
  bool https = false;
  if (Status s = delivery::ValidateWebhookUrl(url, &host, &port, &https); !s.ok()) return s;
  if (ctx.allow_private_destinations) return Status::Ok();
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return Status::Ok();
  Status out;
  for (addrinfo* a = res; a != nullptr && out.ok(); a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {0};
    const void* addr =
        a->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    inet_ntop(a->ai_family, addr, buf, sizeof(buf));
    if (delivery::IsForbiddenAddress(buf)) {
      out = Status::Validation(
          "url: the host resolves to a private, loopback, link-local or metadata address; "
          "start the server with --allow-private-destinations to allow it");
    }
  }
  freeaddrinfo(res);
  return out;
}

constexpr std::string_view kNameTaken =
    "name: another subscription of this tenant already has this name";

// `name` (pull only; SPEC 12): the SQS queue name; null removes it.
Status ApplyName(const json::object& body, Subscription* sub) {
  if (const json::value* n = body.if_contains("name")) {
    if (n->is_null()) {
      sub->name.reset();
    } else if (!n->is_string() || !aws::IsValidQueueName(n->as_string())) {
      return Status::Validation("name must be 1-80 characters of [A-Za-z0-9_-]");
    } else {
      sub->name = std::string(n->as_string());
    }
  }
  if (sub->name && sub->kind != "pull") {
    return Status::Validation("name is for pull subscriptions only (it is the SQS queue name)");
  }
  return Status::Ok();
}

// Applies the fields present in `body` to `sub` (create and PATCH share it).
// `check_destination`: resolve the url's host (done once, before a PATCH
// re-applies the same body to the locked row).
Status ApplyFields(const Context& ctx, const json::object& body, bool creating, Subscription* sub,
                   bool check_destination = true) {
  if (creating) {
    if (const json::value* k = body.if_contains("kind"); k && !k->is_null()) {
      if (!k->is_string() || (k->as_string() != "webhook" && k->as_string() != "pull")) {
        return Status::Validation("kind must be \"webhook\" or \"pull\"");
      }
      sub->kind = std::string(k->as_string());
    }
  } else if (body.contains("kind")) {
    return Status::Validation("kind cannot be changed; create a new subscription");
  }
  if (const json::value* u = body.if_contains("url")) {
    if (sub->kind == "pull" && !u->is_null())
      return Status::Validation("url: a pull subscription has no url");
    if (sub->kind == "webhook" && u->is_null())
      return Status::Validation("url: a webhook subscription needs a url (it cannot be null)");
    if (!u->is_null()) {
      if (!u->is_string()) return Status::Validation("url must be a string");
      std::string url(u->as_string());
      if (check_destination) {
        if (Status s = CheckDestination(ctx, url); !s.ok()) return s;
      }
      sub->url = url;
    }
  }
  if (sub->kind == "webhook" && !sub->url)
    return Status::Validation("url is required for a webhook subscription");
  if (const json::value* t = body.if_contains("event_types")) {
    if (t->is_null()) {
      sub->event_types_json = "[]";
    } else {
      if (!t->is_array() || t->as_array().size() > 100) {
        return Status::Validation(
            "event_types must be an array of at most 100 type names or globs");
      }
      for (const auto& g : t->as_array()) {
        if (!g.is_string()) return Status::Validation("event_types must be an array of strings");
        if (Status s = core::ValidateTypeGlob(g.as_string()); !s.ok()) {
          return Status::Validation("event_types: " + s.message());
        }
      }
      sub->event_types_json = json::serialize(*t);
    }
  }
  if (const json::value* f = body.if_contains("filter")) {
    if (f->is_null()) {
      sub->filter_json.reset();
    } else {
      // Sized as stored (compact JSON), before it is compiled: the bound on
      // what a tenant's filters cost in every node's memory (SPEC 10).
      std::string stored = json::serialize(*f);
      if (ctx.max_filter_bytes > 0 && static_cast<int64_t>(stored.size()) > ctx.max_filter_bytes) {
        return Status::LimitExceeded(
            "filter: " + std::to_string(stored.size()) + " bytes as JSON, over the limit of " +
            std::to_string(ctx.max_filter_bytes) +
            " bytes per filter (--max-filter-size); split it over several subscriptions");
      }
      auto p = core::EventPattern::Compile(*f);
      if (!p.ok()) return p.status();
      sub->filter_json = std::move(stored);
    }
  }
  auto int_field = [&](const char* name, int lo, int hi, int* out) -> Status {
    const json::value* v = body.if_contains(name);
    if (!v) return Status::Ok();
    if (!v->is_int64() || v->as_int64() < lo || v->as_int64() > hi) {
      return Status::Validation(std::string(name) + " must be an integer from " +
                                std::to_string(lo) + " to " + std::to_string(hi));
    }
    *out = static_cast<int>(v->as_int64());
    return Status::Ok();
  };
  if (Status s = int_field("max_in_flight", 1, 1000, &sub->max_in_flight); !s.ok()) return s;
  if (Status s = int_field("max_receives", 1, 1000, &sub->max_receives); !s.ok()) return s;
  if (const json::value* r = body.if_contains("rate_limit_per_s")) {
    if (!r->is_number() || r->to_number<double>() < 0 || r->to_number<double>() > 100000 ||
        !std::isfinite(r->to_number<double>())) {
      return Status::Validation("rate_limit_per_s must be a number from 0 (no limit) to 100000");
    }
    sub->rate_limit_per_s = r->to_number<double>();
  }
  auto bool_field = [&](const char* name, bool* out) -> Status {
    const json::value* v = body.if_contains(name);
    if (!v) return Status::Ok();
    if (!v->is_bool()) return Status::Validation(std::string(name) + " must be true or false");
    *out = v->as_bool();
    return Status::Ok();
  };
  if (Status s = bool_field("ordered", &sub->ordered); !s.ok()) return s;

  if (Status s = bool_field("enabled", &sub->enabled); !s.ok()) return s;
  if (const json::value* d = body.if_contains("description")) {
    if (d->is_null()) {
      sub->description.reset();
    } else if (!d->is_string() || d->as_string().size() > 512 ||
               std::string_view(d->as_string()).find('\0') != std::string_view::npos) {
      return Status::Validation(
          "description must be a string of at most 512 characters, without NUL (\\u0000)");
    } else {
      sub->description = std::string(d->as_string());
    }
  }
  return ApplyName(body, sub);
}

// True when another live subscription of the tenant has this name, as this
// node knows them (the store's unique index decides a race: 409 either way).
bool NameTaken(Context& ctx, const Subscription& sub) {
  if (!sub.name) return false;
  for (const auto& c : ctx.subscriptions->TenantList(sub.tenant)) {
    if (c->sub.id != sub.id && c->sub.name == sub.name) return true;
  }
  return false;
}

Status Load(Context& ctx, const Call& call, Subscription* out) {
  if (!core::IsValidId(call.param, "sub_")) return Status::NotFound("subscription not found");
  auto r = ctx.store->GetSubscription(call.who->tenant, std::string(call.param));
  if (!r.ok()) return r.status();
  *out = std::move(r.value());
  return Status::Ok();
}

// Stores a new subscription and brings this node's cache up to date.
Status CreateAndCache(Context& ctx, const Subscription& sub) {
  auto compiled = delivery::CompileSubscription(sub);
  if (!compiled.ok()) return compiled.status();
  auto gen = ctx.store->CreateSubscription(sub, ctx.max_subscriptions_per_tenant);
  if (!gen.ok()) {
    if (gen.status().code() != Status::Code::kLimitExceeded) return gen.status();
    return Status::LimitExceeded(
        "subscriptions per tenant: the tenant has reached the limit of " +
        std::to_string(ctx.max_subscriptions_per_tenant) +
        " subscriptions (--max-subscriptions-per-tenant); delete one first");
  }
  ctx.subscriptions->Applied(sub.tenant, gen.value(), std::move(compiled.value()), "");
  return Status::Ok();
}

// Read-modify-write of the stored row under its lock (concurrent PATCH and
// rotate-secret never undo each other); `change` edits the row as stored.
// On success *out is the row as stored, and this node's cache follows.
Status ModifyAndCache(Context& ctx, const Call& call,
                      const std::function<Status(Subscription*)>& change, Subscription* out) {
  if (!core::IsValidId(call.param, "sub_")) return Status::NotFound("subscription not found");
  int64_t gen = 0;
  auto r = ctx.store->ModifySubscription(
      call.who->tenant, std::string(call.param),
      [&](Subscription* sub) -> Status {
        if (Status s = change(sub); !s.ok()) return s;
        // Never backwards: it names the row's version (see SubscriptionCache).
        sub->updated_at_ms = std::max(ctx.clock->NowMs(), sub->updated_at_ms + 1);
        auto compiled = delivery::CompileSubscription(*sub);
        return compiled.ok() ? Status::Ok() : compiled.status();
      },
      &gen);
  if (!r.ok()) return r.status();
  *out = std::move(r.value());
  auto compiled = delivery::CompileSubscription(*out);
  if (compiled.ok()) {
    ctx.subscriptions->Applied(out->tenant, gen, std::move(compiled.value()), "");
  } else {
    (void)ctx.subscriptions->ReloadTenant(out->tenant);
  }
  return Status::Ok();
}

json::object DeliveryJson(const Delivery& d) {
  json::object o;
  o["id"] = d.id;
  o["event_id"] = d.event_id;
  o["subscription_id"] = d.subscription_id;
  o["status"] = d.status;
  o["attempt_count"] = d.attempts;
  o["next_attempt_at"] = (d.status == kDeliveryPending || d.status == kDeliveryRetrying)
                             ? json::value(core::FormatTimeMs(d.next_attempt_at_ms))
                             : json::value(nullptr);
  o["last_status_code"] =
      d.last_status_code ? json::value(*d.last_status_code) : json::value(nullptr);
  // The error may quote the endpoint's bytes: valid JSON here.
  o["last_error"] =
      d.last_error ? json::value(core::ToValidUtf8(*d.last_error)) : json::value(nullptr);
  o["created_at"] = core::FormatTimeMs(d.created_at_ms);
  o["updated_at"] = core::FormatTimeMs(d.updated_at_ms);
  return o;
}

}  // namespace

Response PostSubscription(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  json::object body;
  if (Status s = ParseJsonObject(call.req->body, &body); !s.ok()) return StatusResponse(s, rid);
  if (Status s = CheckFields(
          body, {"kind", "url", "event_types", "filter", "max_in_flight", "rate_limit_per_s",
                 "ordered", "description", "enabled", "max_receives", "name"});
      !s.ok()) {
    return StatusResponse(s, rid);
  }
  Subscription sub;
  sub.tenant = call.who->tenant;
  if (Status s = ApplyFields(ctx, body, true, &sub); !s.ok()) return StatusResponse(s, rid);
  sub.created_at_ms = sub.updated_at_ms = ctx.clock->NowMs();
  sub.id = core::NewId("sub_", sub.created_at_ms);
  sub.secret = core::GenerateWebhookSecret();
  if (NameTaken(ctx, sub)) return ErrorResponse(409, "conflict", kNameTaken, rid);
  if (Status s = CreateAndCache(ctx, sub); !s.ok()) return StatusResponse(s, rid);
  return JsonResponse(201, SubscriptionJson(sub, true));
}

Response ListSubscriptions(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  store::ListOptions opts;
  if (Status s = ParseListParams(call.req->query, "sub_", &opts.limit, &opts.after_id); !s.ok()) {
    return StatusResponse(s, rid);
  }
  const int limit = opts.limit;
  opts.limit = limit + 1;
  auto r = ctx.store->ListSubscriptions(call.who->tenant, opts);
  if (!r.ok()) return StatusResponse(r.status(), rid);
  auto& subs = r.value();
  bool more = static_cast<int>(subs.size()) > limit;
  if (more) subs.resize(static_cast<size_t>(limit));
  json::array data;
  for (const auto& s : subs) data.emplace_back(SubscriptionJson(s, false));
  json::object o;
  o["data"] = std::move(data);
  o["next_cursor"] = more ? json::value(core::EncodeCursor(subs.back().id)) : json::value(nullptr);
  return JsonResponse(200, o);
}

Response GetSubscription(Context& ctx, const Call& call) {
  Subscription sub;
  if (Status s = Load(ctx, call, &sub); !s.ok()) return StatusResponse(s, call.req->request_id);
  return JsonResponse(200, SubscriptionJson(sub, false));
}

Response PatchSubscription(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  json::object body;
  if (Status s = ParseJsonObject(call.req->body, &body); !s.ok()) return StatusResponse(s, rid);
  if (Status s =
          CheckFields(body, {"url", "event_types", "filter", "max_in_flight", "rate_limit_per_s",
                             "ordered", "description", "enabled", "max_receives", "kind", "name"});
      !s.ok()) {
    return StatusResponse(s, rid);
  }
  // Validated (and the url's host resolved) once on the current row, then
  // the same fields applied to the row as stored, under its lock: only the
  // fields sent change.
  Subscription sub;
  if (Status s = Load(ctx, call, &sub); !s.ok()) return StatusResponse(s, rid);
  if (Status s = ApplyFields(ctx, body, false, &sub); !s.ok()) return StatusResponse(s, rid);
  if (NameTaken(ctx, sub)) return ErrorResponse(409, "conflict", kNameTaken, rid);
  auto change = [&](Subscription* row) { return ApplyFields(ctx, body, false, row, false); };
  if (Status s = ModifyAndCache(ctx, call, change, &sub); !s.ok()) return StatusResponse(s, rid);
  ctx.wake_dispatcher();  // enabling it again may make work due
  return JsonResponse(200, SubscriptionJson(sub, false));
}

Response DeleteSubscription(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  if (!core::IsValidId(call.param, "sub_"))
    return ErrorResponse(404, "not_found", "subscription not found", rid);
  std::string id(call.param);
  auto gen = ctx.store->DeleteSubscription(call.who->tenant, id, ctx.clock->NowMs());
  if (!gen.ok()) return StatusResponse(gen.status(), rid);
  ctx.subscriptions->Applied(call.who->tenant, gen.value(), nullptr, id);
  Response r;
  r.status = 204;
  return r;
}

Response RotateSecret(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  const std::string secret = core::GenerateWebhookSecret();
  auto rotate = [&](Subscription* row) -> Status {
    if (row->kind != "webhook") {
      return Status::Validation("only webhook subscriptions have a secret");
    }
    // The old secret keeps signing beside the new one for 24 h.
    row->previous_secret = row->secret;
    row->previous_secret_expires_at_ms = ctx.clock->NowMs() + kPreviousSecretValidityMs;
    row->secret = secret;
    return Status::Ok();
  };
  Subscription sub;
  if (Status s = ModifyAndCache(ctx, call, rotate, &sub); !s.ok()) return StatusResponse(s, rid);
  json::object o = SubscriptionJson(sub, true);
  o["previous_secret_expires_at"] = core::FormatTimeMs(sub.previous_secret_expires_at_ms);
  return JsonResponse(200, o);
}

Response ListDeliveries(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  const std::string_view q = call.req->query;
  store::ListOptions opts;
  if (Status s = ParseListParams(q, "dlv_", &opts.limit, &opts.after_id); !s.ok()) {
    return StatusResponse(s, rid);
  }
  store::Store::DeliveryFilter f;
  f.subscription_id = QueryParam(q, "subscription_id").value_or("");
  f.event_id = QueryParam(q, "event_id").value_or("");
  f.status = QueryParam(q, "status").value_or("");
  if (!f.status.empty() && f.status != kDeliveryPending && f.status != kDeliveryInFlight &&
      f.status != kDeliverySucceeded && f.status != kDeliveryRetrying &&
      f.status != kDeliveryDead) {
    return StatusResponse(
        Status::Validation("status must be pending, in_flight, succeeded, retrying or dead"), rid);
  }
  const int limit = opts.limit;
  opts.limit = limit + 1;
  auto r = ctx.store->ListDeliveries(call.who->tenant, f, opts);
  if (!r.ok()) return StatusResponse(r.status(), rid);
  auto& ds = r.value();
  bool more = static_cast<int>(ds.size()) > limit;
  if (more) ds.resize(static_cast<size_t>(limit));
  json::array data;
  for (const auto& d : ds) data.emplace_back(DeliveryJson(d));
  json::object o;
  o["data"] = std::move(data);
  o["next_cursor"] = more ? json::value(core::EncodeCursor(ds.back().id)) : json::value(nullptr);
  return JsonResponse(200, o);
}

Response GetDelivery(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  if (!core::IsValidId(call.param, "dlv_"))
    return ErrorResponse(404, "not_found", "delivery not found", rid);
  auto r = ctx.store->GetDelivery(call.who->tenant, std::string(call.param));
  if (!r.ok()) return StatusResponse(r.status(), rid);
  json::object o = DeliveryJson(r.value());
  json::array attempts;
  for (const auto& a : r->attempt_log) {
    json::object ao;
    ao["at"] = core::FormatTimeMs(a.at_ms);
    ao["status_code"] = a.status_code ? json::value(*a.status_code) : json::value(nullptr);
    ao["latency_ms"] = a.latency_ms;
    // Bytes from the endpoint: kept as received in the store, valid JSON here.
    ao["error"] = a.error ? json::value(core::ToValidUtf8(*a.error)) : json::value(nullptr);
    ao["response_snippet"] = core::ToValidUtf8(a.response_snippet);
    attempts.emplace_back(std::move(ao));
  }
  o["attempts"] = std::move(attempts);
  return JsonResponse(200, o);
}

Response RetryDelivery(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  if (!core::IsValidId(call.param, "dlv_"))
    return ErrorResponse(404, "not_found", "delivery not found", rid);
  // The answer is the delivery as the retry's transaction left it: a read
  // after the retry races the dispatcher, which may have sent it again by
  // then (seen on PostgreSQL under ASan: `succeeded` in the 202).
  auto d = ctx.store->RetryDelivery(call.who->tenant, std::string(call.param), ctx.clock->NowMs());
  if (!d.ok()) return StatusResponse(d.status(), rid);
  ctx.wake_dispatcher();
  return JsonResponse(202, DeliveryJson(d.value()));
}

// POST /v1/subscriptions/{id}/replay {"since","until","status":"dead"|"all"}.
Response ReplaySubscription(Context& ctx, const Call& call) {
  const std::string& rid = call.req->request_id;
  json::object body;
  if (!call.req->body.empty()) {
    if (Status s = ParseJsonObject(call.req->body, &body); !s.ok()) return StatusResponse(s, rid);
  }
  if (Status s = CheckFields(body, {"since", "until", "status"}); !s.ok())
    return StatusResponse(s, rid);
  Subscription sub;
  if (Status s = Load(ctx, call, &sub); !s.ok()) return StatusResponse(s, rid);
  const int64_t now = ctx.clock->NowMs();
  int64_t since = 0, until = now;
  auto time_field = [&](const char* name, int64_t* out) -> Status {
    const json::value* v = body.if_contains(name);
    if (!v || v->is_null()) return Status::Ok();
    std::optional<int64_t> t;
    if (v->is_string()) t = core::ParseTimeMs(v->as_string());
    if (!t || *t < 0) return Status::Validation(std::string(name) + " must be an RFC 3339 time");
    *out = *t;
    return Status::Ok();
  };
  if (Status s = time_field("since", &since); !s.ok()) return StatusResponse(s, rid);
  if (Status s = time_field("until", &until); !s.ok()) return StatusResponse(s, rid);
  if (until < since)
    return StatusResponse(Status::Validation("until must not be before since"), rid);
  std::string mode = "dead";
  if (const json::value* v = body.if_contains("status"); v && !v->is_null()) {
    if (!v->is_string() || (v->as_string() != "dead" && v->as_string() != "all")) {
      return StatusResponse(Status::Validation("status must be \"dead\" or \"all\""), rid);
    }
    mode = std::string(v->as_string());
  }
  // Event ids are time-ordered: the time range is an id range.
  const std::string min_id = "evt_" + core::UlidBound(since, false);
  const std::string max_id = "evt_" + core::UlidBound(until, true);
  auto requeued = ctx.store->RequeueDead(call.who->tenant, sub.id, min_id, max_id, now);
  if (!requeued.ok()) return StatusResponse(requeued.status(), rid);
  int64_t created = 0, scanned = 0;
  if (mode == "all") {
    auto compiled = delivery::CompileSubscription(sub);
    if (!compiled.ok()) return StatusResponse(compiled.status(), rid);
    store::ListOptions opts;
    opts.limit = 1000;
    opts.by_id = true;  // the time range is an id range (commit order may differ across nodes)
    // after_id is exclusive: start just before the first id of the range.
    opts.after_id = "evt_";
    opts.after_id += core::UlidBound(since, false);
    opts.after_id.back() = static_cast<char>(opts.after_id.back() - 1);
    constexpr int64_t kMaxScan = 1'000'000;  // one request replays at most this many events
    for (;;) {
      auto page = ctx.store->ListEvents(call.who->tenant, "", opts);
      if (!page.ok()) return StatusResponse(page.status(), rid);
      std::vector<Event> matching;
      bool past_end = false;
      for (auto& ev : page->events) {
        if (ev.id > max_id) {
          past_end = true;
          break;
        }
        ++scanned;
        std::vector<std::string> ids;
        delivery::MatchOne(*compiled.value(), ev, &ids);
        if (!ids.empty()) matching.push_back(std::move(ev));
      }
      auto c =
          ctx.store->CreateMissingDeliveries(call.who->tenant, sub.id, matching, sub.ordered, now);
      if (!c.ok()) return StatusResponse(c.status(), rid);
      created += c.value();
      if (past_end || !page->more || scanned >= kMaxScan) break;
      opts.after_id = page->resume_after;
    }
  }
  ctx.wake_dispatcher();
  json::object o;
  o["requeued"] = requeued.value();
  o["created"] = created;
  o["events_scanned"] = scanned;
  return JsonResponse(202, o);
}

// The delivery summary of GET /v1/events/{id}.
std::string DeliverySummaryJson(Context& ctx, const std::string& tenant,
                                const std::string& event_id) {
  store::Store::DeliveryFilter f;
  f.event_id = event_id;
  store::ListOptions opts;
  opts.limit = 1000;
  auto r = ctx.store->ListDeliveries(tenant, f, opts);
  json::array a;
  if (r.ok()) {
    for (const auto& d : r.value()) a.emplace_back(DeliveryJson(d));
  }
  return json::serialize(a);
}

}  // namespace triggers::api
