// Authentication: API key -> principal (tenant, scopes), through an in-memory
// cache in front of the store. Revocations made through this node apply at
// once; revocations made elsewhere (the offline CLI, another node) are picked
// up by RefreshRevocations(), which the server calls every second (< 5 s).
// Either way the revocation listener hears of it, so that what the key holds
// open (live tails, parked receives) ends too.
// Per-key rate limiting lives here too (token bucket per key).
//
// Unknown keys: a key the store does not know is remembered (by hash, in a
// bounded FIFO) for kUnknownTtlMs, so a client repeating a wrong key costs no
// store lookup; a key created through this node's API is forgotten there at
// once (Insert), one created elsewhere becomes valid within kUnknownTtlMs.
// Store lookups in flight are bounded (kMaxLookupsInFlight): beyond, the
// request is shed (503) instead of queueing on the blocking pool. Concurrent
// lookups of one key are coalesced: one asks the store, the others wait for
// its answer, so a storm of one unknown key costs one lookup per TTL however
// many connections repeat it at once.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "triggers/clock.h"
#include "triggers/model.h"
#include "triggers/store.h"

namespace triggers::api {

struct Principal {
  bool admin = false;
  std::string tenant;  // empty for the admin key
  uint32_t scopes = 0;
  std::string key_id;
  // SHA-256 of the key: what a revocation names. Never logged or shown.
  std::string key_hash;
  // AWS credentials (empty for a trg_ key): the access key id and the sealed
  // secret (aws::SecretBox opens it to verify a signature).
  std::string access_key_id;
  std::string sealed_secret;
};

class KeyCache {
 public:
  // `env_admin_key`: the TRIGGERS_ADMIN_KEY value, if set (held only as a hash).
  KeyCache(store::KeyStore* store, Clock* clock, const std::optional<std::string>& env_admin_key,
           double rate_limit_per_s);

  static constexpr int64_t kUnknownTtlMs = 3'000;
  static constexpr size_t kMaxUnknown = 50'000;
  static constexpr int kMaxLookupsInFlight = 64;

  enum class Lookup { kFound, kRejected, kUnknown, kMiss };
  // Memory only (no I/O, no lock held by all requests): kFound fills *out;
  // kRejected for a known revoked key; kUnknown for a key the store did not
  // know within kUnknownTtlMs; kMiss when the store must be asked.
  Lookup Find(const std::string& hash, std::shared_ptr<const Principal>* out);
  // Reserves one of kMaxLookupsInFlight store lookups; false when all are
  // taken (the caller sheds the request). LoadFromStore releases it, or
  // EndLookup() when the lookup does not happen after all.
  bool TryBeginLookup();
  void EndLookup() { lookups_in_flight_.fetch_sub(1, std::memory_order_acq_rel); }
  // Asks the store (blocking I/O) after TryBeginLookup(). Unauthorized /
  // Unavailable / Ok. An unknown key is remembered (see above). Counts its
  // lookup and its 401s in the auth metrics. While another thread looks up
  // the same hash, waits for it and answers from what it cached; a key that
  // became known since the caller's Find() is answered without the store.
  Status LoadFromStore(const std::string& hash, std::shared_ptr<const Principal>* out);
  // Threads waiting in LoadFromStore for another's lookup of the same key
  // (tests use it to order a race).
  int lookups_waiting() {
    std::lock_guard lock(lookup_mu_);
    return lookups_waiting_;
  }
  // Caches `key` and forgets it as unknown (a key created through this node).
  void Insert(const ApiKey& key);
  // Marks the key revoked; the listener hears of it unless the cache already
  // knew. A hash the cache does not hold is passed on too (its entry may
  // have been dropped while something it opened is still open).
  void MarkRevoked(const std::string& hash);
  // Polls the store for recent revocations. Blocking; call from a background thread.
  void RefreshRevocations();
  // Memory only: true when the cache knows this key as revoked.
  bool IsRevoked(const std::string& hash);
  // Called (on the revoking thread, with no lock held) with the hash of each
  // key newly known as revoked; it must not block. Set once, before serving.
  using RevokedListener = std::function<void(const std::string& key_hash)>;
  void SetRevokedListener(RevokedListener listener) { on_revoked_ = std::move(listener); }
  // Token bucket: false when the key is over --rate-limit-per-key.
  bool AllowRequest(const std::string& hash);

 private:
  struct Entry {
    std::shared_ptr<const Principal> principal;  // immutable once published
    std::atomic<bool> revoked{false};
    std::mutex bucket_mu;
    double tokens = 0;
    int64_t last_refill_ns = 0;
  };
  std::shared_ptr<Entry> Get(const std::string& hash);
  bool IsKnownUnknown(const std::string& hash);
  void RememberUnknown(const std::string& hash);
  // Marks `hash` as being looked up by this thread, after waiting out
  // another thread's lookup of it: false when that one left an answer in
  // the cache (`*cached`), so there is nothing to ask.
  bool BeginKeyLookup(const std::string& hash, Lookup* cached,
                      std::shared_ptr<const Principal>* out);
  void EndKeyLookup(const std::string& hash);
  Status AnswerFromCache(Lookup cached);
  Status AskStore(const std::string& hash, std::shared_ptr<const Principal>* out);

  store::KeyStore* store_;
  Clock* clock_;
  double rate_;
  std::shared_mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Entry>> entries_;  // by key hash
  int64_t last_refresh_ms_ = 0;
  std::string env_admin_hash_;
  RevokedListener on_revoked_;
  // Unknown keys: hash -> expiry (ms); `unknown_fifo_` in insertion (= expiry)
  // order bounds the map and expires it from the front.
  std::mutex unknown_mu_;
  std::unordered_map<std::string, int64_t> unknown_;
  std::deque<std::pair<std::string, int64_t>> unknown_fifo_;
  std::atomic<int> lookups_in_flight_{0};
  // Hashes being looked up in the store right now (coalescing, see above).
  std::mutex lookup_mu_;
  std::condition_variable lookup_done_;
  std::unordered_set<std::string> looking_up_;
  int lookups_waiting_ = 0;
  static constexpr size_t kMaxEntries = 100000;
};

}  // namespace triggers::api
