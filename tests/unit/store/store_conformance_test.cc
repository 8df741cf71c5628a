// The Store contract (include/triggers/store.h), one suite run against every
// backend: SQLite on a fresh database file in a temporary directory, and
// PostgreSQL on a fresh database of the private test server whose URL is in
// $TRIGGERS_TEST_PG_DIR/url (`make test` starts that server and sets the
// variable; without it the Postgres instances are skipped).
//
// Times are the callers' `now_ms` values, never the wall clock: every test
// drives the store's clock by hand.
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/crypto.h"
#include "core/ids.h"
#include "store/migrations.h"
#include "triggers/store.h"

namespace triggers::store {
namespace {

constexpr int64_t kDay = 24LL * 3600 * 1000;
constexpr int64_t kLease = 30'000;                 // the lease / visibility timeout of the tests
constexpr int64_t kFarFuture = 4'000'000'000'000;  // year 2096
const std::string kTenant = "acme";
const std::string kData = R"({"n":1.50})";

enum class Backend { kSqlite, kPostgres };

Status ToStatus(const Status& s) { return s; }
template <typename T>
Status ToStatus(const Result<T>& r) {
  return r.status();
}

// For a Status or a Result: fails the test (and returns) unless it is Ok.
#define ASSERT_OK(expr)                                                                  \
  do {                                                                                   \
    const Status assert_ok_status_ = ToStatus(expr);                                     \
    ASSERT_TRUE(assert_ok_status_.ok()) << #expr << ": " << assert_ok_status_.message(); \
  } while (0)
#define EXPECT_OK(expr)                                                                  \
  do {                                                                                   \
    const Status expect_ok_status_ = ToStatus(expr);                                     \
    EXPECT_TRUE(expect_ok_status_.ok()) << #expr << ": " << expect_ok_status_.message(); \
  } while (0)

std::vector<std::string> Sorted(std::vector<std::string> v) {
  std::sort(v.begin(), v.end());
  return v;
}

Store::DeliveryFilter Filter(const std::string& subscription_id, const std::string& event_id,
                             const std::string& status = "") {
  Store::DeliveryFilter f;
  f.subscription_id = subscription_id;
  f.event_id = event_id;
  f.status = status;
  return f;
}
Store::DeliveryFilter BySubscription(const std::string& id) { return Filter(id, ""); }
Store::DeliveryFilter ByEvent(const std::string& id) { return Filter("", id); }
Store::DeliveryFilter ByStatus(const std::string& status) { return Filter("", "", status); }

ListOptions Page(int limit, const std::string& after_id = "") {
  ListOptions o;
  o.after_id = after_id;
  o.limit = limit;
  return o;
}

using StateCounts = std::map<std::string, int64_t>;

// --- the PostgreSQL test server ------------------------------------------------

// The URL of the private test server, or "" when TRIGGERS_TEST_PG_DIR is unset.
// Fails the test when the variable is set but names no readable url file.
std::string PgServerUrl() {
  const char* dir = std::getenv("TRIGGERS_TEST_PG_DIR");
  if (dir == nullptr || *dir == '\0') return "";
  std::ifstream in(std::filesystem::path(dir) / "url");
  std::string url;
  std::getline(in, url);
  while (!url.empty() && std::isspace(static_cast<unsigned char>(url.back()))) url.pop_back();
  EXPECT_FALSE(url.empty()) << "no URL in " << dir << "/url";
  return url;
}

// `url` (a postgresql:// URL or a conninfo string) as a keyword=value
// conninfo string naming the database `dbname`; "" (and *err) when malformed.
std::string ConninfoWithDatabase(const std::string& url, const std::string& dbname,
                                 std::string* err) {
  char* msg = nullptr;
  PQconninfoOption* opts = PQconninfoParse(url.c_str(), &msg);
  if (opts == nullptr) {
    *err = msg ? msg : "cannot parse the PostgreSQL URL";
    if (msg) PQfreemem(msg);
    return "";
  }
  std::string out;
  for (PQconninfoOption* o = opts; o->keyword != nullptr; ++o) {
    if (o->val == nullptr || *o->val == '\0' || std::string_view(o->keyword) == "dbname") continue;
    out += o->keyword;
    out += "='";
    for (const char* c = o->val; *c; ++c) {
      if (*c == '\\' || *c == '\'') out += '\\';
      out += *c;
    }
    out += "' ";
  }
  PQconninfoFree(opts);
  return out + "dbname='" + dbname + "'";
}

void IgnoreNotice(void*, const char*) {}

// Runs one statement on `conn`; "" when it succeeded, else the error.
std::string PgExec(PGconn* conn, const std::string& sql) {
  PGresult* r = PQexec(conn, sql.c_str());
  const ExecStatusType st = PQresultStatus(r);
  std::string err;
  if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
    err = sql + ": " + PQerrorMessage(conn);
  }
  PQclear(r);
  return err;
}

// --- the fixture ----------------------------------------------------------------------

class StoreConformance : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override {
    if (GetParam() == Backend::kPostgres) {
      pg_url_ = PgServerUrl();
      ASSERT_FALSE(HasFailure());
      if (pg_url_.empty()) {
        GTEST_SKIP() << "the PostgreSQL backend is not tested: TRIGGERS_TEST_PG_DIR is unset. "
                        "`make test` starts a private server and sets it; by hand, point it at a "
                        "directory whose file `url` holds postgresql://USER@HOST:PORT/postgres";
      }
      admin_ = PQconnectdb(pg_url_.c_str());
      ASSERT_EQ(PQstatus(admin_), CONNECTION_OK) << "cannot reach the PostgreSQL test server at "
                                                 << pg_url_ << ": " << PQerrorMessage(admin_);
      // Quiet: DROP DATABASE IF EXISTS reports "does not exist, skipping" as a notice.
      PQsetNoticeProcessor(admin_, IgnoreNotice, nullptr);
    } else {
      std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
      std::replace(name.begin(), name.end(), '/', '_');  // "Test/Sqlite"
      dir_ = std::filesystem::temp_directory_path() /
             ("triggers-conformance-" + std::to_string(::getpid()) + "-" + name);
      std::filesystem::remove_all(dir_);
      std::filesystem::create_directories(dir_);
    }
    ASSERT_NO_FATAL_FAILURE(target_ = NewDatabase());
    ASSERT_NO_FATAL_FAILURE(Open());
  }

  void TearDown() override {
    store_.reset();
    if (GetParam() == Backend::kPostgres) {
      if (admin_ != nullptr) {
        for (const auto& name : pg_databases_) {
          EXPECT_EQ(PgExec(admin_, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)"), "");
        }
        PQfinish(admin_);
        admin_ = nullptr;
      }
    } else if (!dir_.empty()) {
      std::filesystem::remove_all(dir_);
    }
  }

  // A new empty database: a file path (SQLite) or a conninfo string (PostgreSQL).
  std::string NewDatabase() {
    static std::atomic<int> counter{0};
    const int n = counter++;
    if (GetParam() == Backend::kSqlite) {
      return (std::filesystem::path(dir_) / ("t" + std::to_string(n) + ".db")).string();
    }
    const std::string name = "t_" + std::to_string(::getpid()) + "_" + std::to_string(n);
    std::string err = PgExec(admin_, "DROP DATABASE IF EXISTS " + name + " WITH (FORCE)");
    if (err.empty()) err = PgExec(admin_, "CREATE DATABASE " + name);
    EXPECT_EQ(err, "");
    pg_databases_.push_back(name);
    std::string conninfo = ConninfoWithDatabase(pg_url_, name, &err);
    EXPECT_NE(conninfo, "") << err;
    return conninfo;
  }

  Result<std::unique_ptr<Store>> OpenAt(const std::string& target) {
    if (GetParam() == Backend::kSqlite) {
      SqliteOptions o;
      o.path = target;
      return OpenSqlite(o);
    }
    PostgresOptions o;
    o.url = target;
    o.database_clock = false;  // the tests' injected times are the clock
    return OpenPostgres(o);
  }

  // (Re)opens the store on the test's database: a reopen is a restart.
  void Open() {
    store_.reset();
    auto r = OpenAt(target_);
    ASSERT_OK(r);
    store_ = std::move(r.value());
  }

  // --- subscriptions ---
  Subscription NewSub(const std::string& tenant, int64_t now, const std::string& kind = "webhook",
                      bool ordered = false) {
    Subscription s;
    s.id = gen_.Next("sub_", now);
    s.tenant = tenant;
    s.kind = kind;
    if (kind == "webhook") s.url = "https://hooks.example.com/in/" + s.id;
    s.event_types_json = R"(["*"])";
    s.secret = "whsec_" + core::Base64(core::RandomBytes(24));
    s.ordered = ordered;
    // The API's largest: PostgreSQL leases within it (LimitsHoldAcrossNodes
    // tests that); the other tests lease more at once.
    s.max_in_flight = 1000;
    s.created_at_ms = now;
    s.updated_at_ms = now;
    return s;
  }
  // Stores `u` over the row with its id (ModifySubscription writing every field).
  Status Update(const Subscription& u) {
    int64_t gen = 0;
    auto r = store_->ModifySubscription(
        u.tenant, u.id,
        [&](Subscription* row) {
          *row = u;
          return Status::Ok();
        },
        &gen);
    return r.ok() ? Status::Ok() : r.status();
  }
  int64_t GenerationOf(const std::string& tenant) {
    auto gens = store_->SubscriptionGenerations();
    EXPECT_OK(gens);
    if (!gens.ok()) return -1;
    for (const auto& [t, g] : gens.value()) {
      if (t == tenant) return g;
    }
    return 0;
  }
  Subscription AddSub(const std::string& kind = "webhook", bool ordered = false,
                      const std::string& tenant = kTenant) {
    Subscription s = NewSub(tenant, 500, kind, ordered);
    EXPECT_OK(store_->CreateSubscription(s));
    return s;
  }

  // --- ingest ---
  IngestItem Item(const std::string& tenant, const std::string& type, int64_t now) {
    IngestItem it;
    it.event.id = gen_.Next("evt_", now);
    it.event.tenant = tenant;
    it.event.type = type;
    it.event.data = kData;
    it.event.received_at_ms = now;
    return it;
  }
  // Routes the item to `s`, with a new delivery id (as the ingest writer does).
  void Route(IngestItem& it, const Subscription& s, int64_t now) {
    it.subscription_ids.push_back(s.id);
    it.subscription_ordered.push_back(s.ordered ? 1 : 0);
    it.delivery_ids.push_back(gen_.Next("dlv_", now));
  }
  static void Idem(IngestItem& it, const std::string& key, const std::string& body) {
    it.idempotency_key = key;
    it.body_hash = core::Sha256(body);
  }
  Status Commit(std::vector<IngestItem>& items, int64_t now, int64_t window_ms = kDay) {
    std::vector<IngestItem*> ptrs;
    for (auto& i : items) ptrs.push_back(&i);
    return store_->CommitIngest(ptrs, now, window_ms, nullptr);
  }

  struct Ingested {
    std::string event_id;
    std::vector<std::string> deliveries;  // one per subscription, in the order given
  };
  // One event received at `now`, routed to `subs` (tenant: the first one's), committed alone.
  Ingested Ingest(const std::vector<const Subscription*>& subs, int64_t now,
                  std::optional<std::string> ordering_key = std::nullopt) {
    std::vector<IngestItem> items{
        Item(subs.empty() ? kTenant : subs.front()->tenant, "order.created", now)};
    items[0].event.ordering_key = std::move(ordering_key);
    for (const Subscription* s : subs) Route(items[0], *s, now);
    EXPECT_OK(Commit(items, now));
    EXPECT_EQ(items[0].outcome, IngestItem::Outcome::kCreated);
    return {items[0].event.id, items[0].delivery_ids};
  }

  // --- delivery work ---
  std::vector<Store::Leased> Lease(const Subscription& s, int64_t now, int max = 100,
                                   int64_t lease = kLease) {
    auto r = store_->LeaseDue(s.id, now, max, now + lease);
    EXPECT_OK(r);
    if (!r.ok()) return {};
    for (const auto& l : r.value()) tokens_[l.delivery.id] = l.receipt;
    return std::move(r.value());
  }
  // The leases this test took last, for ReleaseLeases.
  std::vector<Store::LeaseRef> Refs(const std::vector<std::string>& ids) {
    std::vector<Store::LeaseRef> out;
    for (const auto& id : ids) out.push_back({id, tokens_[id]});
    return out;
  }
  std::map<std::string, std::string> tokens_;  // delivery id -> its latest lease token
  std::vector<Store::Leased> Recv(const Subscription& s, int64_t now, int max = 10) {
    auto r = store_->Receive(s.id, now, max, now + kLease, s.max_receives);
    EXPECT_OK(r);
    return r.ok() ? std::move(r.value()) : std::vector<Store::Leased>{};
  }
  static std::vector<std::string> DeliveryIds(const std::vector<Store::Leased>& v) {
    std::vector<std::string> out;
    for (const auto& l : v) out.push_back(l.delivery.id);
    return out;
  }
  static std::vector<std::string> EventIds(const std::vector<Store::Leased>& v) {
    std::vector<std::string> out;
    for (const auto& l : v) out.push_back(l.event.id);
    return out;
  }
  std::vector<std::string> LeaseIds(const Subscription& s, int64_t now, int max = 100) {
    return DeliveryIds(Lease(s, now, max));
  }
  // The same through another store on the same database (a second node).
  static std::vector<std::string> LeaseIdsOn(Store& node, const Subscription& s, int64_t now) {
    auto r = node.LeaseDue(s.id, now, 10, now + kLease);
    EXPECT_OK(r);
    return r.ok() ? DeliveryIds(*r) : std::vector<std::string>{};
  }

  // One attempt outcome as the dispatcher reports it.
  static Store::AttemptResult Outcome(const std::string& id, const std::string& status, int64_t now,
                                      std::optional<int> code, int64_t next = 0) {
    Store::AttemptResult r;
    r.delivery_id = id;
    r.status = status;
    r.next_attempt_at_ms = next;
    r.attempt.at_ms = now - 20;
    r.attempt.latency_ms = 20;
    r.attempt.status_code = code;
    if (status != kDeliverySucceeded) {
      r.attempt.error = code ? "HTTP " + std::to_string(*code) : "timeout";
    }
    r.attempt.response_snippet = code ? "response " + std::to_string(*code) : "";
    return r;
  }
  void Succeed(const std::string& id, int64_t now) {
    EXPECT_OK(store_->RecordAttempts({Outcome(id, kDeliverySucceeded, now, 200)}, now));
  }
  void Fail(const std::string& id, int64_t now, int64_t next) {
    EXPECT_OK(store_->RecordAttempts({Outcome(id, kDeliveryRetrying, now, 503, next)}, now));
  }
  void Kill(const std::string& id, int64_t now) {
    EXPECT_OK(store_->RecordAttempts({Outcome(id, kDeliveryDead, now, 500)}, now));
  }

  std::vector<std::string> Settle(const Subscription& s, const std::vector<std::string>& receipts,
                                  bool ack, int64_t visible_at, int64_t now) {
    auto r = store_->Settle(s.id, receipts, ack, visible_at, now);
    EXPECT_OK(r);
    std::vector<std::string> out;
    if (!r.ok()) return out;
    EXPECT_EQ(r->size(), receipts.size());
    for (size_t i = 0; i < r->size() && i < receipts.size(); ++i) {
      EXPECT_EQ((*r)[i].receipt, receipts[i]);  // answers in the order asked
      out.push_back((*r)[i].status);
    }
    return out;
  }

  // The delivery's status, or "<message>" when it cannot be read.
  std::string StateOf(const std::string& delivery_id, const std::string& tenant = kTenant) {
    auto d = store_->GetDelivery(tenant, delivery_id);
    return d.ok() ? d->status : "<" + d.status().message() + ">";
  }
  Delivery Get(const std::string& delivery_id) {
    auto d = store_->GetDelivery(kTenant, delivery_id);
    EXPECT_OK(d);
    return d.ok() ? d.value() : Delivery{};
  }

  std::filesystem::path dir_;
  std::string pg_url_;
  PGconn* admin_ = nullptr;
  std::vector<std::string> pg_databases_;
  std::string target_;
  std::unique_ptr<Store> store_;
  core::UlidGenerator gen_{7};
};

void ExpectSameSubscription(const Subscription& got, const Subscription& want) {
  EXPECT_EQ(got.id, want.id);
  EXPECT_EQ(got.tenant, want.tenant);
  EXPECT_EQ(got.kind, want.kind);
  EXPECT_EQ(got.url, want.url);
  EXPECT_EQ(got.event_types_json, want.event_types_json);
  EXPECT_EQ(got.filter_json, want.filter_json);
  EXPECT_EQ(got.max_in_flight, want.max_in_flight);
  EXPECT_DOUBLE_EQ(got.rate_limit_per_s, want.rate_limit_per_s);
  EXPECT_EQ(got.ordered, want.ordered);
  EXPECT_EQ(got.description, want.description);
  EXPECT_EQ(got.enabled, want.enabled);
  EXPECT_EQ(got.secret, want.secret);
  EXPECT_EQ(got.previous_secret, want.previous_secret);
  EXPECT_EQ(got.previous_secret_expires_at_ms, want.previous_secret_expires_at_ms);
  EXPECT_EQ(got.max_receives, want.max_receives);
  EXPECT_EQ(got.created_at_ms, want.created_at_ms);
  EXPECT_EQ(got.updated_at_ms, want.updated_at_ms);
}

// --- ingest ----------------------------------------------------------------------------

TEST_P(StoreConformance, CommitIngestWritesEventsAndTheirDeliveriesTogether) {
  Subscription a = AddSub(), b = AddSub();
  std::vector<IngestItem> items{Item(kTenant, "order.created", 1000),
                                Item(kTenant, "order.paid", 1000),
                                Item(kTenant, "order.note", 1000)};
  items[0].event.source = "shop";
  items[0].event.subject = "order/42";
  items[0].event.ordering_key = "customer-7";
  Route(items[0], a, 1000);
  Route(items[0], b, 1000);
  Route(items[1], a, 1000);
  const std::vector<IngestItem> sent = items;
  ASSERT_OK(Commit(items, 1000));
  for (size_t i = 0; i < items.size(); ++i) {
    EXPECT_EQ(items[i].outcome, IngestItem::Outcome::kCreated);
    EXPECT_EQ(items[i].event.id, sent[i].event.id);  // the writer's ids are kept
    EXPECT_EQ(items[i].event.received_at_ms, 1000);
  }

  auto e = store_->GetEvent(kTenant, items[0].event.id);
  ASSERT_OK(e);
  EXPECT_EQ(e->id, items[0].event.id);
  EXPECT_EQ(e->tenant, kTenant);
  EXPECT_EQ(e->type, "order.created");
  EXPECT_EQ(e->source, "shop");
  EXPECT_EQ(e->subject, "order/42");
  EXPECT_EQ(e->ordering_key, "customer-7");
  EXPECT_EQ(e->data, kData);
  EXPECT_EQ(e->received_at_ms, 1000);
  auto e1 = store_->GetEvent(kTenant, items[1].event.id);
  ASSERT_OK(e1);
  EXPECT_EQ(e1->type, "order.paid");
  EXPECT_EQ(e1->source, std::nullopt);
  EXPECT_EQ(e1->subject, std::nullopt);
  EXPECT_EQ(e1->ordering_key, std::nullopt);

  // Every delivery row, in id (= creation) order.
  auto all = store_->ListDeliveries(kTenant, {}, {});
  ASSERT_OK(all);
  const std::vector<std::string> want{items[0].delivery_ids[0], items[0].delivery_ids[1],
                                      items[1].delivery_ids[0]};
  ASSERT_EQ(all->size(), 3u);
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ((*all)[i].id, want[i]);
  const Delivery& d = (*all)[0];
  EXPECT_EQ(d.tenant, kTenant);
  EXPECT_EQ(d.event_id, items[0].event.id);
  EXPECT_EQ(d.subscription_id, a.id);
  EXPECT_EQ(d.status, kDeliveryPending);
  EXPECT_EQ(d.attempts, 0);
  EXPECT_EQ(d.next_attempt_at_ms, 1000);  // due at once
  EXPECT_EQ(d.last_error, std::nullopt);
  EXPECT_EQ(d.last_status_code, std::nullopt);
  EXPECT_EQ(d.created_at_ms, 1000);
  EXPECT_EQ((*all)[1].subscription_id, b.id);
  EXPECT_EQ((*all)[2].event_id, items[1].event.id);

  auto by_event = store_->ListDeliveries(kTenant, ByEvent(items[0].event.id), {});
  ASSERT_OK(by_event);
  ASSERT_EQ(by_event->size(), 2u);
  EXPECT_EQ(Sorted({(*by_event)[0].subscription_id, (*by_event)[1].subscription_id}),
            Sorted({a.id, b.id}));
  auto by_sub = store_->ListDeliveries(kTenant, BySubscription(a.id), {});
  ASSERT_OK(by_sub);
  ASSERT_EQ(by_sub->size(), 2u);
  EXPECT_EQ((*by_sub)[0].id, items[0].delivery_ids[0]);
  EXPECT_EQ((*by_sub)[1].id, items[1].delivery_ids[0]);
  auto both = store_->ListDeliveries(kTenant, Filter(b.id, items[0].event.id), {});
  ASSERT_OK(both);
  ASSERT_EQ(both->size(), 1u);
  EXPECT_EQ((*both)[0].id, items[0].delivery_ids[1]);
  auto pending = store_->ListDeliveries(kTenant, ByStatus(kDeliveryPending), {});
  ASSERT_OK(pending);
  EXPECT_EQ(pending->size(), 3u);
  auto dead = store_->ListDeliveries(kTenant, ByStatus(kDeliveryDead), {});
  ASSERT_OK(dead);
  EXPECT_TRUE(dead->empty());
  auto none = store_->ListDeliveries(kTenant, ByEvent(items[2].event.id), {});
  ASSERT_OK(none);
  EXPECT_TRUE(none->empty());

  // Pagination by id.
  auto p1 = store_->ListDeliveries(kTenant, {}, Page(2));
  ASSERT_OK(p1);
  ASSERT_EQ(p1->size(), 2u);
  auto p2 = store_->ListDeliveries(kTenant, {}, Page(2, p1->back().id));
  ASSERT_OK(p2);
  ASSERT_EQ(p2->size(), 1u);
  EXPECT_EQ((*p2)[0].id, want[2]);

  auto g = store_->GetDelivery(kTenant, items[1].delivery_ids[0]);
  ASSERT_OK(g);
  EXPECT_EQ(g->subscription_id, a.id);
  EXPECT_EQ(g->event_id, items[1].event.id);
  EXPECT_EQ(g->status, kDeliveryPending);
  EXPECT_TRUE(g->attempt_log.empty());
}

// A commit of many deliveries (the SQLite store writes them with multi-row
// statements of 64, 8 and 1 rows): every row as given, in commit order, and
// an ordered subscription's keys (none and "" share one sequence) intact.
TEST_P(StoreConformance, ManyDeliveriesInOneCommitKeepTheirFieldsAndOrder) {
  Subscription o = AddSub("webhook", true), u = AddSub();
  const int n = 75;  // 150 rows: 2 x 64 + 2 x 8 + 6 x 1
  std::vector<IngestItem> items;
  for (int i = 0; i < n; ++i) {
    items.push_back(Item(kTenant, "order.created", 1000));
    if (i % 3 == 0) items.back().event.ordering_key = "A";
    if (i % 3 == 1) items.back().event.ordering_key = "";
    Route(items.back(), o, 1000);
    Route(items.back(), u, 1000);
  }
  ASSERT_OK(Commit(items, 1000));
  auto all = store_->ListDeliveries(kTenant, {}, Page(1000));
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), static_cast<size_t>(2 * n));
  for (int i = 0; i < n; ++i) {
    for (int k = 0; k < 2; ++k) {
      const Delivery& d = (*all)[static_cast<size_t>(2 * i + k)];
      EXPECT_EQ(d.id, items[static_cast<size_t>(i)].delivery_ids[static_cast<size_t>(k)]);
      EXPECT_EQ(d.event_id, items[static_cast<size_t>(i)].event.id);
      EXPECT_EQ(d.subscription_id, k == 0 ? o.id : u.id);
      EXPECT_EQ(d.status, kDeliveryPending);
      EXPECT_EQ(d.next_attempt_at_ms, 1000);
      EXPECT_EQ(d.created_at_ms, 1000);
    }
  }
  std::vector<std::string> every_u;
  for (const auto& it : items) every_u.push_back(it.delivery_ids[1]);
  EXPECT_EQ(LeaseIds(u, 2000, 1000), every_u);
  // Key "A" and the shared no-key sequence: one head each, the first of each.
  EXPECT_EQ(LeaseIds(o, 2000),
            (std::vector<std::string>{items[0].delivery_ids[0], items[1].delivery_ids[0]}));
  Succeed(items[0].delivery_ids[0], 2100);
  Succeed(items[1].delivery_ids[0], 2100);
  EXPECT_EQ(LeaseIds(o, 2200),
            (std::vector<std::string>{items[2].delivery_ids[0], items[3].delivery_ids[0]}));
}

