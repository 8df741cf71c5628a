// Metrics in the Prometheus text exposition format (SPEC 7). Recording is
// cheap and never takes a lock shared by all requests: each thread records
// into its own shard (a mutex only the scrape ever contends), and a scrape
// merges the shards. Label values must have bounded cardinality (route
// patterns, status codes, tenants, fixed outcome names).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace triggers::obs {

// Counters of rare events that defend the server (hostile clients): each is
// one series of a family with a fixed label value, so cardinality is fixed.
enum class Counter {
  kAcceptFdLimit,       // triggers_http_accept_errors_total{reason="fd_limit"}
  kAcceptOther,         // triggers_http_accept_errors_total{reason="other"}
  kConnOverLimit,       // triggers_http_connections_refused_total{reason="closed"}
  kConnReserveRefused,  // triggers_http_connections_refused_total{reason="reserve_503"}
  kConnHeaderTimeout,   // triggers_http_header_timeouts_total
  kAuthMissing,         // triggers_auth_failures_total{reason="missing"}
  kAuthMalformed,       // ...{reason="malformed"}
  kAuthUnknown,         // ...{reason="unknown"}
  kAuthRevoked,         // ...{reason="revoked"}
  kAuthAmbiguous,       // ...{reason="ambiguous"}
  kAuthStoreLookups,    // triggers_auth_store_lookups_total
  kAuthNegativeHits,    // triggers_auth_negative_cache_hits_total
  kAuthLookupsShed,     // triggers_auth_store_lookups_shed_total
  kCount
};

class Metrics {
 public:
  static Metrics& Get();

  // Thread-safe, lock-free (a relaxed atomic add).
  void Inc(Counter c, uint64_t n = 1);

  void HttpRequest(std::string_view route, int status, double seconds);
  void EventsIngested(std::string_view tenant, uint64_t n);
  // outcome: "success" or "failure".
  void DeliveryAttempt(std::string_view outcome, double seconds);
  void IngestToDelivery(double seconds);
  // One group commit: its size in events and how long the store took.
  void GroupCommit(uint64_t events, double seconds);
  // A subscription's filter could not evaluate an event (its data did not
  // parse): the event did not match that subscription.
  void FilterError();

  // The whole exposition; `extra` appends families computed at scrape time
  // (gauges read from the store).
  std::string Render(const std::function<void(std::string&)>& extra) const;
};

// Appends one gauge family (HELP, TYPE and the samples) to `out`.
void AppendGauge(std::string& out, std::string_view name, std::string_view help,
                 const std::vector<std::pair<std::string, double>>& labelled,
                 std::string_view label_name);

}  // namespace triggers::obs
