// libFuzzer's entry point for one target: FUZZ_ENTRY names the function of
// targets.h (set per executable in CMakeLists.txt).
#include "targets.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  triggers::fuzz::FUZZ_ENTRY(data, size);
  return 0;
}
