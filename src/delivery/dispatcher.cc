#include "delivery/dispatcher.h"

#include <pthread.h>

#include "core/event_json.h"
#include "core/webhook_signing.h"
#include "obs/activity.h"
#include "obs/logger.h"
#include "obs/metrics.h"

namespace triggers::delivery {
namespace {
constexpr int kMaxLeasePerPass = 100;

// One line per attempt. A failure says why: the HTTP status, or when no
// response came, curl's error (connection refused, timeout, TLS...), which
// names the host but never the URL's path, query or credentials.
void LogAttempt(const std::string& delivery_id, const std::string& subscription_id, int attempt,
                const HttpOutcome& http, const std::string& outcome, bool ok) {
  auto line = obs::LogLine(ok ? obs::Level::kInfo : obs::Level::kWarn, "delivery attempt");
  line.Str("delivery_id", delivery_id)
      .Str("subscription_id", subscription_id)
      .Int("attempt", attempt);
  if (http.status_code) line.Int("status_code", *http.status_code);
  if (!ok && !http.error.empty()) line.Str("error", http.error.substr(0, 300));
  line.Int("latency_ms", http.latency_ms).Str("outcome", outcome).Emit();
}
}  // namespace

Dispatcher::Dispatcher(store::DeliveryQueue* store, SubscriptionCache* subs, HttpSender* sender,
                       Clock* clock, DispatcherOptions options)
    : store_(store),
      subs_(subs),
      sender_(sender),
      clock_(clock),
      opts_(std::move(options)),
      rng_(std::random_device{}()),
      thread_([this] { Run(); }) {}

Dispatcher::~Dispatcher() { Stop(); }

void Dispatcher::Wake() {
  {
    std::lock_guard lock(mu_);
    wake_ = true;
  }
  cv_.notify_one();
}

void Dispatcher::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  cv_.notify_one();
  if (thread_.joinable()) thread_.join();
}

void Dispatcher::Run() {
  pthread_setname_np(pthread_self(), "trg-dispatch");
  std::vector<Outcome> outcomes;
  int64_t stop_deadline = 0;
  for (;;) {
    bool stopping;
    {
      std::unique_lock lock(mu_);
      // While draining (stop_deadline set) only outcomes end the wait:
      // `stopping_` stays true and would otherwise make this loop spin.
      cv_.wait_for(lock, std::chrono::milliseconds(opts_.poll_interval_ms),
                   [&] { return !done_.empty() || (stop_deadline == 0 && (wake_ || stopping_)); });
      wake_ = false;
      stopping = stopping_;
      outcomes.swap(done_);
    }
    int64_t now = clock_->NowMs();
    RecordOutcomes(outcomes, now);
    outcomes.clear();
    if (!stopping) {
      LeaseAndSend(now);
      continue;
    }
    // Shutting down: no new leases; wait (bounded) for in-flight attempts.
    if (stop_deadline == 0) stop_deadline = now + opts_.shutdown_grace_ms;
    if (leased_.empty()) break;
    if (now >= stop_deadline) {
      std::vector<store::Store::LeaseRef> ids;
      for (const auto& [id, held] : leased_) ids.push_back({id, held.token});
      Status s = store_->ReleaseLeases(ids, now);
      obs::LogLine(obs::Level::kInfo, "delivery leases returned")
          .Int("count", static_cast<int64_t>(ids.size()))
          .Str("result", s.ok() ? "ok" : s.message())
          .Emit();
      break;
    }
  }
}

