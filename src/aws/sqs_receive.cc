// SQS ReceiveMessage: the pull inbox's receive (with long polling through
// the parked receivers of api::Inbox), each message in SQS's shape: the
// EventBridge envelope (or SendMessage's body) with its MD5 digests and the
// system attributes asked for.
#include "api/inbox.h"
#include "aws/actions.h"
#include "aws/envelope.h"
#include "aws/sqs_common.h"

namespace triggers::aws {
namespace json = boost::json;
namespace {

constexpr int64_t kMaxVisibilityS = 12 * 3600;
constexpr int64_t kDefaultVisibilityS = 30;

struct Wanted {
  bool all_system = false;
  std::vector<std::string> system;
  std::vector<std::string> attrs;  // MessageAttributeNames
  bool Has(std::string_view n) const {
    return all_system || std::find(system.begin(), system.end(), n) != system.end();
  }
  bool WantsAttr(std::string_view name) const {
    for (const auto& a : attrs) {
      if (a == "All" || a == ".*" || a == name) return true;
      if (a.size() > 2 && a.substr(a.size() - 2) == ".*" &&
          name.substr(0, a.size() - 1) == std::string_view(a).substr(0, a.size() - 1))
        return true;
    }
    return false;
  }
};

json::object MessageJson(const AwsCall& call, const store::Store::Leased& m, const Wanted& w,
                         int64_t now_ms) {
  json::object o;
  std::string body;
  json::object attrs;
  MessageOf(m.event, call.region, &body, &attrs);
  o["MessageId"] = m.event.id;
  o["ReceiptHandle"] = m.receipt;
  o["MD5OfBody"] = Md5Hex(body);
  o["Body"] = body;
  json::object sys;
  if (w.Has("ApproximateReceiveCount"))
    sys["ApproximateReceiveCount"] = std::to_string(m.delivery.attempts);
  if (w.Has("SentTimestamp")) sys["SentTimestamp"] = std::to_string(m.event.received_at_ms);
  if (w.Has("ApproximateFirstReceiveTimestamp")) {
    // Not stored: exact on the first receive, else the delivery's creation.
    int64_t first = m.delivery.attempts <= 1 ? now_ms : m.delivery.created_at_ms;
    sys["ApproximateFirstReceiveTimestamp"] = std::to_string(first);
  }
  if (w.Has("SenderId")) sys["SenderId"] = m.event.tenant;
  if (!sys.empty()) o["Attributes"] = std::move(sys);
  json::object picked;
  for (const auto& [k, v] : attrs) {
    if (w.WantsAttr(k)) picked[k] = v;
  }
  if (!picked.empty()) {
    o["MD5OfMessageAttributes"] = Md5OfMessageAttributes(picked);
    o["MessageAttributes"] = std::move(picked);
  }
  return o;
}

Outcome Messages(const AwsCall& call, const std::vector<store::Store::Leased>& msgs,
                 const Wanted& w) {
  json::array arr;
  const int64_t now = call.ctx->clock->NowMs();
  for (const auto& m : msgs) arr.push_back(MessageJson(call, m, w, now));
  json::object o;
  if (!arr.empty()) o["Messages"] = std::move(arr);
  return Outcome::Ok(std::move(o));
}

// One try of a (maybe parked) receive: as api's ReceiveAttempt, answering
// in SQS's shape. Shutdown and revocation answer without touching a message.
api::Inbox::Attempt MakeAttempt(Call call, Done done, Queue q, Wanted w, int max,
                                int64_t visibility_s) {
  return [call, done, q, w, max, visibility_s](api::Inbox::Turn turn) -> bool {
    api::Context& ctx = *call->ctx;
    if (turn == api::Inbox::Turn::kShutdown) {
      done(Outcome::Ok({}));
      return true;
    }
    if (turn == api::Inbox::Turn::kRevoked || ctx.keys->IsRevoked(call->who->key_hash)) {
      done(Outcome::Fail(ErrorKind::kUnknownKey,
                         "The security token included in the request is invalid."));
      return true;
    }
    const bool final = turn == api::Inbox::Turn::kLast;
    auto current = ctx.subscriptions->Get(q->sub.id);
    if (!current || !current->sub.enabled) {  // deleted or disabled: nothing to hand out
      if (!final && current) return false;
      done(Outcome::Ok({}));
      return true;
    }
    const int64_t now = ctx.clock->NowMs();
    auto r = ctx.store->Receive(q->sub.id, now, max, now + visibility_s * 1000,
                                current->sub.max_receives);
    if (!r.ok()) {
      done(Outcome::Fail(ErrorKind::kUnavailable, "the store is unavailable; retry later"));
      return true;
    }
    if (r->empty() && !final) return false;
    done(Messages(*call, r.value(), w));
    return true;
  };
}

}  // namespace

void ReceiveMessage(Call call, Done done) {
  Queue q;
  Error err{ErrorKind::kInternal, ""};
  int64_t max = 1, wait_s = 0, visibility_s = kDefaultVisibilityS;
  if (!ResolveQueue(*call, &q, &err) ||
      !IntParam(call->input, "MaxNumberOfMessages", 1, 10, 1, &max, &err) ||
      !IntParam(call->input, "WaitTimeSeconds", 0, 20, 0, &wait_s, &err) ||
      !IntParam(call->input, "VisibilityTimeout", 0, kMaxVisibilityS, kDefaultVisibilityS,
                &visibility_s, &err)) {
    return done(Outcome::Fail(err.kind, err.message));
  }
  Wanted w;
  w.system = StrList(call->input, "AttributeNames");
  for (auto& s : StrList(call->input, "MessageSystemAttributeNames")) w.system.push_back(s);
  w.all_system = std::find(w.system.begin(), w.system.end(), "All") != w.system.end();
  w.attrs = StrList(call->input, "MessageAttributeNames");
  auto attempt = MakeAttempt(call, done, q, w, static_cast<int>(max), visibility_s);
  auto task = [call, q, attempt, wait_s]() {
    api::Context& ctx = *call->ctx;
    const int64_t deadline = ctx.clock->NowMs() + wait_s * 1000;
    if (attempt(wait_s == 0 ? api::Inbox::Turn::kLast : api::Inbox::Turn::kTry)) return;
    if (!ctx.inbox->Park(q->sub.id, call->who->key_hash, deadline, attempt)) {
      attempt(api::Inbox::Turn::kLast);
    }
  };
  if (!call->ctx->run_blocking(task)) {
    done(Outcome::Fail(ErrorKind::kUnavailable, "server busy; retry later"));
  }
}

}  // namespace triggers::aws
