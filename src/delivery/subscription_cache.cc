#include "delivery/subscription_cache.h"

#include <boost/json.hpp>

#include "aws/envelope.h"
#include "core/event_parser.h"
#include "core/ids.h"
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

SubscriptionCache::SubscriptionCache(store::SubscriptionStore* store) : store_(store) {}

Status SubscriptionCache::LoadAll() {
  auto gens = store_->SubscriptionGenerations();
  if (!gens.ok()) return gens.status();
  for (const auto& [tenant, gen] : gens.value()) {
    if (Status s = ReloadTenant(tenant); !s.ok()) return s;
  }
  return Status::Ok();
}

void SubscriptionCache::Refresh() {
  auto gens = store_->SubscriptionGenerations();
  if (!gens.ok()) return;
  for (const auto& [tenant, gen] : gens.value()) {
    if (Generation(tenant) != gen) (void)ReloadTenant(tenant);
  }
}

Status SubscriptionCache::ReloadTenant(const std::string& tenant) {
  auto loaded = store_->LoadTenantSubscriptions(tenant);
  if (!loaded.ok()) return loaded.status();
  Replace(tenant, loaded.value().generation, Compile(loaded.value().subscriptions));
  return Status::Ok();
}

SubscriptionCache::List SubscriptionCache::Compile(const std::vector<Subscription>& subs) const {
  List out;
  out.reserve(subs.size());
  for (const auto& sub : subs) {
    // updated_at only grows with each write of a row: same value, same version.
    if (auto cur = Get(sub.id); cur && cur->sub.updated_at_ms == sub.updated_at_ms) {
      out.push_back(std::move(cur));
      continue;
    }
    auto c = CompileSubscription(sub);
    if (!c.ok()) {
      obs::LogLine(obs::Level::kWarn, "subscription does not compile")
          .Str("subscription_id", sub.id)
          .Str("error", c.status().message())
          .Emit();
      continue;
    }
    out.push_back(std::move(c.value()));
  }
  return out;
}

void SubscriptionCache::Replace(const std::string& tenant, int64_t generation, List list) {
  std::unique_lock lock(mu_);
  auto it = by_tenant_.find(tenant);
  if (it != by_tenant_.end()) {
    // An equal label may hold an older list than ours (labels trail their
    // lists), and either is safe; a newer label must not be replaced.
    if (it->second->generation > generation) return;
    for (const auto& c : it->second->list) by_id_.erase(c->sub.id);
  }
  for (const auto& c : list) by_id_[c->sub.id] = c;
  auto state = std::make_shared<TenantState>();
  state->generation = generation;
  state->list = std::move(list);
  by_tenant_[tenant] = std::move(state);
}

void SubscriptionCache::Applied(const std::string& tenant, int64_t generation,
                                std::shared_ptr<const CompiledSubscription> changed,
                                const std::string& deleted_id) {
  {
    std::unique_lock lock(mu_);
    auto it = by_tenant_.find(tenant);
    const int64_t have = it == by_tenant_.end() ? 0 : it->second->generation;
    if (have == generation - 1) {
      // Exactly the state before this write: this write alone makes the next.
      auto state = std::make_shared<TenantState>();
      state->generation = generation;
      const std::string& id = changed ? changed->sub.id : deleted_id;
      if (it != by_tenant_.end()) {
        for (const auto& c : it->second->list) {
          if (c->sub.id != id) state->list.push_back(c);
        }
      }
      by_id_.erase(id);
      if (changed) {
        by_id_[id] = changed;
        state->list.push_back(std::move(changed));
      }
      by_tenant_[tenant] = std::move(state);
      return;
    }
    if (have >= generation) return;  // a reload already brought it (or newer)
  }
  (void)ReloadTenant(tenant);
}

std::shared_ptr<const CompiledSubscription> SubscriptionCache::Get(const std::string& id) const {
  std::shared_lock lock(mu_);
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const CompiledSubscription>> SubscriptionCache::TenantList(
    const std::string& tenant) const {
  std::shared_lock lock(mu_);
  auto it = by_tenant_.find(tenant);
  return it == by_tenant_.end() ? List{} : it->second->list;
}

int64_t SubscriptionCache::Generation(const std::string& tenant) const {
  std::shared_lock lock(mu_);
  auto it = by_tenant_.find(tenant);
  return it == by_tenant_.end() ? 0 : it->second->generation;
}

// The event as filters see it: an object, or, when `data` does not parse, a
// string saying why. `data` is parsed with the depth limit of ingest
// (core::kMaxJsonDepth), so every event ingest accepted parses.
json::value EventDocument(const Event& ev) {
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
  // EventBridge's field names, so that a rule's event pattern works unchanged.
  o["detail-type"] = aws::DetailTypeOf(ev);
  o["detail"] = data;
  o["resources"] = json::array();
  if (ev.resources) {
    json::value r = json::parse(*ev.resources, ec);
    if (!ec && r.is_array()) o["resources"] = std::move(r);
  }
  o["data"] = std::move(data);
  return json::value(std::move(o));
}

namespace {

// A filter that cannot evaluate an event does not match it, and says so:
// matching it as if `data` were null would miss or wrongly deliver events.
bool Matches(const CompiledSubscription& c, const Event& ev, std::optional<json::value>* doc) {
  if (!c.types.Matches(ev.type)) return false;
  if (!c.pattern) return true;
  if (!*doc) *doc = EventDocument(ev);  // built once per event, only if a filter needs it
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

int64_t SubscriptionCache::Match(const Event& ev, std::vector<std::string>* out,
                                 std::vector<uint8_t>* ordered) const {
  std::shared_ptr<const TenantState> state;
  {
    std::shared_lock lock(mu_);
    auto it = by_tenant_.find(ev.tenant);
    if (it == by_tenant_.end()) return 0;
    state = it->second;
  }
  std::optional<json::value> doc;
  for (const auto& c : state->list) {
    if (c->sub.enabled && Matches(*c, ev, &doc)) {
      out->push_back(c->sub.id);
      if (ordered) ordered->push_back(c->sub.ordered ? 1 : 0);
    }
  }
  return state->generation;
}

void SubscriptionCache::Rematch(const std::string& tenant, int64_t generation,
                                const std::vector<Subscription>& subscriptions,
                                const std::vector<store::IngestItem*>& items) {
  // Matched against exactly what the transaction read, not the cache (which
  // another thread may replace again meanwhile).
  List list = Compile(subscriptions);
  Replace(tenant, generation, list);
  for (store::IngestItem* it : items) {
    it->subscription_ids.clear();
    it->subscription_ordered.clear();
    it->delivery_ids.clear();
    std::optional<json::value> doc;
    for (const auto& c : list) {
      // An SQS SendMessage event is for its queue alone, if that still exists.
      bool match = it->only_subscription.empty() ? Matches(*c, it->event, &doc)
                                                 : c->sub.id == it->only_subscription;
      if (c->sub.enabled && match) {
        it->subscription_ids.push_back(c->sub.id);
        it->subscription_ordered.push_back(c->sub.ordered ? 1 : 0);
        it->delivery_ids.push_back(core::NewId("dlv_", it->event.received_at_ms));
      }
    }
    it->matched_generation = generation;
  }
}

}  // namespace triggers::delivery
