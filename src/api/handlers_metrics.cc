// GET /metrics (SPEC 7): Prometheus text format; the delivery gauges are
// read from the store at scrape time, the parked receives and open streams
// from this process.
#include "api/event_stream.h"
#include "api/handlers.h"
#include "api/inbox.h"
#include "obs/metrics.h"

namespace triggers::api {

Response GetMetrics(Context& ctx, const Call&) {
  const int64_t now = ctx.clock->NowMs();
  std::vector<std::pair<std::string, int64_t>> by_state;
  int64_t oldest_due = 0;
  Status s = ctx.store->DeliveryStats(now, &by_state, &oldest_due);
  Response r;
  r.content_type = "text/plain; version=0.0.4; charset=utf-8";
  r.body = obs::Metrics::Get().Render([&](std::string& out) {
    std::vector<std::pair<std::string, double>> states;
    for (const auto& [name, n] : by_state) states.emplace_back(name, static_cast<double>(n));
    obs::AppendGauge(out, "triggers_deliveries", "Deliveries in the store, by state.", states,
                     "state");
    double age = oldest_due > 0 ? static_cast<double>(now - oldest_due) / 1000.0 : 0.0;
    obs::AppendGauge(out, "triggers_oldest_due_delivery_age_seconds",
                     "How long the most overdue pending/retrying delivery has been due (0: none).",
                     {{"", age}}, "");
    obs::AppendGauge(out, "triggers_store_up", "1 when the store answered this scrape.",
                     {{"", s.ok() ? 1.0 : 0.0}}, "");
    const double parked = ctx.inbox ? static_cast<double>(ctx.inbox->parked()) : 0.0;
    obs::AppendGauge(out, "triggers_parked_receives",
                     "Pull receives (long polls) waiting on this server now.", {{"", parked}}, "");
    const double streams =
        ctx.event_stream ? static_cast<double>(ctx.event_stream->listeners()) : 0.0;
    obs::AppendGauge(out, "triggers_open_streams",
                     "Live tails (GET /v1/events/stream) open on this server now.", {{"", streams}},
                     "");
  });
  return r;
}

}  // namespace triggers::api