TEST_P(StoreConformance, AFailedCommitLeavesNothingOfTheBatch) {
  Subscription s = AddSub();
  std::vector<IngestItem> items{Item(kTenant, "t", 1000), Item(kTenant, "t", 1000)};
  Idem(items[0], "key-1", "body");
  Route(items[0], s, 1000);
  items[1].event.id = items[0].event.id;  // the same event id twice: the second insert fails
  EXPECT_FALSE(Commit(items, 1000).ok());
  EXPECT_TRUE(store_->GetEvent(kTenant, items[0].event.id).status().IsNotFound());
  auto events = store_->ListEvents(kTenant, "", {});
  ASSERT_OK(events);
  EXPECT_TRUE(events->events.empty());
  auto deliveries = store_->ListDeliveries(kTenant, {}, {});
  ASSERT_OK(deliveries);
  EXPECT_TRUE(deliveries->empty());
  EXPECT_TRUE(store_->GetDelivery(kTenant, items[0].delivery_ids[0]).status().IsNotFound());

  // The store stays usable, and the idempotency key was not taken.
  std::vector<IngestItem> again{Item(kTenant, "t", 1001)};
  Idem(again[0], "key-1", "body");
  ASSERT_OK(Commit(again, 1001));
  EXPECT_EQ(again[0].outcome, IngestItem::Outcome::kCreated);
  EXPECT_OK(store_->GetEvent(kTenant, again[0].event.id));
}

TEST_P(StoreConformance, IdempotentRetryReturnsTheFirstEvent) {
  Subscription s = AddSub();
  std::vector<IngestItem> first{Item(kTenant, "order.created", 1000)};
  Idem(first[0], "key-1", "body-1");
  Route(first[0], s, 1000);
  ASSERT_OK(Commit(first, 1000));
  ASSERT_EQ(first[0].outcome, IngestItem::Outcome::kCreated);

  std::vector<IngestItem> retry{Item(kTenant, "order.updated", 5000), Item(kTenant, "t", 5000),
                                Item("other", "t", 5000)};
  const std::string retry_id = retry[0].event.id;
  Idem(retry[0], "key-1", "body-1");
  Route(retry[0], s, 5000);
  Idem(retry[1], "key-1", "body-2");
  Idem(retry[2], "key-1", "body-2");  // another tenant: its own keys
  ASSERT_OK(Commit(retry, 5000));
  EXPECT_EQ(retry[0].outcome, IngestItem::Outcome::kDuplicate);
  EXPECT_EQ(retry[0].event.id, first[0].event.id);
  EXPECT_NE(retry[0].event.id, retry_id);
  EXPECT_EQ(retry[0].event.type, "order.created");
  EXPECT_EQ(retry[0].event.received_at_ms, 1000);
  EXPECT_EQ(retry[1].outcome, IngestItem::Outcome::kConflict);
  EXPECT_EQ(retry[2].outcome, IngestItem::Outcome::kCreated);

  auto list = store_->ListEvents(kTenant, "", {});
  ASSERT_OK(list);
  ASSERT_EQ(list->events.size(), 1u);
  EXPECT_EQ(list->events[0].id, first[0].event.id);
  EXPECT_TRUE(store_->GetEvent(kTenant, retry_id).status().IsNotFound());
  auto deliveries = store_->ListDeliveries(kTenant, {}, {});
  ASSERT_OK(deliveries);
  ASSERT_EQ(deliveries->size(), 1u);  // a duplicate creates no delivery
  EXPECT_EQ((*deliveries)[0].id, first[0].delivery_ids[0]);
  EXPECT_OK(store_->GetEvent("other", retry[2].event.id));
}

TEST_P(StoreConformance, SameKeyTwiceInOneBatchFirstWins) {
  Subscription s = AddSub();
  std::vector<IngestItem> items{Item(kTenant, "a", 1000), Item(kTenant, "b", 1000),
                                Item(kTenant, "c", 1000)};
  Idem(items[0], "k", "x");
  Idem(items[1], "k", "x");
  Idem(items[2], "k", "y");
  for (auto& it : items) Route(it, s, 1000);
  ASSERT_OK(Commit(items, 1000));
  EXPECT_EQ(items[0].outcome, IngestItem::Outcome::kCreated);
  EXPECT_EQ(items[1].outcome, IngestItem::Outcome::kDuplicate);
  EXPECT_EQ(items[1].event.id, items[0].event.id);
  EXPECT_EQ(items[1].event.type, "a");
  EXPECT_EQ(items[2].outcome, IngestItem::Outcome::kConflict);
  auto list = store_->ListEvents(kTenant, "", {});
  ASSERT_OK(list);
  ASSERT_EQ(list->events.size(), 1u);
  EXPECT_EQ(list->events[0].type, "a");
  auto deliveries = store_->ListDeliveries(kTenant, {}, {});
  ASSERT_OK(deliveries);
  ASSERT_EQ(deliveries->size(), 1u);
  EXPECT_EQ((*deliveries)[0].id, items[0].delivery_ids[0]);
}

TEST_P(StoreConformance, IdempotencyWindowExpires) {
  std::vector<IngestItem> first{Item(kTenant, "t", 1000)};
  Idem(first[0], "k", "x");
  ASSERT_OK(Commit(first, 1000));

  std::vector<IngestItem> inside{Item(kTenant, "t", 1000 + kDay - 1)};
  Idem(inside[0], "k", "x");
  ASSERT_OK(Commit(inside, 1000 + kDay - 1));
  EXPECT_EQ(inside[0].outcome, IngestItem::Outcome::kDuplicate);
  EXPECT_EQ(inside[0].event.id, first[0].event.id);

  // Past the window the key is free: even another body makes a new event...
  std::vector<IngestItem> after{Item(kTenant, "t", 1000 + kDay + 1)};
  const std::string new_id = after[0].event.id;
  Idem(after[0], "k", "y");
  ASSERT_OK(Commit(after, 1000 + kDay + 1));
  EXPECT_EQ(after[0].outcome, IngestItem::Outcome::kCreated);
  EXPECT_EQ(after[0].event.id, new_id);

  // ...and the key now names that new event.
  std::vector<IngestItem> again{Item(kTenant, "t", 1000 + kDay + 2)};
  Idem(again[0], "k", "y");
  ASSERT_OK(Commit(again, 1000 + kDay + 2));
  EXPECT_EQ(again[0].outcome, IngestItem::Outcome::kDuplicate);
  EXPECT_EQ(again[0].event.id, new_id);

  auto list = store_->ListEvents(kTenant, "", {});
  ASSERT_OK(list);
  ASSERT_EQ(list->events.size(), 2u);
  EXPECT_EQ(list->events[0].id, first[0].event.id);
  EXPECT_EQ(list->events[1].id, new_id);
}

TEST_P(StoreConformance, EventDataSurvivesByteForByte) {
  Subscription push = AddSub(), pull = AddSub("pull");
  const std::string odd =
      " {\"a\" :1.50,\n\t\"u\":\"\\u00e9 \xc3\xa9\",  \"n\":null ,\"z\":[ ] }\r\n";
  std::string big = "{\"blob\":\"";
  for (int i = 0; i < 20000; ++i) big += "\\\"x\\\\y'\xe2\x82\xac";  // quotes, backslashes, euro
  big += "\"}";
  std::vector<IngestItem> items{Item(kTenant, "t.odd", 1000), Item(kTenant, "t.big", 1000)};
  items[0].event.data = odd;
  items[0].event.source = "";  // empty, not null
  items[0].event.subject = "caf\xc3\xa9/\"1\"";
  items[0].event.ordering_key = "k\xc3\xa9y";
  items[1].event.data = big;
  for (auto& it : items) {
    Route(it, push, 1000);
    Route(it, pull, 1000);
  }
  ASSERT_OK(Commit(items, 1000));

  auto e = store_->GetEvent(kTenant, items[0].event.id);
  ASSERT_OK(e);
  EXPECT_EQ(e->data, odd);
  EXPECT_EQ(e->source, std::optional<std::string>(""));
  EXPECT_EQ(e->subject, "caf\xc3\xa9/\"1\"");
  EXPECT_EQ(e->ordering_key, "k\xc3\xa9y");
  auto e2 = store_->GetEvent(kTenant, items[1].event.id);
  ASSERT_OK(e2);
  EXPECT_EQ(e2->data.size(), big.size());
  EXPECT_TRUE(e2->data == big);
  EXPECT_EQ(e2->source, std::nullopt);

  auto list = store_->ListEvents(kTenant, "", {});
  ASSERT_OK(list);
  ASSERT_EQ(list->events.size(), 2u);
  EXPECT_EQ(list->events[0].data, odd);
  EXPECT_TRUE(list->events[1].data == big);

  auto leased = Lease(push, 2000);
  ASSERT_EQ(leased.size(), 2u);
  EXPECT_EQ(leased[0].event.data, odd);
  EXPECT_EQ(leased[0].event.ordering_key, "k\xc3\xa9y");
  EXPECT_TRUE(leased[1].event.data == big);
  auto received = Recv(pull, 2000);
  ASSERT_EQ(received.size(), 2u);
  EXPECT_EQ(received[0].event.data, odd);
  EXPECT_EQ(received[0].event.source, std::optional<std::string>(""));
  EXPECT_TRUE(received[1].event.data == big);
}

// --- events ----------------------------------------------------------------------------

