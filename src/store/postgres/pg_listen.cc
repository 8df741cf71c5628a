// The PostgreSQL store: LISTEN/NOTIFY. Deliveries created by an ingest are
// announced with NOTIFY; every node LISTENs on a connection of its own and
// wakes its dispatcher and inbox.
#include "store/postgres/pg_internal.h"

namespace triggers::store::postgres {

void PgStore::StopWorkListener() {
  if (!listener_.joinable()) return;
  stop_.store(true);
  uint64_t one = 1;
  ssize_t n = ::write(wake_fd_, &one, sizeof one);
  (void)n;
  listener_.join();
}

// --- other nodes -----------------------------------------------------------

void PgStore::SetWorkListener(std::function<void(const std::vector<std::string>&)> fn) {
  if (!opts_.listen || listener_.joinable() || stop_.load()) return;
  on_work_ = std::move(fn);
  wake_fd_ = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  listener_ = std::thread([this] { Listen(); });
}

// The LISTEN connection: wakes this node's workers when any node commits
// deliveries. Reconnects with backoff; after a reconnect it reports "any"
// (notifications sent while it was away are lost).
void PgStore::Listen() {
  pthread_setname_np(pthread_self(), "trg-pg-listen");
  PGconn* conn = nullptr;
  int backoff_ms = 100;
  while (!stop_.load()) {
    if (!conn || PQstatus(conn) != CONNECTION_OK) {
      if (conn) PQfinish(conn);
      conn = pg::Connect(opts_.url, opts_.connect_timeout_s);
      pg::ResultPtr r(conn && PQstatus(conn) == CONNECTION_OK ? PQexec(conn, "LISTEN triggers_work")
                                                              : nullptr);
      if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        WaitWake(backoff_ms);
        backoff_ms = std::min(backoff_ms * 2, 5000);
        continue;
      }
      backoff_ms = 100;
      on_work_({});
    }
    pollfd fds[2] = {{PQsocket(conn), POLLIN, 0}, {wake_fd_, POLLIN, 0}};
    int n = ::poll(fds, 2, 1000);
    if (n <= 0 || stop_.load()) continue;
    if (!PQconsumeInput(conn)) {
      PQfinish(conn);
      conn = nullptr;
      continue;
    }
    std::vector<std::string> subs;
    bool any = false;
    while (PGnotify* nf = PQnotifies(conn)) {
      std::string_view payload(nf->extra ? nf->extra : "");
      if (payload.empty()) any = true;
      while (!payload.empty()) {
        size_t comma = payload.find(',');
        subs.emplace_back(payload.substr(0, comma));
        payload = comma == std::string_view::npos ? std::string_view() : payload.substr(comma + 1);
      }
      PQfreemem(nf);
    }
    if (any) {
      on_work_({});
    } else if (!subs.empty()) {
      on_work_(subs);
    }
  }
  if (conn) PQfinish(conn);
}

void PgStore::WaitWake(int ms) {
  pollfd fd{wake_fd_, POLLIN, 0};
  ::poll(&fd, 1, ms);
}

}  // namespace triggers::store::postgres
