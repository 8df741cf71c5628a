#include "delivery/curl_sender.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "delivery/ssrf.h"

namespace triggers::delivery {
namespace {

constexpr size_t kSnippetBytes = 1024;
constexpr size_t kMaxResponseBytes = 64 * 1024;  // read at most this much, then cut
constexpr size_t kSpareHandles = 256;            // finished easy handles kept for reuse

struct Transfer {
  HttpRequest request;
  std::function<void(HttpOutcome)> done;
  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  std::string snippet;
  size_t received = 0;
  std::optional<std::string> retry_after;
  bool refused_address = false;
  bool allow_private = false;
  std::chrono::steady_clock::time_point start;
  char errbuf[CURL_ERROR_SIZE] = {0};
};

size_t OnBody(char* ptr, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->snippet.size() < kSnippetBytes) {
    t->snippet.append(ptr, std::min(len, kSnippetBytes - t->snippet.size()));
  }
  t->received += len;
  if (t->received > kMaxResponseBytes) return 0;  // enough: the status is what counts
  return len;
}

size_t OnHeader(char* ptr, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(ptr, size * n);
  constexpr std::string_view kName = "retry-after:";
  if (line.size() > kName.size()) {
    bool match = true;
    for (size_t i = 0; i < kName.size() && match; ++i) {
      match = std::tolower(static_cast<unsigned char>(line[i])) == kName[i];
    }
    if (match) {
      std::string_view v = line.substr(kName.size());
      while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
      while (!v.empty() && (v.back() == '\r' || v.back() == '\n' || v.back() == ' '))
        v.remove_suffix(1);
      t->retry_after = std::string(v);
    }
  }
  return size * n;
}

// Called by curl with the address it is about to connect to: the SSRF check
// on the very address used (no second DNS lookup in between).
curl_socket_t OnOpenSocket(void* user, curlsocktype, curl_sockaddr* addr) {
  auto* t = static_cast<Transfer*>(user);
  if (!t->allow_private) {
    char buf[INET6_ADDRSTRLEN] = {0};
    const void* a =
        addr->family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(&addr->addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(&addr->addr)->sin6_addr);
    if (inet_ntop(addr->family, a, buf, sizeof(buf)) == nullptr || IsForbiddenAddress(buf)) {
      t->refused_address = true;
      return CURL_SOCKET_BAD;
    }
  }
  return socket(addr->family, addr->socktype, addr->protocol);
}

class CurlSender final : public HttpSender {
 public:
  explicit CurlSender(CurlSenderOptions o) : opts_(std::move(o)) {
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi_ = curl_multi_init();
    // No per-host cap: with one (CURLMOPT_MAX_HOST_CONNECTIONS 64), another
    // subscription's hanging transfers to the same host:port held every
    // connection and new transfers queued inside curl until they timed out.
    curl_multi_setopt(multi_, CURLMOPT_MAX_HOST_CONNECTIONS, 0L);
    curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, opts_.max_connections);
    curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, opts_.max_connections);
    // One transfer per connection: an HTTP/2 connection shared by several
    // subscriptions would let one endpoint that stops reading (flow-control
    // windows, stream limits) stall the others' streams on it.
    curl_multi_setopt(multi_, CURLMOPT_PIPELINING, static_cast<long>(CURLPIPE_NOTHING));
    thread_ = std::thread([this] { Run(); });
  }
  ~CurlSender() override { Stop(); }

  void Send(HttpRequest request, std::function<void(HttpOutcome)> done) override {
    auto t = std::make_unique<Transfer>();
    t->request = std::move(request);
    t->done = std::move(done);
    bool refused = false;
    bool wake = false;
    {
      std::lock_guard lock(mu_);
      refused = stopping_;
      if (!refused) {
        in_flight_.fetch_add(1);
        // Only the first of a burst wakes the thread (a syscall each): the
        // rest are taken with it, the queue is swapped out whole.
        wake = incoming_.empty();
        incoming_.push_back(std::move(t));
      }
    }
    if (refused) {
      HttpOutcome o;
      o.error = "shutting down";
      t->done(std::move(o));
      return;
    }
    if (wake) curl_multi_wakeup(multi_);
  }

  size_t in_flight() const override { return in_flight_.load(); }

  void Stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_ && !thread_.joinable()) return;
      stopping_ = true;
    }
    curl_multi_wakeup(multi_);
    if (thread_.joinable()) thread_.join();
    for (CURL* e : spare_) curl_easy_cleanup(e);
    spare_.clear();
    if (multi_) {
      curl_multi_cleanup(multi_);
      multi_ = nullptr;
    }
  }

 private:
  void Start(std::unique_ptr<Transfer> t) {
    // A finished transfer's handle is reset and reused: a new one costs
    // allocations (and buffers) that dominated this thread's malloc time.
    CURL* e = nullptr;
    if (!spare_.empty()) {
      e = spare_.back();
      spare_.pop_back();
      curl_easy_reset(e);
    } else {
      e = curl_easy_init();
    }
    t->easy = e;
    t->allow_private = opts_.allow_private_destinations;
    t->start = std::chrono::steady_clock::now();
    curl_easy_setopt(e, CURLOPT_URL, t->request.url.c_str());
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->request.body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(t->request.body.size()));
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, static_cast<long>(t->request.timeout_ms));
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS,
                     static_cast<long>(std::min<int64_t>(t->request.timeout_ms, 10000)));
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    // Never a proxy: libcurl would otherwise take one from http_proxy,
    // https_proxy or ALL_PROXY in the environment, send every signed webhook
    // there, and the address guard below would judge the proxy's address
    // instead of the destination's. "" turns the environment off (NO_PROXY too).
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_USERAGENT, opts_.user_agent.c_str());
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, OnOpenSocket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    t->headers = curl_slist_append(t->headers, "Expect:");  // no 100-continue round trip
    for (const auto& [k, v] : t->request.headers) {
      std::string h = k + ": " + v;
      t->headers = curl_slist_append(t->headers, h.c_str());
    }
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_multi_add_handle(multi_, e);
    Transfer* raw = t.release();
    live_.emplace(raw, std::unique_ptr<Transfer>(raw));
  }

  void Finish(Transfer* t, CURLcode code) {
    HttpOutcome o;
    o.latency_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - t->start)
                       .count();
    long status = 0;  // NOLINT(runtime/int)
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
    if (status > 0) o.status_code = static_cast<int>(status);
    o.body_snippet = std::move(t->snippet);
    o.retry_after = std::move(t->retry_after);
    bool cut_short = code == CURLE_WRITE_ERROR && t->received > kMaxResponseBytes;
    if (t->refused_address) {
      o.status_code.reset();
      o.error = "destination address refused (private, loopback, link-local or metadata)";
    } else if (code != CURLE_OK && !cut_short) {
      o.error = t->errbuf[0] ? std::string(t->errbuf) : curl_easy_strerror(code);
    } else if (status < 200 || status > 299) {
      o.error = "HTTP " + std::to_string(status);
    }
    Complete(t, std::move(o));
  }

  // Frees the transfer and reports its outcome (sender thread only).
  void Complete(Transfer* t, HttpOutcome o) {
    curl_multi_remove_handle(multi_, t->easy);
    if (spare_.size() < kSpareHandles) {
      spare_.push_back(t->easy);
    } else {
      curl_easy_cleanup(t->easy);
    }
    curl_slist_free_all(t->headers);
    auto done = std::move(t->done);
    live_.erase(t);
    in_flight_.fetch_sub(1);
    done(std::move(o));
  }

  void Run() {
    pthread_setname_np(pthread_self(), "trg-sender");
    for (;;) {
      std::deque<std::unique_ptr<Transfer>> batch;
      bool stopping;
      {
        std::lock_guard lock(mu_);
        batch.swap(incoming_);
        stopping = stopping_;
      }
      for (auto& t : batch) Start(std::move(t));
      if (stopping) break;
      int running = 0;
      curl_multi_perform(multi_, &running);
      CURLMsg* msg;
      int left;
      while ((msg = curl_multi_info_read(multi_, &left)) != nullptr) {
        if (msg->msg != CURLMSG_DONE) continue;
        Transfer* t = nullptr;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &t);
        Finish(t, msg->data.result);
      }
      curl_multi_poll(multi_, nullptr, 0, 1000, nullptr);
    }
    // Shutting down: whatever is still in flight fails (the dispatcher
    // returns those leases).
    while (!live_.empty()) {
      HttpOutcome o;
      o.error = "shutting down";
      Complete(live_.begin()->first, std::move(o));
    }
  }

  CurlSenderOptions opts_;
  CURLM* multi_ = nullptr;
  std::mutex mu_;
  std::deque<std::unique_ptr<Transfer>> incoming_;
  bool stopping_ = false;
  std::atomic<size_t> in_flight_{0};
  std::unordered_map<Transfer*, std::unique_ptr<Transfer>> live_;  // sender thread only
  std::vector<CURL*> spare_;  // finished handles to reuse (sender thread only)
  std::thread thread_;
};

}  // namespace

std::unique_ptr<HttpSender> NewCurlSender(const CurlSenderOptions& options) {
  return std::make_unique<CurlSender>(options);
}

}  // namespace triggers::delivery
