// `triggers tail`: prints the events of a key's tenant as they are committed,
// one JSON object per line, from GET /v1/events/stream. Reconnects with
// backoff when the stream ends; exits on SIGINT/SIGTERM, or on a refused key.
#include <curl/curl.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "app/serve.h"
#include "triggers/version.h"

namespace triggers::app {
namespace {

std::atomic<bool> g_stop{false};

void OnSignal(int) { g_stop.store(true); }

// Parses SSE frames out of the byte stream and prints the events' data.
struct SseParser {
  std::string buf;
  std::string data;
  std::string event;
  size_t printed = 0;

  void Feed(const char* p, size_t n) {
    buf.append(p, n);
    size_t start = 0;
    for (;;) {
      size_t nl = buf.find('\n', start);
      if (nl == std::string::npos) break;
      std::string_view line(buf.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      Line(line);
      start = nl + 1;
    }
    buf.erase(0, start);
  }

  void Line(std::string_view line) {
    if (line.empty()) {  // end of a message
      if (!data.empty() && (event.empty() || event == "event")) {
        std::fwrite(data.data(), 1, data.size(), stdout);
        std::fputc('\n', stdout);
        std::fflush(stdout);
        ++printed;
      }
      data.clear();
      event.clear();
      return;
    }
    if (line.front() == ':') return;  // comment (keep-alive)
    size_t colon = line.find(':');
    std::string_view field = line.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "data") {
      if (!data.empty()) data += '\n';
      data.append(value);
    } else if (field == "event") {
      event.assign(value);
    }
  }
};

// Prints "connected" on stderr once the stream's 200 header is complete: the
// user knows the stream is open before the first event (which may be long).
size_t OnHeader(char* p, size_t size, size_t n, void* user) {
  std::string_view line(p, size * n);
  auto* connected = static_cast<bool*>(user);
  if (line.rfind("HTTP/", 0) == 0) {
    size_t sp = line.find(' ');
    *connected = sp != std::string_view::npos && line.substr(sp + 1, 3) == "200";
  } else if (*connected && (line == "\r\n" || line == "\n")) {
    std::fprintf(stderr, "triggers tail: connected; waiting for events\n");
    std::fflush(stderr);
  }
  return size * n;
}

size_t OnBody(char* p, size_t size, size_t n, void* user) {
  static_cast<SseParser*>(user)->Feed(p, size * n);
  return size * n;
}

int OnProgress(void*, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return g_stop.load() ? 1 : 0;  // abort the transfer
}

}  // namespace

int RunTail(const TailArgs& args) {
  if (args.key.empty()) {
    std::fprintf(stderr, "triggers tail: --key (or TRIGGERS_KEY) is required\n");
    return 2;
  }
  struct sigaction sa {};
  sa.sa_handler = OnSignal;
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::string url = args.url;
  while (!url.empty() && url.back() == '/') url.pop_back();
  url += "/v1/events/stream";
  if (!args.type.empty()) {
    CURL* e = curl_easy_init();
    char* esc = curl_easy_escape(e, args.type.c_str(), static_cast<int>(args.type.size()));
    url += "?type=";
    url += esc;
    curl_free(esc);
    curl_easy_cleanup(e);
  }
  const std::string auth = "Authorization: Bearer " + args.key;
  int backoff_ms = 500;
  int rc = 0;
  while (!g_stop.load()) {
    SseParser parser;
    CURL* c = curl_easy_init();
    curl_slist* headers = curl_slist_append(nullptr, auth.c_str());
    headers = curl_slist_append(headers, "Accept: text/event-stream");
    curl_easy_setopt(c, CURLOPT_URL, url.c_str());
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &parser);
    bool connected = false;
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &connected);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, OnProgress);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 5000L);
    // No bytes for 40 s (keep-alives come every 15 s): the stream is dead.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, 40L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "triggers-tail/" TRIGGERS_VERSION);
    CURLcode res = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    if (g_stop.load()) break;
    if (status == 401 || status == 403 || status == 400 || status == 404) {
      std::fprintf(stderr, "triggers tail: the server answered %ld (%s)\n", status,
                   status == 401   ? "the key was refused"
                   : status == 403 ? "the key lacks the read scope"
                                   : "bad request");
      rc = 1;
      break;
    }
    std::fprintf(stderr, "triggers tail: stream ended (%s); reconnecting\n",
                 res == CURLE_OK ? "closed by the server" : curl_easy_strerror(res));
    if (parser.printed > 0) backoff_ms = 500;
    for (int waited = 0; waited < backoff_ms && !g_stop.load(); waited += 100) {
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    backoff_ms = std::min(backoff_ms * 2, 10000);
  }
  curl_global_cleanup();
  return rc;
}

}  // namespace triggers::app
