// SQS DeleteMessage(Batch) and ChangeMessageVisibility(Batch): the pull
// inbox's ack and a move of the lease's end. A receipt is the pull receipt
// itself, so a message received here and acked through /v1 (or the
// reverse) is one message. As on SQS, deleting with a receipt whose lease
// has ended succeeds without deleting (the message was or will be received
// again); a receipt that is not this queue's is ReceiptHandleIsInvalid.
#include <map>
#include <unordered_map>

#include "aws/actions.h"
#include "aws/sqs_common.h"

namespace triggers::aws {
namespace json = boost::json;
namespace {

constexpr int64_t kMaxVisibilityS = 12 * 3600;

struct Item {
  std::string id;  // batch entry id (empty for the single forms)
  std::string receipt;
  int64_t visibility_s = 0;
};

ErrorKind InvalidReceipt() { return ErrorKind::kReceiptHandleIsInvalid; }

std::string InvalidReceiptMessage(std::string_view r) {
  return "The input receipt handle \"" + std::string(r.substr(0, 128)) +
         "\" is not a valid receipt handle.";
}

// One store call per distinct visibility (a delete batch is one call, a
// visibility batch usually too): a call per entry cost 4x the /v1 ack's time
// for DeleteMessageBatch. Sets status[i] for every well-formed receipt.
bool StoreCalls(api::Context& ctx, const std::string& sub_id, const std::vector<Item>& items,
                bool del, int64_t now, std::vector<std::string>* status) {
  std::map<int64_t, std::vector<size_t>> groups;  // visibility_s -> item indexes
  for (size_t i = 0; i < items.size(); ++i) {
    if (LooksLikeReceipt(items[i].receipt)) groups[del ? 0 : items[i].visibility_s].push_back(i);
  }
  for (const auto& [visibility_s, indexes] : groups) {
    std::vector<std::string> receipts;
    for (size_t i : indexes) receipts.push_back(items[i].receipt);
    auto r = del ? ctx.store->Settle(sub_id, receipts, true, 0, now)
                 : ctx.store->ChangeVisibility(sub_id, receipts, now + visibility_s * 1000, now);
    if (!r.ok()) return false;
    std::unordered_map<std::string_view, std::string_view> by_receipt;
    for (const auto& rr : *r) by_receipt[rr.receipt] = rr.status;
    for (size_t i : indexes) {
      auto it = by_receipt.find(items[i].receipt);
      if (it != by_receipt.end()) (*status)[i] = std::string(it->second);
    }
  }
  return true;
}

// Settles every well-formed receipt; the results are in item order.
void Apply(Call call, Queue q, std::vector<Item> items, bool del, bool batch, Done done) {
  auto task = [call, q, items = std::move(items), del, batch, done]() {
    api::Context& ctx = *call->ctx;
    const int64_t now = ctx.clock->NowMs();
    std::vector<std::string> status(items.size(), "not_found");
    if (!StoreCalls(ctx, q->sub.id, items, del, now, &status)) {
      return done(Outcome::Fail(ErrorKind::kUnavailable, "the store is unavailable"));
    }
    bool wake = false;
    for (size_t i = 0; i < items.size(); ++i) {
      wake = wake || (!del && items[i].visibility_s == 0 && status[i] == "changed");
    }
    if (wake) ctx.inbox_notify({q->sub.id});
    auto failure = [&](size_t i, ErrorKind* k, std::string* m) {
      if (status[i] == "not_found") {
        *k = InvalidReceipt(), *m = InvalidReceiptMessage(items[i].receipt);
        return true;
      }
      if (!del && status[i] == "expired") {
        *k = ErrorKind::kMessageNotInflight, *m = "Message does not exist or is not available "
                                                  "for visibility timeout change.";
        return true;
      }
      return false;
    };
    ErrorKind k = ErrorKind::kInternal;
    std::string m;
    if (!batch) {
      return done(failure(0, &k, &m) ? Outcome::Fail(k, m) : Outcome::Ok({}));
    }
    json::array ok, failed;
    for (size_t i = 0; i < items.size(); ++i) {
      if (failure(i, &k, &m)) {
        failed.push_back(FailedEntry(items[i].id, k, m));
      } else {
        ok.push_back(json::object{{"Id", items[i].id}});
      }
    }
    json::object o;
    o["Successful"] = std::move(ok);
    o["Failed"] = std::move(failed);
    done(Outcome::Ok(std::move(o)));
  };
  if (!call->ctx->run_blocking(task)) {
    done(Outcome::Fail(ErrorKind::kUnavailable, "server busy; retry later"));
  }
}

bool Single(const Call& call, bool with_visibility, Item* item, Error* err) {
  auto r = StrParam(call->input, "ReceiptHandle");
  if (!r) {
    *err = {ErrorKind::kMissingParameter, "The request must contain the parameter ReceiptHandle."};
    return false;
  }
  item->receipt = *r;
  if (!with_visibility) return true;
  if (!call->input.contains("VisibilityTimeout")) {
    *err = {ErrorKind::kMissingParameter,
            "The request must contain the parameter VisibilityTimeout."};
    return false;
  }
  return IntParam(call->input, "VisibilityTimeout", 0, kMaxVisibilityS, 0, &item->visibility_s,
                  err);
}

bool Batch(const Call& call, bool with_visibility, std::vector<Item>* items, Error* err) {
  const json::array* entries = nullptr;
  if (!BatchEntries(call->input, &entries, err)) return false;
  for (const auto& e : *entries) {
    const json::object& o = e.as_object();
    Item it;
    it.id = StrParam(o, "Id").value_or("");
    it.receipt = StrParam(o, "ReceiptHandle").value_or("");
    if (with_visibility &&
        !IntParam(o, "VisibilityTimeout", 0, kMaxVisibilityS, 0, &it.visibility_s, err)) {
      return false;
    }
    items->push_back(std::move(it));
  }
  return true;
}

void Run(Call call, Done done, bool del, bool batch) {
  Queue q;
  Error err{ErrorKind::kInternal, ""};
  std::vector<Item> items(batch ? 0 : 1);
  bool ok = ResolveQueue(*call, &q, &err) &&
            (batch ? Batch(call, !del, &items, &err) : Single(call, !del, &items[0], &err));
  if (!ok) return done(Outcome::Fail(err.kind, err.message));
  Apply(call, q, std::move(items), del, batch, std::move(done));
}

}  // namespace

void DeleteMessage(Call call, Done done) { Run(call, std::move(done), true, false); }
void DeleteMessageBatch(Call call, Done done) { Run(call, std::move(done), true, true); }
void ChangeMessageVisibility(Call call, Done done) { Run(call, std::move(done), false, false); }
void ChangeMessageVisibilityBatch(Call call, Done done) { Run(call, std::move(done), false, true); }

}  // namespace triggers::aws
