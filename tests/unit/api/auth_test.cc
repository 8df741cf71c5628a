#include "api/auth.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "fakes/fake_store.h"

namespace triggers::api {
namespace {

// A store that knows the keys the test puts in it and counts its lookups.
class KeyStore : public testing::FakeStore {
 public:
  std::map<std::string, ApiKey> keys;
  int lookups = 0;
  Result<ApiKey> FindKeyByHash(const std::string& hash) override {
    ++lookups;
    auto it = keys.find(hash);
    if (it == keys.end()) return Status::NotFound("no such key");
    return it->second;
  }
};

ApiKey MakeKey(const std::string& hash) {
  ApiKey k;
  k.id = "key_test";
  k.tenant = "acme";
  k.scopes = kScopeRead;
  k.hash = hash;
  return k;
}

class KeyCacheTest : public ::testing::Test {
 protected:
  KeyStore store;
  testing::FakeClock clock;
  KeyCache cache{&store, &clock, std::nullopt, 0};
  std::shared_ptr<const Principal> who;

  Status Load(const std::string& hash) {
    EXPECT_TRUE(cache.TryBeginLookup());
    return cache.LoadFromStore(hash, &who);
  }
};

TEST_F(KeyCacheTest, AnUnknownKeyIsLookedUpOncePerTtl) {
  EXPECT_EQ(cache.Find("h1", &who), KeyCache::Lookup::kMiss);
  EXPECT_EQ(Load("h1").code(), Status::Code::kUnauthorized);
  EXPECT_EQ(store.lookups, 1);
  // Remembered: the request is answered without the store.
  EXPECT_EQ(cache.Find("h1", &who), KeyCache::Lookup::kUnknown);
  clock.now_ms += KeyCache::kUnknownTtlMs - 1;
  EXPECT_EQ(cache.Find("h1", &who), KeyCache::Lookup::kUnknown);
  // A key created elsewhere meanwhile is found once the entry expires.
  store.keys["h1"] = MakeKey("h1");
  clock.now_ms += 1;
  EXPECT_EQ(cache.Find("h1", &who), KeyCache::Lookup::kMiss);
  EXPECT_TRUE(Load("h1").ok());
  EXPECT_EQ(cache.Find("h1", &who), KeyCache::Lookup::kFound);
  EXPECT_EQ(store.lookups, 2);
}

TEST_F(KeyCacheTest, AKeyCreatedThroughThisNodeIsValidAtOnce) {
  EXPECT_EQ(Load("h2").code(), Status::Code::kUnauthorized);
  EXPECT_EQ(cache.Find("h2", &who), KeyCache::Lookup::kUnknown);
  cache.Insert(MakeKey("h2"));  // what POST /v1/keys does
  EXPECT_EQ(cache.Find("h2", &who), KeyCache::Lookup::kFound);
  EXPECT_EQ(who->tenant, "acme");
}

TEST_F(KeyCacheTest, TheUnknownKeysAreBounded) {
  for (size_t i = 0; i < KeyCache::kMaxUnknown + 10; ++i) {
    EXPECT_EQ(Load("u" + std::to_string(i)).code(), Status::Code::kUnauthorized);
  }
  // The oldest were dropped to make room; the newest are remembered.
  EXPECT_EQ(cache.Find("u0", &who), KeyCache::Lookup::kMiss);
  EXPECT_EQ(cache.Find("u" + std::to_string(KeyCache::kMaxUnknown + 9), &who),
            KeyCache::Lookup::kUnknown);
}

TEST_F(KeyCacheTest, StoreLookupsInFlightAreBounded) {
  for (int i = 0; i < KeyCache::kMaxLookupsInFlight; ++i) EXPECT_TRUE(cache.TryBeginLookup());
  EXPECT_FALSE(cache.TryBeginLookup());
  cache.EndLookup();
  EXPECT_TRUE(cache.TryBeginLookup());
  EXPECT_FALSE(cache.TryBeginLookup());
  for (int i = 0; i < KeyCache::kMaxLookupsInFlight; ++i) cache.EndLookup();
}

// A store whose first lookup blocks until the test lets it go.
class BlockingKeyStore : public testing::FakeStore {
 public:
  std::atomic<int> lookups{0};
  Result<ApiKey> FindKeyByHash(const std::string&) override {
    if (lookups.fetch_add(1) == 0) {
      std::unique_lock lock(mu_);
      cv_.wait(lock, [&] { return released_; });
    }
    return Status::NotFound("no such key");
  }
  void Release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
};

// Polls `done` for up to 10 s (a thread's progress, not a timing assumption).
template <typename F>
bool Eventually(F done) {
  for (int i = 0; i < 10'000 && !done(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return done();
}

TEST(KeyCacheCoalescing, ConcurrentLookupsOfOneKeyAskTheStoreOnce) {
  BlockingKeyStore store;
  testing::FakeClock clock;
  KeyCache cache{&store, &clock, std::nullopt, 0};
  auto load = [&](Status* s) {
    std::shared_ptr<const Principal> who;
    ASSERT_TRUE(cache.TryBeginLookup());
    *s = cache.LoadFromStore("storm", &who);
  };
  Status first, second;
  std::thread a(load, &first);
  ASSERT_TRUE(Eventually([&] { return store.lookups.load() == 1; }));
  // The second request for the same key arrives while the first is in the
  // store: it waits for that answer (or, without coalescing, asks itself).
  std::thread b(load, &second);
  ASSERT_TRUE(Eventually([&] { return cache.lookups_waiting() == 1 || store.lookups.load() > 1; }));
  store.Release();
  a.join();
  b.join();
  EXPECT_EQ(store.lookups.load(), 1);
  EXPECT_EQ(first.code(), Status::Code::kUnauthorized);
  EXPECT_EQ(second.code(), Status::Code::kUnauthorized);
}

TEST_F(KeyCacheTest, ALookupFinishedSinceTheCallersFindIsNotRepeated) {
  // Two requests both saw kMiss; the first one's lookup completes before the
  // second reaches the blocking pool: the second answers from the cache.
  EXPECT_EQ(cache.Find("h3", &who), KeyCache::Lookup::kMiss);
  EXPECT_EQ(Load("h3").code(), Status::Code::kUnauthorized);
  EXPECT_EQ(Load("h3").code(), Status::Code::kUnauthorized);
  EXPECT_EQ(store.lookups, 1);
  store.keys["h4"] = MakeKey("h4");
  EXPECT_TRUE(Load("h4").ok());
  EXPECT_TRUE(Load("h4").ok());
  EXPECT_EQ(who->tenant, "acme");
  EXPECT_EQ(store.lookups, 2);
}

}  // namespace
}  // namespace triggers::api
