// The Store contract on SQLite, on a real database file in a temporary directory.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

#include "core/crypto.h"
#include "core/ids.h"
#include "triggers/store.h"

namespace triggers::store {
namespace {

constexpr int64_t kDay = 24LL * 3600 * 1000;

class SqliteStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("triggers-store-test-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Open();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Open() {
    store_.reset();
    SqliteOptions o;
    o.path = (dir_ / "t.db").string();
    auto r = OpenSqlite(o);
    ASSERT_TRUE(r.ok()) << r.status().message();
    store_ = std::move(r.value());
  }
  IngestItem Item(const std::string& tenant, const std::string& type, int64_t now,
                  const std::string& idem = "", const std::string& body = "") {
    IngestItem it;
    it.event.id = gen_.Next("evt_", now);
    it.event.tenant = tenant;
    it.event.type = type;
    it.event.data = R"({"n":1.50})";
    it.event.received_at_ms = now;
    it.idempotency_key = idem;
    if (!idem.empty()) it.body_hash = core::Sha256(body);
    return it;
  }
  Status Commit(std::vector<IngestItem>& items, int64_t now) {
    std::vector<IngestItem*> ptrs;
    for (auto& i : items) ptrs.push_back(&i);
    return store_->CommitIngest(ptrs, now, kDay, nullptr);
  }

  std::filesystem::path dir_;
  std::unique_ptr<Store> store_;
  core::UlidGenerator gen_{1};
};

TEST_F(SqliteStoreTest, IngestThenReadBackScopedToTenant) {
  std::vector<IngestItem> items{Item("a", "t.one", 1000), Item("b", "t.two", 1000)};
  ASSERT_TRUE(Commit(items, 1000).ok());
  EXPECT_EQ(items[0].outcome, IngestItem::Outcome::kCreated);
  auto e = store_->GetEvent("a", items[0].event.id);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->data, R"({"n":1.50})");
  EXPECT_TRUE(store_->GetEvent("b", items[0].event.id).status().IsNotFound());
}

TEST_F(SqliteStoreTest, SurvivesReopen) {
  std::vector<IngestItem> items{Item("a", "t", 1000)};
  ASSERT_TRUE(Commit(items, 1000).ok());
  Open();
  EXPECT_TRUE(store_->GetEvent("a", items[0].event.id).ok());
}

TEST_F(SqliteStoreTest, IdempotencyInsideOneBatchAndAcross) {
  std::vector<IngestItem> items{
      Item("a", "t", 1000, "k1", "body"), Item("a", "t", 1000, "k1", "body"),
      Item("a", "t", 1000, "k1", "other"), Item("b", "t", 1000, "k1", "x")};
  ASSERT_TRUE(Commit(items, 1000).ok());
  EXPECT_EQ(items[0].outcome, IngestItem::Outcome::kCreated);
  EXPECT_EQ(items[1].outcome, IngestItem::Outcome::kDuplicate);
  EXPECT_EQ(items[1].event.id, items[0].event.id);
  EXPECT_EQ(items[2].outcome, IngestItem::Outcome::kConflict);
  EXPECT_EQ(items[3].outcome, IngestItem::Outcome::kCreated);  // other tenant, own namespace
  std::vector<IngestItem> later{Item("a", "t", 1000 + kDay, "k1", "other")};
  ASSERT_TRUE(Commit(later, 1000 + kDay).ok());
  EXPECT_EQ(later[0].outcome, IngestItem::Outcome::kCreated);  // window passed
  auto list = store_->ListEvents("a", "", {});
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->events.size(), 2u);
}

TEST_F(SqliteStoreTest, PaginationAndTypeFilter) {
  std::vector<IngestItem> items;
  for (int i = 0; i < 25; ++i) items.push_back(Item("a", i % 2 ? "odd" : "even", 1000 + i));
  ASSERT_TRUE(Commit(items, 2000).ok());
  ListOptions o;
  o.limit = 10;
  std::vector<std::string> seen;
  for (;;) {
    auto r = store_->ListEvents("a", "", o);
    ASSERT_TRUE(r.ok());
    for (auto& e : r->events) seen.push_back(e.id);
    EXPECT_EQ(r->more, seen.size() < 25u);
    if (!r->more) break;
    o.after_id = r->resume_after;
  }
  ASSERT_EQ(seen.size(), 25u);
  for (size_t i = 0; i < seen.size(); ++i) EXPECT_EQ(seen[i], items[i].event.id);
  auto odd = store_->ListEvents("a", "odd", {});
  ASSERT_TRUE(odd.ok());
  EXPECT_EQ(odd->events.size(), 12u);
  EXPECT_FALSE(odd->more);
  for (auto& e : odd->events) EXPECT_EQ(e.type, "odd");
}

TEST_F(SqliteStoreTest, TypeFilterScanIsBoundedAndResumable) {
  std::vector<IngestItem> items;
  for (int i = 0; i < kTypeFilterScanBudget + 5; ++i) items.push_back(Item("a", "common", 1000));
  items.push_back(Item("a", "rare", 1000));
  ASSERT_TRUE(Commit(items, 2000).ok());
  ListOptions o;
  auto first = store_->ListEvents("a", "rare", o);
  ASSERT_TRUE(first.ok());
  EXPECT_TRUE(first->events.empty());  // budget spent before reaching it
  ASSERT_TRUE(first->more);
  o.after_id = first->resume_after;
  auto second = store_->ListEvents("a", "rare", o);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->events.size(), 1u);
  EXPECT_EQ(second->events[0].id, items.back().event.id);
  EXPECT_FALSE(second->more);
}

TEST_F(SqliteStoreTest, PurgeRemovesOnlyExpired) {
  std::vector<IngestItem> items;
  for (int i = 0; i < 2500; ++i) items.push_back(Item("a", "t", 1000));
  items.push_back(Item("a", "t", 9000));
  ASSERT_TRUE(Commit(items, 9000).ok());
  auto r = store_->Purge(5000, 0, 9000, {});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events, 2500);
  EXPECT_TRUE(r->complete);
  auto list = store_->ListEvents("a", "", {});
  ASSERT_EQ(list->events.size(), 1u);
  EXPECT_EQ(list->events.front().received_at_ms, 9000);
}

TEST_F(SqliteStoreTest, KeysCreateFindRevoke) {
  ApiKey k;
  k.id = gen_.Next("key_", 1);
  k.tenant = "acme";
  k.scopes = kScopeIngest;
  k.hash = core::Sha256("trg_x");
  k.created_at_ms = 5;
  ASSERT_TRUE(store_->CreateKey(k).ok());
  auto f = store_->FindKeyByHash(k.hash);
  ASSERT_TRUE(f.ok());
  EXPECT_EQ(f->tenant, "acme");
  EXPECT_EQ(f->scopes, static_cast<uint32_t>(kScopeIngest));
  EXPECT_TRUE(store_->RevokeKey("other", k.id, 10).status().IsNotFound());
  auto rv = store_->RevokeKey("acme", k.id, 10);
  ASSERT_TRUE(rv.ok());
  EXPECT_EQ(rv.value(), k.hash);
  EXPECT_TRUE(store_->RevokeKey("acme", k.id, 11).status().IsNotFound());
  auto since = store_->RevokedKeyHashesSince(9, 20);
  ASSERT_TRUE(since.ok());
  ASSERT_EQ(since->size(), 1u);
  EXPECT_TRUE(store_->FindKeyByHash(k.hash)->revoked_at_ms.has_value());
  EXPECT_TRUE(store_->FindKeyByHash(core::Sha256("nope")).status().IsNotFound());
}

}  // namespace
}  // namespace triggers::store
