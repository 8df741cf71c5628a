// The PostgreSQL store: what the SQS endpoints need beyond the pull inbox
// (moving a lease's visibility, counting a queue). Times on the database's
// clock where the store is configured so (NOW_AT).
#include "store/postgres/pg_internal.h"

namespace triggers::store::postgres {

Result<std::vector<PgStore::ReceiptResult>> PgStore::ChangeVisibility(
    const std::string& sub_id, const std::vector<std::string>& receipts, int64_t visible_at_ms,
    int64_t now_ms) {
  CONN_OR_RETURN(c);
  std::vector<ReceiptResult> out;
  Status s = c->Txn(true, [&]() -> Status {
    out.clear();
    for (const auto& receipt : receipts) {
      ReceiptResult rr;
      rr.receipt = receipt;
      size_t dot = receipt.find('.');
      std::string id = receipt.substr(0, dot);
      // Only the live receipt of an unexpired lease moves.
      static const std::string kChange =
          "UPDATE deliveries SET " + rules::SetLeaseEnd(NOW_AT("$3") "+$5::bigint", NOW_AT("$3")) +
          " WHERE id=$1 AND subscription_id=$2 AND " + rules::LiveUnder("$4", NOW_AT("$3"));
      Params p;
      p.Add(id).Add(sub_id);
      AddNow(p, now_ms);
      p.Add(receipt).Add(visible_at_ms - now_ms);  // a delay from now
      int64_t changed = 0;
      if (dot != std::string::npos) {
        ROWS_OR_RETURN(u, c->Run(kChange.c_str(), p));
        changed = u.Affected();
      }
      if (changed > 0) {
        rr.status = "changed";
      } else {
        static const char kExists[] = "SELECT 1 FROM deliveries WHERE id=$1 AND subscription_id=$2";
        ROWS_OR_RETURN(e, c->Run(kExists, Params().Add(id).Add(sub_id)));
        rr.status = e.size() > 0 ? "expired" : "not_found";
      }
      out.push_back(std::move(rr));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Status PgStore::QueueCounts(const std::string& sub_id, int64_t now_ms, QueueCount* out) {
  CONN_OR_RETURN(c);
  static const char kCounts[] =
      "SELECT count(*) FILTER (WHERE next_attempt_at<=" NOW_AT("$2") "), "
      "count(*) FILTER (WHERE status='in_flight' AND next_attempt_at>" NOW_AT("$2") "), "
      "count(*) FILTER (WHERE status<>'in_flight' AND next_attempt_at>" NOW_AT("$2") ") "
      "FROM deliveries WHERE subscription_id=$1 AND next_attempt_at IS NOT NULL";
  Params p;
  p.Add(sub_id);
  AddNow(p, now_ms);
  ROWS_OR_RETURN(r, c->Run(kCounts, p));
  out->visible = r.Int(0, 0);
  out->not_visible = r.Int(0, 1);
  out->delayed = r.Int(0, 2);
  return Status::Ok();
}

}  // namespace triggers::store::postgres
