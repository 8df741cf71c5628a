#include "obs/auth_sources.h"

#include <algorithm>
#include <vector>

namespace triggers::obs {

AuthSources& AuthSources::Get() {
  static AuthSources instance;
  return instance;
}

void AuthSources::Failed(std::string_view source) {
  std::string key(source.empty() ? std::string_view("unknown") : source.substr(0, 64));
  std::lock_guard lock(mu_);
  if (auto it = entries_.find(key); it != entries_.end()) {
    ++it->second.count;
    return;
  }
  if (entries_.size() < kTracked) {
    entries_.emplace(std::move(key), Entry{1, 0});
    return;
  }
  // Space-Saving: the newcomer takes the smallest entry's place and count.
  // (A linear scan: 1,024 entries, on the failure path only.)
  auto min = std::min_element(entries_.begin(), entries_.end(), [](const auto& a, const auto& b) {
    return a.second.count < b.second.count;
  });
  const uint64_t floor = min->second.count;
  entries_.erase(min);
  entries_.emplace(std::move(key), Entry{floor + 1, floor});
}

void AuthSources::Render(std::string& out) const {
  std::vector<std::pair<std::string, uint64_t>> top;
  {
    std::lock_guard lock(mu_);
    top.reserve(entries_.size());
    for (const auto& [source, e] : entries_) top.emplace_back(source, e.count);
  }
  const size_t n = std::min(top.size(), kExposed);
  std::partial_sort(top.begin(), top.begin() + static_cast<ptrdiff_t>(n), top.end(),
                    [](const auto& a, const auto& b) { return a.second > b.second; });
  out +=
      "# HELP triggers_auth_failures_by_source_total Failed authentications of the heaviest "
      "client addresses (at most 10 series; counts may be overestimated, never under).\n"
      "# TYPE triggers_auth_failures_by_source_total counter\n";
  for (size_t i = 0; i < n; ++i) {
    // Addresses are printable ASCII without quotes or backslashes (IPv4/IPv6 text).
    out += "triggers_auth_failures_by_source_total{source=\"" + top[i].first + "\"} " +
           std::to_string(top[i].second) + "\n";
  }
}

}  // namespace triggers::obs
