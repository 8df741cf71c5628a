#include "app/serve.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "api/auth.h"
#include "api/context.h"
#include "api/event_stream.h"
#include "api/inbox.h"
#include "api/router.h"
#include "app/data_dir.h"
#include "aws/credentials.h"
#include "aws/endpoint.h"
#include "core/crypto.h"
#include "core/ids.h"
#include "core/keys.h"
#include "core/time_util.h"
#include "delivery/curl_sender.h"
#include "delivery/dispatcher.h"
#include "delivery/subscription_cache.h"
#include "http/server.h"
#include "obs/logger.h"
#include "store/ingest_writer.h"
#include "triggers/store.h"
#include "triggers/version.h"

namespace triggers::app {
namespace {

void LogError(const std::string& msg, const std::string& detail = "") {
  obs::LogLine l(obs::Level::kError, msg);
  if (!detail.empty()) l.Str("error", detail);
  l.Emit();
}

// Writes the admin key to <data-dir>/admin.key with mode 0600 (created so,
// never widened by the umask), fsync'd.
Status WriteAdminKeyFile(const std::string& path, const std::string& key) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::Unavailable("cannot create " + path);
  ::fchmod(fd, 0600);
  std::string line = key + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size()) &&
            ::fsync(fd) == 0;
  ::close(fd);
  return ok ? Status::Ok() : Status::Unavailable("cannot write " + path);
}

// First start with an empty store and no TRIGGERS_ADMIN_KEY: make the admin key.
Status BootstrapAdminKey(store::Store* store, const Config& cfg, bool env_key) {
  if (env_key) return Status::Ok();
  auto has = store->HasAdminKey();
  if (!has.ok()) return has.status();
  std::string path = cfg.data_dir + "/admin.key";
  if (has.value()) return Status::Ok();
  ApiKey key;
  std::string plain = core::GenerateApiKey();
  key.admin = true;
  key.hash = core::Sha256(plain);
  key.scopes = kScopeIngest | kScopeRead | kScopeConsume | kScopeManage;
  key.created_at_ms = SystemClock()->NowMs();
  key.id = core::NewId("key_", key.created_at_ms);
  key.name = "admin";
  // File first: a crash between the two leaves a file without a row, and the
  // next start simply makes a new key; never a row whose key nobody has.
  if (Status s = WriteAdminKeyFile(path, plain); !s.ok()) return s;
  if (Status s = store->CreateKey(key); !s.ok()) return s;
  obs::LogLine(obs::Level::kInfo, "admin key created").Str("path", path).Emit();
  return Status::Ok();
}

Status CheckStoreFlags(const Config& cfg) {
  if (cfg.store != "sqlite" && cfg.store != "postgres") {
    return Status::Validation("--store must be sqlite or postgres");
  }
  if (cfg.store == "postgres" && cfg.postgres_url.empty()) {
    return Status::Validation("--store postgres needs --postgres-url postgresql://...");
  }
  return Status::Ok();
}

// Test hook: the delivery rows one commit writes (the fan-out tests and
// bench/fanout.sh set it; a huge value gives the unbounded commit of old).
int64_t FanoutRowsPerCommit(int64_t dflt) {
  const char* p = std::getenv("TRIGGERS_TEST_FANOUT_ROWS_PER_COMMIT");
  return p && std::atoll(p) > 0 ? std::atoll(p) : dflt;
}

// Test hook: the budget of one retention pass in ms (0: one round of
// 1,000-row chunks per pass), so a test can end passes at chosen points.
std::chrono::milliseconds PurgeBudget(std::chrono::milliseconds dflt) {
  const char* p = std::getenv("TRIGGERS_TEST_PURGE_BUDGET_MS");
  return p && std::atoll(p) >= 0 ? std::chrono::milliseconds(std::atoll(p)) : dflt;
}

// This node across restarts: its host and data directory (one `triggers
// serve` per data directory). A restarted node returns the leases its
// previous process held.
std::string ServeNodeId(const Config& cfg) {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) return "";
  char* real = ::realpath(cfg.data_dir.c_str(), nullptr);
  if (!real) return "";
  std::string id = std::string(host) + ":" + real;
  ::free(real);
  return id;
}

