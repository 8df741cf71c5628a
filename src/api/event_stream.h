// EventStream: live tailing (GET /v1/events/stream). The ingest writer hands
// over each commit's new events (only while someone listens); a thread of
// its own fans them out as Server-Sent Events to the listeners of the same
// tenant whose type glob matches, and sends a keep-alive comment every 15 s.
// A listener that reads too slowly is dropped by its sink (bounded backlog).
// EndKey ends the streams of a revoked key.
//
// Live tailing is best effort and per node: it shows the events committed by
// this process after the stream opened (on PostgreSQL with several nodes,
// the events ingested through this node). GET /v1/events is the complete log.
//
// Thread safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "api/http_types.h"
#include "triggers/model.h"

namespace triggers::api {

class EventStream {
 public:
  // Per server; the per-tenant limit is the caller's (a TenantSlots).
  static constexpr size_t kMaxListeners = 1000;
  // Events waiting for the stream thread, bounded by bytes of data: beyond
  // this, new events are not streamed (the log has them).
  static constexpr size_t kMaxQueuedBytes = 64 << 20;

  EventStream();
  ~EventStream();  // Shutdown()

  // Cheap: whether anyone listens (the writer copies events only then).
  bool active() const { return listeners_.load(std::memory_order_relaxed) > 0; }
  size_t listeners() const { return listeners_.load(std::memory_order_relaxed); }
  // Whether Add would refuse a listener now.
  bool Full();
  // Adds a listener of the key with this hash; false when too many are open
  // (the caller answers 503) or the stream stops.
  // `type_glob` empty: every type (the glob was validated by the caller).
  bool Add(std::string tenant, std::string key_hash, std::string type_glob,
           std::shared_ptr<StreamSink> sink);
  // Events just committed, in commit order.
  void Publish(std::vector<Event> events);
  // Ends every stream of the key with this hash (it was revoked): none gets
  // an event published after this call. Never blocks on a stream.
  void EndKey(std::string key_hash);
  // Ends every stream and stops the thread.
  void Shutdown();

  // One SSE frame for an event (exposed for tests).
  static std::string Frame(const Event& ev);

 private:
  struct Listener {
    std::string tenant;
    std::string key_hash;
    std::string type_glob;
    std::shared_ptr<StreamSink> sink;
  };
  void Run();
  static void FanOut(const std::vector<Event>& events, const std::vector<std::string>& frames,
                     bool ping, std::vector<Listener>& listeners, std::vector<std::string>& gone);
  static void EndStreamsOf(const std::vector<std::string>& keys, std::vector<Listener>& listeners,
                           std::vector<std::string>& gone);

  std::atomic<size_t> listeners_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<Listener> added_;  // handed to the thread
  std::vector<Event> queue_;
  size_t queued_bytes_ = 0;
  std::vector<std::string> ended_keys_;  // revoked keys, handed to the thread
  std::thread thread_;
};

}  // namespace triggers::api
