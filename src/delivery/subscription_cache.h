// SubscriptionCache: every subscription, compiled for matching (type globs
// and the EventBridge-style filter), in memory, per tenant, labelled with the
// tenant's subscriptions generation it was read at.
//
// The cache is only a cache: ingest items carry the generation they were
// matched at, and the ingest transaction re-matches them (through Rematch,
// with the subscriptions it reads itself) when the database has moved on.
// A label may be older than the state it labels, never newer (see
// store::TenantSubscriptions), so a stale cache costs a re-match, never a
// wrong delivery. Other nodes' changes also arrive with Refresh(), every
// second, which reloads the tenants whose generation moved.
//
// Thread safety: all methods may be called from any thread; Match() takes
// only a shared lock to copy one tenant's snapshot.
#pragma once

#include <boost/json/value.hpp>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
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

// The event as filters see it: {type, source, subject, ordering_key, data},
// plus EventBridge's names for the same things (SPEC 12): detail-type (see
// aws/envelope.h), detail (= data) and resources (always empty),
// with `data` parsed under core::kMaxJsonDepth; when `data` does not parse,
// a string saying why (the caller counts a filter error).
boost::json::value EventDocument(const Event& ev);

// Appends sub.id to `out` when the subscription (enabled or not) matches `ev`.
void MatchOne(const CompiledSubscription& sub, const Event& ev, std::vector<std::string>* out);

class SubscriptionCache final : public store::IngestMatcher {
 public:
  explicit SubscriptionCache(store::SubscriptionStore* store);

  // Loads every tenant (at start).
  Status LoadAll();
  // Reloads the tenants whose generation in the store differs from ours.
  void Refresh();
  // Reloads one tenant from the store.
  Status ReloadTenant(const std::string& tenant);
  // A subscription write through this node returned `generation`: applies
  // `changed` (the stored row; null for a delete of `deleted_id`) when the
  // cache holds exactly the generation before it, else reloads the tenant.
  void Applied(const std::string& tenant, int64_t generation,
               std::shared_ptr<const CompiledSubscription> changed, const std::string& deleted_id);

  // Ids of the enabled subscriptions of ev.tenant whose types and filter
  // match `ev` (id and time are not known yet and are not matched on).
  // `ordered` (optional) gets 1 for each matching subscription that is ordered.
  // Returns the generation the tenant's snapshot is labelled with.
  int64_t Match(const Event& ev, std::vector<std::string>* out,
                std::vector<uint8_t>* ordered = nullptr) const;
  std::shared_ptr<const CompiledSubscription> Get(const std::string& id) const;
  // The tenant's live subscriptions as this node knows them (SQS queues by name).
  std::vector<std::shared_ptr<const CompiledSubscription>> TenantList(
      const std::string& tenant) const;
  int64_t Generation(const std::string& tenant) const;

  // store::IngestMatcher: replaces the tenant's snapshot with what the
  // ingest transaction read and matches the items against it.
  void Rematch(const std::string& tenant, int64_t generation,
               const std::vector<Subscription>& subscriptions,
               const std::vector<store::IngestItem*>& items) override;

 private:
  using List = std::vector<std::shared_ptr<const CompiledSubscription>>;
  struct TenantState {
    int64_t generation = 0;
    List list;
  };
  // Compiles the rows, reusing compiled versions we hold already.
  List Compile(const std::vector<Subscription>& subs) const;
  // Installs `list` as the tenant's state unless ours is labelled newer.
  void Replace(const std::string& tenant, int64_t generation, List list);

  store::SubscriptionStore* store_;
  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<const CompiledSubscription>> by_id_;
  std::unordered_map<std::string, std::shared_ptr<const TenantState>> by_tenant_;
};

}  // namespace triggers::delivery
