#include "http/server.h"

#include <pthread.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/ids.h"
#include "http/codec.h"
#include "http/http_checks.h"
#include "obs/logger.h"
#include "obs/metrics.h"
#include "triggers/clock.h"

namespace triggers::http {
namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

namespace {

constexpr int kMaxBlockingQueue = 4096;

std::string_view Sv(beast::string_view s) { return {s.data(), s.size()}; }

constexpr auto kAcceptPauseExhausted = std::chrono::milliseconds(100);
constexpr auto kAcceptPauseOther = std::chrono::milliseconds(10);
constexpr auto kAcceptLogEvery = std::chrono::seconds(10);
// Descriptors the process needs besides connections (store files, event
// loops, the webhook client, logs): for the start-up warning only.
constexpr size_t kFdOverhead = 64;

}  // namespace

class Session;

// The writer side of a streamed response: producers on any thread queue
// chunks; the session's I/O thread writes them in order.
class SinkImpl final : public api::StreamSink {
 public:
  static constexpr size_t kMaxBacklog = 1 << 20;  // a slower reader is dropped

  SinkImpl(std::weak_ptr<Session> session, net::any_io_executor ex)
      : session_(std::move(session)), ex_(std::move(ex)) {}
  // A sink dropped without the session closing it (the server stopped) has ended too.
  ~SinkImpl() override {
    if (on_end_) on_end_();
  }

  bool Write(std::string data) override {
    std::lock_guard lock(mu_);
    if (closed_) return false;
    // One chunk may be large when nothing is queued; beyond that a reader
    // this far behind is cut off (the session closes the connection at once).
    if (backlog_ > 0 && backlog_ + data.size() > kMaxBacklog) {
      closed_ = true;
      aborted_ = true;
      queue_.clear();
      ScheduleLocked();
      return false;
    }
    backlog_ += data.size();
    queue_.push_back(std::move(data));
    ScheduleLocked();
    return true;
  }

  void Close() override {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    ScheduleLocked();
  }

  void OnEnd(std::function<void()> fn) override {
    {
      std::lock_guard lock(mu_);
      if (!ended_) {
        on_end_ = std::move(fn);
        return;
      }
    }
    fn();
  }

  // Session side. Moves the queued chunks out; `*ended`: no more will come.
  void Take(std::string* out, bool* ended) {
    std::lock_guard lock(mu_);
    scheduled_ = false;
    for (auto& q : queue_) out->append(q);
    queue_.clear();
    *ended = closed_;
  }
  bool aborted() {
    std::lock_guard lock(mu_);
    return aborted_;
  }
  void Written(size_t n) {
    std::lock_guard lock(mu_);
    backlog_ -= std::min(backlog_, n);
  }
  // The connection is closed: the stream has ended.
  void MarkClosed() {
    std::function<void()> fn;
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      ended_ = true;
      queue_.clear();
      fn = std::move(on_end_);
      on_end_ = nullptr;
    }
    if (fn) fn();
  }

 private:
  void ScheduleLocked();

  std::weak_ptr<Session> session_;
  net::any_io_executor ex_;
  std::mutex mu_;
  std::vector<std::string> queue_;
  size_t backlog_ = 0;
  bool closed_ = false;
  bool aborted_ = false;  // cut off for reading too slowly
  bool scheduled_ = false;
  bool ended_ = false;            // the connection is closed
  std::function<void()> on_end_;  // run when it is
};

std::vector<std::unique_ptr<net::io_context>> MakeLoops(int n) {
  std::vector<std::unique_ptr<net::io_context>> loops;
  for (int i = 0; i < std::max(1, n); ++i) loops.push_back(std::make_unique<net::io_context>(1));
  return loops;
}

struct Server::Impl {
  Impl(ServerOptions o, api::Router* r, api::Context* c)
      : opts(std::move(o)),
        router(r),
        ctx(c),
        loops(MakeLoops(opts.io_threads)),
        ioc(*loops[0]),
        acceptor(ioc),
        signals(ioc, SIGINT, SIGTERM),
        blocking(static_cast<size_t>(opts.blocking_threads)),
        drain_timer(ioc),
        accept_timer(ioc) {}