// `node_id`: set by `triggers serve` only (PostgresOptions::node_id).
Result<std::unique_ptr<store::Store>> OpenPostgresStore(const Config& cfg,
                                                        const std::string& node_id = "") {
  store::PostgresOptions o;
  o.url = cfg.postgres_url;
  o.pool_size = cfg.postgres_pool;
  o.node_id = node_id;
  o.fanout_rows_per_commit = FanoutRowsPerCommit(o.fanout_rows_per_commit);
  return store::OpenPostgres(o);
}

// The store of `triggers serve`, once the data directory is ready (and, on
// SQLite, locked): triggers.db is created 0600 if missing (SQLite gives its
// -wal and -shm the same mode), then opened and migrated.
Result<std::unique_ptr<store::Store>> OpenServeStore(const Config& cfg) {
  if (cfg.store == "postgres") return OpenPostgresStore(cfg, ServeNodeId(cfg));
  bool created = false;
  if (Status s = CreatePrivateFile(cfg.DbPath(), &created); !s.ok()) return s;
  store::SqliteOptions o;
  o.path = cfg.DbPath();
  o.fanout_rows_per_commit = FanoutRowsPerCommit(o.fanout_rows_per_commit);
  return store::OpenSqlite(o);
}

// The store of a `triggers keys` command. It never creates the data
// directory. On SQLite: `list` and `revoke` need an existing store;
// `create` (keys made before the first start) may create triggers.db in an
// existing data directory, and says so. On PostgreSQL the data directory is
// not used at all.
Result<std::unique_ptr<store::Store>> OpenKeysStore(const Config& cfg, bool may_create) {
  if (Status s = CheckStoreFlags(cfg); !s.ok()) return s;
  if (cfg.store == "postgres") return OpenPostgresStore(cfg);
  const std::string path = cfg.DbPath();
  struct stat st;
  bool missing = ::stat(path.c_str(), &st) != 0;
  if (missing && errno != ENOENT) {
    return Status::Unavailable("cannot read " + path + ": " + std::strerror(errno));
  }
  // Refused before anything in the directory is touched (its modes either).
  if (missing && !may_create && ::stat(cfg.data_dir.c_str(), &st) == 0) {
    return Status::NotFound("no Triggers store at " + path +
                            " (check --data-dir; `triggers serve` creates the store)");
  }
  std::vector<std::string> warnings;
  Status prepared = PrepareDataDir(cfg.data_dir, false, &warnings);
  for (const auto& w : warnings) std::fprintf(stderr, "triggers: warning: %s\n", w.c_str());
  if (!prepared.ok()) return prepared;
  if (missing) {
    bool created = false;
    if (Status s = CreatePrivateFile(path, &created); !s.ok()) return s;
    if (created) {
      std::fprintf(stderr, "triggers: created a new, empty store at %s\n", path.c_str());
    }
  }
  store::SqliteOptions o;
  o.path = path;
  return store::OpenSqlite(o);
}

