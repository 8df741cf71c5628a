// SubscriptionCache: every subscription, compiled for matching (type globs
// and the EventBridge-style filter), in memory. Loaded from the store at
// start; changes made through this node apply at once (Upsert/Remove), changes
// made elsewhere arrive with Refresh(), called every second.
//
// Thread safety: all methods may be called from any thread; Match() takes
// only a shared lock to copy one tenant's snapshot.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/event_pattern.h"
#include "triggers/clock.h"
#include "triggers/model.h"
#include "triggers/store.h"

namespace triggers::delivery {

struct CompiledSubscription {
  Subscription sub;
  core::TypeFilter types;
  std::optional<core::EventPattern> pattern;
};

// Compiles a subscription's event_types and filter (both JSON text).
// Validation status naming the bad part.
Result<std::shared_ptr<const CompiledSubscription>> CompileSubscription(const Subscription& sub);

// Appends sub.id to `out` when the subscription (enabled or not) matches `ev`.
void MatchOne(const CompiledSubscription& sub, const Event& ev, std::vector<std::string>* out);

class SubscriptionCache {
 public:
  SubscriptionCache(store::Store* store, Clock* clock);

  Status LoadAll();
  void Refresh();
  void Upsert(std::shared_ptr<const CompiledSubscription> compiled);
  void Remove(const std::string& id);

  // Ids of the enabled subscriptions of ev.tenant whose types and filter
  // match `ev` (id and time are not known yet and are not matched on).
  // `ordered` (optional) gets 1 for each matching subscription that is ordered.
  void Match(const Event& ev, std::vector<std::string>* out,
             std::vector<uint8_t>* ordered = nullptr) const;
  std::shared_ptr<const CompiledSubscription> Get(const std::string& id) const;

 private:
  using TenantList = std::vector<std::shared_ptr<const CompiledSubscription>>;
  void RebuildTenantLocked(const std::string& tenant);

  store::Store* store_;
  Clock* clock_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const CompiledSubscription>> by_id_;
  std::unordered_map<std::string, std::shared_ptr<const TenantList>> by_tenant_;
  int64_t last_refresh_ms_ = 0;
  std::unordered_set<std::string> removed_;  // deleted ids: a stale refresh must not revive them
};

}  // namespace triggers::delivery
