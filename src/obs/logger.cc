#include "obs/logger.h"

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>
#include <vector>

#include "core/json_util.h"
#include "core/time_util.h"

namespace triggers::obs {
namespace {

constexpr size_t kMaxQueuedBytes = 16 << 20;
constexpr size_t kWakeBytes = 256 << 10;
constexpr auto kFlushInterval = std::chrono::milliseconds(50);

std::atomic<int> g_level{static_cast<int>(Level::kInfo)};

const char* LevelName(Level l) {
  switch (l) {
    case Level::kDebug:
      return "debug";
    case Level::kInfo:
      return "info";
    case Level::kWarn:
      return "warn";
    case Level::kError:
      return "error";
  }
  return "info";
}

void WriteAll(const std::string& s) {
  size_t off = 0;
  while (off < s.size()) {
    ssize_t n = ::write(STDERR_FILENO, s.data() + off, s.size() - off);
    if (n <= 0) return;
    off += static_cast<size_t>(n);
  }
}

class AsyncSink {
 public:
  void Start() {
    std::lock_guard lock(mu_);
    if (running_) return;
    running_ = true;
    stop_ = false;
    thread_ = std::thread([this] { Run(); });
  }
  void Stop() {
    {
      std::lock_guard lock(mu_);
      if (!running_) return;
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    std::lock_guard lock(mu_);
    running_ = false;
    WriteAll(pending_);
    pending_.clear();
  }
  void Write(std::string&& line) {
    std::unique_lock lock(mu_);
    if (!running_) {
      lock.unlock();
      WriteAll(line);
      return;
    }
    if (pending_.size() + line.size() > kMaxQueuedBytes) {
      ++dropped_;
      return;
    }
    pending_ += line;
    // No wake-up per line: the writer flushes every kFlushInterval, or at once
    // when a lot is pending. Waking a thread per request costs more than the line.
    bool big = pending_.size() >= kWakeBytes;
    lock.unlock();
    if (big) cv_.notify_one();
  }

 private:
  void Run() {
    pthread_setname_np(pthread_self(), "trg-log");
    std::string out;
    std::unique_lock lock(mu_);
    for (;;) {
      cv_.wait_for(lock, kFlushInterval, [&] { return stop_ || pending_.size() >= kWakeBytes; });
      if (pending_.empty()) {
        if (stop_) return;
        continue;
      }
      if (stop_ && pending_.empty()) return;
      out.swap(pending_);
      uint64_t dropped = dropped_;
      dropped_ = 0;
      lock.unlock();
      if (dropped) {
        out += "{\"level\":\"warn\",\"msg\":\"log lines dropped\",\"count\":" +
               std::to_string(dropped) + "}\n";
      }
      WriteAll(out);
      out.clear();
      lock.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::string pending_;
  uint64_t dropped_ = 0;
  bool running_ = false;
  bool stop_ = false;
  std::thread thread_;
};

AsyncSink& Sink() {
  static AsyncSink* sink = new AsyncSink();  // never destroyed: usable during exit
  return *sink;
}

}  // namespace

bool ParseLevel(std::string_view s, Level* out) {
  if (s == "debug")
    *out = Level::kDebug;
  else if (s == "info")
    *out = Level::kInfo;
  else if (s == "warn")
    *out = Level::kWarn;
  else if (s == "error")
    *out = Level::kError;
  else
    return false;
  return true;
}

void SetLogLevel(Level level) { g_level.store(static_cast<int>(level)); }
bool LogEnabled(Level level) {
  return static_cast<int>(level) >= g_level.load(std::memory_order_relaxed);
}
void StartAsyncLogging() { Sink().Start(); }
void StopAsyncLogging() { Sink().Stop(); }

LogLine::LogLine(Level level, std::string_view msg) : enabled_(LogEnabled(level)) {
  if (!enabled_) return;
  buf_.reserve(256);
  buf_ += "{\"time\":\"";
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch())
                 .count();
  core::AppendTimeMs(buf_, now);
  buf_ += "\",\"level\":\"";
  buf_ += LevelName(level);
  buf_ += "\",\"msg\":";
  core::AppendJsonString(buf_, msg);
}

LogLine& LogLine::Str(std::string_view key, std::string_view value) {
  if (!enabled_) return *this;
  buf_ += ',';
  core::AppendJsonString(buf_, key);
  buf_ += ':';
  core::AppendJsonString(buf_, value);
  return *this;
}

LogLine& LogLine::Int(std::string_view key, int64_t value) {
  if (!enabled_) return *this;
  buf_ += ',';
  core::AppendJsonString(buf_, key);
  buf_ += ':';
  buf_ += std::to_string(value);
  return *this;
}

LogLine& LogLine::Num(std::string_view key, double value) {
  if (!enabled_) return *this;
  char tmp[32];
  std::snprintf(tmp, sizeof(tmp), "%.3f", value);
  buf_ += ',';
  core::AppendJsonString(buf_, key);
  buf_ += ':';
  buf_ += tmp;
  return *this;
}

LogLine& LogLine::Null(std::string_view key) {
  if (!enabled_) return *this;
  buf_ += ',';
  core::AppendJsonString(buf_, key);
  buf_ += ":null";
  return *this;
}

void LogLine::Emit() {
  if (!enabled_) return;
  buf_ += "}\n";
  Sink().Write(std::move(buf_));
}

}  // namespace triggers::obs
