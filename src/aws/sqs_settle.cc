// SQS DeleteMessage(Batch) and ChangeMessageVisibility(Batch): the pull
// inbox's ack and a move of the lease's end. A receipt is the pull receipt
// itself, so a message received here and acked through /v1 (or the
// reverse) is one message. As on SQS, deleting with a receipt whose lease
// has ended succeeds without deleting (the message was or will be received
// again); a receipt that is not this queue's is ReceiptHandleIsInvalid.
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

// Runs the store call for every well-formed receipt; the results are in item order.
void Apply(Call call, Queue q, std::vector<Item> items, bool del, bool batch, Done done) {
  auto task = [call, q, items = std::move(items), del, batch, done]() {
    api::Context& ctx = *call->ctx;
    const int64_t now = ctx.clock->NowMs();
    std::vector<std::string> status(items.size(), "not_found");
    bool wake = false;
    for (size_t i = 0; i < items.size(); ++i) {
      if (!LooksLikeReceipt(items[i].receipt)) continue;
      auto r = del ? ctx.store->Settle(q->sub.id, {items[i].receipt}, true, 0, now)
                   : ctx.store->ChangeVisibility(q->sub.id, {items[i].receipt},
                                                 now + items[i].visibility_s * 1000, now);
      if (!r.ok() || r->size() != 1) {
        return done(Outcome::Fail(ErrorKind::kUnavailable, "the store is unavailable"));
      }
      status[i] = (*r)[0].status;
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
