#include "core/json_util.h"

#include <gtest/gtest.h>

namespace triggers::core {
namespace {

TEST(ToValidUtf8, KeepsValidTextAsIs) {
  EXPECT_EQ(ToValidUtf8("plain ascii"), "plain ascii");
  EXPECT_EQ(ToValidUtf8("\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80"),
            "\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80");
  EXPECT_EQ(ToValidUtf8(""), "");
}

TEST(ToValidUtf8, ReplacesEachBadByteAndNul) {
  const std::string bad(
      "a\xFF"
      "b\xC3"
      "c",
      5);
  EXPECT_EQ(ToValidUtf8(bad),
            "a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD"
            "c");
  EXPECT_EQ(ToValidUtf8(std::string("x\0y", 3)), "x\xEF\xBF\xBDy");
  // A truncated sequence at the end, an overlong encoding, a UTF-16 surrogate.
  EXPECT_EQ(ToValidUtf8("\xE2\x82"), "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8("\xC0\xAF")));
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8("\xED\xA0\x80")));
  EXPECT_TRUE(IsValidUtf8(ToValidUtf8(std::string("\x80\x80\xF5\xFE\xFF", 5))));
}

}  // namespace
}  // namespace triggers::core
