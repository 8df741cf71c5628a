// Pull-inbox load generator (bench-only, not part of the server): the same
// semantics as bench/pull_bench.py at a small fraction of its CPU, so that on
// a machine shared with the server the figure measures the server, as wrk
// does for ingest. For each receive size B and consumer count C:
//   1. ingest N events with POST /v1/events/batch (500 per request),
//   2. C consumer threads, each with one keep-alive connection, loop
//      POST /v1/subscriptions/{id}/receive {"max":B,"visibility_timeout_s":60}
//      + POST .../ack with every receipt, until all N are acked together,
// and print the events received-and-acked per second, the redeliveries and
// empty receives, and the CPU per message of the server (--server-pid, from
// /proc) and of this process.
//
// Plain blocking sockets, HTTP/1.1 with Content-Length only, 127.0.0.1 only.
// The answers are not parsed as JSON (see ScanReceipts): parsing ~130 KB per
// receive is what made the Python client cost more than the server.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kIngestBatch = 500;
constexpr const char* kDefaultEvent =
    R"({"type":"bench.pull","source":"pull-bench","subject":"order/12345","data":{"order_id":12345,"total":129.99,"currency":"EUR","items":[{"sku":"W-1","qty":2},{"sku":"W-7","qty":1}]}})";

[[noreturn]] void Fail(const std::string& msg) {
  std::fprintf(stderr, "pull_load: %s\n", msg.c_str());
  std::fflush(stderr);
  std::_Exit(1);
}

struct Options {
  int port = 0;
  std::string key, sub, event = kDefaultEvent;
  long n = 20000;
  std::vector<int> batches{10, 100}, consumers{1};
  int server_pid = 0;
  double timeout_s = 300;
};

// One keep-alive connection to 127.0.0.1:port; reconnects once when the
// server closed it (as http.client does in the Python client).
class Conn {
 public:
  Conn(const Options& o) : o_(o) {}
  ~Conn() { Close(); }

  // POST path with body; returns the status, the answer body in *out.
  int Post(const std::string& path, const std::string& body, std::string* out) {
    std::string req =
        "POST " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + o_.key +
        "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
        "\r\n\r\n" + body;
    for (int attempt = 1;; ++attempt) {
      if (fd_ < 0) Connect();
      int status = 0;
      if (SendAll(req) && Read(&status, out)) return status;
      Close();
      if (attempt == 2) Fail("POST " + path + ": the connection failed twice");
    }
  }

 private:
  void Connect() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(o_.port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
      Fail("cannot connect to 127.0.0.1:" + std::to_string(o_.port));
    }
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    timeval tv{30, 0};
    setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    buf_.clear();
  }
  void Close() {
    if (fd_ >= 0) close(fd_);
    fd_ = -1;
  }
  bool SendAll(const std::string& s) {
    for (size_t off = 0; off < s.size();) {
      ssize_t w = send(fd_, s.data() + off, s.size() - off, MSG_NOSIGNAL);
      if (w <= 0) return false;
      off += static_cast<size_t>(w);
    }
    return true;
  }
  bool Fill() {
    char tmp[65536];
    ssize_t r = recv(fd_, tmp, sizeof tmp, 0);
    if (r <= 0) return false;
    buf_.append(tmp, static_cast<size_t>(r));
    return true;
  }
  // Header value of name (lower case) in the header block h, or "".
  static std::string Header(const std::string& h, const char* name) {
    std::string lower(h);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    size_t p = lower.find(std::string("\r\n") + name + ":");
    if (p == std::string::npos) return "";
    p += 3 + std::strlen(name);
    size_t e = lower.find("\r\n", p);
    while (p < e && lower[p] == ' ') ++p;
    return lower.substr(p, e - p);
  }
  bool Read(int* status, std::string* out) {
    size_t hend;
    while ((hend = buf_.find("\r\n\r\n")) == std::string::npos) {
      if (!Fill()) return false;
    }
    const std::string head = buf_.substr(0, hend + 2);
    if (head.compare(0, 9, "HTTP/1.1 ") != 0) Fail("not an HTTP/1.1 answer");
    *status = std::atoi(head.c_str() + 9);
    if (!Header(head, "transfer-encoding").empty()) Fail("chunked answers are not supported");
    const size_t len = std::strtoul(Header(head, "content-length").c_str(), nullptr, 10);
    while (buf_.size() < hend + 4 + len) {
      if (!Fill()) return false;
    }
    out->assign(buf_, hend + 4, len);
    buf_.erase(0, hend + 4 + len);
    if (Header(head, "connection") == "close") Close();
    return true;
  }

  const Options& o_;
  int fd_ = -1;
  std::string buf_;
};