// Background upkeep on two threads, so that a long purge never delays a
// refresh (revocation within 5 s, SPEC 3):
// - trg-refresh, every second: revocations and subscription changes made by
//   other processes or nodes;
// - trg-purge: the retention purge, at start and every --purge-interval. A
//   pass stops after kPurgeBudget (Store::PurgeLimits); one stopped with work
//   left is followed by another after kPurgePaceOnly on SQLite (paced within
//   the pass) and after kPurgePause on PostgreSQL or under the test hook,
//   until one completes.
// The destructor stops and joins both; the store and caches must outlive it.
class Maintenance {
 public:
  static constexpr std::chrono::milliseconds kRefreshEvery{1000};
  static constexpr std::chrono::milliseconds kPurgeBudget{1000};
  static constexpr std::chrono::milliseconds kPurgePause{1000};
  // About how long one purge chunk holds the store's write lock: an ingest
  // commit waits for at most the chunk in progress. Measured against 2 and
  // 10 ms and fixed 1,000-row chunks (docs/benchmarks.md, "Ingest as the
  // store grows").
  static constexpr std::chrono::microseconds kPurgeChunkTarget{5000};
  // While other writes wait, the purge pauses after each chunk so that it
  // holds at most this share of the writer (Store::PurgeLimits::max_share),
  // and a pass stopped with work left is followed by the next after
  // kPurgePaceOnly: on an idle writer the purge runs almost freely. Against
  // 1 s passes in every 2 with no pauses (the writer handed to a waiting
  // ingest commit after each ~5 ms chunk, so the purge held ~90% of it while
  // a pass ran): single-event ingest during a purge +15-25%, a backlog purged
  // faster when nothing else writes, and still ~1.6x as fast as 64
  // connections of single-event ingest add events. Passes back to back (no
  // gap) gave ingest p99 of 140 ms in 2 of 3 growth-bench runs; 0.2 s, 11 ms
  // (docs/benchmarks.md, "The purge's share of the writer").
  static constexpr double kPurgeMaxShare = 0.25;
  static constexpr std::chrono::milliseconds kPurgePaceOnly{200};

  Maintenance(store::Store* store, api::KeyCache* keys, delivery::SubscriptionCache* subs,
              const Config& cfg)
      : store_(store),
        keys_(keys),
        subs_(subs),
        cfg_(cfg),
        refresh_([this] { RunRefresh(); }),
        purge_([this] { RunPurge(); }) {}
  ~Maintenance() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    refresh_.join();
    purge_.join();
  }

 private:
  // Waits up to `d`; false once stopping.
  bool Sleep(std::chrono::milliseconds d) {
    std::unique_lock lock(mu_);
    return !cv_.wait_for(lock, d, [&] { return stop_; });
  }

  void RunRefresh() {
    pthread_setname_np(pthread_self(), "trg-refresh");
    do {
      keys_->RefreshRevocations();
      subs_->Refresh();
    } while (Sleep(kRefreshEvery));
  }

  void RunPurge() {
    pthread_setname_np(pthread_self(), "trg-purge");
    const std::chrono::milliseconds interval(cfg_.purge_interval_ms);
    const std::chrono::milliseconds budget = PurgeBudget(kPurgeBudget);
    bool complete = true;
    // Only SQLite's purge paces itself (PostgreSQL has no in-process lock to
    // see waiters on): there the 1 s between passes leaves ingest its turn.
    const bool paced = budget.count() > 0 && cfg_.store != "postgres";
    do {
      complete = PurgeOnce(budget, !complete);
    } while (Sleep(complete ? interval : paced ? kPurgePaceOnly : kPurgePause));
  }

  // One bounded pass; true when it left nothing expired behind (or failed:
  // the next try is at the next interval). A pass is logged when it deleted
  // something, stopped with work left, or ends a run of stopped passes: the
  // one that finds the last of it already gone (the stopped pass before it
  // ended on a full chunk) still says `complete: yes`.
  bool PurgeOnce(std::chrono::milliseconds budget, bool after_stopped_pass) {
    int64_t now = SystemClock()->NowMs();
    store::Store::PurgeLimits limits;
    auto started = std::chrono::steady_clock::now();
    limits.deadline = started + budget;
    // Under the test hook a pass is one round of fixed-size chunks.
    if (budget.count() > 0) {
      limits.chunk_target = kPurgeChunkTarget;
      limits.max_share = kPurgeMaxShare;
    }
    auto r = store_->Purge(now - cfg_.retention_ms, now - 24LL * 3600 * 1000, now, limits);
    if (!r.ok()) {
      obs::LogLine(obs::Level::kWarn, "retention purge failed")
          .Str("error", r.status().message())
          .Emit();
      return true;
    }
    const auto& n = r.value();
    if (n.events + n.deliveries + n.orphans + n.idempotency > 0 || !n.complete ||
        after_stopped_pass) {
      auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - started);
      obs::LogLine(obs::Level::kInfo, "retention purge")
          .Int("events_deleted", n.events)
          .Int("deliveries_deleted", n.deliveries)
          .Int("orphans_dead", n.orphans)
          .Int("idempotency_deleted", n.idempotency)
          .Int("chunks", n.chunks)
          .Int("ms", static_cast<int64_t>(ms.count()))
          .Str("complete", n.complete ? "yes" : "no")
          .Emit();
    }
    return n.complete;
  }

  store::Store* store_;
  api::KeyCache* keys_;
  delivery::SubscriptionCache* subs_;
  const Config& cfg_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread refresh_;
  std::thread purge_;
};

