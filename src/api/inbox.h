// Inbox: long-polling pull receivers (POST .../receive with wait_s) parked
// without holding a thread. A parked receiver is retried on the blocking pool
// when an ingest commits deliveries for its subscription, and every second
// (the fallback that also covers visibility timeouts and other nodes); at its
// deadline it is answered with an empty list.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "triggers/clock.h"

namespace triggers::api {

class Inbox {
 public:
  // `attempt(final)` tries to answer: it returns true when it answered (it
  // must answer when `final` is true). Runs on the blocking pool.
  using Attempt = std::function<bool(bool final)>;

  Inbox(std::function<bool(std::function<void()>)> run_blocking, Clock* clock);
  ~Inbox();

  // False when too many receivers are parked (the caller answers at once).
  bool Park(const std::string& subscription_id, int64_t deadline_ms, Attempt attempt);
  // Retries the receivers parked on these subscriptions now (all when empty).
  void Notify(const std::vector<std::string>& subscription_ids);
  // Answers every parked receiver now (shutdown) and stops the timer thread.
  void Shutdown();

 private:
  struct Waiter {
    std::mutex mu;  // serializes attempts of this waiter
    bool done = false;
    std::string subscription_id;
    int64_t deadline_ms = 0;
    Attempt attempt;
  };
  void Run();
  void Try(std::shared_ptr<Waiter> w, bool final);

  std::function<bool(std::function<void()>)> run_blocking_;
  Clock* clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::unordered_map<std::string, std::vector<std::shared_ptr<Waiter>>> parked_;
  size_t count_ = 0;
  std::thread thread_;
  static constexpr size_t kMaxParked = 10000;
};

}  // namespace triggers::api