  void Accept();
  void OnAcceptError(const beast::error_code& ec);
  void BeginShutdown();
  void CheckDrained();

  // Declared before ioc: handlers still queued in ioc when it is destroyed
  // hold sessions, whose destructors use these.
  std::atomic<size_t> active{0};
  std::mutex sessions_mu;
  std::unordered_map<Session*, std::weak_ptr<Session>> sessions;
  ServerOptions opts;
  api::Router* router;
  api::Context* ctx;
  // One event loop per I/O thread, each owning its connections outright (no
  // strands, no lock shared by all requests); loops[0] also accepts.
  std::vector<std::unique_ptr<net::io_context>> loops;
  net::io_context& ioc;
  size_t next_loop = 0;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::thread_pool blocking;
  std::atomic<int> blocking_pending{0};
  net::steady_timer drain_timer;
  std::chrono::steady_clock::time_point drain_deadline;
  // Accept errors: paused on a timer, logged at most once per kAcceptLogEvery.
  net::steady_timer accept_timer;
  std::chrono::steady_clock::time_point last_accept_log{};
  uint64_t accept_errors_unlogged = 0;
  std::function<void()> on_signal;
  std::atomic<bool> stopping{false};
  size_t fd_limit = 0;  // RLIMIT_NOFILE after Listen() raised it
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  // `reserve`: accepted beyond --max-connections, from the reserve; it may
  // serve one request to a reserved path (IsReservedPath), then closes.
  Session(tcp::socket&& socket, Server::Impl* srv, int home, bool reserve)
      : stream_(std::move(socket)),
        srv_(srv),
        home_(home),
        reserve_(reserve),
        buffer_(ReadBufferLimit(srv->opts)) {}

  ~Session() {
    {
      std::lock_guard lock(srv_->sessions_mu);
      srv_->sessions.erase(this);
    }
    srv_->active.fetch_sub(1);
  }