// Prints rows as columns aligned on the widest cell, the first row the header.
void PrintTable(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width;
  for (const auto& row : rows) {
    width.resize(std::max(width.size(), row.size()));
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : rows) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
    }
    std::printf("%s\n", line.c_str());
  }
}

}  // namespace

int RunServe(Config& cfg) {
  if (Status s = cfg.Validate(); !s.ok()) {
    std::fprintf(stderr, "triggers: %s\n", s.message().c_str());
    return 2;
  }
  auto schedule = delivery::RetrySchedule::Parse(cfg.retry_schedule);
  if (!schedule.ok()) {
    std::fprintf(stderr, "triggers: --retry-schedule: %s\n", schedule.status().message().c_str());
    return 2;
  }
  obs::Level level;
  obs::ParseLevel(cfg.log_level, &level);
  obs::SetLogLevel(level);
  obs::StartAsyncLogging();

  // The port first: a server that cannot have it stops before it has
  // created or changed anything in the data directory. Connections are
  // refused until the listen() below, once everything is ready.
  auto bound = http::BindSocket(cfg.host, cfg.port);
  if (!bound.ok()) {
    LogError("cannot listen", bound.status().message());
    obs::StopAsyncLogging();
    return 1;
  }
  struct BoundSocket {
    int fd;
    ~BoundSocket() {
      if (fd >= 0) ::close(fd);
    }
  } bound_socket{bound.value()};

  std::vector<std::string> warnings;
  Status prepared = PrepareDataDir(cfg.data_dir, true, &warnings);
  for (const auto& w : warnings) {
    obs::LogLine(obs::Level::kWarn, "data directory permissions").Str("detail", w).Emit();
  }
  if (!prepared.ok()) {
    LogError("cannot open the store", prepared.message());
    obs::StopAsyncLogging();
    return 1;
  }
  // One server per SQLite store, for as long as this process lives (the
  // lock outlives the store: declared before it). PostgreSQL takes many.
  std::unique_ptr<DataDirLock> data_dir_lock;
  if (cfg.store == "sqlite") {
    if (Status s = DataDirLock::Acquire(cfg.data_dir, &data_dir_lock); !s.ok()) {
      if (s.code() == Status::Code::kConflict) {
        LogError("data directory in use",
                 s.message() +
                     ": one `triggers serve` per SQLite data directory (or a `triggers "
                     "migrate-store` is copying it); several nodes need --store postgres");
      } else {
        LogError("cannot open the store", s.message());
      }
      obs::StopAsyncLogging();
      return 1;
    }
  }

  auto opened = OpenServeStore(cfg);
  if (!opened.ok()) {
    LogError("cannot open the store", opened.status().message());
    obs::StopAsyncLogging();
    return 1;
  }
  std::unique_ptr<store::Store> st = std::move(opened.value());

  const char* env_admin = std::getenv("TRIGGERS_ADMIN_KEY");
  std::optional<std::string> admin;
  if (env_admin && *env_admin) admin = std::string(env_admin);
  if (Status s = BootstrapAdminKey(st.get(), cfg, admin.has_value()); !s.ok()) {
    LogError("cannot create the admin key", s.message());
    obs::StopAsyncLogging();
    return 1;
  }

  api::KeyCache keys(st.get(), SystemClock(), admin, cfg.rate_limit_per_key);
  // The server key that seals AWS secret access keys (aws/secret_box.h).
  aws::SecretBox aws_box;
  if (Status s = aws::SecretBox::Load(cfg.data_dir, true, &aws_box); !s.ok()) {
    LogError("cannot load the AWS server key", s.message());
    obs::StopAsyncLogging();
    return 1;
  }
  delivery::SubscriptionCache subscriptions(st.get());
  if (Status s = subscriptions.LoadAll(); !s.ok()) {
    LogError("cannot load subscriptions", s.message());
    obs::StopAsyncLogging();
    return 1;
  }
  delivery::CurlSenderOptions sender_opts;
  sender_opts.allow_private_destinations = cfg.allow_private_destinations;
  sender_opts.user_agent = "triggers/" TRIGGERS_VERSION;
  sender_opts.max_connections = static_cast<long>(cfg.delivery_max_in_flight);  // NOLINT
  auto sender = delivery::NewCurlSender(sender_opts);
  delivery::DispatcherOptions dopts;
  dopts.schedule = schedule.value();
  dopts.delivery_timeout_ms = cfg.delivery_timeout_ms;
  dopts.user_agent = sender_opts.user_agent;
  dopts.max_in_flight = static_cast<int>(cfg.delivery_max_in_flight);
  dopts.max_in_flight_per_tenant = static_cast<int>(cfg.delivery_max_in_flight_per_tenant);
  delivery::Dispatcher dispatcher(st.get(), &subscriptions, sender.get(), SystemClock(), dopts);
  // On every way out, the dispatcher stops before the sender: the sender's
  // last callbacks land in the dispatcher.
  struct StopDelivery {
    delivery::Dispatcher& dispatcher;
    HttpSender& sender;
    ~StopDelivery() {
      dispatcher.Stop();
      sender.Stop();
    }
  } stop_delivery{dispatcher, *sender};
  http::Server* server_ptr = nullptr;  // set below; the writer starts before the server
  store::IngestWriter::Options wo;
  // One post per commit to the I/O threads completes all of its requests.
  wo.complete = [&server_ptr](int home, std::function<void()> fn) {
    server_ptr->Post(home, std::move(fn));
  };
  api::Inbox* inbox_ptr = nullptr;  // set once the server (and its pool) exists
  wo.on_deliveries = [&dispatcher, &inbox_ptr](const std::vector<std::string>& subs) {
    dispatcher.Wake();
    if (inbox_ptr) inbox_ptr->Notify(subs);
  };
  // Per-tenant limits of this node (before the streams, the inbox and the
  // server, whose receives and streams hold slots: destroyed after them).
  api::TenantSlots parked_receives(static_cast<size_t>(cfg.max_parked_receives_per_tenant));
  api::TenantSlots open_streams(static_cast<size_t>(cfg.max_streams_per_tenant));
  api::EventStream event_stream;  // live tail; fed by the writer only while someone listens
  wo.on_committed = [&event_stream](const std::vector<store::IngestItem*>& items) {
    if (!event_stream.active()) return;
    std::vector<Event> created;
    for (const auto* it : items) {
      if (it->outcome == store::IngestItem::Outcome::kCreated) created.push_back(it->event);
    }
    if (!created.empty()) event_stream.Publish(std::move(created));
  };
  wo.matcher = &subscriptions;  // the ingest transaction re-matches on a stale generation
  // Test hook (crash tests): stop writing pending fan-out after N chunks.
  if (const char* p = std::getenv("TRIGGERS_TEST_FANOUT_PAUSE_AFTER_CHUNKS")) {
    wo.fanout_pause_after_chunks = std::atoll(p);
  }
  store::IngestWriter writer(st.get(), SystemClock(), wo);
  api::Context ctx;
  ctx.max_subscriptions_per_tenant = cfg.max_subscriptions_per_tenant;
  ctx.max_filter_bytes = cfg.max_filter_bytes;
  ctx.parked_receives = &parked_receives;
  ctx.streams = &open_streams;
  ctx.store = st.get();
  ctx.writer = &writer;
  ctx.keys = &keys;
  ctx.subscriptions = &subscriptions;
  ctx.allow_private_destinations = cfg.allow_private_destinations;
  ctx.metrics_require_admin = cfg.metrics_require_admin;
  ctx.wake_dispatcher = [&dispatcher] { dispatcher.Wake(); };
  ctx.clock = SystemClock();
  ctx.start_ms = SystemClock()->NowMs();
  ctx.cors_origins = cfg.cors_origins;
  ctx.aws_box = &aws_box;
  aws::Endpoint aws_endpoint(&ctx);
  ctx.aws_endpoint = &aws_endpoint;
  api::Router router(&ctx);

  http::ServerOptions so;
  so.host = cfg.host;
  so.port = cfg.port;
  unsigned cores = std::max(1u, std::thread::hardware_concurrency());
  so.io_threads = cfg.threads > 0 ? cfg.threads : static_cast<int>(cores);
  so.blocking_threads = std::max(4, so.io_threads);
  so.max_body = static_cast<size_t>(cfg.max_body_bytes);
  so.max_connections = static_cast<size_t>(cfg.max_connections);
  so.request_timeout_ms = cfg.request_timeout_ms;
  so.idle_timeout_ms = cfg.idle_timeout_ms;
  so.cors_origins = cfg.cors_origins;
  so.bound_fd = bound_socket.fd;
  bound_socket.fd = -1;  // the server's now (Listen() adopts or closes it)
  // Declared before the server: the server's pool (joined when the server is
  // destroyed) may still run inbox tasks.
  api::Inbox inbox(
      [&server_ptr](std::function<void()> fn) { return server_ptr->RunBlocking(std::move(fn)); },
      SystemClock());
  // Other nodes' ingests (shared store): wake the same consumers. The guard
  // stops the listener before the inbox and the dispatcher are destroyed.
  st->SetWorkListener([&dispatcher, &inbox](const std::vector<std::string>& subs) {
    dispatcher.Wake();
    inbox.Notify(subs);
  });
  struct StopListener {
    store::Store* store;
    ~StopListener() { store->StopWorkListener(); }
  } stop_listener{st.get()};
  // A revoked key loses what it holds open too (SPEC 3): its live tails end
  // and its parked receives answer 401, on this node at once for a DELETE
  // here, else within a second (RefreshRevocations).
  keys.SetRevokedListener([&inbox, &event_stream](const std::string& key_hash) {
    event_stream.EndKey(key_hash);
    inbox.EndKey(key_hash);
  });
  ctx.inbox = &inbox;
  ctx.event_stream = &event_stream;
  ctx.inbox_notify = [&inbox](const std::vector<std::string>& subs) { inbox.Notify(subs); };
  inbox_ptr = &inbox;
  http::Server server(so, &router, &ctx);
  server_ptr = &server;
  ctx.run_blocking = [&server](std::function<void()> fn) {
    return server.RunBlocking(std::move(fn));
  };

  if (Status s = server.Listen(); !s.ok()) {
    LogError("cannot listen", s.message());
    obs::StopAsyncLogging();
    return 1;
  }
  std::string addr = cfg.host + ":" + std::to_string(server.port());
  obs::LogLine(obs::Level::kInfo, "listening")
      .Str("addr", addr)
      .Str("store", cfg.store)
      .Str("version", TRIGGERS_VERSION)
      .Int("io_threads", so.io_threads)
      .Int("open_file_limit", static_cast<int64_t>(std::min<size_t>(server.fd_limit(), INT64_MAX)))
      .Emit();
  {
    Maintenance maintenance(st.get(), &keys, &subscriptions, cfg);
    server.Run([&ctx, &inbox, &event_stream] {
      ctx.shutting_down.store(true);
      inbox.Shutdown();         // parked receivers get an empty answer now, and no lease
      event_stream.Shutdown();  // live tails end
    });
  }
  writer.Stop();
  // In-flight attempts finish (bounded), unfinished leases go back to the store.
  dispatcher.Stop();
  sender->Stop();
  obs::LogLine(obs::Level::kInfo, "stopped")
      .Int("ingest_commits", static_cast<int64_t>(writer.commits()))
      .Int("ingest_events", static_cast<int64_t>(writer.committed_items()))
      .Int("ingest_commit_ms", static_cast<int64_t>(writer.commit_ns() / 1000000))
      .Emit();
  obs::StopAsyncLogging();
  return 0;
}