void Dispatcher::LeaseAndSend(int64_t now) {
  auto due = store_->SubscriptionsWithDueWork(now);
  if (!due.ok()) return;  // store down: try again next pass
  for (const auto& sub_id : due.value()) {
    auto sub = subs_->Get(sub_id);
    if (!sub || !sub->sub.enabled || sub->sub.kind != "webhook") continue;
    if (total_in_flight_ >= opts_.max_in_flight) break;  // no slot for anyone this pass
    SubState& st = states_[sub_id];
    int capacity = Capacity(sub->sub, st);
    if (capacity <= 0) continue;
    // The breaker: closed -> go; open -> wait; half-open -> one probe, taken
    // only once there is a delivery to probe with.
    const auto breaker = st.breaker.state(now);
    if (breaker == CircuitBreaker::State::kOpen) continue;
    if (breaker == CircuitBreaker::State::kHalfOpen) capacity = 1;
    int tokens = 0;
    if (sub->sub.rate_limit_per_s > 0) {
      if (!st.bucket || st.bucket_rate != sub->sub.rate_limit_per_s) {
        st.bucket = std::make_unique<TokenBucket>(sub->sub.rate_limit_per_s,
                                                  std::max(1.0, sub->sub.rate_limit_per_s));
        st.bucket_rate = sub->sub.rate_limit_per_s;
      }
      while (tokens < capacity && st.bucket->TryTake(clock_->MonoNs())) ++tokens;
      capacity = tokens;
      if (capacity == 0) continue;
    }
    capacity = std::min(capacity, kMaxLeasePerPass);
    // The lease outlives the attempt: a node that dies loses it after this.
    int64_t lease_until = now + opts_.delivery_timeout_ms + 5'000;
    auto leased = store_->LeaseDue(sub_id, now, capacity, lease_until);
    const int got = leased.ok() ? static_cast<int>(leased->size()) : 0;
    if (st.bucket && tokens > got) st.bucket->Refund(tokens - got);  // unused tokens go back
    if (got == 0) continue;
    if (!st.breaker.AllowRequest(now)) {  // the probe went elsewhere meanwhile: give the lease back
      std::vector<store::Store::LeaseRef> ids;
      for (const auto& w : leased.value()) ids.push_back({w.delivery.id, w.receipt});
      store_->ReleaseLeases(ids, now);
      continue;
    }
    for (auto& work : leased.value()) Send(*sub, std::move(work));
  }
}

int Dispatcher::Capacity(const Subscription& sub, const SubState& st) const {
  int capacity = sub.max_in_flight - st.in_flight;
  auto t = tenant_in_flight_.find(sub.tenant);
  const int tenant_used = t == tenant_in_flight_.end() ? 0 : t->second;
  capacity = std::min(capacity, opts_.max_in_flight_per_tenant - tenant_used);
  return std::min(capacity, opts_.max_in_flight - total_in_flight_);
}

void Dispatcher::Released(const std::string& subscription_id, const std::string& tenant) {
  SubState& st = states_[subscription_id];
  st.in_flight = std::max(0, st.in_flight - 1);
  total_in_flight_ = std::max(0, total_in_flight_ - 1);
  auto t = tenant_in_flight_.find(tenant);
  if (t != tenant_in_flight_.end() && --t->second <= 0) tenant_in_flight_.erase(t);
}

void Dispatcher::Send(const CompiledSubscription& sub, store::Store::Leased work) {
  // Leased again while its attempt is still running here (the lease ran out
  // first): that attempt's outcome settles it; do not count or send it twice.
  if (leased_.count(work.delivery.id)) return;
  const int64_t now_ms = clock_->NowMs();
  HttpRequest req;
  req.url = *sub.sub.url;
  req.timeout_ms = opts_.delivery_timeout_ms;
  req.body.reserve(work.event.data.size() + 256);
  core::AppendEventJson(req.body, work.event);
  std::vector<std::string> secrets{sub.sub.secret};
  if (sub.sub.previous_secret && sub.sub.previous_secret_expires_at_ms > now_ms) {
    secrets.push_back(*sub.sub.previous_secret);  // 24 h after a rotation: sign with both
  }
  const int64_t ts = now_ms / 1000;
  req.headers.emplace_back("Content-Type", "application/json");
  req.headers.emplace_back("webhook-id", work.event.id);
  req.headers.emplace_back("webhook-timestamp", std::to_string(ts));
  req.headers.emplace_back("webhook-signature",
                           core::SignatureHeader(secrets, work.event.id, ts, req.body));
  states_[sub.sub.id].in_flight++;
  tenant_in_flight_[sub.sub.tenant]++;
  total_in_flight_++;
  leased_[work.delivery.id] = Held{sub.sub.id, sub.sub.tenant, work.receipt};
  auto w = std::make_shared<store::Store::Leased>(std::move(work));
  sender_->Send(std::move(req), [this, w](HttpOutcome o) {
    bool first;
    {
      std::lock_guard lock(mu_);
      first = done_.empty();
      done_.push_back(Outcome{std::move(*w), std::move(o), clock_->NowMs()});
    }
    // Only the first outcome of a batch wakes the dispatcher: it takes
    // them all at once, and a futex wake per outcome cost as much.
    if (first) cv_.notify_one();
  });
}

