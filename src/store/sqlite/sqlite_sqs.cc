// The embedded store: what the SQS endpoints need beyond the pull inbox
// (moving a lease's visibility, counting a queue).
#include "store/sqlite/sqlite_internal.h"

namespace triggers::store::sqlite {

Result<std::vector<SqliteStore::ReceiptResult>> SqliteStore::ChangeVisibility(
    const std::string& sub_id, const std::vector<std::string>& receipts, int64_t visible_at_ms,
    int64_t now_ms) {
  std::lock_guard lock(write_mu_);
  std::vector<ReceiptResult> out;
  // Only the live receipt of an unexpired lease moves (the rule settles use).
  static const std::string change_sql = "UPDATE deliveries SET " + rules::SetLeaseEnd("?5", "?3") +
                                        " WHERE id=?1 AND subscription_id=?2 AND " +
                                        rules::LiveUnder("?4", "?3");
  Status s = WriteTxn(true, [&]() -> Status {
    out.clear();
    for (const auto& receipt : receipts) {
      ReceiptResult rr;
      rr.receipt = receipt;
      size_t dot = receipt.find('.');
      std::string id = receipt.substr(0, dot);
      bool changed = false;
      if (dot != std::string::npos) {
        PREPARE_OR_RETURN(up, writer_, change_sql.c_str());
        up.Bind(1, id).Bind(2, sub_id).Bind(3, now_ms).Bind(4, receipt).Bind(5, visible_at_ms);
        if (up.Step() != SQLITE_DONE) return SqlError(writer_.db(), "change visibility");
        changed = sqlite3_changes(writer_.db()) > 0;
      }
      if (changed) {
        rr.status = "changed";
      } else {
        PREPARE_OR_RETURN(get, writer_,
                          "SELECT 1 FROM deliveries WHERE id=? AND subscription_id=?");
        get.Bind(1, id).Bind(2, sub_id);
        int rc = get.Step();
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) return SqlError(writer_.db(), "receipt");
        rr.status = rc == SQLITE_ROW ? "expired" : "not_found";
      }
      out.push_back(std::move(rr));
    }
    return Status::Ok();
  });
  if (!s.ok()) return s;
  return out;
}

Status SqliteStore::QueueCounts(const std::string& sub_id, int64_t now_ms, QueueCount* out) {
  auto r = Reader();
  if (!r.conn) return r.status;
  PREPARE_OR_RETURN(st, *r.conn,
                    "SELECT coalesce(sum(next_attempt_at<=?2),0), "
                    "coalesce(sum(status='in_flight' AND next_attempt_at>?2),0), "
                    "coalesce(sum(status<>'in_flight' AND next_attempt_at>?2),0) "
                    "FROM deliveries WHERE subscription_id=?1 AND next_attempt_at IS NOT NULL");
  st.Bind(1, sub_id).Bind(2, now_ms);
  if (st.Step() != SQLITE_ROW) return SqlError(r.conn->db(), "queue counts");
  out->visible = st.Int(0);
  out->not_visible = st.Int(1);
  out->delayed = st.Int(2);
  return Status::Ok();
}

}  // namespace triggers::store::sqlite
