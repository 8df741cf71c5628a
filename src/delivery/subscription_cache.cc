#include "delivery/subscription_cache.h"

#include <boost/json.hpp>

#include "core/event_parser.h"
#include "obs/logger.h"
#include "obs/metrics.h"

namespace triggers::delivery {
namespace json = boost::json;

Result<std::shared_ptr<const CompiledSubscription>> CompileSubscription(const Subscription& sub) {
  auto c = std::make_shared<CompiledSubscription>();
  c->sub = sub;
  boost::system::error_code ec;
  json::value types = json::parse(sub.event_types_json, ec);
  if (ec || !types.is_array()) return Status::Validation("event_types must be an array of strings");
  std::vector<std::string> globs;
  for (const auto& t : types.as_array()) {
    if (!t.is_string()) return Status::Validation("event_types must be an array of strings");
    globs.emplace_back(t.as_string());
  }
  auto tf = core::TypeFilter::Compile(globs);
  if (!tf.ok()) return tf.status();
  c->types = std::move(tf.value());
  if (sub.filter_json) {
    json::value f = json::parse(*sub.filter_json, ec);
    if (ec) return Status::Validation("filter must be a JSON object");
    auto p = core::EventPattern::Compile(f);
    if (!p.ok()) return p.status();
    c->pattern = std::move(p.value());
  }
  return std::shared_ptr<const CompiledSubscription>(std::move(c));
}

SubscriptionCache::SubscriptionCache(store::Store* store, Clock* clock)
    : store_(store), clock_(clock) {}

Status SubscriptionCache::LoadAll() {
  std::vector<Subscription> subs;
  std::vector<std::string> deleted;
  int64_t now = clock_->NowMs();
  if (Status s = store_->SubscriptionsChangedSince(0, &subs, &deleted); !s.ok()) return s;
  for (const auto& sub : subs) {
    auto c = CompileSubscription(sub);
    if (!c.ok()) {
      obs::LogLine(obs::Level::kWarn, "subscription does not compile")
          .Str("subscription_id", sub.id)
          .Str("error", c.status().message())
          .Emit();
      continue;
    }
    Upsert(std::move(c.value()));
  }
  last_refresh_ms_ = now;
  return Status::Ok();
}

void SubscriptionCache::Refresh() {
  std::vector<Subscription> subs;
  std::vector<std::string> deleted;
  int64_t now = clock_->NowMs();
  // Overlap the window: a change committed around the last poll is seen again.
  if (!store_->SubscriptionsChangedSince(last_refresh_ms_ - 10'000, &subs, &deleted).ok()) return;
  last_refresh_ms_ = now;
  for (const auto& id : deleted) Remove(id);
  for (const auto& sub : subs) {
    auto cur = Get(sub.id);
    // Never replace a newer version (a PATCH on this node that raced this read).
    if (cur && cur->sub.updated_at_ms >= sub.updated_at_ms) continue;
    {
      std::shared_lock lock(mu_);
      if (removed_.count(sub.id)) continue;  // deleted on this node after the read
    }
    auto c = CompileSubscription(sub);
    if (c.ok()) Upsert(std::move(c.value()));
  }
}

void SubscriptionCache::RebuildTenantLocked(const std::string& tenant) {
  auto list = std::make_shared<TenantList>();
  for (const auto& [id, c] : by_id_) {
    if (c->sub.tenant == tenant) list->push_back(c);
  }
  if (list->empty()) {
    by_tenant_.erase(tenant);
  } else {
    by_tenant_[tenant] = std::move(list);
  }
}

void SubscriptionCache::Upsert(std::shared_ptr<const CompiledSubscription> c) {
  std::unique_lock lock(mu_);
  std::string tenant = c->sub.tenant;
  by_id_[c->sub.id] = std::move(c);
  RebuildTenantLocked(tenant);
}

void SubscriptionCache::Remove(const std::string& id) {
  std::unique_lock lock(mu_);
  if (removed_.size() > 100000) removed_.clear();  // bounded; ids never come back anyway
  removed_.insert(id);
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  std::string tenant = it->second->sub.tenant;
  by_id_.erase(it);
  RebuildTenantLocked(tenant);
}

std::shared_ptr<const CompiledSubscription> SubscriptionCache::Get(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

namespace {

// The event as filters see it: an object, or, when `data` does not parse, a
// string saying why. `data` is parsed with the depth limit of ingest
// (core::kMaxJsonDepth), so every event ingest accepted parses.
json::value EventDoc(const Event& ev) {
  json::parse_options opts;
  opts.max_depth = core::kMaxJsonDepth;
  boost::system::error_code ec;
  json::value data = json::parse(ev.data, ec, json::storage_ptr(), opts);
  if (ec) return json::value(ec.message());
  json::object o;
  o["type"] = ev.type;
  o["source"] = ev.source ? json::value(*ev.source) : json::value(nullptr);
  o["subject"] = ev.subject ? json::value(*ev.subject) : json::value(nullptr);
  o["ordering_key"] = ev.ordering_key ? json::value(*ev.ordering_key) : json::value(nullptr);
  o["data"] = std::move(data);
  return json::value(std::move(o));
}

// A filter that cannot evaluate an event does not match it, and says so:
// matching it as if `data` were null would miss or wrongly deliver events.
bool Matches(const CompiledSubscription& c, const Event& ev, std::optional<json::value>* doc) {
  if (!c.types.Matches(ev.type)) return false;
  if (!c.pattern) return true;
  if (!*doc) *doc = EventDoc(ev);  // built once per event, only if a filter needs it
  if (const json::string* why = (*doc)->if_string()) {
    obs::Metrics::Get().FilterError();
    // Ids and the parser's reason only: never the payload.
    obs::LogLine line(obs::Level::kWarn, "filter cannot evaluate event");
    line.Str("subscription_id", c.sub.id);
    if (ev.id.empty()) {
      line.Null("event_id");  // matched at ingest, before the commit assigns it
    } else {
      line.Str("event_id", ev.id);
    }
    line.Str("error", std::string_view(why->data(), why->size())).Emit();
    return false;
  }
  return c.pattern->Matches(**doc);
}

}  // namespace

void MatchOne(const CompiledSubscription& sub, const Event& ev, std::vector<std::string>* out) {
  std::optional<json::value> doc;
  if (Matches(sub, ev, &doc)) out->push_back(sub.sub.id);
}

void SubscriptionCache::Match(const Event& ev, std::vector<std::string>* out,
                              std::vector<uint8_t>* ordered) const {
  std::shared_ptr<const TenantList> list;
  {
    std::shared_lock lock(mu_);
    auto it = by_tenant_.find(ev.tenant);
    if (it == by_tenant_.end()) return;
    list = it->second;
  }
  std::optional<json::value> doc;
  for (const auto& c : *list) {
    if (c->sub.enabled && Matches(*c, ev, &doc)) {
      out->push_back(c->sub.id);
      if (ordered) ordered->push_back(c->sub.ordered ? 1 : 0);
    }
  }
}

}  // namespace triggers::delivery
