#include "obs/auth_sources.h"

#include <gtest/gtest.h>

#include <string>

namespace triggers::obs {
namespace {

size_t Series(const std::string& text) {
  size_t n = 0;
  for (size_t p = text.find("\ntriggers_auth_failures_by_source_total{"); p != std::string::npos;
       p = text.find("\ntriggers_auth_failures_by_source_total{", p + 1)) {
    ++n;
  }
  return n;
}

// Many distinct sources (a scan) keep the exposition bounded, and a heavy
// source among them is still shown with at least its true count.
TEST(AuthSourcesTest, BoundedSeriesAndTheHeavySourceKept) {
  AuthSources& s = AuthSources::Get();
  for (int i = 0; i < 5000; ++i) {
    s.Failed("10.1." + std::to_string(i / 256) + "." + std::to_string(i % 256));
    if (i % 10 == 0) s.Failed("192.0.2.77");
  }
  std::string out;
  s.Render(out);
  EXPECT_EQ(Series(out), AuthSources::kExposed) << out;
  const std::string heavy = "triggers_auth_failures_by_source_total{source=\"192.0.2.77\"} ";
  size_t at = out.find(heavy);
  ASSERT_NE(at, std::string::npos) << out;
  EXPECT_GE(std::stoull(out.substr(at + heavy.size())), 500u);
}

}  // namespace
}  // namespace triggers::obs
