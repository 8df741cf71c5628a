#include "api/tenant_slots.h"

namespace triggers::api {

void TenantSlots::Slot::Release() {
  if (!released_.exchange(true)) owner_->Give(tenant_);
}

std::shared_ptr<TenantSlots::Slot> TenantSlots::Acquire(const std::string& tenant) {
  {
    std::lock_guard lock(mu_);
    size_t& n = held_[tenant];
    if (n >= limit_) return nullptr;
    ++n;
  }
  return std::make_shared<Slot>(this, tenant);
}

size_t TenantSlots::held(const std::string& tenant) {
  std::lock_guard lock(mu_);
  auto it = held_.find(tenant);
  return it == held_.end() ? 0 : it->second;
}

void TenantSlots::Give(const std::string& tenant) {
  std::lock_guard lock(mu_);
  auto it = held_.find(tenant);
  if (it != held_.end() && --it->second == 0) held_.erase(it);  // the map holds active tenants only
}

}  // namespace triggers::api
