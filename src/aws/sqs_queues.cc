// SQS queue look-ups: GetQueueUrl, ListQueues, GetQueueAttributes. A queue
// is a pull subscription with a name, of the caller's tenant.
#include "aws/actions.h"
#include "aws/envelope.h"
#include "aws/sqs_common.h"
#include "core/time_util.h"

namespace triggers::aws {
namespace json = boost::json;

void GetQueueUrl(Call call, Done done) {
  auto name = StrParam(call->input, "QueueName");
  if (!name) {
    return done(Outcome::Fail(ErrorKind::kMissingParameter,
                              "The request must contain the parameter QueueName."));
  }
  if (IsValidQueueName(*name)) {
    for (const auto& c : call->ctx->subscriptions->TenantList(call->who->tenant)) {
      if (c->sub.kind == "pull" && c->sub.name == *name) {
        json::object o;
        o["QueueUrl"] = QueueUrl(*call, *name);
        return done(Outcome::Ok(std::move(o)));
      }
    }
  }
  done(Outcome::Fail(ErrorKind::kQueueDoesNotExist, "The specified queue does not exist."));
}

void ListQueues(Call call, Done done) {
  std::string prefix = StrParam(call->input, "QueueNamePrefix").value_or("");
  int64_t max = 1000;
  Error err{ErrorKind::kInternal, ""};
  if (!IntParam(call->input, "MaxResults", 1, 1000, 1000, &max, &err)) {
    return done(Outcome::Fail(err.kind, err.message));
  }
  std::vector<std::string> names;
  for (const auto& c : call->ctx->subscriptions->TenantList(call->who->tenant)) {
    if (c->sub.kind == "pull" && c->sub.name && c->sub.name->compare(0, prefix.size(), prefix) == 0)
      names.push_back(*c->sub.name);
  }
  std::sort(names.begin(), names.end());
  if (names.size() > static_cast<size_t>(max)) names.resize(static_cast<size_t>(max));
  json::array urls;
  for (const auto& n : names) urls.emplace_back(QueueUrl(*call, n));
  json::object o;
  if (!urls.empty()) o["QueueUrls"] = std::move(urls);
  done(Outcome::Ok(std::move(o)));
}

namespace {

constexpr std::string_view kAttributeNames[] = {"ApproximateNumberOfMessages",
                                                "ApproximateNumberOfMessagesNotVisible",
                                                "ApproximateNumberOfMessagesDelayed",
                                                "VisibilityTimeout",
                                                "CreatedTimestamp",
                                                "LastModifiedTimestamp",
                                                "QueueArn",
                                                "MaximumMessageSize",
                                                "ReceiveMessageWaitTimeSeconds",
                                                "DelaySeconds",
                                                "RedrivePolicy"};

std::string QueueArn(const AwsCall& call, const Subscription& s) {
  return "arn:aws:sqs:" + call.region + ":" + s.tenant + ":" + s.name.value_or("");
}

json::object Attributes(const AwsCall& call, const Subscription& s,
                        const store::DeliveryQueue::QueueCount& n) {
  json::object a;
  a["ApproximateNumberOfMessages"] = std::to_string(n.visible);
  a["ApproximateNumberOfMessagesNotVisible"] = std::to_string(n.not_visible);
  a["ApproximateNumberOfMessagesDelayed"] = std::to_string(n.delayed);
  a["VisibilityTimeout"] = "30";
  a["CreatedTimestamp"] = std::to_string(s.created_at_ms / 1000);
  a["LastModifiedTimestamp"] = std::to_string(s.updated_at_ms / 1000);
  a["QueueArn"] = QueueArn(call, s);
  a["MaximumMessageSize"] = "262144";
  a["ReceiveMessageWaitTimeSeconds"] = "0";
  a["DelaySeconds"] = "0";
  // max_receives plays the redrive policy's part; dead messages stay in the
  // subscription (GET /v1/deliveries?status=dead), not in another queue.
  a["RedrivePolicy"] = "{\"maxReceiveCount\":" + std::to_string(s.max_receives) + "}";
  return a;
}

}  // namespace

void GetQueueAttributes(Call call, Done done) {
  Queue q;
  Error err{ErrorKind::kInternal, ""};
  if (!ResolveQueue(*call, &q, &err)) return done(Outcome::Fail(err.kind, err.message));
  std::vector<std::string> wanted = StrList(call->input, "AttributeNames");
  for (const auto& w : wanted) {
    if (w == "All") continue;
    if (std::find(std::begin(kAttributeNames), std::end(kAttributeNames), w) ==
        std::end(kAttributeNames)) {
      return done(Outcome::Fail(ErrorKind::kInvalidAttributeName,
                                "Unknown Attribute " + w.substr(0, 64) + "."));
    }
  }
  auto task = [call, q, wanted, done]() {
    store::DeliveryQueue::QueueCount n;
    Status s = call->ctx->store->QueueCounts(q->sub.id, call->ctx->clock->NowMs(), &n);
    if (!s.ok()) return done(Outcome::Fail(ErrorKind::kUnavailable, "the store is unavailable"));
    json::object all = Attributes(*call, q->sub, n), picked;
    bool every = std::find(wanted.begin(), wanted.end(), "All") != wanted.end();
    for (const auto& [k, v] : all) {
      if (every || std::find(wanted.begin(), wanted.end(), k) != wanted.end()) picked[k] = v;
    }
    json::object o;
    if (!picked.empty()) o["Attributes"] = std::move(picked);
    done(Outcome::Ok(std::move(o)));
  };
  if (!call->ctx->run_blocking(task)) {
    done(Outcome::Fail(ErrorKind::kUnavailable, "server busy; retry later"));
  }
}

}  // namespace triggers::aws
