// GET /health (SPEC section 7): no auth; 503 when the store does not answer.
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

}  // namespace triggers::api
