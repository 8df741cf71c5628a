// Replays the fuzz targets' inputs under the ordinary test build: every seed
// of fuzz/corpus/<target>/ and every input that once crashed a target,
// fuzz/regressions/<target>/ (kept after its fix, so the bug stays fixed).
// A broken invariant aborts the test binary, naming the check.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <ostream>
#include <string>
#include <vector>

#include "targets.h"

namespace triggers::fuzz {

// Names the parameter in test output by its target, not its bytes.
void PrintTo(const Target& t, std::ostream* os) { *os << t.name; }

namespace {

namespace fs = std::filesystem;

std::vector<fs::path> Inputs(std::string_view kind, std::string_view target) {
  std::vector<fs::path> files;
  fs::path dir = fs::path(TRIGGERS_FUZZ_DIR) / kind / target;
  if (!fs::is_directory(dir)) return files;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (e.is_regular_file()) files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

size_t Replay(std::string_view kind, const Target& t) {
  size_t n = 0;
  for (const auto& path : Inputs(kind, t.name)) {
    std::ifstream in(path, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    SCOPED_TRACE(path.string());
    t.entry(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
    ++n;
  }
  return n;
}

class FuzzReplay : public ::testing::TestWithParam<Target> {};

TEST_P(FuzzReplay, SeedCorpus) {
  // Every target has seeds: an empty corpus would make this test vacuous.
  EXPECT_GT(Replay("corpus", GetParam()), 0u);
}

TEST_P(FuzzReplay, Regressions) { Replay("regressions", GetParam()); }

INSTANTIATE_TEST_SUITE_P(Fuzz, FuzzReplay, ::testing::ValuesIn(kTargets),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace triggers::fuzz
