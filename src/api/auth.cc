#include "api/auth.h"

#include <algorithm>

#include "core/crypto.h"
#include "obs/metrics.h"

namespace triggers::api {

KeyCache::KeyCache(store::KeyStore* store, Clock* clock,
                   const std::optional<std::string>& env_admin, double rate)
    : store_(store), clock_(clock), rate_(rate) {
  last_refresh_ms_ = clock_->NowMs();
  if (env_admin && !env_admin->empty()) {
    auto e = std::make_shared<Entry>();
    auto p = std::make_shared<Principal>();
    p->admin = true;
    p->key_id = "key_admin_env";
    p->scopes = kScopeIngest | kScopeRead | kScopeConsume | kScopeManage;
    env_admin_hash_ = core::Sha256(*env_admin);
    p->key_hash = env_admin_hash_;
    e->principal = std::move(p);
    e->tokens = rate;
    e->last_refill_ns = clock->MonoNs();
    entries_.emplace(env_admin_hash_, std::move(e));
  }
}

std::shared_ptr<KeyCache::Entry> KeyCache::Get(const std::string& hash) {
  std::shared_lock lock(mu_);
  auto it = entries_.find(hash);
  return it == entries_.end() ? nullptr : it->second;
}

KeyCache::Lookup KeyCache::Find(const std::string& hash, std::shared_ptr<const Principal>* out) {
  {
    std::shared_lock lock(mu_);
    auto it = entries_.find(hash);
    if (it != entries_.end()) {
      if (it->second->revoked.load(std::memory_order_acquire)) return Lookup::kRejected;
      *out = it->second->principal;
      return Lookup::kFound;
    }
  }
  return IsKnownUnknown(hash) ? Lookup::kUnknown : Lookup::kMiss;
}

bool KeyCache::IsKnownUnknown(const std::string& hash) {
  std::lock_guard lock(unknown_mu_);
  auto it = unknown_.find(hash);
  return it != unknown_.end() && it->second > clock_->MonoNs() / 1'000'000;
}

void KeyCache::RememberUnknown(const std::string& hash) {
  int64_t now = clock_->MonoNs() / 1'000'000;
  std::lock_guard lock(unknown_mu_);
  // Expired entries leave from the front (insertion order is expiry order);
  // when still full, the oldest go early. An entry re-added or forgotten
  // since is left in the map (its expiry differs).
  while (!unknown_fifo_.empty() &&
         (unknown_fifo_.front().second <= now || unknown_fifo_.size() >= kMaxUnknown)) {
    auto& [h, expiry] = unknown_fifo_.front();
    auto it = unknown_.find(h);
    if (it != unknown_.end() && it->second == expiry) unknown_.erase(it);
    unknown_fifo_.pop_front();
  }
  int64_t expiry = now + kUnknownTtlMs;
  unknown_[hash] = expiry;
  unknown_fifo_.emplace_back(hash, expiry);
}

bool KeyCache::TryBeginLookup() {
  if (lookups_in_flight_.fetch_add(1, std::memory_order_acq_rel) >= kMaxLookupsInFlight) {
    lookups_in_flight_.fetch_sub(1, std::memory_order_acq_rel);
    return false;
  }
  return true;
}

Status KeyCache::LoadFromStore(const std::string& hash, std::shared_ptr<const Principal>* out) {
  struct Release {
    KeyCache* cache;
    ~Release() { cache->EndLookup(); }
  } release{this};
  Lookup cached = Lookup::kMiss;
  if (!BeginKeyLookup(hash, &cached, out)) return AnswerFromCache(cached);
  struct End {  // whatever AskStore does, the waiters are let go
    KeyCache* cache;
    const std::string& hash;
    ~End() { cache->EndKeyLookup(hash); }
  } end{this, hash};
  return AskStore(hash, out);
}

bool KeyCache::BeginKeyLookup(const std::string& hash, Lookup* cached,
                              std::shared_ptr<const Principal>* out) {
  std::unique_lock lock(lookup_mu_);
  for (;;) {
    if (looking_up_.count(hash) != 0) {
      ++lookups_waiting_;
      lookup_done_.wait(lock, [&] { return looking_up_.count(hash) == 0; });
      --lookups_waiting_;
    }
    // Checked under lookup_mu_ with no lookup of `hash` in flight: what a
    // finished lookup (this thread's wait, or one between the caller's Find
    // and now) cached is seen here. kMiss when it failed or cached nothing.
    *cached = Find(hash, out);
    if (*cached != Lookup::kMiss) return false;
    if (looking_up_.count(hash) == 0) break;
  }
  looking_up_.insert(hash);
  return true;
}

void KeyCache::EndKeyLookup(const std::string& hash) {
  {
    std::lock_guard lock(lookup_mu_);
    looking_up_.erase(hash);
  }
  lookup_done_.notify_all();
}

Status KeyCache::AnswerFromCache(Lookup cached) {
  switch (cached) {
    case Lookup::kFound:
      return Status::Ok();
    case Lookup::kRejected:
      obs::Metrics::Get().Inc(obs::Counter::kAuthRevoked);
      return Status::Unauthorized("this API key has been revoked");
    default:
      obs::Metrics::Get().Inc(obs::Counter::kAuthUnknown);
      return Status::Unauthorized("unknown API key");
  }
}

Status KeyCache::AskStore(const std::string& hash, std::shared_ptr<const Principal>* out) {
  obs::Metrics::Get().Inc(obs::Counter::kAuthStoreLookups);
  auto r = store_->FindKeyByHash(hash);
  if (!r.ok()) {
    if (r.status().IsNotFound()) {
      RememberUnknown(hash);
      obs::Metrics::Get().Inc(obs::Counter::kAuthUnknown);
      return Status::Unauthorized("unknown API key");
    }
    return r.status();
  }
  Insert(r.value());
  if (r->revoked_at_ms) {
    obs::Metrics::Get().Inc(obs::Counter::kAuthRevoked);
    return Status::Unauthorized("this API key has been revoked");
  }
  if (Find(hash, out) != Lookup::kFound) {
    obs::Metrics::Get().Inc(obs::Counter::kAuthUnknown);
    return Status::Unauthorized("unknown API key");
  }
  return Status::Ok();
}

void KeyCache::Insert(const ApiKey& key) {
  auto e = std::make_shared<Entry>();
  auto p = std::make_shared<Principal>();
  p->admin = key.admin;
  p->tenant = key.tenant;
  p->scopes = key.scopes;
  p->key_id = key.id;
  p->key_hash = key.hash;
  p->access_key_id = key.access_key_id;
  p->sealed_secret = key.sealed_secret;
  e->principal = std::move(p);
  const bool revoked = key.revoked_at_ms.has_value();
  e->revoked = revoked;
  e->tokens = rate_;
  e->last_refill_ns = clock_->MonoNs();
  {
    std::lock_guard ulock(unknown_mu_);
    unknown_.erase(key.hash);  // its FIFO entry expires on its own
  }
  bool newly_revoked = false;
  {
    std::unique_lock lock(mu_);
    if (entries_.size() >= kMaxEntries) {
      // Bounded: start over (entries come back from the store on use), but keep
      // the TRIGGERS_ADMIN_KEY entry, which exists nowhere else.
      auto env = entries_.find(env_admin_hash_);
      std::shared_ptr<Entry> keep = env == entries_.end() ? nullptr : env->second;
      entries_.clear();
      if (keep) entries_.emplace(env_admin_hash_, std::move(keep));
    }
    auto& slot = entries_[key.hash];
    newly_revoked = revoked && !(slot && slot->revoked.load(std::memory_order_acquire));
    slot = std::move(e);
  }
  if (newly_revoked && on_revoked_) on_revoked_(key.hash);
}

void KeyCache::MarkRevoked(const std::string& hash) {
  auto e = Get(hash);
  // The flag is set before the listener runs: whatever checks IsRevoked
  // after registering with the listener's targets cannot miss both.
  if (e && e->revoked.exchange(true, std::memory_order_acq_rel)) return;  // known already
  if (on_revoked_) on_revoked_(hash);
}

bool KeyCache::IsRevoked(const std::string& hash) {
  auto e = Get(hash);
  return e && e->revoked.load(std::memory_order_acquire);
}

void KeyCache::RefreshRevocations() {
  int64_t now = clock_->NowMs();
  // Overlap the window so a revocation committed around the last poll (or
  // stamped by a node with a slightly different clock) is not missed.
  auto r = store_->RevokedKeyHashesSince(last_refresh_ms_ - 10'000, now);
  if (!r.ok()) return;
  last_refresh_ms_ = now;
  for (const auto& h : r.value()) MarkRevoked(h);
}

bool KeyCache::AllowRequest(const std::string& hash) {
  if (rate_ <= 0) return true;
  auto e = Get(hash);
  if (!e) return true;
  std::lock_guard lock(e->bucket_mu);
  int64_t now = clock_->MonoNs();
  double elapsed_s = static_cast<double>(now - e->last_refill_ns) / 1e9;
  e->last_refill_ns = now;
  // Burst capacity: one second of the rate, and at least one request.
  e->tokens = std::min(std::max(rate_, 1.0), e->tokens + elapsed_s * rate_);
  if (e->tokens < 1.0) return false;
  e->tokens -= 1.0;
  return true;
}

}  // namespace triggers::api
