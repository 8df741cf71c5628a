#include "core/cursor.h"

#include <gtest/gtest.h>

namespace triggers::core {

TEST(Cursor, RoundTrip) {
  std::string id = "evt_01ARZ3NDEKTSV4RRFFQ69G5FAV";
  std::string c = EncodeCursor(id);
  EXPECT_EQ(c.find(id), std::string::npos);  // opaque
  EXPECT_EQ(DecodeCursor(c, "evt_"), id);
}

TEST(Cursor, RejectsMalformedAndForeignPrefixes) {
  EXPECT_FALSE(DecodeCursor("", "evt_"));
  EXPECT_FALSE(DecodeCursor("!!!", "evt_"));
  EXPECT_FALSE(DecodeCursor(EncodeCursor("key_01ARZ3NDEKTSV4RRFFQ69G5FAV"), "evt_"));
  EXPECT_FALSE(DecodeCursor(EncodeCursor("evt_garbage"), "evt_"));
  EXPECT_FALSE(DecodeCursor("evt_01ARZ3NDEKTSV4RRFFQ69G5FAV", "evt_"));
  EXPECT_FALSE(DecodeCursor(std::string(500, 'A'), "evt_"));
}

}  // namespace triggers::core