void Dispatcher::RecordOutcomes(std::vector<Outcome>& outcomes, int64_t now) {
  if (outcomes.empty()) return;
  std::vector<store::Store::AttemptResult> results;
  results.reserve(outcomes.size());
  for (auto& o : outcomes) {
    const auto& d = o.work.delivery;
    auto it = leased_.find(d.id);
    if (it != leased_.end()) {
      Released(it->second.subscription_id, it->second.tenant);
      leased_.erase(it);
    }
    const bool ok = o.http.error.empty() && o.http.status_code && *o.http.status_code >= 200 &&
                    *o.http.status_code <= 299;
    if (o.http.error == "shutting down") {
      // Not an attempt: the lease goes back as it was.
      store_->ReleaseLeases({{d.id, o.work.receipt}}, now);
      continue;
    }
    SubState& st = states_[d.subscription_id];
    store::Store::AttemptResult r;
    r.delivery_id = d.id;
    r.lease_token = o.work.receipt;  // recorded only while that lease is still ours
    r.attempt.at_ms = o.at_ms - o.http.latency_ms;
    r.attempt.status_code = o.http.status_code;
    r.attempt.latency_ms = o.http.latency_ms;
    if (!ok) r.attempt.error = o.http.error.empty() ? "failed" : o.http.error;
    r.attempt.response_snippet = std::move(o.http.body_snippet);
    const int failed_attempts = d.attempts + 1;
    if (ok) {
      st.breaker.OnSuccess(now);
      r.status = kDeliverySucceeded;
    } else {
      st.breaker.OnFailure(now);
      std::uniform_real_distribution<double> unit(0.0, 1.0);
      auto delay = opts_.schedule.DelayAfterFailure(failed_attempts, unit(rng_));
      if (!delay) {
        r.status = kDeliveryDead;
      } else {
        if (o.http.retry_after && o.http.status_code &&
            (*o.http.status_code == 429 || *o.http.status_code == 503)) {
          if (auto ra = ParseRetryAfterMs(*o.http.retry_after, now)) delay = *ra;
        }
        r.status = kDeliveryRetrying;
        r.next_attempt_at_ms = now + *delay;
      }
    }
    obs::Activity::Get().Attempted(d.tenant, d.subscription_id, ok, now);
    obs::Activity::Get().Circuit(d.subscription_id, st.breaker.open_until_ms());
    obs::Metrics::Get().DeliveryAttempt(ok ? "success" : "failure",
                                        static_cast<double>(o.http.latency_ms) / 1000.0);
    if (ok) {
      obs::Metrics::Get().IngestToDelivery(
          static_cast<double>(o.at_ms - o.work.event.received_at_ms) / 1000.0);
    }
    LogAttempt(d.id, d.subscription_id, failed_attempts, o.http, r.status, ok);
    results.push_back(std::move(r));
  }
  if (Status s = store_->RecordAttempts(results, now); !s.ok()) {
    // The leases expire and the deliveries are attempted again: at-least-once.
    obs::LogLine(obs::Level::kWarn, "recording delivery attempts failed")
        .Str("error", s.message())
        .Emit();
  }
}

}  // namespace triggers::delivery
