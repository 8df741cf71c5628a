// Recent activity for the dashboard (GET /v1/stats): per tenant, events
// ingested and delivery attempts that succeeded or failed, and per
// subscription, attempts and the circuit breaker's state, in 10-second
// buckets over the last 5 minutes. In this process only (per node).
//
// Recorded once per group commit and once per delivery outcome, under one
// mutex (never per request). Memory is bounded: entries idle for longer than
// the window are dropped when the maps grow past kMaxEntries.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace triggers::obs {

class Activity {
 public:
  static constexpr int64_t kBucketMs = 10'000;
  static constexpr int kBuckets = 30;
  static constexpr size_t kMaxEntries = 100'000;

  static Activity& Get();

  void Ingested(std::string_view tenant, uint64_t n, int64_t now_ms);
  void Attempted(std::string_view tenant, std::string_view subscription_id, bool ok,
                 int64_t now_ms);
  // The breaker after an outcome: open until `open_until_ms` (0: closed).
  void Circuit(std::string_view subscription_id, int64_t open_until_ms);

  struct Bucket {
    int64_t start_ms = 0;
    uint64_t ingested = 0, delivered = 0, failed = 0;
  };
  // kBuckets buckets, oldest first, the last one holding now.
  std::vector<Bucket> TenantSeries(std::string_view tenant, int64_t now_ms) const;

  struct SubscriptionStats {
    uint64_t succeeded = 0, failed = 0;
    std::string circuit = "closed";  // closed | open | half_open
  };
  SubscriptionStats Subscription(std::string_view id, int64_t now_ms) const;

  void ResetForTest();

 private:
  struct Ring {
    std::array<Bucket, kBuckets> b{};
    int64_t last_ms = 0;
    Bucket& At(int64_t now_ms);
  };
  struct Sub {
    Ring ring;
    int64_t open_until_ms = 0;
    bool open = false;
  };
  void PruneLocked(int64_t now_ms);

  mutable std::mutex mu_;
  std::unordered_map<std::string, Ring> tenants_;
  std::unordered_map<std::string, Sub> subs_;
};

}  // namespace triggers::obs
