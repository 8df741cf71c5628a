#include "api/inbox.h"

#include <pthread.h>

namespace triggers::api {

Inbox::Inbox(std::function<bool(std::function<void()>)> run_blocking, Clock* clock)
    : run_blocking_(std::move(run_blocking)), clock_(clock), thread_([this] { Run(); }) {}

Inbox::~Inbox() { Shutdown(); }

bool Inbox::Park(const std::string& sub_id, const std::string& key_hash, int64_t deadline_ms,
                 Attempt attempt) {
  auto w = std::make_shared<Waiter>();
  w->subscription_id = sub_id;
  w->key_hash = key_hash;
  w->deadline_ms = deadline_ms;
  w->attempt = std::move(attempt);
  {
    std::lock_guard lock(mu_);
    if (!stopping_) {
      if (count_ >= kMaxParked) return false;
      parked_[sub_id].push_back(w);
      ++count_;
      w = nullptr;
    }
  }
  if (w) {  // shut down: nothing would ever retry it
    Answer(*w, Turn::kShutdown);
    return true;
  }
  cv_.notify_one();  // the deadline may be the earliest
  return true;
}

void Inbox::Answer(Waiter& w, Turn turn) {
  std::lock_guard wl(w.mu);
  if (!w.done && w.attempt(turn)) w.done = true;
}

bool Inbox::Repark(const std::shared_ptr<Waiter>& w) {
  std::lock_guard lock(mu_);
  if (stopping_) return false;
  parked_[w->subscription_id].push_back(w);
  ++count_;
  return true;
}

void Inbox::Notify(const std::vector<std::string>& sub_ids) {
  std::vector<std::shared_ptr<Waiter>> ready;
  {
    std::lock_guard lock(mu_);
    if (sub_ids.empty()) {  // "any subscription" (another node, after a reconnect)
      for (auto& [id, ws] : parked_) {
        for (auto& w : ws) ready.push_back(std::move(w));
      }
      parked_.clear();
      count_ = 0;
    }
    for (const auto& id : sub_ids) {
      auto it = parked_.find(id);
      if (it == parked_.end()) continue;
      for (auto& w : it->second) ready.push_back(std::move(w));
      count_ -= it->second.size();
      parked_.erase(it);
    }
  }
  for (auto& w : ready) Try(std::move(w), false);
}

// Runs one attempt on the blocking pool; parks the waiter again when it did
// not answer and its deadline has not passed. Once the inbox is stopping, an
// attempt that has not started answers kShutdown: a receive now would lease
// messages that the closing server may never hand out.
void Inbox::Try(std::shared_ptr<Waiter> w, bool final) {
  auto task = [this, w, final] {
    std::lock_guard wl(w->mu);
    if (w->done) return;
    Turn turn = final || clock_->NowMs() >= w->deadline_ms ? Turn::kLast : Turn::kTry;
    {
      std::lock_guard lock(mu_);
      if (stopping_) turn = Turn::kShutdown;
    }
    if (w->attempt(turn)) {
      w->done = true;
      return;
    }
    if (Repark(w)) return;
    // Shut down meanwhile: nobody would look at it again; answer now.
    if (w->attempt(Turn::kShutdown)) w->done = true;
  };
  if (!run_blocking_(task)) {
    // Pool saturated. Never work inline here (this may be the ingest writer's
    // thread): park again for the next one-second pass; only a final attempt
    // (deadline) is answered here, or, when stopping, the empty answer.
    if (!final && Repark(w)) return;
    bool stopping;
    {
      std::lock_guard lock(mu_);
      stopping = stopping_;
    }
    Answer(*w, stopping ? Turn::kShutdown : Turn::kLast);
  }
}

void Inbox::Run() {
  pthread_setname_np(pthread_self(), "trg-inbox");
  std::unique_lock lock(mu_);
  int64_t last_poll = clock_->NowMs();
  while (!stopping_) {
    int64_t now = clock_->NowMs();
    int64_t next = last_poll + 1000;
    for (const auto& [id, ws] : parked_) {
      for (const auto& w : ws) next = std::min(next, w->deadline_ms);
    }
    if (next > now) cv_.wait_for(lock, std::chrono::milliseconds(next - now));
    if (stopping_) break;
    now = clock_->NowMs();
    // Once a second every parked receiver gets an attempt (visibility
    // timeouts, nacks, other nodes); in between only those past their deadline.
    const bool poll = now - last_poll >= 1000;
    if (poll) last_poll = now;
    std::vector<std::shared_ptr<Waiter>> take =
        TakeLocked([&](const Waiter& w) { return poll || w.deadline_ms <= now; });
    lock.unlock();
    for (auto& w : take) {
      bool final = w->deadline_ms <= now;
      Try(std::move(w), final);
    }
    lock.lock();
  }
}

size_t Inbox::parked() {
  std::lock_guard lock(mu_);
  return count_;
}

void Inbox::EndKey(const std::string& key_hash) {
  std::vector<std::shared_ptr<Waiter>> ended;
  {
    std::lock_guard lock(mu_);
    ended = TakeLocked([&](const Waiter& w) { return w.key_hash == key_hash; });
  }
  for (auto& w : ended) Answer(*w, Turn::kRevoked);
}

std::vector<std::shared_ptr<Inbox::Waiter>> Inbox::TakeLocked(
    const std::function<bool(const Waiter&)>& pred) {
  std::vector<std::shared_ptr<Waiter>> out;
  for (auto it = parked_.begin(); it != parked_.end();) {
    auto& ws = it->second;
    for (size_t i = 0; i < ws.size();) {
      if (pred(*ws[i])) {
        out.push_back(std::move(ws[i]));
        ws[i] = std::move(ws.back());
        ws.pop_back();
        --count_;
      } else {
        ++i;
      }
    }
    it = ws.empty() ? parked_.erase(it) : std::next(it);
  }
  return out;
}

void Inbox::Shutdown() {
  std::vector<std::shared_ptr<Waiter>> all;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    for (auto& [id, ws] : parked_) {
      for (auto& w : ws) all.push_back(std::move(w));
    }
    parked_.clear();
    count_ = 0;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
  for (auto& w : all) Answer(*w, Turn::kShutdown);
}

}  // namespace triggers::api
