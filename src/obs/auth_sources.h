// Failed authentications per client address, with bounded memory and bounded
// metric cardinality (issue: "failed-auth counting per source address").
// One label value per address would let a scan from many addresses grow the
// exposition without end, so the table keeps the heaviest sources only: the
// Space-Saving algorithm (Metwally et al.) over at most kTracked addresses,
// exposing the kExposed largest. A source that failed more than 1/kTracked
// of all failures is always among them; its count may be overestimated by at
// most the count of the entry it replaced (`error`), never underestimated.
//
// Thread safety: any thread (a mutex; failures are the slow path).
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

namespace triggers::obs {

class AuthSources {
 public:
  static constexpr size_t kTracked = 1024;
  static constexpr size_t kExposed = 10;

  static AuthSources& Get();

  // One failed authentication from `source` (an IP address; empty: unknown).
  void Failed(std::string_view source);
  // Appends triggers_auth_failures_by_source_total{source="..."} for the
  // heaviest sources (at most kExposed series).
  void Render(std::string& out) const;

 private:
  struct Entry {
    uint64_t count = 0;
    uint64_t error = 0;  // overestimate inherited from a replaced entry
  };
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;
};

}  // namespace triggers::obs
