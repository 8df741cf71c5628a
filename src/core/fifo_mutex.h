// A mutex that is handed to its waiters in the order they arrived.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace triggers::core {

// std::mutex lets the thread that just unlocked take the lock again before a
// woken waiter runs. A thread looping over short critical sections (the
// retention purge's chunks; the ingest writer's commits and fan-out chunks
// under load) then starves every other thread for as long as the loop
// lasts: ingest commits waited up to a whole 1 s purge pass (p99 268 ms).
// Here a thread that arrives while others wait queues behind them, so a
// waiter waits for at most the critical sections queued before it. Meets the
// Lockable requirements (std::lock_guard, std::unique_lock).
class FifoMutex {
 public:
  void lock() {
    std::unique_lock l(mu_);
    const uint64_t ticket = next_++;
    turn_.wait(l, [&] { return serving_ == ticket; });
  }
  bool try_lock() {
    std::lock_guard l(mu_);
    if (serving_ != next_) return false;
    ++next_;
    return true;
  }
  // Threads queued for the lock now (for tests).
  uint64_t waiters() {
    std::lock_guard l(mu_);
    return next_ - serving_ - (next_ != serving_ ? 1 : 0);
  }
  // Held or queued for by some thread. Right after this thread's unlock:
  // whether a waiter was handed the lock (or came since).
  bool busy() {
    std::lock_guard l(mu_);
    return serving_ != next_;
  }
  void unlock() {
    bool waiters;
    {
      std::lock_guard l(mu_);
      ++serving_;
      waiters = serving_ != next_;
    }
    if (waiters) turn_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable turn_;
  uint64_t next_ = 0;     // the ticket the next arrival takes
  uint64_t serving_ = 0;  // the ticket that holds the lock (== next_: free)
};

}  // namespace triggers::core