  void Start() {
    beast::error_code ec;
    auto remote = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_addr_ = remote.address().to_string();
    {
      std::lock_guard lock(srv_->sessions_mu);
      srv_->sessions.emplace(this, weak_from_this());
    }
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::WaitForRequest, shared_from_this()));
  }

  // Shutdown: a connection waiting for its next request is closed now; a busy
  // one closes after its response (keep-alive is off while stopping).
  void CloseIfIdle() {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      if (self->idle_) self->stream_.cancel();
    });
  }

 private:
  void WaitForRequest() {
    if (srv_->stopping.load()) return Close();
    if (buffer_.size() > 0) return ReadHeader();  // pipelined bytes already here
    idle_ = true;
    // Before the first request the header timeout runs from accept (a silent
    // connection cannot hold a slot for the idle timeout); between requests
    // of a keep-alive connection the idle timeout applies.
    stream_.expires_after(std::chrono::milliseconds(served_ ? srv_->opts.idle_timeout_ms
                                                            : srv_->opts.request_timeout_ms));
    stream_.async_read_some(buffer_.prepare(8192),
                            beast::bind_front_handler(&Session::OnFirstBytes, shared_from_this()));
  }

  void OnFirstBytes(beast::error_code ec, size_t n) {
    idle_ = false;
    if (ec == beast::error::timeout && !served_) {
      obs::Metrics::Get().Inc(obs::Counter::kConnHeaderTimeout);
    }
    if (ec) return Close();
    buffer_.commit(n);
    ReadHeader();
  }

  void ReadHeader() {
    ResetParser(parser_, srv_->opts);
    start_ns_ = SystemClock()->MonoNs();
    // The whole request (header and body) must arrive within the read timeout;
    // for the first request of a connection it has run since accept.
    if (served_) stream_.expires_after(std::chrono::milliseconds(srv_->opts.request_timeout_ms));
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::OnHeader, shared_from_this()));
  }

  void OnHeader(beast::error_code ec, size_t header_bytes) {
    CheckHeaderBytes(header_bytes, srv_->opts, ec);
    if (ec == beast::error::timeout) obs::Metrics::Get().Inc(obs::Counter::kConnHeaderTimeout);
    if (ec) return OnReadError(ec);
    auto& m = parser_->get();
    if (m.find(bhttp::field::transfer_encoding) != m.end()) {
      // Framing that Beast would honour but a front proxy may read otherwise
      // (request smuggling): refused before any body byte is read.
      if (m.version() < 11) {
        return Refuse(400, "invalid_request",
                      "Transfer-Encoding is not allowed in an HTTP/1.0 request");
      }
      std::vector<std::string_view> codings;
      for (auto [it, end] = m.equal_range(bhttp::field::transfer_encoding); it != end; ++it) {
        codings.push_back(Sv(it->value()));
      }
      if (!IsPlainChunked(codings)) {
        return Refuse(501, "not_implemented",
                      "the only Transfer-Encoding supported is chunked (alone, once)");
      }
    }
    if (reserve_ && !IsReservedPath(Sv(m.target()))) {
      obs::Metrics::Get().Inc(obs::Counter::kConnReserveRefused);
      return Refuse(503, "unavailable",
                    "too many connections (--max-connections); only /health and /metrics "
                    "answer now",
                    /*retry_after=*/true);
    }
    auto expect = m.find(bhttp::field::expect);
    if (expect != m.end() && beast::iequals(expect->value(), "100-continue")) {
      // curl sends Expect: 100-continue for larger bodies and waits for this.
      static const std::string kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      net::async_write(stream_, net::buffer(kContinue),
                       [self = shared_from_this()](beast::error_code wec, size_t) {
                         if (wec) return self->Close();
                         self->ReadBody();
                       });
      return;
    }
    ReadBody();
  }

  void ReadBody() {
    if (parser_->is_done()) return OnRead({}, 0);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  // Answers a request whose header was read, without reading its body, and
  // closes the connection after the answer.
  void Refuse(int status, std::string_view code, std::string_view message,
              bool retry_after = false) {
    request_id_ = core::NewId("req_", SystemClock()->NowMs());
    keep_alive_req_ = false;
    // The views of the previous request point into a parser that is gone.
    req_ = api::Request{};
    api::Response r = api::ErrorResponse(status, code, message, request_id_);
    if (retry_after) r.headers.emplace_back("Retry-After", "1");
    r.close = true;
    Write(std::move(r));
  }

  void OnReadError(beast::error_code ec) {
    if (ReadErrorCloses(ec)) return Close();
    request_id_ = core::NewId("req_", SystemClock()->NowMs());
    keep_alive_req_ = false;
    // The views of the previous request point into a parser that is gone.
    req_ = api::Request{};
    Write(ReadErrorResponse(ec, srv_->opts, request_id_));
  }

  void OnRead(beast::error_code ec, size_t) {
    if (ec) return OnReadError(ec);
    auto& m = parser_->get();
    keep_alive_req_ = m.keep_alive();
    ToApiRequest(m, home_, &request_id_, &req_);
    req_.remote_addr = remote_addr_;
    auto self = shared_from_this();
    srv_->router->Handle(req_, [self](api::Response&& r) {
      net::dispatch(self->stream_.get_executor(),
                    [self, r = std::move(r)]() mutable { self->Write(std::move(r)); });
    });
  }

  void Write(api::Response&& r) {
    if (r.stream) return StartStream(std::move(r));
    res_.emplace();
    keep_alive_ = keep_alive_req_ && !r.close && !srv_->stopping.load() && !reserve_;
    LogRequest(r);
    BuildResponse(std::move(r), req_, request_id_, srv_->opts.cors_origins, keep_alive_, &*res_);
    head_ = SerializeHeader(*res_);
    const std::array<net::const_buffer, 2> bufs{net::buffer(head_), net::buffer(res_->body())};
    stream_.expires_after(std::chrono::milliseconds(srv_->opts.request_timeout_ms));
    net::async_write(stream_, bufs,
                     beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void LogRequest(const api::Response& r) {
    double latency_ms = static_cast<double>(SystemClock()->MonoNs() - start_ns_) / 1e6;
    obs::LogLine line(r.status >= 500 ? obs::Level::kWarn : obs::Level::kInfo, "request");
    line.Str("request_id", request_id_)
        .Str("method", req_.method)
        .Str("route", r.route)
        .Int("status", r.status)
        .Num("latency_ms", latency_ms);
    if (r.tenant.empty()) {
      line.Null("tenant");
    } else {
      line.Str("tenant", r.tenant);
    }
    line.Emit();
    obs::Metrics::Get().HttpRequest(r.route, r.status, latency_ms / 1000.0);
  }

  // A streamed response: the header now, chunks as the producer writes them,
  // until it closes the sink, the client goes away or the server stops.
  void StartStream(api::Response&& r) {
    sres_.emplace();
    SetCommonHeaders(*sres_, r, req_, request_id_, srv_->opts.cors_origins);
    sres_->set(bhttp::field::cache_control, "no-cache");
    sres_->chunked(true);
    sres_->keep_alive(false);
    keep_alive_ = false;
    LogRequest(r);
    sser_.emplace(*sres_);
    stream_.expires_after(std::chrono::milliseconds(srv_->opts.request_timeout_ms));
    bhttp::async_write_header(
        stream_, *sser_,
        [self = shared_from_this(), open = std::move(r.stream)](beast::error_code ec, size_t) {
          if (ec) return self->Close();
          self->stream_.expires_never();
          self->sink_ = std::make_shared<SinkImpl>(self, self->stream_.get_executor());
          self->idle_ = true;  // closed at once when the server stops
          self->WatchPeer();
          open(self->sink_);
        });
  }

  // While streaming, a read stays pending: it ends when the client goes away
  // (or the server stops), and anything the client sends is ignored.
  void WatchPeer() {
    stream_.async_read_some(net::buffer(peek_),
                            [self = shared_from_this()](beast::error_code ec, size_t) {
                              if (ec) return self->Close();
                              self->WatchPeer();
                            });
  }

 public:
  // Writes what the sink has queued (on this session's I/O thread).
  void PumpStream() {
    if (!sink_) return;
    if (sink_->aborted()) return Close();  // also cancels a write that is stuck
    if (writing_) return;
    wbuf_.clear();
    bool ended = false;
    sink_->Take(&wbuf_, &ended);
    if (!wbuf_.empty()) {
      writing_ = true;
      // A client that stops reading cannot hold the connection: each chunk
      // must be taken within the request timeout.
      stream_.expires_after(std::chrono::milliseconds(srv_->opts.request_timeout_ms));
      net::async_write(stream_, bhttp::make_chunk(net::buffer(wbuf_)),
                       [self = shared_from_this()](beast::error_code ec, size_t) {
                         self->writing_ = false;
                         if (ec) return self->Close();
                         self->stream_.expires_never();
                         self->sink_->Written(self->wbuf_.size());
                         self->PumpStream();
                       });
      return;
    }
    if (ended) {
      writing_ = true;
      net::async_write(stream_, bhttp::make_chunk_last(),
                       [self = shared_from_this()](beast::error_code, size_t) { self->Close(); });
    }
  }

 private:
  void OnWrite(beast::error_code ec, size_t) {
    if (ec || !keep_alive_) return Close();
    res_.reset();
    served_ = true;
    WaitForRequest();
  }

  void Close() {
    if (sink_) sink_->MarkClosed();
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  Server::Impl* srv_;
  int home_;             // index of the event loop (and I/O thread) that owns this connection
  bool reserve_;         // accepted from the reserve beyond --max-connections
  bool served_ = false;  // a response was written: the idle timeout applies now
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  std::optional<bhttp::response<bhttp::string_body>> res_;
  std::string head_;  // res_'s status line and headers, written before its body
  // A streamed response.
  std::optional<bhttp::response<bhttp::empty_body>> sres_;
  std::optional<bhttp::response_serializer<bhttp::empty_body>> sser_;
  std::shared_ptr<SinkImpl> sink_;
  std::string wbuf_;
  std::array<char, 512> peek_;
  bool writing_ = false;
  api::Request req_;
  std::string request_id_;
  std::string remote_addr_;  // the client's address, for failed-auth counts
  int64_t start_ns_ = 0;
  bool idle_ = false;
  bool keep_alive_req_ = true;
  bool keep_alive_ = true;
};

void SinkImpl::ScheduleLocked() {
  if (scheduled_) return;
  scheduled_ = true;
  net::post(ex_, [w = session_] {
    if (auto s = w.lock()) s->PumpStream();
  });
}

void Server::Impl::Accept() {
  const int home = static_cast<int>(next_loop++ % loops.size());
  acceptor.async_accept(*loops[home], [this, home](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (stopping.load() || ec == net::error::operation_aborted) return;
      return OnAcceptError(ec);
    }
    size_t n = active.load();
    if (n >= opts.max_connections + opts.reserve_connections) {
      beast::error_code ignored;
      socket.close(ignored);  // bounded connections: refuse beyond the limit and its reserve
      obs::Metrics::Get().Inc(obs::Counter::kConnOverLimit);
    } else {
      beast::error_code ignored;
      socket.set_option(tcp::no_delay(true), ignored);
      active.fetch_add(1);
      bool reserve = n >= opts.max_connections;
      std::make_shared<Session>(std::move(socket), this, home, reserve)->Start();
    }
    if (!stopping.load()) Accept();
  });
}

// A failed accept leaves the pending connection in the backlog: retrying at
// once fails again (EMFILE) and spins, so accepting pauses; the log says so
// at most once per kAcceptLogEvery, with the count of failures meanwhile.
void Server::Impl::OnAcceptError(const beast::error_code& ec) {
  bool exhausted =
      ec.category() == boost::system::system_category() && IsResourceExhaustion(ec.value());
  obs::Metrics::Get().Inc(exhausted ? obs::Counter::kAcceptFdLimit : obs::Counter::kAcceptOther);
  ++accept_errors_unlogged;
  auto now = std::chrono::steady_clock::now();
  if (last_accept_log == std::chrono::steady_clock::time_point{} ||
      now - last_accept_log >= kAcceptLogEvery) {
    auto pause = exhausted ? kAcceptPauseExhausted : kAcceptPauseOther;
    obs::LogLine(obs::Level::kWarn,
                 exhausted ? "accept paused: out of file descriptors or memory" : "accept failed")
        .Str("error", ec.message())
        .Int("failures", static_cast<int64_t>(accept_errors_unlogged))
        .Int("pause_ms", std::chrono::duration_cast<std::chrono::milliseconds>(pause).count())
        .Emit();
    last_accept_log = now;
    accept_errors_unlogged = 0;
  }
  accept_timer.expires_after(exhausted ? kAcceptPauseExhausted : kAcceptPauseOther);
  accept_timer.async_wait([this](beast::error_code wec) {
    if (!wec && !stopping.load()) Accept();
  });
}

void Server::Impl::BeginShutdown() {
  if (stopping.exchange(true)) return;
  obs::LogLine(obs::Level::kInfo, "shutting down")
      .Int("connections", static_cast<int64_t>(active.load()))
      .Emit();
  if (on_signal) on_signal();
  beast::error_code ec;
  acceptor.close(ec);
  accept_timer.cancel();
  signals.cancel(ec);
  std::vector<std::shared_ptr<Session>> live;
  {
    std::lock_guard lock(sessions_mu);
    for (auto& [p, w] : sessions) {
      if (auto s = w.lock()) live.push_back(std::move(s));
    }
  }
  for (auto& s : live) s->CloseIfIdle();
  drain_deadline =
      std::chrono::steady_clock::now() + std::chrono::milliseconds(opts.shutdown_grace_ms);
  CheckDrained();
}

void Server::Impl::CheckDrained() {
  if (active.load() == 0 || std::chrono::steady_clock::now() >= drain_deadline) {
    for (auto& l : loops) l->stop();
    return;
  }
  drain_timer.expires_after(std::chrono::milliseconds(20));
  drain_timer.async_wait([this](beast::error_code) { CheckDrained(); });
}

Server::Server(ServerOptions options, api::Router* router, api::Context* ctx)
    : impl_(std::make_unique<Impl>(std::move(options), router, ctx)) {}

Server::~Server() { impl_->blocking.join(); }

Result<int> BindSocket(const std::string& host, uint16_t port) {
  beast::error_code ec;
  auto addr = net::ip::make_address(host, ec);
  if (ec) return Status::Validation("--listen: bad address '" + host + "'");
  tcp::endpoint ep(addr, port);
  net::io_context ioc(1);
  tcp::acceptor a(ioc);
  a.open(ep.protocol(), ec);
  if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) a.bind(ep, ec);
  if (!ec) {
    int fd = a.release(ec);
    if (!ec) return fd;
  }
  return Status::Unavailable("cannot listen on " + host + ":" + std::to_string(port) + ": " +
                             ec.message());
}

Status Server::Listen() {
  size_t fd_limit = RaiseFdLimit();
  impl_->fd_limit = fd_limit;
  size_t need = impl_->opts.max_connections + impl_->opts.reserve_connections + kFdOverhead;
  if (fd_limit != 0 && fd_limit < need) {
    obs::LogLine(obs::Level::kWarn,
                 "--max-connections does not fit in the open-file limit: raise ulimit -n "
                 "(LimitNOFILE) or lower --max-connections")
        .Int("max_connections", static_cast<int64_t>(impl_->opts.max_connections))
        .Int("reserve_connections", static_cast<int64_t>(impl_->opts.reserve_connections))
        .Int("open_file_limit", static_cast<int64_t>(fd_limit))
        .Int("needed", static_cast<int64_t>(need))
        .Emit();
  }
  beast::error_code ec;
  auto addr = net::ip::make_address(impl_->opts.host, ec);
  if (ec) {
    if (impl_->opts.bound_fd >= 0) ::close(impl_->opts.bound_fd);
    return Status::Validation("--listen: bad address '" + impl_->opts.host + "'");
  }
  tcp::endpoint ep(addr, impl_->opts.port);
  auto& a = impl_->acceptor;
  if (impl_->opts.bound_fd >= 0) {
    a.assign(ep.protocol(), impl_->opts.bound_fd, ec);
    if (ec) ::close(impl_->opts.bound_fd);
  } else {
    a.open(ep.protocol(), ec);
    if (!ec) a.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) a.bind(ep, ec);
  }
  if (!ec) a.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return Status::Unavailable("cannot listen on " + impl_->opts.host + ":" +
                               std::to_string(impl_->opts.port) + ": " + ec.message());
  return Status::Ok();
}

