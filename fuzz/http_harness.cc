#include "http_harness.h"

#include <boost/asio/post.hpp>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <optional>

#include "core/crypto.h"
#include "core/ids.h"
#include "delivery/subscription_cache.h"
#include "obs/logger.h"
#include "store/ingest_writer.h"
#include "targets.h"
#include "triggers/clock.h"
#include "triggers/store.h"

namespace triggers::fuzz {
namespace {

HttpHarness* g_harness = nullptr;

class NullSink final : public api::StreamSink {
 public:
  bool Write(std::string data) override {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    bytes_ += data.size();
    return bytes_ < 1 << 20;  // like a reader that falls behind
  }
  void Close() override {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  // Ended when dropped (no connection to close).
  void OnEnd(std::function<void()> fn) override {
    std::lock_guard lock(mu_);
    on_end_ = std::move(fn);
  }
  ~NullSink() override {
    if (on_end_) on_end_();
  }

 private:
  std::mutex mu_;
  size_t bytes_ = 0;
  bool closed_ = false;
  std::function<void()> on_end_;
};

void StopHarness() {
  delete g_harness;
  g_harness = nullptr;
}

std::string MakeTempDir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string tmpl = std::string(tmp && *tmp ? tmp : "/tmp") + "/triggers-fuzz-XXXXXX";
  FUZZ_CHECK(::mkdtemp(tmpl.data()) != nullptr, "cannot make a temporary directory");
  return tmpl;
}

}  // namespace

HttpHarness& HttpHarness::Get() {
  static std::once_flag once;
  std::call_once(once, [] {
    g_harness = new HttpHarness();
    std::atexit(StopHarness);
  });
  return *g_harness;
}

HttpHarness::HttpHarness() : dir_(MakeTempDir()) {
  obs::SetLogLevel(obs::Level::kError);  // handlers' warnings would drown the fuzzer's output
  admin_hash_ = core::Sha256(kAdminKey);
  tenant_hash_ = core::Sha256(kTenantKey);
  store::SqliteOptions so;
  so.path = dir_ + "/triggers.db";
  so.read_connections = 2;
  auto opened = store::OpenSqlite(so);
  FUZZ_CHECK(opened.ok(), "cannot open the SQLite store");
  store_ = std::move(opened.value());
  ApiKey key;
  key.created_at_ms = SystemClock()->NowMs();
  key.id = core::NewId("key_", key.created_at_ms);
  key.tenant = "acme";
  key.name = "fuzz";
  key.scopes = kScopeIngest | kScopeRead | kScopeConsume | kScopeManage;
  key.hash = tenant_hash_;
  FUZZ_CHECK(store_->CreateKey(key).ok(), "cannot create the tenant key");
  Subscription sub;
  sub.id = std::string(kPullSubscriptionId);
  sub.tenant = "acme";
  sub.kind = "pull";
  sub.created_at_ms = sub.updated_at_ms = key.created_at_ms;
  FUZZ_CHECK(store_->CreateSubscription(sub).ok(), "cannot create the pull subscription");
  // No rate limit worth the name: a 429 would only hide the handlers.
  keys_ = std::make_unique<api::KeyCache>(store_.get(), SystemClock(), std::string(kAdminKey), 1e9);
  subscriptions_ = std::make_unique<delivery::SubscriptionCache>(store_.get());
  FUZZ_CHECK(subscriptions_->LoadAll().ok(), "cannot load subscriptions");
  inbox_ = std::make_unique<api::Inbox>(
      [this](std::function<void()> fn) { return RunBlocking(std::move(fn)); }, SystemClock());
  keys_->SetRevokedListener([this](const std::string& key_hash) {
    event_stream_.EndKey(key_hash);
    inbox_->EndKey(key_hash);
  });
  store::IngestWriter::Options wo;  // completions run inline on the writer thread
  wo.on_deliveries = [this](const std::vector<std::string>& subs) { inbox_->Notify(subs); };
  wo.on_committed = [this](const std::vector<store::IngestItem*>& items) {
    if (!event_stream_.active()) return;
    std::vector<Event> created;
    for (const auto* it : items) {
      if (it->outcome == store::IngestItem::Outcome::kCreated) created.push_back(it->event);
    }
    if (!created.empty()) event_stream_.Publish(std::move(created));
  };
  wo.matcher = subscriptions_.get();
  writer_ = std::make_unique<store::IngestWriter>(store_.get(), SystemClock(), wo);
  ctx_.store = store_.get();
  ctx_.writer = writer_.get();
  ctx_.keys = keys_.get();
  ctx_.clock = SystemClock();
  ctx_.run_blocking = [this](std::function<void()> fn) { return RunBlocking(std::move(fn)); };
  ctx_.subscriptions = subscriptions_.get();
  ctx_.allow_private_destinations = true;
  ctx_.inbox = inbox_.get();
  ctx_.event_stream = &event_stream_;
  ctx_.inbox_notify = [this](const std::vector<std::string>& subs) { inbox_->Notify(subs); };
  ctx_.start_ms = SystemClock()->NowMs();
  router_ = std::make_unique<api::Router>(&ctx_);
}

HttpHarness::~HttpHarness() {
  ctx_.shutting_down.store(true);
  inbox_->Shutdown();
  event_stream_.Shutdown();
  writer_->Stop();
  pool_.join();
  router_.reset();
  writer_.reset();
  inbox_.reset();
  store_.reset();
  std::error_code ec;
  std::filesystem::remove_all(dir_, ec);
}

bool HttpHarness::RunBlocking(std::function<void()> fn) {
  boost::asio::post(pool_, std::move(fn));
  return true;
}

api::Response HttpHarness::Dispatch(const api::Request& req) {
  struct Wait {
    std::mutex mu;
    std::condition_variable cv;
    std::optional<api::Response> response;
  };
  auto w = std::make_shared<Wait>();
  router_->Handle(req, [w](api::Response&& r) {
    std::lock_guard lock(w->mu);
    w->response = std::move(r);
    w->cv.notify_all();
  });
  std::unique_lock lock(w->mu);
  while (!w->cv.wait_for(lock, std::chrono::milliseconds(20),
                         [&] { return w->response.has_value(); })) {
    lock.unlock();
    inbox_->EndKey(tenant_hash_);
    inbox_->EndKey(admin_hash_);
    lock.lock();
  }
  api::Response r = std::move(*w->response);
  if (r.stream) {
    // A live tail: open it on a sink that takes what comes, then end it as a
    // revocation of the key would (the client cannot hang up here).
    r.stream(std::make_shared<NullSink>());
    event_stream_.EndKey(tenant_hash_);
    event_stream_.EndKey(admin_hash_);
  }
  return r;
}

}  // namespace triggers::fuzz
