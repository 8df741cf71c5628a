#include "obs/activity.h"

namespace triggers::obs {

Activity& Activity::Get() {
  static Activity* a = new Activity();  // never destroyed: used until exit
  return *a;
}

Activity::Bucket& Activity::Ring::At(int64_t now_ms) {
  const int64_t start = now_ms - now_ms % kBucketMs;
  Bucket& bucket = b[static_cast<size_t>((start / kBucketMs) % kBuckets)];
  if (bucket.start_ms != start) bucket = Bucket{start, 0, 0, 0};
  if (now_ms > last_ms) last_ms = now_ms;
  return bucket;
}

void Activity::PruneLocked(int64_t now_ms) {
  const int64_t horizon = now_ms - kBucketMs * kBuckets;
  if (tenants_.size() > kMaxEntries)
    std::erase_if(tenants_, [&](const auto& kv) { return kv.second.last_ms < horizon; });
  if (subs_.size() > kMaxEntries)
    std::erase_if(
        subs_, [&](const auto& kv) { return kv.second.ring.last_ms < horizon && !kv.second.open; });
}

void Activity::Ingested(std::string_view tenant, uint64_t n, int64_t now_ms) {
  std::lock_guard lock(mu_);
  PruneLocked(now_ms);
  tenants_[std::string(tenant)].At(now_ms).ingested += n;
}

void Activity::Attempted(std::string_view tenant, std::string_view subscription_id, bool ok,
                         int64_t now_ms) {
  std::lock_guard lock(mu_);
  PruneLocked(now_ms);
  Bucket& t = tenants_[std::string(tenant)].At(now_ms);
  Bucket& s = subs_[std::string(subscription_id)].ring.At(now_ms);
  (ok ? t.delivered : t.failed) += 1;
  (ok ? s.delivered : s.failed) += 1;
}

void Activity::Circuit(std::string_view subscription_id, int64_t open_until_ms) {
  std::lock_guard lock(mu_);
  Sub& s = subs_[std::string(subscription_id)];
  s.open = open_until_ms > 0;
  s.open_until_ms = open_until_ms;
}

std::vector<Activity::Bucket> Activity::TenantSeries(std::string_view tenant,
                                                     int64_t now_ms) const {
  const int64_t last = now_ms - now_ms % kBucketMs;
  std::vector<Bucket> out(kBuckets);
  for (int i = 0; i < kBuckets; ++i)
    out[static_cast<size_t>(i)].start_ms = last - (kBuckets - 1 - i) * kBucketMs;
  std::lock_guard lock(mu_);
  auto it = tenants_.find(std::string(tenant));
  if (it == tenants_.end()) return out;
  for (auto& o : out) {
    const Bucket& b = it->second.b[static_cast<size_t>((o.start_ms / kBucketMs) % kBuckets)];
    if (b.start_ms == o.start_ms) o = b;
  }
  return out;
}

Activity::SubscriptionStats Activity::Subscription(std::string_view id, int64_t now_ms) const {
  SubscriptionStats st;
  const int64_t horizon = now_ms - now_ms % kBucketMs - (kBuckets - 1) * kBucketMs;
  std::lock_guard lock(mu_);
  auto it = subs_.find(std::string(id));
  if (it == subs_.end()) return st;
  for (const Bucket& b : it->second.ring.b) {
    if (b.start_ms >= horizon && b.start_ms <= now_ms) {
      st.succeeded += b.delivered;
      st.failed += b.failed;
    }
  }
  if (it->second.open) st.circuit = now_ms < it->second.open_until_ms ? "open" : "half_open";
  return st;
}

void Activity::ResetForTest() {
  std::lock_guard lock(mu_);
  tenants_.clear();
  subs_.clear();
}

}  // namespace triggers::obs
