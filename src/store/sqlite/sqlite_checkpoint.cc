// The background checkpointer of the embedded store. With SQLite's automatic
// checkpoint, the commit whose WAL crosses wal_autocheckpoint pages also
// copies those pages into the database file and fsyncs it, on the writer
// thread, before that group's replies go out (the long commits of the p99).
// Here the writer's WAL hook only wakes this thread, which runs a PASSIVE
// checkpoint on its own connection: it takes no lock the writer needs, so
// group commits go on while it copies. Durability is unchanged: a commit is
// durable once its WAL frames are fsync'd (synchronous=FULL); a checkpoint
// only moves committed pages, and a crash in the middle is repaired from the
// WAL at the next open.
#include <pthread.h>

#include "obs/logger.h"
#include "store/sqlite/sqlite_internal.h"

namespace triggers::store::sqlite {

int SqliteStore::WalHook(void* self, sqlite3*, const char*, int pages) {
  auto* store = static_cast<SqliteStore*>(self);
  if (pages < store->opts_.wal_autocheckpoint) return SQLITE_OK;
  // One wake-up until the checkpointer has taken it (no futex per commit).
  if (!store->ckpt_wanted_.exchange(true)) {
    std::lock_guard lock(store->ckpt_mu_);
    store->ckpt_cv_.notify_one();
  }
  return SQLITE_OK;
}

void SqliteStore::StartCheckpointer() {
  // Replaces the automatic checkpoint (the pragma set it to 0 on the writer).
  sqlite3_wal_hook(writer_.db(), &SqliteStore::WalHook, this);
  ckpt_thread_ = std::thread([this] { CheckpointLoop(); });
}

void SqliteStore::StopCheckpointer() {
  if (!ckpt_thread_.joinable()) return;
  {
    std::lock_guard lock(ckpt_mu_);
    ckpt_stop_ = true;
  }
  ckpt_cv_.notify_one();
  ckpt_thread_.join();
  sqlite3_wal_hook(writer_.db(), nullptr, nullptr);
}

void SqliteStore::CheckpointLoop() {
  pthread_setname_np(pthread_self(), "trg-checkpoint");
  Conn conn;
  if (Status s = conn.Open(opts_.path, false, 0); !s.ok()) {
    obs::LogLine(obs::Level::kError, "checkpointer: cannot open the database")
        .Str("error", s.message())
        .Emit();
  }
  bool warned = false;
  for (;;) {
    {
      std::unique_lock lock(ckpt_mu_);
      ckpt_cv_.wait(lock, [&] { return ckpt_stop_ || ckpt_wanted_.load(); });
      if (ckpt_stop_) return;
    }
    ckpt_wanted_.store(false);
    if (!conn.db()) continue;
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(conn.db(), nullptr, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
    if (rc != SQLITE_OK && rc != SQLITE_BUSY && !warned) {
      // Logged once: the WAL only grows until a checkpoint succeeds (the
      // last connection to close checkpoints it too).
      obs::LogLine(obs::Level::kWarn, "checkpointer: checkpoint failed")
          .Str("error", sqlite3_errmsg(conn.db()))
          .Emit();
      warned = true;
    }
  }
}

}  // namespace triggers::store::sqlite