TEST_P(StoreConformance, ListEventsPagesInIdOrderWithoutGapsOrDuplicates) {
  std::vector<std::string> want;
  for (int c = 0; c < 5; ++c) {  // five commits, another tenant's events interleaved
    std::vector<IngestItem> items;
    for (int i = 0; i < 55; ++i) {
      items.push_back(Item(i % 11 == 5 ? "other" : kTenant, "t", 1000 + c));
      if (items.back().event.tenant == kTenant) want.push_back(items.back().event.id);
    }
    ASSERT_OK(Commit(items, 1000 + c));
  }
  ASSERT_EQ(want.size(), 250u);

  ListOptions o;
  o.limit = 100;
  std::vector<std::string> seen;
  std::vector<size_t> sizes;
  for (int page = 0; page < 10; ++page) {
    auto r = store_->ListEvents(kTenant, "", o);
    ASSERT_OK(r);
    sizes.push_back(r->events.size());
    for (const auto& e : r->events) {
      EXPECT_EQ(e.tenant, kTenant);
      seen.push_back(e.id);
    }
    if (!r->more) break;
    ASSERT_FALSE(r->events.empty());
    EXPECT_EQ(r->resume_after, r->events.back().id);
    o.after_id = r->resume_after;
  }
  EXPECT_EQ(sizes, (std::vector<size_t>{100, 100, 50}));
  EXPECT_EQ(seen, want);  // every event once, ordered by id
  EXPECT_EQ(std::set<std::string>(seen.begin(), seen.end()).size(), 250u);

  // Starting after the last one: nothing more.
  o.after_id = want.back();
  auto end = store_->ListEvents(kTenant, "", o);
  ASSERT_OK(end);
  EXPECT_TRUE(end->events.empty());
  EXPECT_FALSE(end->more);
}

TEST_P(StoreConformance, ListEventsFiltersByExactType) {
  const char* const types[] = {"order.created", "order.paid", "order.created.v2"};
  std::vector<IngestItem> items;
  std::vector<std::string> created;
  for (int i = 0; i < 30; ++i) {
    items.push_back(Item(kTenant, types[i % 3], 1000));
    if (i % 3 == 0) created.push_back(items.back().event.id);
  }
  items.push_back(Item("other", "order.created", 1000));
  ASSERT_OK(Commit(items, 1000));

  ListOptions o;
  o.limit = 4;
  std::vector<std::string> seen;
  for (int page = 0; page < 20; ++page) {
    auto r = store_->ListEvents(kTenant, "order.created", o);
    ASSERT_OK(r);
    EXPECT_LE(r->events.size(), 4u);
    for (const auto& e : r->events) {
      EXPECT_EQ(e.type, "order.created");
      EXPECT_EQ(e.tenant, kTenant);
      seen.push_back(e.id);
    }
    if (!r->more) break;
    o.after_id = r->resume_after;
  }
  EXPECT_EQ(seen, created);

  auto prefix = store_->ListEvents(kTenant, "order", {});
  ASSERT_OK(prefix);
  EXPECT_TRUE(prefix->events.empty());  // a type, not a prefix or a pattern
  EXPECT_FALSE(prefix->more);
  auto paid = store_->ListEvents(kTenant, "order.paid", {});
  ASSERT_OK(paid);
  EXPECT_EQ(paid->events.size(), 10u);
  EXPECT_FALSE(paid->more);
}

TEST_P(StoreConformance, TypeFilterScanIsBoundedAndResumable) {
  std::vector<IngestItem> items;
  for (int i = 0; i < kTypeFilterScanBudget + 5; ++i)
    items.push_back(Item(kTenant, "common", 1000));
  items.push_back(Item(kTenant, "rare", 1000));
  ASSERT_OK(Commit(items, 1000));
  ListOptions o;
  auto first = store_->ListEvents(kTenant, "rare", o);
  ASSERT_OK(first);
  EXPECT_TRUE(first->events.empty());  // the budget is spent before reaching it
  ASSERT_TRUE(first->more);
  std::vector<std::string> found;
  o.after_id = first->resume_after;
  for (int page = 0; page < 5; ++page) {
    auto r = store_->ListEvents(kTenant, "rare", o);
    ASSERT_OK(r);
    for (const auto& e : r->events) found.push_back(e.id);
    if (!r->more) break;
    o.after_id = r->resume_after;
  }
  EXPECT_EQ(found, std::vector<std::string>{items.back().event.id});
}

TEST_P(StoreConformance, EveryReadAndWriteIsScopedToItsTenant) {
  Subscription s = AddSub();
  Ingested e = Ingest({&s}, 1000);
  ASSERT_EQ(Lease(s, 2000).size(), 1u);
  Kill(e.deliveries[0], 2000);  // dead: a retry by the owner would succeed
  const std::string other = "globex";

  EXPECT_TRUE(store_->GetEvent(other, e.event_id).status().IsNotFound());
  auto events = store_->ListEvents(other, "", {});
  ASSERT_OK(events);
  EXPECT_TRUE(events->events.empty());
  auto typed = store_->ListEvents(other, "order.created", {});
  ASSERT_OK(typed);
  EXPECT_TRUE(typed->events.empty());
  EXPECT_TRUE(store_->GetSubscription(other, s.id).status().IsNotFound());
  auto subs = store_->ListSubscriptions(other, {});
  ASSERT_OK(subs);
  EXPECT_TRUE(subs->empty());
  EXPECT_TRUE(store_->GetDelivery(other, e.deliveries[0]).status().IsNotFound());
  auto deliveries = store_->ListDeliveries(other, {}, {});
  ASSERT_OK(deliveries);
  EXPECT_TRUE(deliveries->empty());
  auto by_sub = store_->ListDeliveries(other, BySubscription(s.id), {});
  ASSERT_OK(by_sub);
  EXPECT_TRUE(by_sub->empty());
  auto by_event = store_->ListDeliveries(other, ByEvent(e.event_id), {});
  ASSERT_OK(by_event);
  EXPECT_TRUE(by_event->empty());
  EXPECT_TRUE(store_->RetryDelivery(other, e.deliveries[0], 3000).status().IsNotFound());
  auto requeued = store_->RequeueDead(other, s.id, e.event_id, e.event_id, 3000);
  ASSERT_OK(requeued);
  EXPECT_EQ(requeued.value(), 0);
  Subscription hijack = s;
  hijack.tenant = other;
  hijack.url = "https://evil.example.com/";
  EXPECT_TRUE(Update(hijack).IsNotFound());
  EXPECT_TRUE(store_->DeleteSubscription(other, s.id, 3000).status().IsNotFound());

  // Nothing of the owner's changed.
  auto mine = store_->GetSubscription(kTenant, s.id);
  ASSERT_OK(mine);
  EXPECT_EQ(mine->url, s.url);
  EXPECT_EQ(StateOf(e.deliveries[0]), kDeliveryDead);
  EXPECT_OK(store_->GetEvent(kTenant, e.event_id));
}

// --- subscriptions ---------------------------------------------------------------------

TEST_P(StoreConformance, SubscriptionRoundTripsUpdatesAndDeletes) {
  Subscription s = NewSub(kTenant, 1000, "webhook", true);
  s.event_types_json = R"([ "order.*" ,"invoice.paid"])";
  s.filter_json = R"({"data.total": {"gt" : 100}})";
  s.max_in_flight = 7;
  s.rate_limit_per_s = 2.5;
  s.description = "orders \xe2\x86\x92 ERP";
  s.enabled = false;
  s.previous_secret = "whsec_old";
  s.previous_secret_expires_at_ms = 86'401'000;
  s.max_receives = 3;
  ASSERT_OK(store_->CreateSubscription(s));
  auto got = store_->GetSubscription(kTenant, s.id);
  ASSERT_OK(got);
  ExpectSameSubscription(got.value(), s);
  EXPECT_FALSE(store_->CreateSubscription(s).ok());  // the id is taken

  Subscription p = NewSub(kTenant, 1000, "pull");
  ASSERT_OK(store_->CreateSubscription(p));
  auto gp = store_->GetSubscription(kTenant, p.id);
  ASSERT_OK(gp);
  ExpectSameSubscription(gp.value(), p);
  EXPECT_EQ(gp->url, std::nullopt);

  Subscription u = s;
  u.url = "https://hooks.example.com/v2";
  u.event_types_json = "[]";
  u.filter_json.reset();
  u.enabled = true;
  u.ordered = false;
  u.description.reset();
  u.previous_secret = s.secret;
  u.previous_secret_expires_at_ms = 2000 + kDay;
  u.secret = "whsec_new";
  u.max_in_flight = 1;
  u.rate_limit_per_s = 0;
  u.max_receives = 5;
  u.updated_at_ms = 2000;
  ASSERT_OK(Update(u));
  got = store_->GetSubscription(kTenant, s.id);
  ASSERT_OK(got);
  ExpectSameSubscription(got.value(), u);

  Subscription unknown = u;
  unknown.id = gen_.Next("sub_", 2000);
  EXPECT_TRUE(Update(unknown).IsNotFound());
  EXPECT_TRUE(store_->GetSubscription(kTenant, unknown.id).status().IsNotFound());

  ASSERT_OK(store_->DeleteSubscription(kTenant, s.id, 3000));
  EXPECT_TRUE(store_->GetSubscription(kTenant, s.id).status().IsNotFound());
  EXPECT_TRUE(store_->DeleteSubscription(kTenant, s.id, 3001).status().IsNotFound());
  EXPECT_TRUE(Update(u).IsNotFound());
  EXPECT_TRUE(store_->DeleteSubscription(kTenant, unknown.id, 3001).status().IsNotFound());
  auto list = store_->ListSubscriptions(kTenant, {});
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, p.id);
}

TEST_P(StoreConformance, ListSubscriptionsPaginatesByIdPerTenant) {
  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(AddSub().id);
  AddSub("webhook", false, "other");
  std::vector<std::string> seen;
  ListOptions o;
  o.limit = 2;
  std::vector<size_t> sizes;
  for (int page = 0; page < 5; ++page) {
    auto r = store_->ListSubscriptions(kTenant, o);
    ASSERT_OK(r);
    sizes.push_back(r->size());
    if (r->empty()) break;
    for (const auto& s : *r) {
      EXPECT_EQ(s.tenant, kTenant);
      seen.push_back(s.id);
    }
    o.after_id = r->back().id;
  }
  EXPECT_EQ(seen, ids);
  EXPECT_EQ(sizes, (std::vector<size_t>{2, 2, 1, 0}));
  auto other = store_->ListSubscriptions("other", {});
  ASSERT_OK(other);
  EXPECT_EQ(other->size(), 1u);
}

TEST_P(StoreConformance, EverySubscriptionWriteBumpsItsTenantsGeneration) {
  EXPECT_EQ(GenerationOf(kTenant), 0);
  Subscription s1 = NewSub(kTenant, 1000), s2 = NewSub("other", 2000), s3 = NewSub(kTenant, 3000);
  auto g1 = store_->CreateSubscription(s1);
  ASSERT_OK(g1);
  EXPECT_EQ(g1.value(), 1);
  ASSERT_OK(store_->CreateSubscription(s2));
  auto g3 = store_->CreateSubscription(s3);
  ASSERT_OK(g3);
  EXPECT_EQ(g3.value(), 2);  // per tenant
  int64_t gen = 0;
  auto modified = store_->ModifySubscription(
      kTenant, s1.id,
      [](Subscription* row) {
        row->description = "changed";
        return Status::Ok();
      },
      &gen);
  ASSERT_OK(modified);
  EXPECT_EQ(gen, 3);
  auto deleted = store_->DeleteSubscription(kTenant, s3.id, 4000);
  ASSERT_OK(deleted);
  EXPECT_EQ(deleted.value(), 4);
  EXPECT_EQ(GenerationOf(kTenant), 4);
  EXPECT_EQ(GenerationOf("other"), 1);

  // A refused change writes nothing and bumps nothing; so does a foreign id.
  auto refused = store_->ModifySubscription(
      kTenant, s1.id, [](Subscription*) { return Status::Validation("no"); }, &gen);
  EXPECT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().message(), "no");
  EXPECT_TRUE(store_->DeleteSubscription("other", s1.id, 5000).status().IsNotFound());
  EXPECT_EQ(GenerationOf(kTenant), 4);

  auto loaded = store_->LoadTenantSubscriptions(kTenant);
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->generation, 4);
  ASSERT_EQ(loaded->subscriptions.size(), 1u);  // the deleted one is gone
  EXPECT_EQ(loaded->subscriptions[0].id, s1.id);
  EXPECT_EQ(loaded->subscriptions[0].description, "changed");
  auto none = store_->LoadTenantSubscriptions("nobody");
  ASSERT_OK(none);
  EXPECT_EQ(none->generation, 0);
  EXPECT_TRUE(none->subscriptions.empty());
}

TEST_P(StoreConformance, ModifySubscriptionKeepsIdentityAndReturnsWhatItStored) {
  Subscription s = AddSub();
  int64_t gen = 0;
  auto r = store_->ModifySubscription(
      kTenant, s.id,
      [](Subscription* row) {
        row->tenant = "other";  // identity fields are not the change's to make
        row->kind = "pull";
        row->created_at_ms = 1;
        row->secret = "whsec_rotated";
        return Status::Ok();
      },
      &gen);
  ASSERT_OK(r);
  EXPECT_EQ(r->tenant, kTenant);
  EXPECT_EQ(r->kind, "webhook");
  EXPECT_EQ(r->created_at_ms, s.created_at_ms);
  auto got = store_->GetSubscription(kTenant, s.id);
  ASSERT_OK(got);
  ExpectSameSubscription(got.value(), r.value());
  EXPECT_EQ(got->secret, "whsec_rotated");
}

// Concurrent read-modify-writes of one row (PATCH, rotate-secret) never lose
// each other's fields.
TEST_P(StoreConformance, ConcurrentModificationsNeverUndoEachOther) {
  Subscription s = AddSub();
  constexpr int kRounds = 40;
  std::atomic<int> failures{0};
  auto modify = [&](std::function<void(Subscription*, int)> edit) {
    for (int i = 0; i < kRounds; ++i) {
      int64_t gen = 0;
      auto r = store_->ModifySubscription(
          kTenant, s.id,
          [&](Subscription* row) {
            edit(row, i);
            return Status::Ok();
          },
          &gen);
      if (!r.ok()) ++failures;
    }
  };
  std::thread a([&] { modify([](Subscription* row, int) { row->max_in_flight += 1; }); });
  std::thread b([&] { modify([](Subscription* row, int) { row->max_receives += 1; }); });
  a.join();
  b.join();
  EXPECT_EQ(failures.load(), 0);
  auto got = store_->GetSubscription(kTenant, s.id);
  ASSERT_OK(got);
  EXPECT_EQ(got->max_in_flight, s.max_in_flight + kRounds);
  EXPECT_EQ(got->max_receives, s.max_receives + kRounds);
  EXPECT_EQ(GenerationOf(kTenant), 1 + 2 * kRounds);
}

// A matcher that routes every item to every enabled subscription it is given.
class RouteAll : public store::IngestMatcher {
 public:
  void Rematch(const std::string& tenant, int64_t generation, const std::vector<Subscription>& subs,
               const std::vector<IngestItem*>& items) override {
    ++calls;
    last_tenant = tenant;
    for (IngestItem* it : items) {
      it->subscription_ids.clear();
      it->subscription_ordered.clear();
      it->delivery_ids.clear();
      for (const auto& s : subs) {
        if (!s.enabled) continue;
        it->subscription_ids.push_back(s.id);
        it->subscription_ordered.push_back(s.ordered ? 1 : 0);
        it->delivery_ids.push_back(core::NewId("dlv_", it->event.received_at_ms));
      }
      it->matched_generation = generation;
    }
  }
  int calls = 0;
  std::string last_tenant;
};

// Items matched at an old generation are re-matched in the transaction: a
// subscription created, disabled or deleted since is seen as the database
// has it, and no delivery is left to a deleted subscription.
TEST_P(StoreConformance, IngestRematchesItemsMatchedAtAStaleGeneration) {
  Subscription keep = AddSub(), gone = AddSub();
  const int64_t seen = GenerationOf(kTenant);  // what a cache matched at
  ASSERT_OK(store_->DeleteSubscription(kTenant, gone.id, 900));
  Subscription added = AddSub();
  Subscription off = AddSub();
  off.enabled = false;
  ASSERT_OK(Update(off));

  RouteAll matcher;
  std::vector<IngestItem> items{Item(kTenant, "t", 1000), Item("other", "t", 1000)};
  Route(items[0], keep, 1000);
  Route(items[0], gone, 1000);  // stale: deleted since
  items[0].matched_generation = seen;
  items[1].matched_generation = 0;  // "other" has no subscriptions: current
  std::vector<IngestItem*> ptrs{&items[0], &items[1]};
  ASSERT_OK(store_->CommitIngest(ptrs, 1000, kDay, &matcher));
  EXPECT_EQ(matcher.calls, 1);
  EXPECT_EQ(matcher.last_tenant, kTenant);
  EXPECT_EQ(items[0].matched_generation, GenerationOf(kTenant));
  EXPECT_EQ(Sorted(items[0].subscription_ids), Sorted({keep.id, added.id}));
  auto deliveries = store_->ListDeliveries(kTenant, ByEvent(items[0].event.id), {});
  ASSERT_OK(deliveries);
  std::vector<std::string> subs;
  for (const auto& d : *deliveries) subs.push_back(d.subscription_id);
  EXPECT_EQ(Sorted(subs), Sorted({keep.id, added.id}));

  // At the current generation nothing is re-matched.
  std::vector<IngestItem> fresh{Item(kTenant, "t", 2000)};
  Route(fresh[0], keep, 2000);
  fresh[0].matched_generation = GenerationOf(kTenant);
  std::vector<IngestItem*> fp{&fresh[0]};
  ASSERT_OK(store_->CommitIngest(fp, 2000, kDay, &matcher));
  EXPECT_EQ(matcher.calls, 1);
  EXPECT_EQ(fresh[0].subscription_ids, std::vector<std::string>{keep.id});
}

