#include "api/auth.h"

#include <gtest/gtest.h>

#include <map>

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

}  // namespace
}  // namespace triggers::api
