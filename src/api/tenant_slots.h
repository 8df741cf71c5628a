// TenantSlots: what each tenant holds open on this node (parked receives,
// live tails), counted against one per-tenant limit (SPEC 10). A slot is
// taken before the thing is opened, so the check and the count are one step
// (two requests racing for the last slot cannot both get it), and given back
// exactly once: by Release() when the thing ends, or when the last reference
// to the slot goes away, whichever comes first.
//
// Thread safety: every method may be called from any thread. A TenantSlots
// must outlive its slots.
#pragma once

#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace triggers::api {

class TenantSlots {
 public:
  class Slot {
   public:
    Slot(TenantSlots* owner, std::string tenant) : owner_(owner), tenant_(std::move(tenant)) {}
    ~Slot() { Release(); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    // Gives the slot back (the first call only).
    void Release();

   private:
    TenantSlots* owner_;
    std::string tenant_;
    std::atomic<bool> released_{false};
  };

  explicit TenantSlots(size_t limit) : limit_(limit) {}

  // A slot of `tenant`; null (and nothing counted) when the tenant holds
  // `limit` slots already.
  std::shared_ptr<Slot> Acquire(const std::string& tenant);
  // Slots the tenant holds now.
  size_t held(const std::string& tenant);
  size_t limit() const { return limit_; }

 private:
  void Give(const std::string& tenant);

  const size_t limit_;
  std::mutex mu_;
  std::unordered_map<std::string, size_t> held_;  // tenants holding at least one
};

}  // namespace triggers::api
