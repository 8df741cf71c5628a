// GET /health (SPEC section 7): no auth; 503 when the store does not answer.
// GET /health/live and /health/ready (SPEC section 11): the probes of an
// orchestrator. Liveness never asks the store (a database outage must not get
// every node restarted); readiness is false while the store does not answer
// and once shutdown began (take the node out of the load balancer).
#include "api/handlers.h"
#include "core/json_util.h"
#include "triggers/version.h"

namespace triggers::api {

Response GetHealth(Context& ctx, const Call&) {
  Status s = ctx.store->Ping();
  Response r;
  r.status = s.ok() ? 200 : 503;
  r.body = s.ok() ? "{\"status\":\"ok\",\"checks\":{\"store\":\"ok\"}"
                  : "{\"status\":\"unavailable\",\"checks\":{\"store\":\"unavailable\"}";
  r.body += ",\"version\":\"" TRIGGERS_VERSION "\",\"uptime_s\":";
  r.body += std::to_string((ctx.clock->NowMs() - ctx.start_ms) / 1000);
  r.body += '}';
  if (!s.ok()) r.headers.emplace_back("Retry-After", "1");
  return r;
}

// Answered on the I/O thread: not queued behind store calls on the blocking pool.
void GetHealthLive(Context&, const Call&, Respond respond) {
  Response r;
  r.status = 200;
  r.body = "{\"status\":\"ok\"}";
  respond(std::move(r));
}

Response GetHealthReady(Context& ctx, const Call&) {
  Response r;
  if (ctx.shutting_down.load(std::memory_order_relaxed)) {
    r.status = 503;
    r.body = "{\"status\":\"unavailable\",\"checks\":{\"shutting_down\":true}}";
    return r;
  }
  bool store_ok = ctx.store->Ping().ok();
  r.status = store_ok ? 200 : 503;
  r.body = store_ok ? "{\"status\":\"ok\",\"checks\":{\"store\":\"ok\",\"shutting_down\":false}}"
                    : "{\"status\":\"unavailable\",\"checks\":{\"store\":\"unavailable\","
                      "\"shutting_down\":false}}";
  if (!store_ok) r.headers.emplace_back("Retry-After", "1");
  return r;
}

}  // namespace triggers::api