// The receipts and attempts of a receive answer, by a scan instead of a JSON
// parser: the server writes every element as {"receipt":"...","attempt":N,
// "delivery_id":...,"event":{...}} in that order (docs/api.md), and the
// events of this bench (its own payload) hold no "receipt" key, so the first
// key of each element is found by its text. The ack's answer checks the
// count: every receipt sent must come back "acked".
void ScanReceipts(const std::string& body, std::vector<std::string>* receipts, long* redelivered) {
  static constexpr std::string_view kReceipt = "{\"receipt\":\"";
  static constexpr std::string_view kAttempt = "\",\"attempt\":";
  for (size_t p = body.find(kReceipt); p != std::string::npos; p = body.find(kReceipt, p)) {
    p += kReceipt.size();
    size_t e = body.find(kAttempt, p);
    if (e == std::string::npos) Fail("receive answer without an attempt: " + body.substr(0, 300));
    receipts->emplace_back(body, p, e - p);
    if (std::atol(body.c_str() + e + kAttempt.size()) > 1) ++*redelivered;
    p = e;
  }
}

size_t Count(const std::string& s, std::string_view what) {
  size_t n = 0;
  for (size_t p = s.find(what); p != std::string::npos; p = s.find(what, p + what.size())) ++n;
  return n;
}

struct Tally {
  long receives = 0, redelivered = 0, empties = 0;
};

// One consumer until `total` (shared) reaches n; a negative total (another
// consumer failed) ends it.
Tally Consume(const Options& o, int batch, std::atomic<long>& total, Clock::time_point deadline) {
  Conn c(o);
  Tally t;
  const std::string recv_path = "/v1/subscriptions/" + o.sub + "/receive";
  const std::string ack_path = "/v1/subscriptions/" + o.sub + "/ack";
  const std::string recv_body =
      "{\"max\":" + std::to_string(batch) + ",\"visibility_timeout_s\":60}";
  std::string answer, ack;
  std::vector<std::string> receipts;
  while (total.load() >= 0 && total.load() < o.n) {
    if (Clock::now() > deadline) Fail("draining did not finish before the deadline");
    int st = c.Post(recv_path, recv_body, &answer);
    ++t.receives;
    if (st != 200)
      Fail("receive failed (HTTP " + std::to_string(st) + ") " + answer.substr(0, 300));
    receipts.clear();
    ScanReceipts(answer, &receipts, &t.redelivered);
    if (receipts.empty()) {
      if (++t.empties > 200) Fail("receive returned nothing 200 times");
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
      continue;
    }
    ack = "{\"receipts\":[";
    for (size_t i = 0; i < receipts.size(); ++i) {
      if (i) ack += ',';
      ack += '"' + receipts[i] + '"';  // receipts are <id>.<hex>: nothing to escape
    }
    ack += "]}";
    st = c.Post(ack_path, ack, &answer);
    if (st != 200) Fail("ack failed (HTTP " + std::to_string(st) + ") " + answer.substr(0, 300));
    if (Count(answer, "\"status\":\"acked\"") != receipts.size()) {
      Fail("ack did not ack every receipt: " + answer.substr(0, 300));
    }
    total += static_cast<long>(receipts.size());
  }
  return t;
}

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

