#include "obs/metrics.h"

#include <array>
#include <atomic>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "obs/auth_sources.h"

namespace triggers::obs {
namespace {

constexpr std::array<double, 14> kLatencyBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,    0.25,  0.5,    1,     2.5,  5,     10};
constexpr std::array<double, 12> kDelayBounds = {0.005, 0.01, 0.05, 0.1, 0.25, 0.5,
                                                 1,     5,    30,   60,  600,  3600};
constexpr std::array<double, 10> kSizeBounds = {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000};

template <size_t N>
struct Hist {
  std::array<uint64_t, N> buckets{};  // not cumulative; rendered cumulatively
  uint64_t count = 0;
  double sum = 0;
  void Observe(const std::array<double, N>& bounds, double v) {
    for (size_t i = 0; i < N; ++i) {
      if (v <= bounds[i]) {
        ++buckets[i];
        break;
      }
    }
    ++count;
    sum += v;
  }
  void Add(const Hist& o) {
    for (size_t i = 0; i < N; ++i) buckets[i] += o.buckets[i];
    count += o.count;
    sum += o.sum;
  }
};

struct Shard {
  std::mutex mu;
  std::unordered_map<std::string, uint64_t> http;                             // route '\0' status
  std::unordered_map<std::string, Hist<kLatencyBounds.size()>> http_latency;  // by route
  std::unordered_map<std::string, uint64_t> ingested;                         // by tenant
  std::unordered_map<std::string, uint64_t> attempts;                         // by outcome
  Hist<kLatencyBounds.size()> attempt_latency;
  Hist<kDelayBounds.size()> ingest_to_delivery;
  Hist<kSizeBounds.size()> commit_size;
  Hist<kLatencyBounds.size()> commit_latency;
  uint64_t filter_errors = 0;
};

struct Registry {
  std::mutex mu;
  std::vector<std::shared_ptr<Shard>> shards;
};

// The families of Counter, in the enum's order; a family's series are adjacent.
struct CounterInfo {
  std::string_view family;
  std::string_view help;
  std::string_view labels;  // e.g. reason="fd_limit"; empty: no label
};
constexpr std::array<CounterInfo, static_cast<size_t>(Counter::kCount)> kCounterInfo = {{
    {"triggers_http_accept_errors_total",
     "Failed accept() calls: fd_limit (out of file descriptors, accepting pauses 100 ms) or "
     "other.",
     "reason=\"fd_limit\""},
    {"triggers_http_accept_errors_total", "", "reason=\"other\""},
    {"triggers_http_connections_refused_total",
     "Connections refused for --max-connections: closed at once (beyond the reserve), or "
     "answered 503 from the reserve (a route other than /health and /metrics).",
     "reason=\"closed\""},
    {"triggers_http_connections_refused_total", "", "reason=\"reserve_503\""},
    {"triggers_http_header_timeouts_total",
     "Connections closed because a request header did not arrive within --request-timeout.", ""},
    {"triggers_auth_failures_total",
     "Requests refused 401 or 400 for their credentials, by reason.", "reason=\"missing\""},
    {"triggers_auth_failures_total", "", "reason=\"malformed\""},
    {"triggers_auth_failures_total", "", "reason=\"unknown\""},
    {"triggers_auth_failures_total", "", "reason=\"revoked\""},
    {"triggers_auth_failures_total", "", "reason=\"ambiguous\""},
    {"triggers_auth_store_lookups_total",
     "API keys looked up in the store (not in the key cache nor the unknown-key cache).", ""},
    {"triggers_auth_negative_cache_hits_total",
     "Requests with an unknown key answered 401 from the unknown-key cache, without the store.",
     ""},
    {"triggers_auth_store_lookups_shed_total",
     "Key lookups refused 503 because too many were already waiting for the store.", ""},
}};

// Every Counter has its row (a missing initializer would leave an empty one).
static_assert(!kCounterInfo.back().family.empty(), "a Counter without its row in kCounterInfo");

std::array<std::atomic<uint64_t>, static_cast<size_t>(Counter::kCount)> g_counters{};

void RenderCounters(std::string& out) {
  std::string_view family;
  for (size_t i = 0; i < kCounterInfo.size(); ++i) {
    const CounterInfo& c = kCounterInfo[i];
    if (c.family != family) {
      family = c.family;
      out += "# HELP ";
      out += c.family;
      out += ' ';
      out += c.help;
      out += "\n# TYPE ";
      out += c.family;
      out += " counter\n";
    }
    out += c.family;
    if (!c.labels.empty()) {
      out += '{';
      out += c.labels;
      out += '}';
    }
    out += ' ';
    out += std::to_string(g_counters[i].load(std::memory_order_relaxed));
    out += '\n';
  }
}

Registry& Reg() {
  static Registry* r = new Registry();
  return *r;
}

Shard& Local() {
  thread_local std::shared_ptr<Shard> shard = [] {
    auto s = std::make_shared<Shard>();
    std::lock_guard lock(Reg().mu);
    Reg().shards.push_back(s);
    return s;
  }();
  return *shard;
}

void Escape(std::string& out, std::string_view v) {
  for (char c : v) {
    if (c == '\\' || c == '"') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
}

void Num(std::string& out, double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.12g", v);
  out += buf;
}

void Header(std::string& out, std::string_view name, std::string_view help, std::string_view type) {
  out += "# HELP ";
  out += name;
  out += ' ';
  out += help;
  out += "\n# TYPE ";
  out += name;
  out += ' ';
  out += type;
  out += '\n';
}

template <size_t N>
void Histogram(std::string& out, std::string_view name, const std::array<double, N>& bounds,
               const Hist<N>& h, std::string_view labels) {
  uint64_t cum = 0;
  for (size_t i = 0; i < N; ++i) {
    cum += h.buckets[i];
    out += name;
    out += "_bucket{";
    if (!labels.empty()) {
      out += labels;
      out += ',';
    }
    out += "le=\"";
    Num(out, bounds[i]);
    out += "\"} ";
    out += std::to_string(cum);
    out += '\n';
  }
  out += name;
  out += "_bucket{";
  if (!labels.empty()) {
    out += labels;
    out += ',';
  }
  out += "le=\"+Inf\"} ";
  out += std::to_string(h.count);
  out += '\n';
  for (const char* suffix : {"_sum", "_count"}) {
    out += name;
    out += suffix;
    if (!labels.empty()) {
      out += '{';
      out += labels;
      out += '}';
    }
    out += ' ';
    if (suffix[1] == 's') {
      Num(out, h.sum);
    } else {
      out += std::to_string(h.count);
    }
    out += '\n';
  }
}

}  // namespace

Metrics& Metrics::Get() {
  static Metrics m;
  return m;
}

void Metrics::Inc(Counter c, uint64_t n) {
  g_counters[static_cast<size_t>(c)].fetch_add(n, std::memory_order_relaxed);
}

void Metrics::HttpRequest(std::string_view route, int status, double seconds) {
  Shard& s = Local();
  std::string key(route);
  std::lock_guard lock(s.mu);
  s.http_latency[key].Observe(kLatencyBounds, seconds);
  key += '\0';
  key += std::to_string(status);
  ++s.http[key];
}

void Metrics::EventsIngested(std::string_view tenant, uint64_t n) {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  s.ingested[std::string(tenant)] += n;
}

void Metrics::DeliveryAttempt(std::string_view outcome, double seconds) {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  ++s.attempts[std::string(outcome)];
  s.attempt_latency.Observe(kLatencyBounds, seconds);
}

void Metrics::IngestToDelivery(double seconds) {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  s.ingest_to_delivery.Observe(kDelayBounds, seconds);
}

void Metrics::GroupCommit(uint64_t events, double seconds) {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  s.commit_size.Observe(kSizeBounds, static_cast<double>(events));
  s.commit_latency.Observe(kLatencyBounds, seconds);
}

void Metrics::FilterError() {
  Shard& s = Local();
  std::lock_guard lock(s.mu);
  ++s.filter_errors;
}

std::string Metrics::Render(const std::function<void(std::string&)>& extra) const {
  std::map<std::pair<std::string, std::string>, uint64_t> http;
  std::map<std::string, Hist<kLatencyBounds.size()>> http_latency;
  std::map<std::string, uint64_t> ingested, attempts;
  Hist<kLatencyBounds.size()> attempt_latency, commit_latency;
  Hist<kDelayBounds.size()> ingest_to_delivery;
  Hist<kSizeBounds.size()> commit_size;
  uint64_t filter_errors = 0;
  {
    std::vector<std::shared_ptr<Shard>> shards;
    {
      std::lock_guard lock(Reg().mu);
      shards = Reg().shards;
    }
    for (const auto& sp : shards) {
      std::lock_guard lock(sp->mu);
      for (const auto& [k, v] : sp->http) {
        size_t z = k.find('\0');
        http[{k.substr(0, z), k.substr(z + 1)}] += v;
      }
      for (const auto& [k, h] : sp->http_latency) http_latency[k].Add(h);
      for (const auto& [k, v] : sp->ingested) ingested[k] += v;
      for (const auto& [k, v] : sp->attempts) attempts[k] += v;
      attempt_latency.Add(sp->attempt_latency);
      commit_latency.Add(sp->commit_latency);
      ingest_to_delivery.Add(sp->ingest_to_delivery);
      commit_size.Add(sp->commit_size);
      filter_errors += sp->filter_errors;
    }
  }
  for (const char* o : {"success", "failure"}) attempts.try_emplace(o, 0);
  std::string out;
  out.reserve(8192);
  Header(out, "triggers_events_ingested_total", "Events durably ingested (202), by tenant.",
         "counter");
  for (const auto& [tenant, v] : ingested) {
    out += "triggers_events_ingested_total{tenant=\"";
    Escape(out, tenant);
    out += "\"} " + std::to_string(v) + "\n";
  }
  Header(out, "triggers_http_requests_total",
         "HTTP requests answered, by route pattern and status.", "counter");
  for (const auto& [k, v] : http) {
    out += "triggers_http_requests_total{route=\"";
    Escape(out, k.first);
    out += "\",status=\"" + k.second + "\"} " + std::to_string(v) + "\n";
  }
  Header(out, "triggers_http_request_duration_seconds",
         "Time from the first byte of a request to its response, by route.", "histogram");
  for (const auto& [route, h] : http_latency) {
    std::string labels = "route=\"";
    Escape(labels, route);
    labels += '"';
    Histogram(out, "triggers_http_request_duration_seconds", kLatencyBounds, h, labels);
  }
  Header(out, "triggers_delivery_attempts_total", "Webhook delivery attempts, by outcome.",
         "counter");
  for (const auto& [o, v] : attempts) {
    out += "triggers_delivery_attempts_total{outcome=\"" + o + "\"} " + std::to_string(v) + "\n";
  }
  Header(out, "triggers_delivery_attempt_duration_seconds",
         "Duration of webhook delivery attempts.", "histogram");
  Histogram(out, "triggers_delivery_attempt_duration_seconds", kLatencyBounds, attempt_latency, "");
  Header(out, "triggers_ingest_to_delivery_seconds",
         "From an event's received_at to the end of its successful delivery.", "histogram");
  Histogram(out, "triggers_ingest_to_delivery_seconds", kDelayBounds, ingest_to_delivery, "");
  Header(out, "triggers_group_commit_events", "Events per ingest group commit.", "histogram");
  Histogram(out, "triggers_group_commit_events", kSizeBounds, commit_size, "");
  Header(out, "triggers_store_operation_duration_seconds",
         "Duration of store operations (the ingest group commit, with its fsync).", "histogram");
  Histogram(out, "triggers_store_operation_duration_seconds", kLatencyBounds, commit_latency,
            "operation=\"ingest_commit\"");
  Header(out, "triggers_filter_errors_total",
         "Times a subscription's filter could not evaluate an event (its data did not parse); "
         "the event then does not match that subscription.",
         "counter");
  out += "triggers_filter_errors_total " + std::to_string(filter_errors) + "\n";
  RenderCounters(out);
  AuthSources::Get().Render(out);
  if (extra) extra(out);
  return out;
}

void AppendGauge(std::string& out, std::string_view name, std::string_view help,
                 const std::vector<std::pair<std::string, double>>& labelled,
                 std::string_view label_name) {
  Header(out, name, help, "gauge");
  for (const auto& [label, v] : labelled) {
    out += name;
    if (!label_name.empty()) {
      out += '{';
      out += label_name;
      out += "=\"";
      Escape(out, label);
      out += "\"}";
    }
    out += ' ';
    Num(out, v);
    out += '\n';
  }
}

}  // namespace triggers::obs