// Items of one tenant matched at different generations (requests queued
// around a subscription change): each stale one is re-matched.
TEST_P(StoreConformance, EveryStaleItemIsRematchedNotJustTheFirstOfItsTenant) {
  Subscription keep = AddSub(), gone = AddSub();
  const int64_t old_gen = GenerationOf(kTenant);
  ASSERT_OK(store_->DeleteSubscription(kTenant, gone.id, 900));
  RouteAll matcher;
  std::vector<IngestItem> items{Item(kTenant, "t", 1000), Item(kTenant, "t", 1000)};
  Route(items[0], keep, 1000);
  items[0].matched_generation = GenerationOf(kTenant);  // current
  Route(items[1], keep, 1000);
  Route(items[1], gone, 1000);
  items[1].matched_generation = old_gen;  // stale
  std::vector<IngestItem*> ptrs{&items[0], &items[1]};
  ASSERT_OK(store_->CommitIngest(ptrs, 1000, kDay, &matcher));
  EXPECT_EQ(matcher.calls, 1);
  EXPECT_EQ(items[1].subscription_ids, std::vector<std::string>{keep.id});
  auto left = store_->ListDeliveries(kTenant, BySubscription(gone.id), {});
  ASSERT_OK(left);
  EXPECT_TRUE(left->empty());
}

// A retry answers with the delivery as its own transaction left it (what the
// API's 202 shows: a later read may already see the dispatcher's send).
TEST_P(StoreConformance, RetryReturnsTheDeliveryAsItLeftIt) {
  Subscription hook = AddSub();
  Ingested e = Ingest({&hook}, 1000);
  ASSERT_EQ(LeaseIds(hook, 1500).size(), 1u);
  Kill(e.deliveries[0], 1500);
  auto r = store_->RetryDelivery(kTenant, e.deliveries[0], 2000);
  ASSERT_OK(r);
  EXPECT_EQ(r->id, e.deliveries[0]);
  EXPECT_EQ(r->event_id, e.event_id);
  EXPECT_EQ(r->subscription_id, hook.id);
  EXPECT_EQ(r->status, kDeliveryPending);
  EXPECT_EQ(r->next_attempt_at_ms, 2000);
  EXPECT_EQ(r->attempts, 1);  // a webhook's attempts are history: kept
  EXPECT_EQ(StateOf(e.deliveries[0]), kDeliveryPending);
  EXPECT_EQ(store_->RetryDelivery(kTenant, e.deliveries[0], 2100).status().code(),
            Status::Code::kConflict);

  Subscription inbox = AddSub("pull");
  Ingested m = Ingest({&inbox}, 3000);
  auto got = Recv(inbox, 3100);
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(Settle(inbox, {got[0].receipt}, true, 0, 3200), std::vector<std::string>{"acked"});
  auto again = store_->RetryDelivery(kTenant, m.deliveries[0], 3300);
  ASSERT_OK(again);
  EXPECT_EQ(again->status, kDeliveryPending);
  EXPECT_EQ(again->attempts, 0);  // a pull message's receives start again
}

// Replay and retry never revive work for a deleted subscription.
TEST_P(StoreConformance, ReplayAndRetryCreateNothingForADeletedSubscription) {
  Subscription s = AddSub();
  Ingested e = Ingest({&s}, 1000);
  ASSERT_EQ(LeaseIds(s, 1500).size(), 1u);
  Kill(e.deliveries[0], 1500);
  auto ev = store_->GetEvent(kTenant, e.event_id);
  ASSERT_OK(ev);
  ASSERT_OK(store_->DeleteSubscription(kTenant, s.id, 2000));
  auto requeued = store_->RequeueDead(kTenant, s.id, e.event_id, e.event_id, 2100);
  ASSERT_OK(requeued);
  EXPECT_EQ(requeued.value(), 0);
  Ingested other = Ingest({}, 1001);
  auto ev2 = store_->GetEvent(kTenant, other.event_id);
  ASSERT_OK(ev2);
  auto created = store_->CreateMissingDeliveries(kTenant, s.id, {ev2.value()}, false, 2200);
  ASSERT_OK(created);
  EXPECT_EQ(created.value(), 0);
  EXPECT_FALSE(store_->RetryDelivery(kTenant, e.deliveries[0], 2300).ok());
  auto left = store_->ListDeliveries(kTenant, BySubscription(s.id), {});
  ASSERT_OK(left);
  for (const auto& d : *left) EXPECT_NE(d.status, kDeliveryPending) << d.id;
}

TEST_P(StoreConformance, DeleteSubscriptionDropsItsUnfinishedDeliveries) {
  Subscription s = AddSub(), other = AddSub();
  Ingested e1 = Ingest({&s, &other}, 1000);
  Ingested e2 = Ingest({&s}, 1001), e3 = Ingest({&s}, 1002), e4 = Ingest({&s}, 1003);
  Ingested e5 = Ingest({&s}, 1004);
  ASSERT_EQ(LeaseIds(s, 2000, 4).size(), 4u);
  Succeed(e1.deliveries[0], 2000);
  Kill(e2.deliveries[0], 2000);
  Fail(e3.deliveries[0], 2000, 5000);
  // e4 stays in flight, e5 pending.
  ASSERT_OK(store_->DeleteSubscription(kTenant, s.id, 3000));

  EXPECT_TRUE(store_->GetDelivery(kTenant, e3.deliveries[0]).status().IsNotFound());
  EXPECT_TRUE(store_->GetDelivery(kTenant, e4.deliveries[0]).status().IsNotFound());
  EXPECT_TRUE(store_->GetDelivery(kTenant, e5.deliveries[0]).status().IsNotFound());
  // Finished ones stay as history; the other subscription's are untouched.
  EXPECT_EQ(StateOf(e1.deliveries[0]), kDeliverySucceeded);
  EXPECT_EQ(StateOf(e2.deliveries[0]), kDeliveryDead);
  EXPECT_EQ(StateOf(e1.deliveries[1]), kDeliveryPending);

  EXPECT_TRUE(LeaseIds(s, kFarFuture).empty());
  auto due = store_->SubscriptionsWithDueWork(kFarFuture);
  ASSERT_OK(due);
  EXPECT_EQ(*due, std::vector<std::string>{other.id});
  // A delivery of a deleted subscription cannot be retried.
  EXPECT_FALSE(store_->RetryDelivery(kTenant, e2.deliveries[0], 4000).ok());
  EXPECT_EQ(StateOf(e2.deliveries[0]), kDeliveryDead);
  EXPECT_TRUE(LeaseIds(s, kFarFuture).empty());
}

// --- leasing (push) --------------------------------------------------------------------

TEST_P(StoreConformance, LeaseDueTakesDueDeliveriesOldestFirst) {
  Subscription s = AddSub(), other = AddSub();
  Ingested d1 = Ingest({&s}, 1000), d2 = Ingest({&s}, 1001), d3 = Ingest({&s}, 1002);
  Ingested o1 = Ingest({&other}, 1003);
  Ingested d4 = Ingest({&s}, 5000);  // due only at 5000

  auto first = Lease(s, 2000, 2);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(first[0].delivery.id, d1.deliveries[0]);
  EXPECT_EQ(first[1].delivery.id, d2.deliveries[0]);
  EXPECT_EQ(first[0].delivery.event_id, d1.event_id);
  EXPECT_EQ(first[0].delivery.subscription_id, s.id);
  EXPECT_EQ(first[0].delivery.tenant, kTenant);
  EXPECT_EQ(first[0].delivery.attempts, 0);
  EXPECT_EQ(first[0].event.id, d1.event_id);
  EXPECT_EQ(first[0].event.tenant, kTenant);
  EXPECT_EQ(first[0].event.type, "order.created");
  EXPECT_EQ(first[0].event.data, kData);
  EXPECT_EQ(first[0].event.received_at_ms, 1000);
  // Every lease has a fresh token (for pull it is the receipt).
  EXPECT_EQ(first[0].receipt.substr(0, d1.deliveries[0].size() + 1), d1.deliveries[0] + ".");
  EXPECT_EQ(StateOf(d1.deliveries[0]), kDeliveryInFlight);
  EXPECT_EQ(StateOf(d3.deliveries[0]), kDeliveryPending);

  EXPECT_EQ(LeaseIds(s, 2000), std::vector<std::string>{d3.deliveries[0]});
  EXPECT_TRUE(LeaseIds(s, 4999).empty());  // the rest is leased or not due
  EXPECT_EQ(LeaseIds(s, 5000), std::vector<std::string>{d4.deliveries[0]});
  EXPECT_EQ(LeaseIds(other, 2000), std::vector<std::string>{o1.deliveries[0]});
  EXPECT_TRUE(LeaseIds(s, 2000 + kLease - 1).empty());  // leases still held

  // The leases of d1..d3 ran out at 2000 + kLease: taken again, oldest first.
  auto again = Lease(s, 2000 + kLease + 1);
  EXPECT_EQ(DeliveryIds(again),
            (std::vector<std::string>{d1.deliveries[0], d2.deliveries[0], d3.deliveries[0]}));
  for (const auto& l : again) EXPECT_EQ(l.delivery.attempts, 0);
  EXPECT_EQ(StateOf(d1.deliveries[0]), kDeliveryInFlight);
}

TEST_P(StoreConformance, OrderedSubscriptionLeasesOnePerKeyInIngestionOrder) {
  Subscription o = AddSub("webhook", true), u = AddSub();
  Ingested a1 = Ingest({&o, &u}, 1000, "A"), a2 = Ingest({&o, &u}, 1001, "A");
  Ingested b1 = Ingest({&o, &u}, 1002, "B"), a3 = Ingest({&o, &u}, 1003, "A");
  Ingested n1 = Ingest({&o, &u}, 1004), n2 = Ingest({&o, &u}, 1005, "");  // one more sequence

  // The unordered subscription gets everything at once.
  EXPECT_EQ(LeaseIds(u, 2000).size(), 6u);

  EXPECT_EQ(LeaseIds(o, 2000),
            (std::vector<std::string>{a1.deliveries[0], b1.deliveries[0], n1.deliveries[0]}));
  EXPECT_TRUE(LeaseIds(o, 2000).empty());  // every key's head is in flight

  Fail(a1.deliveries[0], 2100, 3000);  // a retrying head holds its key
  EXPECT_TRUE(LeaseIds(o, 2500).empty());
  EXPECT_EQ(LeaseIds(o, 3000), std::vector<std::string>{a1.deliveries[0]});

  Succeed(b1.deliveries[0], 3050);  // key B is done; A is not blocked by it
  Kill(a1.deliveries[0], 3100);     // a dead head lets the next one go
  EXPECT_EQ(LeaseIds(o, 3100), std::vector<std::string>{a2.deliveries[0]});
  EXPECT_TRUE(LeaseIds(o, 3150).empty());  // a3 waits for a2

  // A retried head takes its old place: it goes (a2 is under way already) and a3 waits for it.
  ASSERT_OK(store_->RetryDelivery(kTenant, a1.deliveries[0], 3200));
  EXPECT_EQ(LeaseIds(o, 3200), std::vector<std::string>{a1.deliveries[0]});
  Succeed(a2.deliveries[0], 3300);
  EXPECT_TRUE(LeaseIds(o, 3300).empty());
  Succeed(a1.deliveries[0], 3400);
  EXPECT_EQ(LeaseIds(o, 3400), std::vector<std::string>{a3.deliveries[0]});

  Succeed(n1.deliveries[0], 3500);  // no key and "" share one sequence
  EXPECT_EQ(LeaseIds(o, 3500), std::vector<std::string>{n2.deliveries[0]});
}

// --- attempts --------------------------------------------------------------------------

TEST_P(StoreConformance, AnOutcomeUnderAnExpiredLeaseIsDroppedWhenTheDeliveryWasLeasedAgain) {
  Subscription s = AddSub();
  Ingested d = Ingest({&s}, 1000);
  // Worker A leases it until 2000 + kLease; the lease runs out; worker B
  // (another node) leases it again.
  auto a = Lease(s, 2000);
  ASSERT_EQ(a.size(), 1u);
  const int64_t later = 2000 + kLease + 1;
  auto b = Lease(s, later);
  ASSERT_EQ(b.size(), 1u);
  EXPECT_NE(a[0].receipt, b[0].receipt);
  // A stale release (A's lease) leaves B's lease alone.
  ASSERT_OK(store_->ReleaseLeases({{d.deliveries[0], a[0].receipt}}, later + 5));
  EXPECT_EQ(StateOf(d.deliveries[0]), kDeliveryInFlight);

  // A's late outcome must not overwrite B's lease, nor log an attempt.
  Store::AttemptResult late = Outcome(d.deliveries[0], kDeliverySucceeded, later + 10, 200);
  late.lease_token = a[0].receipt;
  ASSERT_OK(store_->RecordAttempts({late}, later + 10));
  Delivery now = Get(d.deliveries[0]);
  EXPECT_EQ(now.status, kDeliveryInFlight);
  EXPECT_EQ(now.attempts, 0);
  EXPECT_TRUE(now.attempt_log.empty());

  // B's outcome under its own lease is written.
  Store::AttemptResult mine =
      Outcome(d.deliveries[0], kDeliveryRetrying, later + 20, 500, later + 5000);
  mine.lease_token = b[0].receipt;
  ASSERT_OK(store_->RecordAttempts({mine}, later + 20));
  now = Get(d.deliveries[0]);
  EXPECT_EQ(now.status, kDeliveryRetrying);
  EXPECT_EQ(now.attempts, 1);
  EXPECT_EQ(now.next_attempt_at_ms, later + 5000);
  ASSERT_EQ(now.attempt_log.size(), 1u);
  EXPECT_EQ(now.attempt_log[0].status_code, 500);
}

TEST_P(StoreConformance, RecordAttemptsSucceededFinishesAndLogs) {
  Subscription s = AddSub();
  Ingested d1 = Ingest({&s}, 1000), d2 = Ingest({&s}, 1000);
  ASSERT_EQ(LeaseIds(s, 2000).size(), 2u);
  Store::AttemptResult r1;
  r1.delivery_id = d1.deliveries[0];
  r1.status = kDeliverySucceeded;
  r1.attempt.at_ms = 2000;
  r1.attempt.status_code = 204;
  r1.attempt.latency_ms = 35;
  r1.attempt.response_snippet = "ok \xe2\x9c\x93\n{\"id\":1}";
  Store::AttemptResult r2 = Outcome(d2.deliveries[0], kDeliverySucceeded, 2010, 200);
  ASSERT_OK(store_->RecordAttempts({r1, r2}, 2050));  // many outcomes in one call

  auto d = store_->GetDelivery(kTenant, d1.deliveries[0]);
  ASSERT_OK(d);
  EXPECT_EQ(d->status, kDeliverySucceeded);
  EXPECT_EQ(d->attempts, 1);
  EXPECT_EQ(d->last_status_code, 204);
  EXPECT_EQ(d->last_error, std::nullopt);
  EXPECT_EQ(d->updated_at_ms, 2050);
  ASSERT_EQ(d->attempt_log.size(), 1u);
  EXPECT_EQ(d->attempt_log[0].at_ms, 2000);
  EXPECT_EQ(d->attempt_log[0].status_code, 204);
  EXPECT_EQ(d->attempt_log[0].latency_ms, 35);
  EXPECT_EQ(d->attempt_log[0].error, std::nullopt);
  EXPECT_EQ(d->attempt_log[0].response_snippet, r1.attempt.response_snippet);
  EXPECT_EQ(StateOf(d2.deliveries[0]), kDeliverySucceeded);
  EXPECT_EQ(Get(d2.deliveries[0]).attempt_log.size(), 1u);

  // Finished: never due again.
  EXPECT_TRUE(LeaseIds(s, kFarFuture).empty());
  auto due = store_->SubscriptionsWithDueWork(kFarFuture);
  ASSERT_OK(due);
  EXPECT_TRUE(due->empty());
  auto list = store_->ListDeliveries(kTenant, ByStatus(kDeliverySucceeded), {});
  ASSERT_OK(list);
  EXPECT_EQ(list->size(), 2u);
  EXPECT_TRUE(list->front().attempt_log.empty());  // the log comes with GetDelivery only
}

