#include "api/event_stream.h"

#include <pthread.h>

#include <algorithm>
#include <chrono>

#include "core/event_json.h"
#include "core/event_pattern.h"

namespace triggers::api {

EventStream::EventStream() : thread_([this] { Run(); }) {}

EventStream::~EventStream() { Shutdown(); }

bool EventStream::Add(std::string tenant, std::string key_hash, std::string type_glob,
                      std::shared_ptr<StreamSink> sink) {
  {
    std::lock_guard lock(mu_);
    if (stopping_ || listeners_.load() >= kMaxListeners) return false;
    listeners_.fetch_add(1);
    added_.push_back(
        {std::move(tenant), std::move(key_hash), std::move(type_glob), std::move(sink)});
  }
  cv_.notify_one();
  return true;
}

bool EventStream::Full() {
  std::lock_guard lock(mu_);
  return stopping_ || listeners_.load() >= kMaxListeners;
}

void EventStream::Publish(std::vector<Event> events) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    for (auto& e : events) {
      const size_t bytes = e.data.size() + 256;
      if (queued_bytes_ + bytes > kMaxQueuedBytes) break;
      queued_bytes_ += bytes;
      queue_.push_back(std::move(e));
    }
  }
  cv_.notify_one();
}

void EventStream::EndKey(std::string key_hash) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return;
    // Bounded: one entry per revocation, taken by the next pass of the thread.
    ended_keys_.push_back(std::move(key_hash));
  }
  cv_.notify_one();
}

void EventStream::Shutdown() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

std::string EventStream::Frame(const Event& ev) {
  std::string f;
  f.reserve(ev.data.size() + 256);
  f += "id: ";
  f += ev.id;
  f += "\nevent: event\ndata: ";
  // The event JSON is one line unless `data` holds raw newlines (JSON
  // whitespace): SSE needs each line of a message prefixed with "data: ".
  std::string json;
  core::AppendEventJson(json, ev);
  for (char c : json) {
    if (c == '\n') {
      f += "\ndata: ";
    } else if (c != '\r') {
      f += c;
    }
  }
  f += "\n\n";
  return f;
}

// Ends (finishes the chunked body, closes the connection) and removes the
// listeners whose key is in `keys`; their tenants go to `gone`.
void EventStream::EndStreamsOf(const std::vector<std::string>& keys,
                               std::vector<Listener>& listeners, std::vector<std::string>& gone) {
  size_t kept = 0;
  for (size_t i = 0; i < listeners.size(); ++i) {
    Listener& l = listeners[i];
    if (std::find(keys.begin(), keys.end(), l.key_hash) != keys.end()) {
      l.sink->Write(": the API key was revoked\n\n");
      l.sink->Close();
      gone.push_back(std::move(l.tenant));
      continue;
    }
    if (kept != i) listeners[kept] = std::move(l);
    ++kept;
  }
  listeners.resize(kept);
}

// Writes each listener the frames of its tenant's events that match its
// glob (and the keep-alive when `ping`); drops the listeners whose sink
// refused a write, their tenants going to `gone`.
void EventStream::FanOut(const std::vector<Event>& events, const std::vector<std::string>& frames,
                         bool ping, std::vector<Listener>& listeners,
                         std::vector<std::string>& gone) {
  size_t kept = 0;
  for (size_t i = 0; i < listeners.size(); ++i) {
    Listener& l = listeners[i];
    bool alive = true;
    for (size_t k = 0; alive && k < events.size(); ++k) {
      const Event& ev = events[k];
      if (ev.tenant != l.tenant) continue;
      if (!l.type_glob.empty() && !core::TypeGlobMatches(l.type_glob, ev.type)) continue;
      alive = l.sink->Write(frames[k]);
    }
    if (alive && ping) alive = l.sink->Write(": keep-alive\n\n");
    if (alive) {
      if (kept != i) listeners[kept] = std::move(l);
      ++kept;
    } else {
      gone.push_back(std::move(l.tenant));
    }
  }
  listeners.resize(kept);
}

void EventStream::Run() {
  pthread_setname_np(pthread_self(), "trg-stream");
  using Clock = std::chrono::steady_clock;
  constexpr auto kKeepAlive = std::chrono::seconds(15);
  std::vector<Listener> listeners;
  auto next_ping = Clock::now() + kKeepAlive;
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait_until(lock, next_ping, [&] {
      return stopping_ || !added_.empty() || !queue_.empty() || !ended_keys_.empty();
    });
    if (stopping_) break;
    std::vector<Listener> added = std::move(added_);
    added_.clear();
    // Taken with the events: a revocation that came before an event's
    // publication ends the key's streams before that event is written.
    std::vector<std::string> ended = std::move(ended_keys_);
    ended_keys_.clear();
    std::vector<Event> events = std::move(queue_);
    queue_.clear();
    queued_bytes_ = 0;
    lock.unlock();
    // Each frame is built once, then written to every listener it matches,
    // one chunk per event (a listener's backlog bound applies per frame).
    std::vector<std::string> frames;
    frames.reserve(events.size());
    for (const Event& ev : events) frames.push_back(Frame(ev));
    std::vector<std::string> gone;  // tenants of listeners that ended

    for (auto& l : added) {
      // The first bytes tell the client the stream is open.
      if (l.sink->Write(": connected\n\n")) {
        listeners.push_back(std::move(l));
      } else {
        gone.push_back(l.tenant);
      }
    }
    if (!ended.empty()) EndStreamsOf(ended, listeners, gone);
    const bool ping = Clock::now() >= next_ping;
    if (ping) next_ping = Clock::now() + kKeepAlive;
    FanOut(events, frames, ping, listeners, gone);
    lock.lock();
    listeners_.fetch_sub(gone.size());
  }
  lock.unlock();
  for (auto& l : listeners) l.sink->Close();
  lock.lock();
  for (auto& l : added_) l.sink->Close();
  listeners_.store(0);
  added_.clear();
}

}  // namespace triggers::api