double ServerCpu(int pid) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  size_t p = s.rfind(')');
  if (p == std::string::npos) Fail("cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream in(s.substr(p + 2));
  std::string field;
  double ticks = 0;
  for (int i = 0; i < 13 && in >> field; ++i) {
    if (i >= 11) ticks += std::atof(field.c_str());  // utime, stime (fields 14, 15)
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

double OwnCpu() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

double Ingest(const Options& o, Conn& c, Clock::time_point deadline) {
  const auto t0 = Clock::now();
  std::string answer;
  for (long done = 0; done < o.n;) {
    if (Clock::now() > deadline) Fail("ingest did not finish before the deadline");
    const long k = std::min<long>(kIngestBatch, o.n - done);
    std::string body = "{\"events\":[";
    for (long i = 0; i < k; ++i) (i ? body += ',' : body) += o.event;
    body += "]}";
    int st = c.Post("/v1/events/batch", body, &answer);
    if (st != 200 || answer.find("\"failed_count\":0") == std::string::npos) {
      Fail("batch ingest failed (HTTP " + std::to_string(st) + ") " + answer.substr(0, 300));
    }
    done += k;
  }
  return Seconds(t0, Clock::now());
}

void Run(const Options& o, int batch, int consumers, Conn& ingest, Clock::time_point deadline) {
  const double t_ing = Ingest(o, ingest, deadline);
  const double cpu0 = o.server_pid ? ServerCpu(o.server_pid) : 0, own0 = OwnCpu();
  std::atomic<long> total{0};
  std::vector<Tally> tallies(static_cast<size_t>(consumers));
  std::vector<std::thread> threads;
  const auto t0 = Clock::now();
  for (int i = 0; i < consumers; ++i) {
    threads.emplace_back(
        [&, i] { tallies[static_cast<size_t>(i)] = Consume(o, batch, total, deadline); });
  }
  for (auto& t : threads) t.join();
  const double secs = Seconds(t0, Clock::now());
  Tally sum;
  for (const Tally& t : tallies) {
    sum.receives += t.receives, sum.redelivered += t.redelivered, sum.empties += t.empties;
  }
  std::string cpu = ", client CPU " + std::to_string(std::lround((OwnCpu() - own0) / o.n * 1e6)) +
                    " us per message";
  if (o.server_pid) {
    cpu = ", server CPU " +
          std::to_string(std::lround((ServerCpu(o.server_pid) - cpu0) / o.n * 1e6)) +
          " us per message" + cpu;
  }
  std::printf(
      "B=%-3d C=%-2d ingest %ld events in %.2f s (%.0f events/s); received+acked %ld in %.2f s = "
      "%.0f events/s (%ld receive calls, %ld redelivered, %ld empty%s)\n",
      batch, consumers, o.n, t_ing, o.n / t_ing, o.n, secs, o.n / secs, sum.receives,
      sum.redelivered, sum.empties, cpu.c_str());
  std::fflush(stdout);
}

std::vector<int> List(const std::string& s, int lo, int hi, const char* what) {
  std::vector<int> v;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');) {
    const int x = std::atoi(item.c_str());
    if (x < lo || x > hi)
      Fail(std::string(what) + " must be from " + std::to_string(lo) + " to " + std::to_string(hi));
    v.push_back(x);
  }
  if (v.empty()) Fail(std::string(what) + " is empty");
  return v;
}

Options Parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (i + 1 >= argc) Fail("missing the value of " + a);
    const std::string v = argv[++i];
    if (a == "--url") {
      if (v.rfind("http://127.0.0.1:", 0) != 0) Fail("--url must be http://127.0.0.1:PORT");
      o.port = std::atoi(v.c_str() + 17);
    } else if (a == "--key") {
      o.key = v;
    } else if (a == "--subscription") {
      o.sub = v;
    } else if (a == "--n") {
      o.n = std::atol(v.c_str());
      if (o.n < 1 || o.n > 1000000) Fail("--n must be 1..1000000");
    } else if (a == "--batches") {
      o.batches = List(v, 1, 100, "--batches");
    } else if (a == "--consumers") {
      o.consumers = List(v, 1, 32, "--consumers");
    } else if (a == "--server-pid") {
      o.server_pid = std::atoi(v.c_str());
    } else if (a == "--payload") {
      std::ifstream f(v);
      if (!f) Fail("cannot read " + v);
      o.event.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
      while (!o.event.empty() && std::isspace(static_cast<unsigned char>(o.event.back())))
        o.event.pop_back();
    } else if (a == "--timeout") {
      o.timeout_s = std::atof(v.c_str());
    } else {
      Fail("unknown option " + a);
    }
  }
  if (o.port <= 0 || o.key.empty() || o.sub.empty()) {
    Fail(
        "usage: pull_load --url http://127.0.0.1:PORT --key KEY --subscription SUB [--n N] "
        "[--batches 10,100] [--consumers 1,4] [--payload event.json] [--server-pid PID] "
        "[--timeout 300]");
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  const Options o = Parse(argc, argv);
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                           std::chrono::duration<double>(o.timeout_s));
  std::printf(
      "pull bench (bench/pull_load): N=%ld events of %zu B per run, C consumers (receive max=B, "
      "visibility 60 s, then ack the receipts), ingest in batches of %d\n",
      o.n, o.event.size(), kIngestBatch);
  Conn ingest(o);
  for (int b : o.batches) {
    for (int c : o.consumers) Run(o, b, c, ingest, deadline);
  }
  return 0;
}
