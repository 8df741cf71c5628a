#include "api/router.h"

#include "api/handlers.h"
#include "aws/endpoint.h"
#include "core/crypto.h"
#include "core/keys.h"
#include "obs/auth_sources.h"
#include "obs/logger.h"
#include "obs/metrics.h"

namespace triggers::api {
namespace {

enum class Access {
  kPublic,         // no key
  kTenant,         // a tenant key with `scope`; the admin key is refused (it has no tenant)
  kManageOrAdmin,  // the admin key, or a tenant key with `scope`
  kMetrics,        // public, or admin only with --metrics-require-admin
};

struct Route {
  std::string_view method;
  std::string_view pattern;
  Access access;
  uint32_t scope;
  SyncHandler sync;
  AsyncHandler async;
};

// Every route of the API. Literal patterns come before patterns with {id}.
const Route kRoutes[] = {
    {"GET", "/", Access::kPublic, 0, nullptr, GetRoot},
    {"GET", "/health", Access::kPublic, 0, GetHealth, nullptr},
    {"GET", "/health/live", Access::kPublic, 0, nullptr, GetHealthLive},
    {"GET", "/health/ready", Access::kPublic, 0, GetHealthReady, nullptr},
    {"GET", "/metrics", Access::kMetrics, 0, GetMetrics, nullptr},
    {"GET", "/openapi.json", Access::kPublic, 0, nullptr, GetOpenApi},
    {"GET", "/ui", Access::kPublic, 0, nullptr, GetUi},
    {"GET", "/ui/{name}", Access::kPublic, 0, nullptr, GetUiAsset},
    {"POST", "/v1/keys", Access::kManageOrAdmin, kScopeManage, PostKey, nullptr},
    {"GET", "/v1/keys", Access::kManageOrAdmin, kScopeManage, ListKeys, nullptr},
    {"DELETE", "/v1/keys/{id}", Access::kManageOrAdmin, kScopeManage, DeleteKey, nullptr},
    {"POST", "/v1/events", Access::kTenant, kScopeIngest, nullptr, PostEvent},
    {"GET", "/v1/events", Access::kTenant, kScopeRead, ListEvents, nullptr},
    {"POST", "/v1/events/batch", Access::kTenant, kScopeIngest, nullptr, PostEventBatch},
    {"GET", "/v1/events/stream", Access::kTenant, kScopeRead, nullptr, StreamEvents},
    {"GET", "/v1/events/{id}", Access::kTenant, kScopeRead, GetEvent, nullptr},
    {"GET", "/v1/stats", Access::kTenant, kScopeRead, GetStats, nullptr},
    {"POST", "/v1/subscriptions", Access::kTenant, kScopeManage, PostSubscription, nullptr},
    {"GET", "/v1/subscriptions", Access::kTenant, kScopeRead, ListSubscriptions, nullptr},
    {"GET", "/v1/subscriptions/{id}", Access::kTenant, kScopeRead, GetSubscription, nullptr},
    {"PATCH", "/v1/subscriptions/{id}", Access::kTenant, kScopeManage, PatchSubscription, nullptr},
    {"DELETE", "/v1/subscriptions/{id}", Access::kTenant, kScopeManage, DeleteSubscription,
     nullptr},
    {"POST", "/v1/subscriptions/{id}/rotate-secret", Access::kTenant, kScopeManage, RotateSecret,
     nullptr},
    {"POST", "/v1/subscriptions/{id}/receive", Access::kTenant, kScopeConsume, nullptr,
     ReceiveMessages},
    {"POST", "/v1/subscriptions/{id}/ack", Access::kTenant, kScopeConsume, AckMessages, nullptr},
    {"POST", "/v1/subscriptions/{id}/nack", Access::kTenant, kScopeConsume, NackMessages, nullptr},
    {"POST", "/v1/subscriptions/{id}/replay", Access::kTenant, kScopeManage, ReplaySubscription,
     nullptr},
    {"GET", "/v1/deliveries", Access::kTenant, kScopeRead, ListDeliveries, nullptr},
    {"GET", "/v1/deliveries/{id}", Access::kTenant, kScopeRead, GetDelivery, nullptr},
    {"POST", "/v1/deliveries/{id}/retry", Access::kTenant, kScopeManage, RetryDelivery, nullptr},
};

bool MatchPattern(std::string_view pattern, std::string_view path, std::string_view* param) {
  size_t brace = pattern.find('{');
  if (brace == std::string_view::npos) return pattern == path;
  if (path.substr(0, brace) != pattern.substr(0, brace)) return false;
  size_t close = pattern.find('}', brace);
  std::string_view rest_pattern = pattern.substr(close + 1);
  std::string_view rest_path = path.substr(brace);
  size_t slash = rest_path.find('/');
  std::string_view seg = rest_path.substr(0, slash);
  if (seg.empty()) return false;
  std::string_view after = slash == std::string_view::npos ? "" : rest_path.substr(slash);
  if (after != rest_pattern) return false;
  *param = seg;
  return true;
}

bool IsJsonMediaType(std::string_view ct) {
  size_t semi = ct.find(';');
  std::string_view base = ct.substr(0, semi);
  while (!base.empty() && base.back() == ' ') base.remove_suffix(1);
  constexpr std::string_view kJson = "application/json";
  if (base.size() != kJson.size()) return false;
  for (size_t i = 0; i < base.size(); ++i) {
    char c = base[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != kJson[i]) return false;
  }
  return true;
}

std::string_view ScopeName(uint32_t scope) {
  switch (scope) {
    case kScopeIngest:
      return "ingest";
    case kScopeRead:
      return "read";
    case kScopeConsume:
      return "consume";
    case kScopeManage:
      return "manage";
  }
  return "?";
}

}  // namespace

std::vector<RouteInfo> RouteTable() {
  std::vector<RouteInfo> out;
  for (const Route& r : kRoutes) {
    RouteInfo info;
    info.method = r.method;
    info.pattern = r.pattern;
    switch (r.access) {
      case Access::kPublic:
        info.access = "public";
        break;
      case Access::kMetrics:
        info.access = "public or admin";
        break;
      case Access::kTenant:
        info.access = "tenant";
        info.scope = ScopeName(r.scope);
        break;
      case Access::kManageOrAdmin:
        info.access = "tenant or admin";
        info.scope = ScopeName(r.scope);
        break;
    }
    out.push_back(info);
  }
  return out;
}

void Router::Handle(const Request& req, Respond respond) {
  const std::string& rid = req.request_id;
  if (req.method == "OPTIONS") {
    Response r;
    r.status = 204;
    r.route = "preflight";
    r.headers.emplace_back("Access-Control-Allow-Methods", "GET, POST, PATCH, DELETE, OPTIONS");
    r.headers.emplace_back("Access-Control-Allow-Headers",
                           "Authorization, X-API-Key, Content-Type, Idempotency-Key, X-Request-Id");
    r.headers.emplace_back("Access-Control-Max-Age", "600");
    return respond(std::move(r));
  }
  // The AWS-compatible endpoints (SPEC 12) speak their own protocols.
  if (ctx_->aws_endpoint && aws::Endpoint::Recognise(req)) {
    return ctx_->aws_endpoint->Handle(req, std::move(respond));
  }
  int found = -1;
  std::string allow;
  std::string_view param;
  // A literal pattern wins over a pattern with {id}: /v1/events/batch is never an id.
  bool literal = false;
  for (const Route& r : kRoutes) {
    literal = literal || (r.pattern.find('{') == std::string_view::npos && r.pattern == req.path);
  }
  for (int i = 0; i < static_cast<int>(std::size(kRoutes)); ++i) {
    std::string_view p;
    if (literal && kRoutes[i].pattern.find('{') != std::string_view::npos) continue;
    if (!MatchPattern(kRoutes[i].pattern, req.path, &p)) continue;
    if (kRoutes[i].method == req.method) {
      found = i;
      param = p;
      break;
    }
    if (allow.find(kRoutes[i].method) == std::string::npos) {
      if (!allow.empty()) allow += ", ";
      allow += kRoutes[i].method;
    }
  }
  if (found < 0) {
    if (!allow.empty()) {
      Response r = ErrorResponse(
          405, "method_not_allowed",
          "method " + std::string(req.method) + " is not allowed here; allowed: " + allow, rid);
      r.headers.emplace_back("Allow", allow);
      return respond(std::move(r));
    }
    return respond(ErrorResponse(404, "not_found", "no such route", rid));
  }
  const Route& route = kRoutes[found];
  // From here on every answer names its route in the access log and metrics.
  respond = [respond = std::move(respond), pattern = route.pattern](Response&& r) {
    if (r.route == "unmatched") r.route = pattern;
    respond(std::move(r));
  };
  // The probes answer while draining: live 200, ready 503 (GetHealthReady).
  bool probe = route.async == GetHealthLive || route.sync == GetHealthReady;
  if (ctx_->shutting_down.load(std::memory_order_relaxed) && !probe) {
    Response r = ErrorResponse(503, "unavailable", "the server is shutting down", rid);
    r.close = true;
    return respond(std::move(r));
  }
  Call call;
  call.req = &req;
  call.param = param;
  call.route = route.pattern;
  if (route.access == Access::kPublic ||
      (route.access == Access::kMetrics && !ctx_->metrics_require_admin)) {
    static const auto kAnonymous = std::make_shared<const Principal>();
    call.who = kAnonymous;
    return Authorized(req, std::move(call), found, std::move(respond));
  }

  auto fail = [&](obs::Counter reason, int status, std::string_view code, std::string_view msg) {
    obs::Metrics::Get().Inc(reason);
    obs::AuthSources::Get().Failed(req.remote_addr);
    respond(ErrorResponse(status, code, msg, rid));
  };
  // One credential per request: a repeated header, or two headers naming
  // different keys, is ambiguous (a proxy may have added one), so refused.
  if (req.repeated_credential_header) {
    return fail(obs::Counter::kAuthAmbiguous, 400, "invalid_request",
                "send one Authorization or one X-API-Key header, not several");
  }
  if (!req.authorization.empty() && core::ExtractKey(req.authorization, {}).empty()) {
    return fail(obs::Counter::kAuthMalformed, 401, "unauthorized",
                "the Authorization header must be 'Bearer <key>'");
  }
  if (!req.authorization.empty() && !req.x_api_key.empty() &&
      core::ExtractKey(req.authorization, {}) != req.x_api_key) {
    return fail(obs::Counter::kAuthAmbiguous, 400, "invalid_request",
                "Authorization and X-API-Key name different keys; send one");
  }
  std::string_view key = core::ExtractKey(req.authorization, req.x_api_key);
  if (key.empty()) {
    return fail(obs::Counter::kAuthMissing, 401, "unauthorized",
                "missing API key: send Authorization: Bearer <key> or X-API-Key");
  }
  if (key.size() > 256)
    return fail(obs::Counter::kAuthUnknown, 401, "unauthorized", "unknown API key");
  std::string hash = core::Sha256(key);
  switch (ctx_->keys->Find(hash, &call.who)) {
    case KeyCache::Lookup::kFound:
      break;
    case KeyCache::Lookup::kRejected:
      return fail(obs::Counter::kAuthRevoked, 401, "unauthorized", "this API key has been revoked");
    case KeyCache::Lookup::kUnknown:
      obs::Metrics::Get().Inc(obs::Counter::kAuthNegativeHits);
      return fail(obs::Counter::kAuthUnknown, 401, "unauthorized", "unknown API key");
    case KeyCache::Lookup::kMiss: {
      if (!core::LooksLikeApiKey(key)) {
        return fail(obs::Counter::kAuthUnknown, 401, "unauthorized", "unknown API key");
      }
      if (!ctx_->keys->TryBeginLookup()) {
        obs::Metrics::Get().Inc(obs::Counter::kAuthLookupsShed);
        Response r = ErrorResponse(503, "unavailable", "server busy; retry later", rid);
        r.headers.emplace_back("Retry-After", "1");
        return respond(std::move(r));
      }
      // Not cached: ask the store on the blocking pool, then continue there.
      auto task = [this, &req, call = std::move(call), found, respond, hash]() mutable {
        Status s = ctx_->keys->LoadFromStore(hash, &call.who);  // counts its own 401s
        if (s.code() == Status::Code::kUnauthorized)
          obs::AuthSources::Get().Failed(req.remote_addr);
        if (!s.ok()) return respond(StatusResponse(s, req.request_id));
        if (!ctx_->keys->AllowRequest(hash)) {
          return respond(ErrorResponse(429, "rate_limited", "rate limit of this key exceeded",
                                       req.request_id));
        }
        Authorized(req, std::move(call), found, std::move(respond));
      };
      if (!ctx_->run_blocking(std::move(task))) {
        ctx_->keys->EndLookup();  // the task that would have released it never runs
        return respond(ErrorResponse(503, "unavailable", "server busy; retry later", rid));
      }
      return;
    }
  }
  if (!ctx_->keys->AllowRequest(hash)) {
    return respond(ErrorResponse(429, "rate_limited", "rate limit of this key exceeded", rid));
  }
  Authorized(req, std::move(call), found, std::move(respond));
}

void Router::Authorized(const Request& req, Call call, int index, Respond respond) {
  const Route& route = kRoutes[index];
  const std::string& rid = req.request_id;
  if (route.access == Access::kMetrics && !call.who->admin && ctx_->metrics_require_admin) {
    return respond(ErrorResponse(403, "forbidden", "/metrics requires the admin key", rid));
  }
  if (route.access == Access::kTenant && call.who->admin) {
    return respond(ErrorResponse(403, "forbidden",
                                 "the admin key has no tenant; use a tenant key with the '" +
                                     std::string(ScopeName(route.scope)) + "' scope",
                                 rid));
  }
  if (route.access != Access::kPublic && route.access != Access::kMetrics && !call.who->admin &&
      !(call.who->scopes & route.scope)) {
    return respond(ErrorResponse(
        403, "forbidden", "this key lacks the '" + std::string(ScopeName(route.scope)) + "' scope",
        rid));
  }
  if (req.has_body && (req.method == "POST" || req.method == "PATCH" || req.method == "PUT") &&
      !IsJsonMediaType(req.content_type)) {
    return respond(ErrorResponse(415, "unsupported_media_type",
                                 "the body must be sent with Content-Type: application/json", rid));
  }
  // Every response carries the route and tenant for the access log.
  Respond tagged = [respond = std::move(respond), route = route.pattern,
                    who = call.who](Response&& r) mutable {
    r.route = route;
    r.tenant = who->tenant;
    respond(std::move(r));
  };
  if (route.async) return route.async(*ctx_, call, std::move(tagged));
  auto task = [this, call = std::move(call), tagged, fn = route.sync]() mutable {
    tagged(fn(*ctx_, call));
  };
  if (!ctx_->run_blocking(std::move(task))) {
    tagged(ErrorResponse(503, "unavailable", "server busy; retry later", rid));
  }
}

}  // namespace triggers::api
