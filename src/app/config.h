// Configuration of `triggers serve` and the offline subcommands: flags, each
// also read from TRIGGERS_<FLAG> (CLI11 envname), then validated into typed values.
#pragma once

#include <cstdint>
#include <string>

#include "triggers/status.h"

namespace triggers::app {

struct Config {
  // As given (strings where the flag takes a duration or a size).
  std::string listen = "127.0.0.1:8080";
  std::string data_dir = "./data";
  std::string store = "sqlite";
  std::string postgres_url;
  int postgres_pool = 8;
  int threads = 0;  // 0 = number of cores
  std::string max_body = "256KiB";
  int64_t max_connections = 10000;
  std::string retention = "7d";
  std::string purge_interval = "60s";
  double rate_limit_per_key = 0;
  std::string cors_origins = "*";
  std::string log_level = "info";
  std::string request_timeout = "10s";
  std::string idle_timeout = "60s";
  std::string delivery_timeout = "15s";
  std::string retry_schedule = "5s,30s,2m,10m,30m,1h,3h,6h,12h";
  int64_t delivery_max_in_flight = 2048;
  int64_t delivery_max_in_flight_per_tenant = 512;
  bool allow_private_destinations = false;
  bool metrics_require_admin = false;
  // Per-tenant limits (SPEC 10); see docs/operations.md for the reasons of
  // the defaults. Parked receives and streams count per node.
  int64_t max_subscriptions_per_tenant = 1000;
  std::string max_filter_size = "4KiB";
  int64_t max_parked_receives_per_tenant = 1000;
  int64_t max_streams_per_tenant = 100;

  // Derived by Validate().
  std::string host;
  uint16_t port = 0;
  int64_t max_body_bytes = 0;
  int64_t retention_ms = 0;
  int64_t purge_interval_ms = 0;
  int64_t request_timeout_ms = 0;
  int64_t idle_timeout_ms = 0;
  int64_t delivery_timeout_ms = 0;
  int64_t max_filter_bytes = 0;

  Status Validate();
  Status ValidateLimits();  // the per-tenant limits (part of Validate)
  std::string DbPath() const { return data_dir + "/triggers.db"; }
};

}  // namespace triggers::app
