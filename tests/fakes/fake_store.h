// A Store for unit tests: CommitIngest answers what the test sets and records
// what it was given; everything else reports NotFound or empty.
#pragma once

#include <atomic>
#include <mutex>

#include "triggers/store.h"

namespace triggers::testing {

class FakeStore : public store::Store {
 public:
  Status commit_status;  // what CommitIngest returns
  std::atomic<int> commits{0};
  std::mutex mu;
  std::vector<std::string> committed_ids;

  Status Ping() override { return Status::Ok(); }
  Status CommitIngest(std::vector<store::IngestItem*>& items, int64_t, int64_t,
                      store::IngestMatcher*) override {
    ++commits;
    if (!commit_status.ok()) return commit_status;
    std::lock_guard lock(mu);
    for (auto* it : items) {
      it->outcome = store::IngestItem::Outcome::kCreated;
      committed_ids.push_back(it->event.id);
    }
    return Status::Ok();
  }
  Result<Event> GetEvent(const std::string&, const std::string&) override {
    return Status::NotFound("fake");
  }
  Result<store::EventPage> ListEvents(const std::string&, const std::string&,
                                      const store::ListOptions&) override {
    return store::EventPage{};
  }
  Result<PurgeCounts> Purge(int64_t, int64_t, int64_t, const PurgeLimits&) override {
    return PurgeCounts{};
  }
  Result<int64_t> CreateSubscription(const Subscription&, int64_t) override { return int64_t{1}; }
  Result<Subscription> GetSubscription(const std::string&, const std::string&) override {
    return Status::NotFound("fake");
  }
  Result<std::vector<Subscription>> ListSubscriptions(const std::string&,
                                                      const store::ListOptions&) override {
    return std::vector<Subscription>{};
  }
  Result<Subscription> ModifySubscription(const std::string&, const std::string&,
                                          const std::function<Status(Subscription*)>&,
                                          int64_t*) override {
    return Status::NotFound("fake");
  }
  Result<int64_t> DeleteSubscription(const std::string&, const std::string&, int64_t) override {
    return Status::NotFound("fake");
  }
  Result<std::vector<std::pair<std::string, int64_t>>> SubscriptionGenerations() override {
    return std::vector<std::pair<std::string, int64_t>>{};
  }
  Result<store::TenantSubscriptions> LoadTenantSubscriptions(const std::string&) override {
    return store::TenantSubscriptions{};
  }
  Result<std::vector<Delivery>> ListDeliveries(const std::string&, const DeliveryFilter&,
                                               const store::ListOptions&) override {
    return std::vector<Delivery>{};
  }
  Result<Delivery> GetDelivery(const std::string&, const std::string&) override {
    return Status::NotFound("fake");
  }
  Result<Delivery> RetryDelivery(const std::string&, const std::string&, int64_t) override {
    return Status::NotFound("fake");
  }
  Result<int64_t> RequeueDead(const std::string&, const std::string&, const std::string&,
                              const std::string&, int64_t) override {
    return int64_t{0};
  }
  Result<int64_t> CreateMissingDeliveries(const std::string&, const std::string&,
                                          const std::vector<Event>&, bool, int64_t) override {
    return int64_t{0};
  }
  Result<std::vector<Leased>> LeaseDue(const std::string&, int64_t, int, int64_t) override {
    return std::vector<Leased>{};
  }
  Result<std::vector<Leased>> Receive(const std::string&, int64_t, int, int64_t, int) override {
    return std::vector<Leased>{};
  }
  Result<std::vector<ReceiptResult>> Settle(const std::string&, const std::vector<std::string>&,
                                            bool, int64_t, int64_t) override {
    return std::vector<ReceiptResult>{};
  }
  Status RecordAttempts(const std::vector<AttemptResult>&, int64_t) override {
    return Status::Ok();
  }
  Result<std::vector<std::string>> SubscriptionsWithDueWork(int64_t) override {
    return std::vector<std::string>{};
  }
  Status ReleaseLeases(const std::vector<LeaseRef>&, int64_t) override { return Status::Ok(); }
  Status TenantDeliveryStats(const std::string&, int64_t,
                             std::vector<std::pair<std::string, int64_t>>*, int64_t*) override {
    return Status::Ok();
  }
  Status DeliveryStats(int64_t, std::vector<std::pair<std::string, int64_t>>*, int64_t*) override {
    return Status::Ok();
  }
  Status CreateKey(const ApiKey&) override { return Status::Ok(); }
  Result<ApiKey> FindKeyByHash(const std::string&) override { return Status::NotFound("fake"); }
  Result<std::vector<ApiKey>> ListKeys(const std::string&, const store::ListOptions&) override {
    return std::vector<ApiKey>{};
  }
  Result<std::string> RevokeKey(const std::string&, const std::string&, int64_t) override {
    return Status::NotFound("fake");
  }
  Result<std::vector<std::string>> RevokedKeyHashesSince(int64_t, int64_t) override {
    return std::vector<std::string>{};
  }
  Result<bool> HasAdminKey() override { return false; }
};

// A clock the test moves by hand.
class FakeClock : public Clock {
 public:
  std::atomic<int64_t> now_ms{1'700'000'000'000};
  int64_t NowMs() const override { return now_ms.load(); }
  int64_t MonoNs() const override { return now_ms.load() * 1'000'000; }
};

}  // namespace triggers::testing