uint16_t Server::port() const { return impl_->acceptor.local_endpoint().port(); }

size_t Server::fd_limit() const { return impl_->fd_limit; }

void Server::Run(std::function<void()> on_signal) {
  impl_->on_signal = std::move(on_signal);
  impl_->signals.async_wait([this](beast::error_code ec, int) {
    if (!ec) impl_->BeginShutdown();
  });
  impl_->Accept();
  std::vector<std::thread> threads;
  std::vector<net::executor_work_guard<net::io_context::executor_type>> guards;
  for (auto& l : impl_->loops) guards.push_back(net::make_work_guard(*l));
  for (size_t i = 1; i < impl_->loops.size(); ++i) {
    threads.emplace_back([this, i] {
      pthread_setname_np(pthread_self(), ("trg-io-" + std::to_string(i)).c_str());
      impl_->loops[i]->run();
    });
  }
  pthread_setname_np(pthread_self(), "trg-io-0");
  impl_->loops[0]->run();
  for (auto& t : threads) t.join();
}

void Server::Shutdown() {
  net::post(impl_->ioc, [this] { impl_->BeginShutdown(); });
}

void Server::Post(int home, std::function<void()> fn) {
  auto& loops = impl_->loops;
  net::post(*loops[static_cast<size_t>(home) % loops.size()], std::move(fn));
}

bool Server::RunBlocking(std::function<void()> fn) {
  if (impl_->blocking_pending.fetch_add(1) >= kMaxBlockingQueue) {
    impl_->blocking_pending.fetch_sub(1);
    return false;
  }
  net::post(impl_->blocking, [this, fn = std::move(fn)] {
    fn();
    impl_->blocking_pending.fetch_sub(1);
  });
  return true;
}

}  // namespace triggers::http
