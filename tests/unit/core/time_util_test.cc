#include "core/time_util.h"

#include <gtest/gtest.h>

namespace triggers::core {

TEST(Time, FormatsRfc3339Milliseconds) {
  EXPECT_EQ(FormatTimeMs(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatTimeMs(1795639832123), "2026-11-25T20:50:32.123Z");
  EXPECT_EQ(FormatTimeMs(951782400000), "2000-02-29T00:00:00.000Z");
}

TEST(Time, ParsesWhatItFormatsAndOffsets) {
  EXPECT_EQ(ParseTimeMs("2026-11-25T20:50:32.123Z"), 1795639832123);
  EXPECT_EQ(ParseTimeMs("2026-11-25T20:50:32Z"), 1795639832000);
  EXPECT_EQ(ParseTimeMs("2026-11-25T21:50:32.123+01:00"), 1795639832123);
  EXPECT_FALSE(ParseTimeMs("2026-11-25 20:50:32Z"));
  EXPECT_FALSE(ParseTimeMs("2026-13-25T20:50:32Z"));
  EXPECT_FALSE(ParseTimeMs("2026-11-25T20:50:32"));
  EXPECT_FALSE(ParseTimeMs("2026-11-25T20:50:32.Z"));
}

TEST(Duration, AcceptsTheUnitsOfTheSpec) {
  EXPECT_EQ(ParseDurationMs("500ms"), 500);
  EXPECT_EQ(ParseDurationMs("15s"), 15000);
  EXPECT_EQ(ParseDurationMs("2m"), 120000);
  EXPECT_EQ(ParseDurationMs("1h"), 3600000);
  EXPECT_EQ(ParseDurationMs("7d"), 604800000);
  EXPECT_FALSE(ParseDurationMs("7"));
  EXPECT_FALSE(ParseDurationMs("s"));
  EXPECT_FALSE(ParseDurationMs("-1s"));
  EXPECT_FALSE(ParseDurationMs("1w"));
  EXPECT_FALSE(ParseDurationMs("99999999999999999999d"));
}

TEST(Size, AcceptsBytesAndBinaryUnits) {
  EXPECT_EQ(ParseSizeBytes("262144"), 262144);
  EXPECT_EQ(ParseSizeBytes("256KiB"), 262144);
  EXPECT_EQ(ParseSizeBytes("1MiB"), 1048576);
  EXPECT_FALSE(ParseSizeBytes("1GiBs"));
  EXPECT_FALSE(ParseSizeBytes(""));
}

}  // namespace triggers::core
