#include "http/http_checks.h"

#include <sys/resource.h>

#include <cerrno>
#include <cstdint>

namespace triggers::http {
namespace {

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    if (x != b[i]) return false;
  }
  return true;
}

}  // namespace

bool IsReservedPath(std::string_view target) {
  std::string_view path = target.substr(0, target.find('?'));
  return path == "/health" || path.substr(0, 8) == "/health/" || path == "/metrics";
}

bool IsPlainChunked(const std::vector<std::string_view>& values) {
  if (values.size() != 1) return false;
  std::string_view v = values[0];
  while (!v.empty() && (v.front() == ' ' || v.front() == '\t')) v.remove_prefix(1);
  while (!v.empty() && (v.back() == ' ' || v.back() == '\t')) v.remove_suffix(1);
  return IEquals(v, "chunked");
}

bool IsResourceExhaustion(int v) {
  return v == EMFILE || v == ENFILE || v == ENOBUFS || v == ENOMEM;
}

size_t RaiseFdLimit() {
  rlimit rl{};
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return 0;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    // An unlimited hard limit cannot be the soft one (the kernel caps it at
    // fs.nr_open): try a large finite value then.
    if (rl.rlim_max == RLIM_INFINITY) want.rlim_cur = 1 << 20;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl.rlim_cur = want.rlim_cur;
  }
  return rl.rlim_cur == RLIM_INFINITY ? SIZE_MAX : static_cast<size_t>(rl.rlim_cur);
}

}  // namespace triggers::http
