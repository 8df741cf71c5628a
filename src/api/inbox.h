// Inbox: long-polling pull receivers (POST .../receive with wait_s) parked
// without holding a thread. A parked receiver is retried on the blocking pool
// when an ingest commits deliveries for its subscription, and every second
// (the fallback that also covers visibility timeouts and other nodes); at its
// deadline it is answered with what one last receive finds. When its API key
// is revoked (EndKey) or the server stops (Shutdown) it is answered without a
// receive, so neither takes a lease it could not hand out.
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
  // What an attempt is asked to do.
  enum class Turn {
    kTry,       // receive; answer only if messages came
    kLast,      // the deadline passed: receive and answer whatever came
    kShutdown,  // the server stops: answer an empty list, touch no message
    kRevoked,   // the key was revoked: answer 401, touch no message
  };
  // `attempt(turn)` tries to answer: it returns true when it answered, which
  // it must for every turn but kTry. kTry and kLast run on the blocking pool
  // (store I/O); kShutdown and kRevoked run on any thread and must not block.
  using Attempt = std::function<bool(Turn turn)>;

  Inbox(std::function<bool(std::function<void()>)> run_blocking, Clock* clock);
  ~Inbox();

  // Parks a receiver of the key with this hash. False when too many
  // receivers are parked (the caller answers at once). After Shutdown the
  // receiver is answered at once with kShutdown (and true is returned).
  bool Park(const std::string& subscription_id, const std::string& key_hash, int64_t deadline_ms,
            Attempt attempt);
  // Retries the receivers parked on these subscriptions now (all when empty).
  void Notify(const std::vector<std::string>& subscription_ids);
  // Answers every receiver parked with this key now, with kRevoked. A
  // receiver whose attempt is running meanwhile is not parked: its attempt
  // must check the key itself (it does, in handlers_inbox.cc).
  void EndKey(const std::string& key_hash);
  // How many receivers are parked now (a receiver whose attempt is running
  // is not counted meanwhile).
  size_t parked();
  // Answers every parked receiver now with kShutdown and stops the timer
  // thread. An attempt still queued answers kShutdown when it runs; one
  // already running answers with what it got.
  void Shutdown();

 private:
  struct Waiter {
    std::mutex mu;  // serializes attempts of this waiter
    bool done = false;
    std::string subscription_id;
    std::string key_hash;
    int64_t deadline_ms = 0;
    Attempt attempt;
  };
  void Run();
  // Removes the parked waiters for which `pred` holds and returns them
  // (caller holds mu_).
  std::vector<std::shared_ptr<Waiter>> TakeLocked(const std::function<bool(const Waiter&)>& pred);
  void Try(std::shared_ptr<Waiter> w, bool final);
  // Parks `w` again; false (and nothing done) once stopping.
  bool Repark(const std::shared_ptr<Waiter>& w);
  static void Answer(Waiter& w, Turn turn);

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
