// Delivery rows written by multi-row INSERTs. An INSERT into deliveries
// fires the count trigger, so SQLite gives every such statement a statement
// journal: each 16 KiB page the statement changes is first copied (malloc +
// memcpy) and the copy freed at the statement's end. One statement per row
// paid that for every page of the table and its five indexes on every row:
// about half of the writer's time for a 500-event batch to one subscription
// (docs/benchmarks.md, "Batch ingest"). Rows are buffered here and written
// kMaxRows at a time, in the order they were added (seq follows it).
// Include only from src/store/sqlite/.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "store/sqlite/sqlite_internal.h"

namespace triggers::store::sqlite {

class DeliveryRows {
 public:
  static constexpr size_t kMaxRows = 64;

  explicit DeliveryRows(Conn& conn) : conn_(conn) {}

  // Every view must stay valid until the next Flush() (Add flushes itself
  // when the buffer is full, before taking the new row).
  struct Row {
    std::string_view id, tenant, event_id, subscription_id;
    int64_t next_attempt_at = 0, now = 0;
    bool has_ordering_key = false;  // NULL when false
    std::string_view ordering_key;
  };

  Status Add(const Row& r) {
    if (rows_.size() == kMaxRows) {
      if (Status s = Flush(); !s.ok()) return s;
    }
    rows_.push_back(r);
    return Status::Ok();
  }

  // Writes what is buffered: the largest statements first (kMaxRows, then 8,
  // then 1 row), so a remainder costs at most 7 + 7 statements.
  Status Flush() {
    size_t i = 0;
    while (i < rows_.size()) {
      const size_t left = rows_.size() - i;
      const size_t n = left >= kMaxRows ? kMaxRows : left >= 8 ? 8 : 1;
      if (Status s = Write(i, n); !s.ok()) return s;
      i += n;
    }
    rows_.clear();
    return Status::Ok();
  }

 private:
  static const char* Sql(size_t n) {
    static const std::string big = Build(kMaxRows), mid = Build(8), one = Build(1);
    return n == kMaxRows ? big.c_str() : n == 8 ? mid.c_str() : one.c_str();
  }
  static std::string Build(size_t n) {
    std::string sql =
        "INSERT INTO deliveries(id,tenant,event_id,subscription_id,status,next_attempt_at,"
        "created_at,updated_at,ordering_key) VALUES";
    for (size_t r = 0; r < n; ++r) {
      const size_t b = r * 7;
      auto p = [&](size_t k) { return "?" + std::to_string(b + k); };
      sql += r ? ",(" : "(";
      sql += p(1) + "," + p(2) + "," + p(3) + "," + p(4) + ",'pending'," + p(5) + "," + p(6) + "," +
             p(6) + "," + p(7) + ")";
    }
    return sql;
  }

  Status Write(size_t first, size_t n) {
    PREPARE_OR_RETURN(st, conn_, Sql(n));
    for (size_t r = 0; r < n; ++r) {
      const Row& row = rows_[first + r];
      const int b = static_cast<int>(r * 7);
      st.Bind(b + 1, row.id).Bind(b + 2, row.tenant).Bind(b + 3, row.event_id);
      st.Bind(b + 4, row.subscription_id).Bind(b + 5, row.next_attempt_at).Bind(b + 6, row.now);
      if (row.has_ordering_key) st.Bind(b + 7, row.ordering_key);
    }
    if (st.Step() != SQLITE_DONE) return SqlError(conn_.db(), "insert delivery");
    return Status::Ok();
  }

  Conn& conn_;
  std::vector<Row> rows_;
};

}  // namespace triggers::store::sqlite