int RunKeysCreate(Config& cfg, const KeysArgs& a) {
  if (!core::IsValidTenant(a.tenant)) {
    std::fprintf(stderr, "triggers: --tenant must match [a-z0-9_-]{1,64}\n");
    return 2;
  }
  auto scopes = core::ScopesFromCsv(a.scopes);
  if (!scopes) {
    std::fprintf(
        stderr,
        "triggers: --scopes must be a comma-separated list of ingest, read, consume, manage\n");
    return 2;
  }
  auto opened = OpenKeysStore(cfg, true);
  if (!opened.ok()) {
    std::fprintf(stderr, "triggers: %s\n", opened.status().message().c_str());
    return 1;
  }
  ApiKey key;
  key.tenant = a.tenant;
  key.scopes = *scopes;
  if (!a.name.empty()) key.name = a.name;
  std::string plain;
  if (a.kind == "aws") {
    aws::SecretBox box;
    if (Status s = aws::SecretBox::Load(cfg.data_dir, true, &box); !s.ok()) {
      std::fprintf(stderr, "triggers: %s\n", s.message().c_str());
      return 1;
    }
    plain = aws::MakeAwsCredentials(box, &key);
  } else {
    plain = core::GenerateApiKey();
    key.hash = core::Sha256(plain);
  }
  key.created_at_ms = SystemClock()->NowMs();
  key.id = core::NewId("key_", key.created_at_ms);
  if (Status s = opened.value()->CreateKey(key); !s.ok()) {
    std::fprintf(stderr, "triggers: %s\n", s.message().c_str());
    return 1;
  }
  if (a.kind == "aws") {
    std::printf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", key.access_key_id.c_str(),
                plain.c_str());
  } else {
    std::printf("%s\n", plain.c_str());
  }
  std::fprintf(stderr, "created %s for tenant %s with scopes %s\n", key.id.c_str(),
               key.tenant.c_str(), core::ScopesToCsv(key.scopes).c_str());
  return 0;
}

