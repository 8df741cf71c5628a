#include "app/config.h"

#include <charconv>

#include "core/time_util.h"
#include "delivery/retry_schedule.h"
#include "obs/logger.h"

namespace triggers::app {
namespace {

Status Duration(const std::string& flag, const std::string& v, int64_t* out) {
  auto d = core::ParseDurationMs(v);
  if (!d || *d <= 0) {
    return Status::Validation("--" + flag + ": '" + v +
                              "' is not a duration like 500ms, 15s, 2m, 1h, 7d");
  }
  *out = *d;
  return Status::Ok();
}

}  // namespace

Status Config::Validate() {
  size_t colon = listen.rfind(':');
  if (colon == std::string::npos) return Status::Validation("--listen must be host:port");
  host = listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  std::string p = listen.substr(colon + 1);
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), v);
  if (ec != std::errc() || ptr != p.data() + p.size() || v > 65535) {
    return Status::Validation("--listen: bad port '" + p + "'");
  }
  port = static_cast<uint16_t>(v);
  if (store != "sqlite" && store != "postgres") {
    return Status::Validation("--store must be sqlite or postgres");
  }
  if (store == "postgres" && postgres_url.empty()) {
    return Status::Validation("--store postgres needs --postgres-url postgresql://...");
  }
  if (postgres_pool < 1 || postgres_pool > 1000) {
    return Status::Validation("--postgres-pool must be 1-1000");
  }
  auto mb = core::ParseSizeBytes(max_body);
  if (!mb || *mb < 64 || *mb > (64LL << 20)) {
    return Status::Validation("--max-body: a size from 64 bytes to 64MiB, e.g. 262144 or 256KiB");
  }
  max_body_bytes = *mb;
  if (max_connections < 1) return Status::Validation("--max-connections must be at least 1");
  if (threads < 0 || threads > 256) return Status::Validation("--threads must be 0-256");
  if (rate_limit_per_key < 0) return Status::Validation("--rate-limit-per-key must be >= 0");
  obs::Level level;
  if (!obs::ParseLevel(log_level, &level)) {
    return Status::Validation("--log-level must be debug, info, warn or error");
  }
  if (Status s = Duration("retention", retention, &retention_ms); !s.ok()) return s;
  if (Status s = Duration("purge-interval", purge_interval, &purge_interval_ms); !s.ok()) return s;
  if (Status s = Duration("request-timeout", request_timeout, &request_timeout_ms); !s.ok())
    return s;
  if (Status s = Duration("idle-timeout", idle_timeout, &idle_timeout_ms); !s.ok()) return s;
  if (Status s = Duration("delivery-timeout", delivery_timeout, &delivery_timeout_ms); !s.ok()) {
    return s;
  }
  if (auto r = delivery::RetrySchedule::Parse(retry_schedule); !r.ok()) {
    return Status::Validation("--retry-schedule: " + r.status().message());
  }
  return ValidateLimits();
}

Status Config::ValidateLimits() {
  if (delivery_max_in_flight < 1 || delivery_max_in_flight > 1'000'000) {
    return Status::Validation("--delivery-max-in-flight must be 1-1000000");
  }
  if (delivery_max_in_flight_per_tenant < 1 ||
      delivery_max_in_flight_per_tenant > delivery_max_in_flight) {
    return Status::Validation(
        "--delivery-max-in-flight-per-tenant must be 1 to --delivery-max-in-flight");
  }
  if (max_subscriptions_per_tenant < 1 || max_subscriptions_per_tenant > 1'000'000) {
    return Status::Validation("--max-subscriptions-per-tenant must be 1-1000000");
  }
  auto fs = core::ParseSizeBytes(max_filter_size);
  if (!fs || *fs < 64 || *fs > (256LL << 10)) {
    return Status::Validation(
        "--max-filter-size: a size from 64 bytes to 256KiB, e.g. 4096 or 4KiB");
  }
  max_filter_bytes = *fs;
  if (max_parked_receives_per_tenant < 1 || max_parked_receives_per_tenant > 10000) {
    return Status::Validation("--max-parked-receives-per-tenant must be 1-10000");
  }
  if (max_streams_per_tenant < 1 || max_streams_per_tenant > 1000) {
    return Status::Validation("--max-streams-per-tenant must be 1-1000");
  }
  return Status::Ok();
}

}  // namespace triggers::app