TEST_P(StoreConformance, RecordAttemptsRetryingThenDead) {
  Subscription s = AddSub();
  Ingested e = Ingest({&s}, 1000);
  const std::string id = e.deliveries[0];
  ASSERT_EQ(LeaseIds(s, 2000).size(), 1u);
  Store::AttemptResult fail = Outcome(id, kDeliveryRetrying, 2000, 503, 10'000);
  fail.attempt.response_snippet = "busy";
  ASSERT_OK(store_->RecordAttempts({fail}, 2000));

  Delivery d = Get(id);
  EXPECT_EQ(d.status, kDeliveryRetrying);
  EXPECT_EQ(d.attempts, 1);
  EXPECT_EQ(d.next_attempt_at_ms, 10'000);
  EXPECT_EQ(d.last_status_code, 503);
  EXPECT_EQ(d.last_error, "HTTP 503");
  ASSERT_EQ(d.attempt_log.size(), 1u);
  EXPECT_EQ(d.attempt_log[0].status_code, 503);
  EXPECT_EQ(d.attempt_log[0].error, "HTTP 503");
  EXPECT_EQ(d.attempt_log[0].response_snippet, "busy");

  EXPECT_TRUE(LeaseIds(s, 9999).empty());  // not due before next_attempt_at
  auto due = store_->SubscriptionsWithDueWork(9999);
  ASSERT_OK(due);
  EXPECT_TRUE(due->empty());
  due = store_->SubscriptionsWithDueWork(10'000);
  ASSERT_OK(due);
  EXPECT_EQ(*due, std::vector<std::string>{s.id});
  auto again = Lease(s, 10'000);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery.id, id);
  EXPECT_EQ(again[0].delivery.attempts, 1);  // the dispatcher counts on from here

  Store::AttemptResult dead = Outcome(id, kDeliveryDead, 10'100, std::nullopt);
  ASSERT_OK(store_->RecordAttempts({dead}, 10'100));
  d = Get(id);
  EXPECT_EQ(d.status, kDeliveryDead);
  EXPECT_EQ(d.attempts, 2);
  EXPECT_EQ(d.last_error, "timeout");
  EXPECT_EQ(d.last_status_code, std::nullopt);  // the last attempt got no response
  EXPECT_EQ(d.updated_at_ms, 10'100);
  ASSERT_EQ(d.attempt_log.size(), 2u);  // oldest first
  EXPECT_EQ(d.attempt_log[0].status_code, 503);
  EXPECT_EQ(d.attempt_log[1].status_code, std::nullopt);
  EXPECT_EQ(d.attempt_log[1].error, "timeout");
  EXPECT_EQ(d.attempt_log[1].at_ms, 10'080);
  EXPECT_TRUE(LeaseIds(s, kFarFuture).empty());
}

TEST_P(StoreConformance, RetryDeliveryPutsItBackOrConflicts) {
  Subscription s = AddSub();
  Ingested e = Ingest({&s}, 1000);
  const std::string id = e.deliveries[0];
  EXPECT_EQ(store_->RetryDelivery(kTenant, id, 1500).status().code(),
            Status::Code::kConflict);  // pending
  ASSERT_EQ(LeaseIds(s, 2000).size(), 1u);
  EXPECT_EQ(store_->RetryDelivery(kTenant, id, 2001).status().code(),
            Status::Code::kConflict);  // in flight
  Kill(id, 2100);
  EXPECT_TRUE(store_->RetryDelivery("globex", id, 2200).status().IsNotFound());
  EXPECT_TRUE(store_->RetryDelivery(kTenant, gen_.Next("dlv_", 2200), 2200).status().IsNotFound());
  EXPECT_EQ(StateOf(id), kDeliveryDead);

  ASSERT_OK(store_->RetryDelivery(kTenant, id, 3000));
  Delivery d = Get(id);
  EXPECT_EQ(d.status, kDeliveryPending);
  EXPECT_EQ(d.next_attempt_at_ms, 3000);
  EXPECT_EQ(d.attempts, 1);  // a webhook delivery keeps its attempt count
  EXPECT_EQ(d.attempt_log.size(), 1u);
  EXPECT_TRUE(LeaseIds(s, 2999).empty());
  EXPECT_EQ(LeaseIds(s, 3000), std::vector<std::string>{id});

  // Retrying (waiting for its next attempt): due now instead.
  Fail(id, 3100, 99'000);
  ASSERT_OK(store_->RetryDelivery(kTenant, id, 3200));
  d = Get(id);
  EXPECT_EQ(d.status, kDeliveryPending);
  EXPECT_EQ(d.next_attempt_at_ms, 3200);

  // Succeeded: may be sent again.
  ASSERT_EQ(LeaseIds(s, 3200).size(), 1u);
  Succeed(id, 3300);
  ASSERT_OK(store_->RetryDelivery(kTenant, id, 3400));
  EXPECT_EQ(StateOf(id), kDeliveryPending);
  EXPECT_EQ(LeaseIds(s, 3400), std::vector<std::string>{id});
}

TEST_P(StoreConformance, RequeueDeadTakesTheEventIdRange) {
  Subscription s = AddSub(), t = AddSub();
  std::vector<Ingested> e;
  for (int i = 0; i < 5; ++i) e.push_back(Ingest({&s, &t}, 1000 + i));
  ASSERT_EQ(LeaseIds(s, 2000).size(), 5u);
  for (const auto& x : e) Kill(x.deliveries[0], 2000);
  ASSERT_EQ(LeaseIds(t, 2000).size(), 5u);
  Kill(e[2].deliveries[1], 2000);

  auto n = store_->RequeueDead(kTenant, s.id, e[1].event_id, e[3].event_id, 3000);
  ASSERT_OK(n);
  EXPECT_EQ(n.value(), 3);  // both ends included
  EXPECT_EQ(StateOf(e[0].deliveries[0]), kDeliveryDead);
  for (int i = 1; i <= 3; ++i) {
    Delivery d = Get(e[i].deliveries[0]);
    EXPECT_EQ(d.status, kDeliveryPending);
    EXPECT_EQ(d.next_attempt_at_ms, 3000);
  }
  EXPECT_EQ(StateOf(e[4].deliveries[0]), kDeliveryDead);
  EXPECT_EQ(StateOf(e[2].deliveries[1]), kDeliveryDead);  // another subscription's

  n = store_->RequeueDead(kTenant, s.id, e[1].event_id, e[3].event_id, 3001);
  ASSERT_OK(n);
  EXPECT_EQ(n.value(), 0);  // pending now, not dead
  n = store_->RequeueDead("globex", s.id, e[0].event_id, e[4].event_id, 3001);
  ASSERT_OK(n);
  EXPECT_EQ(n.value(), 0);
  EXPECT_EQ(StateOf(e[0].deliveries[0]), kDeliveryDead);

  EXPECT_EQ(LeaseIds(s, 3000),
            (std::vector<std::string>{e[1].deliveries[0], e[2].deliveries[0], e[3].deliveries[0]}));
}

TEST_P(StoreConformance, CreateMissingDeliveriesNeverDuplicates) {
  Subscription s = AddSub();
  Ingested e1 = Ingest({&s}, 1000), e2 = Ingest({}, 1001), e3 = Ingest({}, 1002);
  Ingested e4 = Ingest({&s}, 1003);
  ASSERT_EQ(LeaseIds(s, 1500, 10).size(), 2u);
  Kill(e4.deliveries[0], 1500);  // dead still counts as "has one"
  ASSERT_OK(store_->ReleaseLeases(Refs({e1.deliveries[0]}), 1500));
  std::vector<Event> events;
  for (const auto* x : {&e1, &e2, &e3, &e4}) {
    auto ev = store_->GetEvent(kTenant, x->event_id);
    ASSERT_OK(ev);
    events.push_back(ev.value());
  }

  auto n = store_->CreateMissingDeliveries(kTenant, s.id, events, false, 3000);
  ASSERT_OK(n);
  EXPECT_EQ(n.value(), 2);
  n = store_->CreateMissingDeliveries(kTenant, s.id, events, false, 3001);
  ASSERT_OK(n);
  EXPECT_EQ(n.value(), 0);

  auto list = store_->ListDeliveries(kTenant, BySubscription(s.id), {});
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 4u);
  std::map<std::string, Delivery> by_event;
  for (const auto& d : *list) by_event[d.event_id] = d;
  EXPECT_EQ(by_event.size(), 4u);  // one per event
  EXPECT_EQ(by_event[e1.event_id].id, e1.deliveries[0]);
  EXPECT_EQ(by_event[e4.event_id].status, kDeliveryDead);
  for (const auto* x : {&e2, &e3}) {
    const Delivery& d = by_event[x->event_id];
    EXPECT_TRUE(core::IsValidId(d.id, "dlv_")) << d.id;
    EXPECT_EQ(d.tenant, kTenant);
    EXPECT_EQ(d.subscription_id, s.id);
    EXPECT_EQ(d.status, kDeliveryPending);
    EXPECT_EQ(d.attempts, 0);
    EXPECT_EQ(d.next_attempt_at_ms, 3000);
    EXPECT_EQ(d.created_at_ms, 3000);
  }
  auto leased = Lease(s, 3000);
  EXPECT_EQ(EventIds(leased), (std::vector<std::string>{e1.event_id, e2.event_id, e3.event_id}));
}

TEST_P(StoreConformance, CreateMissingDeliveriesJoinTheirKeysSequence) {
  Subscription o = AddSub("webhook", true);
  Ingested a1 = Ingest({&o}, 1000, "A"), a2 = Ingest({}, 1001, "A"), b1 = Ingest({}, 1002, "B");
  EXPECT_EQ(LeaseIds(o, 2000), std::vector<std::string>{a1.deliveries[0]});
  std::vector<Event> events;
  for (const auto* x : {&a2, &b1}) {
    auto ev = store_->GetEvent(kTenant, x->event_id);
    ASSERT_OK(ev);
    events.push_back(ev.value());
  }
  auto n = store_->CreateMissingDeliveries(kTenant, o.id, events, true, 3000);
  ASSERT_OK(n);
  EXPECT_EQ(n.value(), 2);
  EXPECT_EQ(EventIds(Lease(o, 3000)), std::vector<std::string>{b1.event_id});  // a2 waits for a1
  Succeed(a1.deliveries[0], 3100);
  EXPECT_EQ(EventIds(Lease(o, 3100)), std::vector<std::string>{a2.event_id});
}

TEST_P(StoreConformance, ReleaseLeasesReturnsDeliveriesToTheirPreviousState) {
  Subscription s = AddSub();
  Ingested d1 = Ingest({&s}, 1000), d2 = Ingest({&s}, 1001), d3 = Ingest({&s}, 1002);
  ASSERT_EQ(LeaseIds(s, 2000).size(), 3u);
  Fail(d3.deliveries[0], 2100, 2500);
  EXPECT_EQ(LeaseIds(s, 2500), std::vector<std::string>{d3.deliveries[0]});

  ASSERT_OK(store_->ReleaseLeases(Refs({d1.deliveries[0], d3.deliveries[0]}), 2600));
  Delivery r1 = Get(d1.deliveries[0]);
  EXPECT_EQ(r1.status, kDeliveryPending);  // never attempted
  EXPECT_EQ(r1.next_attempt_at_ms, 2600);
  EXPECT_EQ(r1.attempts, 0);
  Delivery r3 = Get(d3.deliveries[0]);
  EXPECT_EQ(r3.status, kDeliveryRetrying);  // attempted once before
  EXPECT_EQ(r3.next_attempt_at_ms, 2600);
  EXPECT_EQ(r3.attempts, 1);
  EXPECT_EQ(StateOf(d2.deliveries[0]), kDeliveryInFlight);
  EXPECT_EQ(LeaseIds(s, 2600), (std::vector<std::string>{d1.deliveries[0], d3.deliveries[0]}));

  // Only leased deliveries are released: a finished one stays finished.
  Succeed(d2.deliveries[0], 2700);
  ASSERT_OK(store_->ReleaseLeases(Refs({d2.deliveries[0], gen_.Next("dlv_", 2700)}), 2700));
  EXPECT_EQ(StateOf(d2.deliveries[0]), kDeliverySucceeded);
  ASSERT_OK(store_->ReleaseLeases({}, 2700));
}

// The lease token decides (store/delivery_rules.h): after a lease ran out and
// the delivery was leased again, the old token neither releases, settles nor
// records an outcome; the new one still does.
TEST_P(StoreConformance, AStaleLeaseTokenIsRefusedEverywhere) {
  Subscription s = AddSub();
  Ingested d = Ingest({&s}, 1000);
  const std::string id = d.deliveries[0];
  ASSERT_EQ(LeaseIds(s, 2000), std::vector<std::string>{id});
  const auto stale = Refs({id});
  ASSERT_EQ(LeaseIds(s, 2000 + kLease + 1), std::vector<std::string>{id});
  const auto fresh = Refs({id});
  ASSERT_NE(stale[0].token, fresh[0].token);
  ASSERT_OK(store_->ReleaseLeases(stale, 2000 + kLease + 2));
  EXPECT_EQ(StateOf(id), kDeliveryInFlight);
  auto late = Outcome(id, kDeliverySucceeded, 2000 + kLease + 3, 200);
  late.lease_token = stale[0].token;
  ASSERT_OK(store_->RecordAttempts({late}, 2000 + kLease + 3));
  EXPECT_EQ(StateOf(id), kDeliveryInFlight);
  EXPECT_EQ(Get(id).attempts, 0);
  ASSERT_OK(store_->ReleaseLeases(fresh, 2000 + kLease + 4));
  EXPECT_EQ(StateOf(id), kDeliveryPending);

  // Pull: a receipt superseded by a later receive is expired; the later one acks.
  Subscription p = AddSub("pull");
  Ingested m = Ingest({&p}, 1000);
  auto first = Recv(p, 2000);
  ASSERT_EQ(first.size(), 1u);
  auto second = Recv(p, 2000 + kLease + 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].delivery.attempts, 2);  // each receive counts
  EXPECT_EQ(Settle(p, {first[0].receipt}, true, 0, 2000 + kLease + 2),
            std::vector<std::string>{"expired"});
  EXPECT_EQ(Settle(p, {first[0].receipt}, false, 0, 2000 + kLease + 2),
            std::vector<std::string>{"expired"});
  EXPECT_EQ(StateOf(m.deliveries[0]), kDeliveryInFlight);
  EXPECT_EQ(Settle(p, {second[0].receipt}, true, 0, 2000 + kLease + 3),
            std::vector<std::string>{"acked"});
}

// Push deliveries count attempts, not leases: leasing and releasing never
// changes `attempts`, and no number of leases makes a push delivery dead
// (its retry schedule, above the store, decides that through RecordAttempts).
TEST_P(StoreConformance, PushLeasesNeitherCountNorExhaust) {
  Subscription s = AddSub();
  Ingested d = Ingest({&s}, 1000);
  const std::string id = d.deliveries[0];
  int64_t t = 2000;
  for (int i = 0; i < 5; ++i, t += kLease + 1) {
    auto l = Lease(s, t);
    ASSERT_EQ(l.size(), 1u);
    EXPECT_EQ(l[0].delivery.attempts, 0);
  }
  EXPECT_EQ(Get(id).attempts, 0);
  Kill(id, t);
  Delivery dead = Get(id);
  EXPECT_EQ(dead.status, kDeliveryDead);
  EXPECT_EQ(dead.attempts, 1);
  EXPECT_TRUE(Lease(s, t + 1).empty());
}

// The per-state counts (maintained, not counted per scrape) agree with the
// rows through every kind of transition: ingest, lease, outcomes, receive
// to dead, settles, release, retry, replay, subscription delete and purge.
TEST_P(StoreConformance, DeliveryStatsFollowEveryTransition) {
  auto stats = [&](const std::string* tenant, int64_t now) {
    std::vector<std::pair<std::string, int64_t>> by_state;
    int64_t oldest = 0;
    EXPECT_OK(tenant ? store_->TenantDeliveryStats(*tenant, now, &by_state, &oldest)
                     : store_->DeliveryStats(now, &by_state, &oldest));
    return StateCounts(by_state.begin(), by_state.end());
  };
  auto rows = [&](const std::string& tenant) {
    StateCounts c{{kDeliveryPending, 0},
                  {kDeliveryInFlight, 0},
                  {kDeliverySucceeded, 0},
                  {kDeliveryRetrying, 0},
                  {kDeliveryDead, 0}};
    ListOptions o;
    o.limit = 1000;
    auto r = store_->ListDeliveries(tenant, {}, o);
    EXPECT_OK(r);
    if (r.ok()) {
      for (const auto& d : r.value()) c[d.status]++;
    }
    return c;
  };
  const std::string other = "globex";
  auto check = [&](const char* where) {
    StateCounts mine = rows(kTenant), theirs = rows(other), all = mine;
    for (const auto& [k, n] : theirs) all[k] += n;
    EXPECT_EQ(stats(&kTenant, 10'000), mine) << where;
    EXPECT_EQ(stats(&other, 10'000), theirs) << where;
    EXPECT_EQ(stats(nullptr, 10'000), all) << where;
  };
  Subscription w = AddSub(), p = AddSub("pull"), gone = AddSub(),
               g = AddSub("webhook", false, other);
  p.max_receives = 1;
  ASSERT_OK(Update(p));
  std::vector<Ingested> ev;
  for (int i = 0; i < 6; ++i) ev.push_back(Ingest({&w, &p, &gone}, 1000 + i));
  Ingest({&g}, 1000);
  check("after ingest");
  auto leased = LeaseIds(w, 2000, 4);
  ASSERT_EQ(leased.size(), 4u);
  check("after lease");
  Succeed(leased[0], 2100);
  Fail(leased[1], 2100, 2500);
  Kill(leased[2], 2100);
  ASSERT_OK(store_->ReleaseLeases(Refs({leased[3]}), 2100));
  check("after outcomes and a release");
  auto got = Recv(p, 2200, 3);
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(Settle(p, {got[0].receipt}, true, 0, 2300), std::vector<std::string>{"acked"});
  EXPECT_EQ(Settle(p, {got[1].receipt}, false, 2400, 2300), std::vector<std::string>{"nacked"});
  (void)Recv(p, 2400, 1);                     // the nacked one was received once already: dead now
  (void)Recv(p, 2000 + kLease + 10'000, 10);  // the received ones go dead (max_receives 1)
  check("after receives and settles");
  ASSERT_OK(store_->RetryDelivery(kTenant, leased[2], 3000));
  auto requeued = store_->RequeueDead(kTenant, p.id, "", "~", 3000);
  ASSERT_OK(requeued);
  EXPECT_GT(requeued.value(), 0);
  check("after retry and replay");
  ASSERT_OK(store_->DeleteSubscription(kTenant, gone.id, 3100));
  check("after a subscription delete");
  auto purged = store_->Purge(1003, 0, 3200, {});
  ASSERT_OK(purged);
  check("after a purge");
}

TEST_P(StoreConformance, SubscriptionsWithDueWork) {
  Subscription a = AddSub(), b = AddSub(), c = AddSub(), d = AddSub("pull");
  Ingested ea = Ingest({&a}, 1000), eb = Ingest({&b}, 1000), ec = Ingest({&c}, 1000);
  Ingested ed = Ingest({&d}, 1000);
  ASSERT_EQ(LeaseIds(b, 2000).size(), 1u);
  Fail(eb.deliveries[0], 2000, 10'000);
  ASSERT_EQ(LeaseIds(c, 2000).size(), 1u);
  Succeed(ec.deliveries[0], 2000);
  auto r = store_->Receive(d.id, 2000, 10, 50'000, d.max_receives);  // leased until 50000
  ASSERT_OK(r);
  ASSERT_EQ(r->size(), 1u);

  auto due = [&](int64_t now) {
    auto ids = store_->SubscriptionsWithDueWork(now);
    EXPECT_OK(ids);
    return ids.ok() ? Sorted(ids.value()) : std::vector<std::string>{};
  };
  EXPECT_TRUE(due(999).empty());
  EXPECT_EQ(due(5000), std::vector<std::string>{a.id});
  EXPECT_EQ(due(10'000), Sorted({a.id, b.id}));
  EXPECT_EQ(due(50'000), Sorted({a.id, b.id, d.id}));  // an expired lease is due work
  (void)ea;
  (void)ed;
}

TEST_P(StoreConformance, DeliveryStatsCountsEveryState) {
  std::vector<std::pair<std::string, int64_t>> by_state;
  int64_t oldest = -1;
  ASSERT_OK(store_->DeliveryStats(1000, &by_state, &oldest));
  const StateCounts zeros{{kDeliveryPending, 0},
                          {kDeliveryInFlight, 0},
                          {kDeliverySucceeded, 0},
                          {kDeliveryRetrying, 0},
                          {kDeliveryDead, 0}};
  EXPECT_EQ(by_state.size(), 5u);
  EXPECT_EQ(StateCounts(by_state.begin(), by_state.end()), zeros);
  EXPECT_EQ(oldest, 0);

  Subscription waiting = AddSub(), work = AddSub();
  Ingest({&waiting}, 1000);
  Ingest({&waiting}, 1500);
  Ingested in_flight = Ingest({&work}, 1000), ok = Ingest({&work}, 1000);
  Ingested retrying = Ingest({&work}, 1000), dead = Ingest({&work}, 1000);
  ASSERT_EQ(LeaseIds(work, 2000).size(), 4u);
  Succeed(ok.deliveries[0], 2000);
  Fail(retrying.deliveries[0], 2000, 8000);
  Kill(dead.deliveries[0], 2000);
  (void)in_flight;

  by_state.clear();
  ASSERT_OK(store_->DeliveryStats(3000, &by_state, &oldest));
  EXPECT_EQ(by_state.size(), 5u);
  EXPECT_EQ(StateCounts(by_state.begin(), by_state.end()), (StateCounts{{kDeliveryPending, 2},
                                                                        {kDeliveryInFlight, 1},
                                                                        {kDeliverySucceeded, 1},
                                                                        {kDeliveryRetrying, 1},
                                                                        {kDeliveryDead, 1}}));
  EXPECT_EQ(oldest, 1000);  // the most overdue pending/retrying delivery
  by_state.clear();
  ASSERT_OK(store_->DeliveryStats(999, &by_state, &oldest));
  EXPECT_EQ(oldest, 0);  // nothing due yet
  by_state.clear();
  ASSERT_OK(store_->DeliveryStats(1200, &by_state, &oldest));
  EXPECT_EQ(oldest, 1000);
}

// The maintained counts start from the rows a store already holds: a store
// taken back to the schema before them (as an older version left it) is
// migrated again on open: the schema is taken back to just before the counts
// migration (sqlite 0008, postgres 0005), the later migrations undone too
// (sqlite 0009: events.resources, 0010: drops 0008's update trigger;
// postgres 0006: events.resources, 0007: the limits) and applied again.
// The schema version just before PostgreSQL's counts migration.
static size_t CountsMigrationIndex() {
  for (size_t i = 0; i < store::kPostgresMigrationsCount; ++i) {
    if (std::string(store::kPostgresMigrations[i].name) == "0005_delivery_counts.sql") return i;
  }
  ADD_FAILURE() << "no counts migration";
  return 0;
}

TEST_P(StoreConformance, TheCountsMigrationStartsFromTheExistingRows) {
  Subscription s = AddSub();
  Ingested a = Ingest({&s}, 1000);
  Ingest({&s}, 1001);
  Ingest({&s}, 1002);
  ASSERT_EQ(LeaseIds(s, 2000, 1), std::vector<std::string>{a.deliveries[0]});
  Succeed(a.deliveries[0], 2100);
  store_.reset();
  if (GetParam() == Backend::kSqlite) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(target_.c_str(), &db), SQLITE_OK);
    const std::string sql =
        "DROP TRIGGER deliveries_count_insert; DROP TRIGGER deliveries_count_delete; DROP TABLE "
        "delivery_counts; ALTER TABLE events DROP COLUMN resources; PRAGMA user_version=7;";
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK)
        << sqlite3_errmsg(db);
    sqlite3_close(db);
  } else {
    PGconn* c = PQconnectdb(target_.c_str());
    ASSERT_EQ(PQstatus(c), CONNECTION_OK);
    EXPECT_EQ(PgExec(c,
                     "DROP TRIGGER deliveries_count_insert ON deliveries; DROP TRIGGER "
                     "deliveries_count_update ON deliveries; DROP TRIGGER deliveries_count_delete "
                     "ON deliveries; DROP FUNCTION deliveries_count_insert(), "
                     "deliveries_count_update(), deliveries_count_delete(); DROP TABLE "
                     "delivery_counts, delivery_count_deltas; ALTER TABLE events DROP COLUMN "
                     "resources; DROP FUNCTION triggers_push_allowance(text, integer, bigint); "
                     "DROP INDEX deliveries_in_flight; DROP TABLE subscription_limits; ALTER "
                     "TABLE deliveries DROP COLUMN lease_node; UPDATE triggers_schema SET "
                     "version=" +
                         std::to_string(CountsMigrationIndex())),
              "");
    PQfinish(c);
  }
  ASSERT_NO_FATAL_FAILURE(Open());
  std::vector<std::pair<std::string, int64_t>> by_state;
  int64_t oldest = 0;
  ASSERT_OK(store_->DeliveryStats(3000, &by_state, &oldest));
  EXPECT_EQ(StateCounts(by_state.begin(), by_state.end()), (StateCounts{{kDeliveryPending, 2},
                                                                        {kDeliveryInFlight, 0},
                                                                        {kDeliverySucceeded, 1},
                                                                        {kDeliveryRetrying, 0},
                                                                        {kDeliveryDead, 0}}));
  EXPECT_EQ(oldest, 1001);
  Ingest({&s}, 3000);  // and they follow from there
  by_state.clear();
  ASSERT_OK(store_->DeliveryStats(3000, &by_state, &oldest));
  EXPECT_EQ(StateCounts(by_state.begin(), by_state.end())[kDeliveryPending], 3);
}

TEST_P(StoreConformance, TenantDeliveryStatsCountsOnlyThatTenant) {
  Subscription mine = AddSub(), theirs = AddSub("webhook", false, "globex");
  Ingested done = Ingest({&theirs}, 800);
  Ingest({&theirs}, 800);
  Ingest({&mine}, 1000);
  Ingest({&mine}, 1500);
  EXPECT_EQ(LeaseIds(theirs, 900, 1), std::vector<std::string>{done.deliveries[0]});
  Succeed(done.deliveries[0], 950);
  auto stats = [&](const std::string& tenant, int64_t now, int64_t* oldest) {
    std::vector<std::pair<std::string, int64_t>> by_state;
    *oldest = -1;
    EXPECT_OK(store_->TenantDeliveryStats(tenant, now, &by_state, oldest));
    EXPECT_EQ(by_state.size(), 5u);
    return StateCounts(by_state.begin(), by_state.end());
  };
  int64_t oldest = 0;
  EXPECT_EQ(stats(kTenant, 3000, &oldest), (StateCounts{{kDeliveryPending, 2},
                                                        {kDeliveryInFlight, 0},
                                                        {kDeliverySucceeded, 0},
                                                        {kDeliveryRetrying, 0},
                                                        {kDeliveryDead, 0}}));
  EXPECT_EQ(oldest, 1000);
  EXPECT_EQ(stats("globex", 3000, &oldest), (StateCounts{{kDeliveryPending, 1},
                                                         {kDeliveryInFlight, 0},
                                                         {kDeliverySucceeded, 1},
                                                         {kDeliveryRetrying, 0},
                                                         {kDeliveryDead, 0}}));
  EXPECT_EQ(oldest, 800);
  stats(kTenant, 900, &oldest);
  EXPECT_EQ(oldest, 0);  // globex's overdue one does not count here
  EXPECT_EQ(stats("nobody", 3000, &oldest), (StateCounts{{kDeliveryPending, 0},
                                                         {kDeliveryInFlight, 0},
                                                         {kDeliverySucceeded, 0},
                                                         {kDeliveryRetrying, 0},
                                                         {kDeliveryDead, 0}}));
  EXPECT_EQ(oldest, 0);
}

// --- pull ------------------------------------------------------------------------------

TEST_P(StoreConformance, ReceiveHandsOutFreshReceiptsAndCountsReceives) {
  Subscription p = NewSub(kTenant, 500, "pull");
  p.max_receives = 5;
  ASSERT_OK(store_->CreateSubscription(p));
  Ingested e1 = Ingest({&p}, 1000), e2 = Ingest({&p}, 1001);

  auto first = Recv(p, 2000);
  ASSERT_EQ(first.size(), 2u);
  EXPECT_EQ(EventIds(first), (std::vector<std::string>{e1.event_id, e2.event_id}));
  for (const auto& m : first) {
    EXPECT_EQ(m.delivery.attempts, 1);  // this receive included
    EXPECT_EQ(m.event.data, kData);
    // <delivery id>.<24 hex characters> (docs/api.md)
    EXPECT_EQ(m.receipt.size(), m.delivery.id.size() + 25)
        << m.receipt << ": docs/api.md promises <delivery id>.<24 hex characters>";
    EXPECT_EQ(m.receipt.substr(0, m.delivery.id.size() + 1), m.delivery.id + ".");
    EXPECT_EQ(m.receipt.find_first_not_of("0123456789abcdef", m.delivery.id.size() + 1),
              std::string::npos)
        << m.receipt;
  }
  EXPECT_NE(first[0].receipt, first[1].receipt);
  Delivery d = Get(e1.deliveries[0]);
  EXPECT_EQ(d.status, kDeliveryInFlight);
  EXPECT_EQ(d.attempts, 1);

  EXPECT_TRUE(Recv(p, 2001).empty());  // leased until the visibility timeout
  EXPECT_TRUE(Recv(p, 2000 + kLease - 1).empty());
  auto second = Recv(p, 2000 + kLease + 1, 1);  // max 1: the oldest
  ASSERT_EQ(second.size(), 1u);
  EXPECT_EQ(second[0].delivery.id, e1.deliveries[0]);
  EXPECT_EQ(second[0].delivery.attempts, 2);
  EXPECT_NE(second[0].receipt, first[0].receipt);
  EXPECT_EQ(Get(e1.deliveries[0]).attempts, 2);

  // Only the newest receipt is good.
  EXPECT_EQ(Settle(p, {first[0].receipt}, true, 0, 2000 + kLease + 2),
            std::vector<std::string>{"expired"});
  EXPECT_EQ(StateOf(e1.deliveries[0]), kDeliveryInFlight);
  EXPECT_EQ(Settle(p, {second[0].receipt}, true, 0, 2000 + kLease + 3),
            std::vector<std::string>{"acked"});
  d = Get(e1.deliveries[0]);
  EXPECT_EQ(d.status, kDeliverySucceeded);
  EXPECT_EQ(d.attempts, 2);
  EXPECT_EQ(EventIds(Recv(p, 2000 + kLease + 4)), std::vector<std::string>{e2.event_id});
}

TEST_P(StoreConformance, ReceiveBeyondMaxReceivesGoesDead) {
  Subscription p = NewSub(kTenant, 500, "pull");
  p.max_receives = 2;
  ASSERT_OK(store_->CreateSubscription(p));
  Ingested e = Ingest({&p}, 1000);
  const std::string id = e.deliveries[0];
  int64_t t = 2000;
  ASSERT_EQ(Recv(p, t).size(), 1u);
  t += kLease + 1;
  auto again = Recv(p, t);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].delivery.attempts, 2);
  t += kLease + 1;
  EXPECT_TRUE(Recv(p, t).empty());  // received twice already: dead instead
  Delivery d = Get(id);
  EXPECT_EQ(d.status, kDeliveryDead);
  EXPECT_EQ(d.attempts, 2);
  ASSERT_TRUE(d.last_error.has_value());
  EXPECT_FALSE(d.last_error->empty());
  EXPECT_TRUE(Recv(p, t + 1).empty());
  EXPECT_EQ(Settle(p, {again[0].receipt}, true, 0, t + 1), std::vector<std::string>{"expired"});
  EXPECT_EQ(StateOf(id), kDeliveryDead);

  // A retried message is received again, counting from the start.
  ASSERT_OK(store_->RetryDelivery(kTenant, id, t + 2));
  auto back = Recv(p, t + 2);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].delivery.id, id);
  EXPECT_EQ(back[0].delivery.attempts, 1);
}

TEST_P(StoreConformance, SettleAcksNacksAndRejectsStaleOrForeignReceipts) {
  Subscription p = AddSub("pull"), q = AddSub("pull");
  Ingested e1 = Ingest({&p}, 1000), e2 = Ingest({&p}, 1001), e3 = Ingest({&p}, 1002);
  Ingested f1 = Ingest({&q}, 1003);
  auto msgs = Recv(p, 2000);
  ASSERT_EQ(msgs.size(), 3u);
  auto theirs = Recv(q, 2000);
  ASSERT_EQ(theirs.size(), 1u);
  const std::string unknown = gen_.Next("dlv_", 2000) + ".0123456789abcdef01234567";

  EXPECT_EQ(Settle(p, {msgs[1].receipt, unknown, "garbage", theirs[0].receipt}, true, 0, 2100),
            (std::vector<std::string>{"acked", "not_found", "not_found", "not_found"}));
  EXPECT_EQ(StateOf(e2.deliveries[0]), kDeliverySucceeded);
  EXPECT_EQ(StateOf(f1.deliveries[0]), kDeliveryInFlight);  // the foreign receipt did nothing

  // Nack: visible again at visible_at_ms, not before.
  EXPECT_EQ(Settle(p, {msgs[0].receipt}, false, 5000, 2200), std::vector<std::string>{"nacked"});
  Delivery d = Get(e1.deliveries[0]);
  EXPECT_EQ(d.status, kDeliveryRetrying);
  EXPECT_EQ(d.next_attempt_at_ms, 5000);
  EXPECT_TRUE(Recv(p, 4999).empty());
  auto back = Recv(p, 5000);
  ASSERT_EQ(back.size(), 1u);
  EXPECT_EQ(back[0].delivery.id, e1.deliveries[0]);
  EXPECT_EQ(back[0].delivery.attempts, 2);
  // The nacked receipt is spent; the new one is good.
  EXPECT_EQ(Settle(p, {msgs[0].receipt}, true, 0, 5001), std::vector<std::string>{"expired"});

  // A lease that ran out: expired, and the message stays in flight until received again.
  EXPECT_EQ(Settle(p, {msgs[2].receipt}, true, 0, 2000 + kLease + 1),
            std::vector<std::string>{"expired"});
  EXPECT_EQ(StateOf(e3.deliveries[0]), kDeliveryInFlight);

  EXPECT_EQ(Settle(p, {back[0].receipt}, true, 0, 5002), std::vector<std::string>{"acked"});
  EXPECT_EQ(StateOf(e1.deliveries[0]), kDeliverySucceeded);
  // q's receipt is still good for q.
  EXPECT_EQ(Settle(q, {theirs[0].receipt}, true, 0, 5003), std::vector<std::string>{"acked"});
}

TEST_P(StoreConformance, OrderedPullHandsOutOneMessagePerKey) {
  Subscription p = AddSub("pull", true);
  Ingested a1 = Ingest({&p}, 1000, "A"), a2 = Ingest({&p}, 1001, "A"), b1 = Ingest({&p}, 1002, "B");
  auto first = Recv(p, 2000);
  EXPECT_EQ(EventIds(first), (std::vector<std::string>{a1.event_id, b1.event_id}));
  ASSERT_EQ(first.size(), 2u);
  EXPECT_TRUE(Recv(p, 2001).empty());
  // A nacked head comes back before anything later of its key.
  EXPECT_EQ(Settle(p, {first[0].receipt}, false, 2500, 2100), std::vector<std::string>{"nacked"});
  EXPECT_TRUE(Recv(p, 2400).empty());
  auto head = Recv(p, 2500);
  EXPECT_EQ(EventIds(head), std::vector<std::string>{a1.event_id});
  ASSERT_EQ(head.size(), 1u);
  EXPECT_EQ(Settle(p, {head[0].receipt}, true, 0, 2600), std::vector<std::string>{"acked"});
  EXPECT_EQ(EventIds(Recv(p, 2600)), std::vector<std::string>{a2.event_id});
}

// --- retention -------------------------------------------------------------------------

TEST_P(StoreConformance, PurgeDeletesOldEventsIdempotencyAndFinishedDeliveries) {
  Subscription a = AddSub(), b = AddSub();
  std::vector<IngestItem> old{Item(kTenant, "t", 1000), Item(kTenant, "t", 1000),
                              Item(kTenant, "t", 1000)};
  Idem(old[0], "k-old", "x");
  Route(old[0], a, 1000);
  Route(old[1], b, 1000);  // stays pending
  ASSERT_OK(Commit(old, 1000));
  ASSERT_EQ(LeaseIds(a, 2000).size(), 1u);
  Succeed(old[0].delivery_ids[0], 2000);

  std::vector<IngestItem> fresh{Item(kTenant, "t", 9000)};
  Idem(fresh[0], "k-new", "y");
  Route(fresh[0], a, 9000);
  ASSERT_OK(Commit(fresh, 9000));
  ASSERT_EQ(LeaseIds(a, 9500).size(), 1u);
  Succeed(fresh[0].delivery_ids[0], 9500);

  auto n = store_->Purge(5000, 5000, 10'000, {});
  ASSERT_OK(n);
  EXPECT_EQ(n->events, 3);
  EXPECT_EQ(n->deliveries, 1);
  EXPECT_EQ(n->orphans, 1);
  EXPECT_EQ(n->idempotency, 1);
  EXPECT_TRUE(n->complete);
  for (const auto& it : old) {
    EXPECT_TRUE(store_->GetEvent(kTenant, it.event.id).status().IsNotFound());
  }
  EXPECT_OK(store_->GetEvent(kTenant, fresh[0].event.id));
  // A finished delivery ages out; an unfinished one of a purged event can never be sent: dead.
  EXPECT_TRUE(store_->GetDelivery(kTenant, old[0].delivery_ids[0]).status().IsNotFound());
  Delivery orphan = Get(old[1].delivery_ids[0]);
  EXPECT_EQ(orphan.status, kDeliveryDead);
  ASSERT_TRUE(orphan.last_error.has_value());
  EXPECT_FALSE(orphan.last_error->empty());
  EXPECT_TRUE(LeaseIds(b, kFarFuture).empty());
  EXPECT_EQ(StateOf(fresh[0].delivery_ids[0]), kDeliverySucceeded);

  // The old key is free (a conflict had it been kept); the new one still holds.
  std::vector<IngestItem> retry{Item(kTenant, "t", 10'000), Item(kTenant, "t", 10'000)};
  Idem(retry[0], "k-old", "another body");
  Idem(retry[1], "k-new", "y");
  ASSERT_OK(Commit(retry, 10'000));
  EXPECT_EQ(retry[0].outcome, IngestItem::Outcome::kCreated);
  EXPECT_EQ(retry[1].outcome, IngestItem::Outcome::kDuplicate);
  EXPECT_EQ(retry[1].event.id, fresh[0].event.id);

  n = store_->Purge(5000, 5000, 10'001, {});
  ASSERT_OK(n);
  EXPECT_EQ(n->events, 0);
}

TEST_P(StoreConformance, PurgeWorksThroughManyChunks) {
  std::vector<IngestItem> items;
  for (int i = 0; i < 2503; ++i) items.push_back(Item(kTenant, "t", 1000 + i / 1000));
  ASSERT_OK(Commit(items, 4000));
  std::vector<IngestItem> keep{Item(kTenant, "t", 9000), Item("other", "t", 9000)};
  ASSERT_OK(Commit(keep, 9000));
  auto n = store_->Purge(5000, 0, 10'000, {});
  ASSERT_OK(n);
  EXPECT_EQ(n->events, 2503);
  EXPECT_TRUE(n->complete);
  EXPECT_GE(n->chunks, 3);  // no deadline: one pass, chunk after chunk
  auto list = store_->ListEvents(kTenant, "", {});
  ASSERT_OK(list);
  ASSERT_EQ(list->events.size(), 1u);
  EXPECT_EQ(list->events[0].id, keep[0].event.id);
  EXPECT_OK(store_->GetEvent("other", keep[1].event.id));
}

// Once its deadline has passed a pass stops after one chunk of each kind with
// work left; passes repeated until one is complete remove everything expired
// and nothing else.
TEST_P(StoreConformance, PurgeStopsAtItsDeadlineAndFinishesOverPasses) {
  Subscription a = AddSub(), b = AddSub();
  std::vector<IngestItem> old;
  for (int i = 0; i < 25; ++i) {
    old.push_back(Item(kTenant, "t", 1000));
    Idem(old.back(), "k" + std::to_string(i), "x");
    Route(old.back(), a, 1000);
    Route(old.back(), b, 1000);  // stays pending: an orphan once its event goes
  }
  ASSERT_OK(Commit(old, 1000));
  for (const auto& id : LeaseIds(a, 2000)) Succeed(id, 2000);
  std::vector<IngestItem> fresh{Item(kTenant, "t", 9000)};
  Idem(fresh[0], "k-new", "y");
  Route(fresh[0], a, 9000);
  ASSERT_OK(Commit(fresh, 9000));

  Store::PurgeLimits limits;
  limits.chunk_rows = 10;
  limits.deadline = std::chrono::steady_clock::now();  // passed: one round of chunks per pass
  Store::PurgeCounts total;
  std::vector<Store::PurgeCounts> passes;
  while (passes.size() < 10 && (passes.empty() || !passes.back().complete)) {
    auto n = store_->Purge(5000, 5000, 10'000, limits);
    ASSERT_OK(n);
    passes.push_back(n.value());
    total.events += n->events;
    total.deliveries += n->deliveries;
    total.orphans += n->orphans;
    total.idempotency += n->idempotency;
  }
  ASSERT_EQ(passes.size(), 3u);  // 10 + 10 + 5 of each kind
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_FALSE(passes[i].complete);
    EXPECT_EQ(passes[i].chunks, 4);
    EXPECT_EQ(passes[i].events, 10);
    EXPECT_EQ(passes[i].deliveries, 10);
    EXPECT_EQ(passes[i].orphans, 10);  // of the events the same pass deleted
    EXPECT_EQ(passes[i].idempotency, 10);
  }
  EXPECT_EQ(total.events, 25);
  EXPECT_EQ(total.deliveries, 25);
  EXPECT_EQ(total.orphans, 25);
  EXPECT_EQ(total.idempotency, 25);
  for (const auto& it : old) {
    EXPECT_TRUE(store_->GetEvent(kTenant, it.event.id).status().IsNotFound());
    EXPECT_TRUE(store_->GetDelivery(kTenant, it.delivery_ids[0]).status().IsNotFound());
    EXPECT_EQ(StateOf(it.delivery_ids[1]), kDeliveryDead);
  }
  EXPECT_OK(store_->GetEvent(kTenant, fresh[0].event.id));
  EXPECT_EQ(StateOf(fresh[0].delivery_ids[0]), kDeliveryPending);
  auto again = store_->Purge(5000, 5000, 10'001, limits);
  ASSERT_OK(again);
  EXPECT_TRUE(again->complete);
  EXPECT_EQ(again->events + again->deliveries + again->orphans + again->idempotency, 0);
  std::vector<IngestItem> retry{Item(kTenant, "t", 10'000)};
  Idem(retry[0], "k-new", "y");
  ASSERT_OK(Commit(retry, 10'000));
  EXPECT_EQ(retry[0].outcome, IngestItem::Outcome::kDuplicate);  // the fresh record holds
}

TEST_P(StoreConformance, KeyOfAPurgedEventMakesANewEvent) {
  std::vector<IngestItem> first{Item(kTenant, "t", 1000)};
  Idem(first[0], "k", "x");
  ASSERT_OK(Commit(first, 1000));
  auto n = store_->Purge(5000, 0, 6000, {});  // the event goes, its idempotency record stays
  ASSERT_OK(n);
  ASSERT_EQ(n->events, 1);
  std::vector<IngestItem> again{Item(kTenant, "t", 7000)};
  const std::string id = again[0].event.id;
  Idem(again[0], "k", "x");
  ASSERT_OK(Commit(again, 7000));
  EXPECT_EQ(again[0].outcome, IngestItem::Outcome::kCreated);  // never a duplicate of nothing
  EXPECT_EQ(again[0].event.id, id);
  EXPECT_OK(store_->GetEvent(kTenant, id));
}

// --- API keys --------------------------------------------------------------------------

// 32 bytes that start with 0x00 0xff and end with 0x00: they differ only after a NUL.
std::string BinaryHash(char fill) {
  std::string h("\x00\xff", 2);
  h += std::string(29, fill);
  h += '\0';
  return h;
}

TEST_P(StoreConformance, KeysAreFoundByTheirBinaryHash) {
  ApiKey k1;
  k1.id = gen_.Next("key_", 5);
  k1.tenant = kTenant;
  k1.scopes = kScopeIngest | kScopeRead;
  k1.name = "ci \xe2\x9c\x93";
  k1.hash = BinaryHash('a');
  k1.created_at_ms = 5;
  ApiKey k2 = k1;
  k2.id = gen_.Next("key_", 6);
  k2.scopes = kScopeConsume;
  k2.name.reset();
  k2.hash = BinaryHash('b');
  k2.created_at_ms = 6;
  ASSERT_EQ(k1.hash.size(), 32u);
  ASSERT_OK(store_->CreateKey(k1));
  ASSERT_OK(store_->CreateKey(k2));

  auto f1 = store_->FindKeyByHash(k1.hash);
  ASSERT_OK(f1);
  EXPECT_EQ(f1->id, k1.id);
  EXPECT_EQ(f1->tenant, kTenant);
  EXPECT_EQ(f1->scopes, static_cast<uint32_t>(kScopeIngest | kScopeRead));
  EXPECT_EQ(f1->name, k1.name);
  EXPECT_TRUE(f1->hash == k1.hash);
  EXPECT_EQ(f1->hash.size(), 32u);
  EXPECT_FALSE(f1->admin);
  EXPECT_EQ(f1->created_at_ms, 5);
  EXPECT_EQ(f1->revoked_at_ms, std::nullopt);
  auto f2 = store_->FindKeyByHash(k2.hash);
  ASSERT_OK(f2);
  EXPECT_EQ(f2->id, k2.id);
  EXPECT_EQ(f2->name, std::nullopt);
  EXPECT_EQ(f2->scopes, static_cast<uint32_t>(kScopeConsume));

  EXPECT_TRUE(store_->FindKeyByHash(BinaryHash('c')).status().IsNotFound());
  EXPECT_TRUE(store_->FindKeyByHash(std::string("\x00\xff", 2)).status().IsNotFound());
  EXPECT_TRUE(store_->FindKeyByHash(core::Sha256("trg_nope")).status().IsNotFound());
  ApiKey same_hash = k1;
  same_hash.id = gen_.Next("key_", 7);
  EXPECT_FALSE(store_->CreateKey(same_hash).ok());  // hashes are unique

  ApiKey real = k1;
  real.id = gen_.Next("key_", 8);
  real.hash = core::Sha256("trg_real");
  ASSERT_OK(store_->CreateKey(real));
  auto fr = store_->FindKeyByHash(real.hash);
  ASSERT_OK(fr);
  EXPECT_EQ(fr->id, real.id);
}

TEST_P(StoreConformance, ListKeysSkipsAdminKeysAndScopesToTheTenant) {
  auto has_admin = store_->HasAdminKey();
  ASSERT_OK(has_admin);
  EXPECT_FALSE(has_admin.value());
  ApiKey admin;
  admin.id = gen_.Next("key_", 1);
  admin.admin = true;
  admin.scopes = kScopeIngest | kScopeRead | kScopeConsume | kScopeManage;
  admin.hash = core::Sha256("trg_admin");
  admin.created_at_ms = 1;
  ASSERT_OK(store_->CreateKey(admin));
  has_admin = store_->HasAdminKey();
  ASSERT_OK(has_admin);
  EXPECT_TRUE(has_admin.value());

  std::vector<std::string> acme, all;
  for (int i = 0; i < 4; ++i) {
    ApiKey k;
    k.id = gen_.Next("key_", 10 + i);
    k.tenant = i == 2 ? "other" : kTenant;
    k.scopes = kScopeRead;
    k.hash = core::Sha256("trg_" + std::to_string(i));
    k.created_at_ms = 10 + i;
    ASSERT_OK(store_->CreateKey(k));
    all.push_back(k.id);
    if (k.tenant == kTenant) acme.push_back(k.id);
  }
  auto ids = [](const std::vector<ApiKey>& keys) {
    std::vector<std::string> out;
    for (const auto& k : keys) out.push_back(k.id);
    return out;
  };
  auto every = store_->ListKeys("", {});
  ASSERT_OK(every);
  EXPECT_EQ(ids(every.value()), all);  // ordered by id, admin not listed
  auto mine = store_->ListKeys(kTenant, {});
  ASSERT_OK(mine);
  EXPECT_EQ(ids(mine.value()), acme);
  EXPECT_EQ(mine->front().hash, core::Sha256("trg_0"));
  auto nobody = store_->ListKeys("nobody", {});
  ASSERT_OK(nobody);
  EXPECT_TRUE(nobody->empty());

  ListOptions o;
  o.limit = 2;
  std::vector<std::string> paged;
  for (int page = 0; page < 4; ++page) {
    auto r = store_->ListKeys(kTenant, o);
    ASSERT_OK(r);
    EXPECT_LE(r->size(), 2u);
    if (r->empty()) break;
    for (const auto& k : *r) paged.push_back(k.id);
    o.after_id = r->back().id;
  }
  EXPECT_EQ(paged, acme);
}

TEST_P(StoreConformance, RevokeKeyOnceByItsTenantOrTheAdmin) {
  ApiKey k, j, admin;
  k.id = gen_.Next("key_", 1);
  k.tenant = kTenant;
  k.scopes = kScopeIngest;
  k.hash = BinaryHash('k');
  j.id = gen_.Next("key_", 2);
  j.tenant = "other";
  j.scopes = kScopeRead;
  j.hash = BinaryHash('j');
  admin.id = gen_.Next("key_", 3);
  admin.admin = true;
  admin.scopes = kScopeManage;
  admin.hash = BinaryHash('z');
  for (const auto* key : {&k, &j, &admin}) ASSERT_OK(store_->CreateKey(*key));

  EXPECT_TRUE(store_->RevokeKey("other", k.id, 100).status().IsNotFound());
  EXPECT_TRUE(store_->RevokeKey(kTenant, gen_.Next("key_", 4), 100).status().IsNotFound());
  EXPECT_TRUE(store_->RevokeKey(kTenant, admin.id, 100).status().IsNotFound());
  auto revoked = store_->RevokeKey(kTenant, k.id, 100);
  ASSERT_OK(revoked);
  EXPECT_TRUE(revoked.value() == k.hash);
  EXPECT_TRUE(store_->RevokeKey(kTenant, k.id, 101).status().IsNotFound());  // already
  auto by_admin = store_->RevokeKey("", j.id, 200);                          // any tenant's
  ASSERT_OK(by_admin);
  EXPECT_TRUE(by_admin.value() == j.hash);

  auto f = store_->FindKeyByHash(k.hash);
  ASSERT_OK(f);
  EXPECT_EQ(f->revoked_at_ms, 100);  // revoked keys are still found
  auto hashes = [&](int64_t since) {
    auto r = store_->RevokedKeyHashesSince(since, 300);
    EXPECT_OK(r);
    return r.ok() ? Sorted(r.value()) : std::vector<std::string>{};
  };
  EXPECT_EQ(hashes(100), Sorted({k.hash, j.hash}));
  EXPECT_EQ(hashes(101), std::vector<std::string>{j.hash});
  EXPECT_TRUE(hashes(201).empty());
  auto has_admin = store_->HasAdminKey();
  ASSERT_OK(has_admin);
  EXPECT_TRUE(has_admin.value());
  auto fa = store_->FindKeyByHash(admin.hash);
  ASSERT_OK(fa);
  EXPECT_TRUE(fa->admin);
  EXPECT_EQ(fa->tenant, "");
  EXPECT_EQ(fa->revoked_at_ms, std::nullopt);
}

// --- restarts and several users ----------------------------------------------------------

TEST_P(StoreConformance, AReopenedStoreKeepsEverything) {
  Subscription s = AddSub();
  s.description = "kept";
  s.updated_at_ms = 600;
  ASSERT_OK(Update(s));
  ApiKey k;
  k.id = gen_.Next("key_", 1);
  k.tenant = kTenant;
  k.scopes = kScopeIngest;
  k.hash = BinaryHash('r');
  ApiKey admin = k;
  admin.id = gen_.Next("key_", 2);
  admin.tenant = "";
  admin.admin = true;
  admin.hash = core::Sha256("trg_admin");
  ASSERT_OK(store_->CreateKey(k));
  ASSERT_OK(store_->CreateKey(admin));
  std::vector<IngestItem> items{Item(kTenant, "t", 1000), Item(kTenant, "t", 1000)};
  Idem(items[0], "k1", "b");
  Route(items[0], s, 1000);
  Route(items[1], s, 1000);
  ASSERT_OK(Commit(items, 1000));
  ASSERT_EQ(LeaseIds(s, 2000, 1).size(), 1u);
  Succeed(items[0].delivery_ids[0], 2000);

  ASSERT_NO_FATAL_FAILURE(Open());
  ASSERT_NO_FATAL_FAILURE(Open());  // the migrations run again: nothing to do
  EXPECT_OK(store_->Ping());

  auto e = store_->GetEvent(kTenant, items[0].event.id);
  ASSERT_OK(e);
  EXPECT_EQ(e->data, kData);
  auto got = store_->GetSubscription(kTenant, s.id);
  ASSERT_OK(got);
  ExpectSameSubscription(got.value(), s);
  Delivery d = Get(items[0].delivery_ids[0]);
  EXPECT_EQ(d.status, kDeliverySucceeded);
  ASSERT_EQ(d.attempt_log.size(), 1u);
  EXPECT_EQ(d.attempt_log[0].status_code, 200);
  auto f = store_->FindKeyByHash(k.hash);
  ASSERT_OK(f);
  EXPECT_EQ(f->id, k.id);
  auto has_admin = store_->HasAdminKey();
  ASSERT_OK(has_admin);
  EXPECT_TRUE(has_admin.value());
  auto loaded = store_->LoadTenantSubscriptions(kTenant);
  ASSERT_OK(loaded);
  ASSERT_EQ(loaded->subscriptions.size(), 1u);
  EXPECT_EQ(loaded->subscriptions[0].id, s.id);
  EXPECT_EQ(loaded->generation, 2);  // created, updated

  // Idempotency records and pending work survive too.
  std::vector<IngestItem> retry{Item(kTenant, "t", 3000)};
  Idem(retry[0], "k1", "b");
  ASSERT_OK(Commit(retry, 3000));
  EXPECT_EQ(retry[0].outcome, IngestItem::Outcome::kDuplicate);
  EXPECT_EQ(retry[0].event.id, items[0].event.id);
  EXPECT_EQ(LeaseIds(s, 3000), std::vector<std::string>{items[1].delivery_ids[0]});
  auto list = store_->ListEvents(kTenant, "", {});
  ASSERT_OK(list);
  EXPECT_EQ(list->events.size(), 2u);
}

// On PostgreSQL, due times and lease expiries come from the database's clock:
// two nodes whose clocks are years apart agree on them.
TEST_P(StoreConformance, NodesWithSkewedClocksAgreeOnLeasesByTheDatabaseClock) {
  if (GetParam() != Backend::kPostgres) GTEST_SKIP() << "one process owns the embedded store";
  PostgresOptions o;
  o.url = target_;
  o.listen = false;
  auto opened = OpenPostgres(o);  // database_clock: the default
  ASSERT_OK(opened);
  Store& db = *opened.value();
  const int64_t behind = 1000;              // 1970
  const int64_t ahead = 4'000'000'000'000;  // 2096
  Subscription s = NewSub(kTenant, behind);
  ASSERT_OK(db.CreateSubscription(s));
  std::vector<IngestItem> items{Item(kTenant, "t", behind)};
  Route(items[0], s, behind);
  std::vector<IngestItem*> ptrs{&items[0]};
  ASSERT_OK(db.CommitIngest(ptrs, behind, kDay, nullptr));

  // Due now by the database's clock, whatever the node's says.
  auto a = db.LeaseDue(s.id, behind, 10, behind + 60'000);
  ASSERT_OK(a);
  ASSERT_EQ(a->size(), 1u);
  // A node far ahead cannot take the lease: it has 60 s to run on the database's clock.
  auto b = db.LeaseDue(s.id, ahead, 10, ahead + 60'000);
  ASSERT_OK(b);
  EXPECT_TRUE(b->empty());

  // A retry 60 s out is not due for the node ahead either.
  Store::AttemptResult r =
      Outcome(items[0].delivery_ids[0], kDeliveryRetrying, behind, 500, behind + 60'000);
  r.lease_token = (*a)[0].receipt;
  ASSERT_OK(db.RecordAttempts({r}, behind));
  auto due = db.SubscriptionsWithDueWork(ahead);
  ASSERT_OK(due);
  EXPECT_TRUE(due->empty());
  b = db.LeaseDue(s.id, ahead, 10, ahead + 60'000);
  ASSERT_OK(b);
  EXPECT_TRUE(b->empty());

  // A revocation stamped by the node behind is seen by the node ahead's poll.
  ApiKey k;
  k.id = gen_.Next("key_", 1);
  k.tenant = kTenant;
  k.scopes = kScopeIngest;
  k.hash = BinaryHash('k');
  ASSERT_OK(db.CreateKey(k));
  ASSERT_OK(db.RevokeKey(kTenant, k.id, behind));
  auto revoked = db.RevokedKeyHashesSince(ahead - 10'000, ahead);
  ASSERT_OK(revoked);
  EXPECT_EQ(revoked.value(), std::vector<std::string>{k.hash});
}

TEST_P(StoreConformance, SeveralStoresShareOneNewDatabase) {
  std::string fresh;
  ASSERT_NO_FATAL_FAILURE(fresh = NewDatabase());
  constexpr int kNodes = 3;
  std::vector<std::optional<Result<std::unique_ptr<Store>>>> opened(kNodes);
  if (GetParam() == Backend::kPostgres) {  // several nodes starting together: one migrates
    std::vector<std::thread> threads;
    for (int i = 0; i < kNodes; ++i) {
      threads.emplace_back([&, i] { opened[i].emplace(OpenAt(fresh)); });
    }
    for (auto& t : threads) t.join();
  } else {
    // The embedded store belongs to one process. (Connections that open a brand-new file at
    // the same moment can fail with "database is locked" while they switch it to WAL.)
    for (int i = 0; i < kNodes; ++i) opened[i].emplace(OpenAt(fresh));
  }
  std::vector<std::unique_ptr<Store>> nodes;
  for (auto& r : opened) {
    ASSERT_TRUE(r.has_value());
    ASSERT_OK(*r);
    nodes.push_back(std::move(r->value()));
  }
  // One database: what one node writes, the others read.
  Subscription s = NewSub(kTenant, 500);
  ASSERT_OK(nodes[0]->CreateSubscription(s));
  EXPECT_OK(nodes[1]->GetSubscription(kTenant, s.id));
  std::vector<IngestItem> items{Item(kTenant, "t", 1000)};
  Route(items[0], s, 1000);
  std::vector<IngestItem*> ptrs{&items[0]};
  ASSERT_OK(nodes[1]->CommitIngest(ptrs, 1000, kDay, nullptr));
  EXPECT_OK(nodes[2]->GetEvent(kTenant, items[0].event.id));
  auto leased = nodes[2]->LeaseDue(s.id, 2000, 10, 2000 + kLease);
  ASSERT_OK(leased);
  EXPECT_EQ(leased->size(), 1u);
  auto again = nodes[0]->LeaseDue(s.id, 2000, 10, 2000 + kLease);
  ASSERT_OK(again);
  EXPECT_TRUE(again->empty());  // leased by another node
}

// PostgreSQL keeps a webhook subscription's limits in the database, so they
// hold across the nodes sharing it (two stores here); SQLite has one process
// and the dispatcher keeps them in memory (these tests skip it).
constexpr const char kInMemoryLimits[] = "one process owns the embedded store: limits in memory";

TEST_P(StoreConformance, MaxInFlightCountsEveryNodesUnexpiredLeases) {
  if (GetParam() != Backend::kPostgres) GTEST_SKIP() << kInMemoryLimits;
  auto other = OpenAt(target_);
  ASSERT_OK(other);
  Store& node2 = *other.value();
  Subscription s = NewSub(kTenant, 500);
  s.max_in_flight = 3;
  ASSERT_OK(store_->CreateSubscription(s));
  for (int i = 0; i < 10; ++i) Ingest({&s}, 1000 + i);
  EXPECT_EQ(LeaseIds(s, 2000, 2).size(), 2u);
  auto b = node2.LeaseDue(s.id, 2000, 10, 2000 + kLease);
  ASSERT_OK(b);
  EXPECT_EQ(b->size(), 1u);  // 3 - the 2 node 1 holds
  EXPECT_TRUE(LeaseIds(s, 2000).empty());
  // An outcome frees a slot, for any node.
  Succeed((*b)[0].delivery.id, 2100);
  b = node2.LeaseDue(s.id, 2200, 10, 2200 + kLease);
  ASSERT_OK(b);
  EXPECT_EQ(b->size(), 1u);
  // Expired leases hold no slot (a node that died): all 3 again.
  EXPECT_EQ(LeaseIds(s, 2200 + kLease + 1).size(), 3u);
}

// A node started again (same node_id) returns the leases its killed
// process held: their slots are free at once, not when the leases run out.
TEST_P(StoreConformance, ARestartedNodeReturnsItsPredecessorsLeases) {
  if (GetParam() != Backend::kPostgres) GTEST_SKIP() << kInMemoryLimits;
  PostgresOptions o;
  o.url = target_;
  o.listen = false;
  o.database_clock = false;
  o.node_id = "host:/var/lib/triggers-1";
  auto first = OpenPostgres(o);
  ASSERT_OK(first);
  Subscription s = NewSub(kTenant, 500);
  s.max_in_flight = 2;
  ASSERT_OK(store_->CreateSubscription(s));
  for (int i = 0; i < 5; ++i) Ingest({&s}, 1000 + i);
  auto held = first.value()->LeaseDue(s.id, 2000, 10, 2000 + kLease);
  ASSERT_OK(held);
  ASSERT_EQ(held->size(), 2u);
  EXPECT_TRUE(LeaseIds(s, 2000).empty());  // another node: no slot
  first.value().reset();                   // (killed: nothing returned)
  auto other = o;
  other.node_id = "host:/var/lib/triggers-2";
  ASSERT_OK(OpenPostgres(other));  // another node's start returns nothing
  EXPECT_TRUE(LeaseIds(s, 2000).empty());
  ASSERT_OK(OpenPostgres(o));  // the same node again
  EXPECT_EQ(LeaseIds(s, 2000).size(), 2u);
}

TEST_P(StoreConformance, RateLimitIsOneBucketForEveryNode) {
  if (GetParam() != Backend::kPostgres) GTEST_SKIP() << kInMemoryLimits;
  auto other = OpenAt(target_);
  ASSERT_OK(other);
  Store& node2 = *other.value();
  Subscription s = NewSub(kTenant, 500);
  s.rate_limit_per_s = 2;  // burst 2, a token every 500 ms
  ASSERT_OK(store_->CreateSubscription(s));
  for (int i = 0; i < 20; ++i) Ingest({&s}, 1000 + i);
  auto lease2 = [&](int64_t now) { return LeaseIdsOn(node2, s, now).size(); };
  EXPECT_EQ(LeaseIds(s, 2000).size(), 2u);  // the full bucket
  EXPECT_EQ(lease2(2000), 0u);
  EXPECT_EQ(lease2(2499), 0u);
  EXPECT_EQ(LeaseIds(s, 2500).size(), 1u);
  EXPECT_EQ(lease2(3000), 1u);
  EXPECT_EQ(lease2(9000), 2u);  // refilled up to the burst, not beyond
  EXPECT_EQ(LeaseIds(s, 9000).size(), 0u);
}

TEST_P(StoreConformance, BreakerOpenedByOneNodesFailuresStopsTheOther) {
  if (GetParam() != Backend::kPostgres) GTEST_SKIP() << kInMemoryLimits;
  auto other = OpenAt(target_);
  ASSERT_OK(other);
  Store& node2 = *other.value();
  Subscription s = AddSub();
  for (int i = 0; i < 30; ++i) Ingest({&s}, 1000 + i);
  auto lease2 = [&](int64_t now) { return LeaseIdsOn(node2, s, now); };
  auto fail_all = [&](const std::vector<std::string>& ids, int64_t now) {
    std::vector<Store::AttemptResult> out;
    for (const auto& id : ids) out.push_back(Outcome(id, kDeliveryRetrying, now, 500, now));
    ASSERT_OK(store_->RecordAttempts(out, now));
  };
  auto first = LeaseIds(s, 2000, 9);
  ASSERT_EQ(first.size(), 9u);
  fail_all(first, 2100);  // 9 failures: still closed
  auto tenth = lease2(2200);
  ASSERT_FALSE(tenth.empty());
  fail_all({tenth[0]}, 2300);  // the 10th, seen by node 2: open for 5 s
  EXPECT_TRUE(LeaseIds(s, 2400).empty());
  EXPECT_TRUE(lease2(7299).empty());
  auto probe = LeaseIds(s, 7300);  // half-open: one probe, for one node only
  ASSERT_EQ(probe.size(), 1u);
  EXPECT_TRUE(lease2(7300).empty());
  fail_all(probe, 7400);  // the probe failed: open for 10 s
  EXPECT_TRUE(lease2(17399).empty());
  probe = lease2(17400);
  ASSERT_EQ(probe.size(), 1u);
  Succeed(probe[0], 17500);  // closed again
  EXPECT_EQ(LeaseIds(s, 17600, 5).size(), 5u);
}

TEST_P(StoreConformance, ConcurrentLeasesNeverHandOutADeliveryTwice) {
  Subscription s = AddSub();
  std::vector<IngestItem> items;
  for (int i = 0; i < 200; ++i) {
    items.push_back(Item(kTenant, "t", 1000));
    Route(items.back(), s, 1000);
  }
  ASSERT_OK(Commit(items, 1000));
  constexpr int kWorkers = 4;
  std::vector<std::vector<std::string>> got(kWorkers);
  std::atomic<int> errors{0};
  std::vector<std::thread> workers;
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      for (int round = 0; round < 200; ++round) {
        auto r = store_->LeaseDue(s.id, 2000, 7, 2000 + kLease);
        if (!r.ok()) {
          ++errors;
          return;
        }
        if (r->empty()) return;
        for (const auto& l : *r) got[w].push_back(l.delivery.id);
      }
    });
  }
  for (auto& t : workers) t.join();
  EXPECT_EQ(errors.load(), 0);
  std::vector<std::string> all;
  for (const auto& g : got) all.insert(all.end(), g.begin(), g.end());
  EXPECT_EQ(all.size(), 200u);
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), all.size());
  EXPECT_TRUE(LeaseIds(s, 2000).empty());
}

TEST_P(StoreConformance, ConcurrentCommitsAndReadsAllSucceed) {
  Subscription s = AddSub();
  constexpr int kWriters = 4, kCommits = 20, kPerCommit = 5;
  std::atomic<int> errors{0};
  std::atomic<bool> writing{true};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      core::UlidGenerator ids(100 + w);  // one generator per thread
      for (int c = 0; c < kCommits; ++c) {
        std::vector<IngestItem> items(kPerCommit);
        std::vector<IngestItem*> ptrs;
        for (auto& it : items) {
          it.event.id = ids.Next("evt_", 1000);
          it.event.tenant = kTenant;
          it.event.type = "t";
          it.event.data = kData;
          it.event.received_at_ms = 1000;
          it.subscription_ids = {s.id};
          it.subscription_ordered = {0};
          it.delivery_ids = {ids.Next("dlv_", 1000)};
          ptrs.push_back(&it);
        }
        if (!store_->CommitIngest(ptrs, 1000, kDay, nullptr).ok()) ++errors;
      }
    });
  }
  std::thread reader([&] {
    while (writing.load()) {
      if (!store_->ListEvents(kTenant, "", {}).ok()) ++errors;
      if (!store_->ListDeliveries(kTenant, {}, Page(10)).ok()) ++errors;
    }
  });
  for (auto& t : threads) t.join();
  writing = false;
  reader.join();
  EXPECT_EQ(errors.load(), 0);

  ListOptions o;
  o.limit = 100;
  size_t events = 0;
  for (int page = 0; page < 10; ++page) {
    auto r = store_->ListEvents(kTenant, "", o);
    ASSERT_OK(r);
    events += r->events.size();
    if (!r->more) break;
    o.after_id = r->resume_after;
  }
  EXPECT_EQ(events, static_cast<size_t>(kWriters * kCommits * kPerCommit));
  EXPECT_EQ(Lease(s, 2000, 1000).size(), static_cast<size_t>(kWriters * kCommits * kPerCommit));
}

TEST_P(StoreConformance, WorkListenerHearsCommittedDeliveries) {
  if (GetParam() == Backend::kSqlite) {
    GTEST_SKIP() << "the embedded store has one process and never calls the work listener";
  }
  struct Heard {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::vector<std::string>> calls;
  };
  auto heard = std::make_shared<Heard>();  // the store may call it until it is destroyed
  store_->SetWorkListener([heard](const std::vector<std::string>& subs) {
    std::lock_guard lock(heard->mu);
    heard->calls.push_back(subs);
    heard->cv.notify_all();
  });
  auto wait_for = [&](const std::string& sub_id) {
    std::unique_lock lock(heard->mu);
    return heard->cv.wait_for(lock, std::chrono::seconds(10), [&] {
      for (const auto& c : heard->calls) {
        if (c.empty() || std::find(c.begin(), c.end(), sub_id) != c.end()) return true;
      }
      return false;
    });
  };
  Subscription s = AddSub(), t = AddSub();
  Ingest({&s}, 1000);
  EXPECT_TRUE(wait_for(s.id)) << "this node's commit was not heard";

  // Another node's commit.
  auto other = OpenAt(target_);
  ASSERT_OK(other);
  std::vector<IngestItem> items{Item(kTenant, "t", 2000)};
  Route(items[0], t, 2000);
  std::vector<IngestItem*> ptrs{&items[0]};
  ASSERT_OK(other.value()->CommitIngest(ptrs, 2000, kDay, nullptr));
  EXPECT_TRUE(wait_for(t.id)) << "another node's commit was not heard";
}

INSTANTIATE_TEST_SUITE_P(Backends, StoreConformance,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres),
                         [](const ::testing::TestParamInfo<Backend>& info) {
                           return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
                         });

}  // namespace
}  // namespace triggers::store