int RunKeysList(Config& cfg, const KeysArgs& a) {
  auto opened = OpenKeysStore(cfg, false);
  if (!opened.ok()) {
    std::fprintf(stderr, "triggers: %s\n", opened.status().message().c_str());
    return 1;
  }
  std::vector<std::vector<std::string>> rows{
      {"ID", "TENANT", "SCOPES", "NAME", "CREATED", "AWS_ACCESS_KEY_ID", "STATUS"}};
  store::ListOptions opts;
  opts.limit = 1000;
  for (;;) {
    auto r = opened.value()->ListKeys(a.tenant, opts);
    if (!r.ok()) {
      std::fprintf(stderr, "triggers: %s\n", r.status().message().c_str());
      return 1;
    }
    for (const auto& k : r.value()) {
      rows.push_back({k.id, k.tenant, core::ScopesToCsv(k.scopes), k.name ? *k.name : "-",
                      core::FormatTimeMs(k.created_at_ms),
                      k.access_key_id.empty() ? "-" : k.access_key_id,
                      k.revoked_at_ms ? "revoked" : "active"});
    }
    if (r.value().size() < 1000) break;
    opts.after_id = r.value().back().id;
  }
  PrintTable(rows);
  return 0;
}

int RunKeysRevoke(Config& cfg, const KeysArgs& a) {
  if (!core::IsValidId(a.key_id, "key_")) {
    std::fprintf(stderr, "triggers: '%s' is not a key id (key_...)\n", a.key_id.c_str());
    return 2;
  }
  auto opened = OpenKeysStore(cfg, false);
  if (!opened.ok()) {
    std::fprintf(stderr, "triggers: %s\n", opened.status().message().c_str());
    return 1;
  }
  auto r = opened.value()->RevokeKey("", a.key_id, SystemClock()->NowMs());
  if (!r.ok()) {
    std::fprintf(stderr, "triggers: %s\n", r.status().message().c_str());
    return r.status().IsNotFound() ? 3 : 1;
  }
  std::fprintf(stderr, "revoked %s (running servers stop accepting it within 5 s)\n",
               a.key_id.c_str());
  return 0;
}

}  // namespace triggers::app
