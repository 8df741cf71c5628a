#include "core/event_parser.h"

#include <gtest/gtest.h>

namespace triggers::core {

class EventParserTest : public ::testing::Test {
 protected:
  EventParser p;
  Event ev;
};

TEST_F(EventParserTest, KeepsDataByteForByte) {
  std::string body =
      R"({"type":"order.created","data": {"b":1.50,"a":"\u00e9","z":[1e2, true ,null]} ,"source":"shop"})";
  ASSERT_TRUE(p.ParseEvent(body, ev).ok());
  EXPECT_EQ(ev.type, "order.created");
  EXPECT_EQ(ev.data, R"({"b":1.50,"a":"\u00e9","z":[1e2, true ,null]})");
  EXPECT_EQ(ev.source, "shop");
  EXPECT_FALSE(ev.subject);
  EXPECT_FALSE(ev.ordering_key);
}

TEST_F(EventParserTest, ScalarAndAbsentData) {
  ASSERT_TRUE(p.ParseEvent(R"({"type":"a","data":1.50 })", ev).ok());
  EXPECT_EQ(ev.data, "1.50");
  ASSERT_TRUE(p.ParseEvent(R"({"type":"a"})", ev).ok());
  EXPECT_EQ(ev.data, "null");
  ASSERT_TRUE(p.ParseEvent(R"({"type":"a","data":"x\"y"})", ev).ok());
  EXPECT_EQ(ev.data, R"("x\"y")");
  ASSERT_TRUE(p.ParseEvent(R"({"type":"a","data":123456789012345678901234567890})", ev).ok());
  EXPECT_EQ(ev.data, "123456789012345678901234567890");
}

TEST_F(EventParserTest, ValidatesType) {
  EXPECT_EQ(p.ParseEvent(R"({"data":1})", ev).code(), Status::Code::kValidation);
  EXPECT_EQ(p.ParseEvent(R"({"type":""})", ev).code(), Status::Code::kValidation);
  EXPECT_EQ(p.ParseEvent(R"({"type":"a b"})", ev).code(), Status::Code::kValidation);
  EXPECT_EQ(p.ParseEvent(R"({"type":5})", ev).code(), Status::Code::kValidation);
  std::string long_type(129, 'a');
  EXPECT_EQ(p.ParseEvent(R"({"type":")" + long_type + "\"}", ev).code(), Status::Code::kValidation);
  EXPECT_TRUE(p.ParseEvent(R"({"type":"A-z_0.9:x/y"})", ev).ok());
}

TEST_F(EventParserTest, NamesUnknownAndDuplicateFields) {
  Status s = p.ParseEvent(R"({"type":"a","tpye":"b"})", ev);
  EXPECT_EQ(s.code(), Status::Code::kValidation);
  EXPECT_NE(s.message().find("tpye"), std::string::npos);
  // A repeated field is refused by the one JSON reader, as on every route.
  s = p.ParseEvent(R"({"type":"a","type":"b"})", ev);
  EXPECT_EQ(s.code(), Status::Code::kInvalidJson);
  EXPECT_NE(s.message().find("'type'"), std::string::npos);
}

TEST_F(EventParserTest, OptionalStrings) {
  EXPECT_TRUE(p.ParseEvent(R"({"type":"a","subject":null})", ev).ok());
  EXPECT_EQ(p.ParseEvent(R"({"type":"a","subject":1})", ev).code(), Status::Code::kValidation);
  std::string long_s(257, 'x');
  Status s = p.ParseEvent(R"({"type":"a","ordering_key":")" + long_s + "\"}", ev);
  EXPECT_EQ(s.code(), Status::Code::kValidation);
  EXPECT_NE(s.message().find("ordering_key"), std::string::npos);
}

TEST_F(EventParserTest, RejectsInvalidJsonAnywhere) {
  for (const char* bad : {"", "{", R"({"type":"a",})", R"({"type":"a","data":{"x":}})",
                          R"({"type":"a","data":[1,2,]})", R"({"type":"a"} x)",
                          R"({"type":"a","data":tru})", R"({"type":"a","data":"\q"})"}) {
    Status s = p.ParseEvent(bad, ev);
    EXPECT_EQ(s.code(), Status::Code::kInvalidJson) << bad;
  }
  Status s = p.ParseEvent(R"({"type":"a","data":{"x":}})", ev);
  EXPECT_NE(s.message().find("byte"), std::string::npos);
}

TEST_F(EventParserTest, RejectsDeepNestingAndBadUtf8) {
  std::string deep = R"({"type":"a","data":)" + std::string(100000, '[');
  EXPECT_EQ(p.ParseEvent(deep, ev).code(), Status::Code::kInvalidJson);
  std::string deep_closed =
      R"({"type":"a","data":)" + std::string(200, '[') + std::string(200, ']') + "}";
  EXPECT_EQ(p.ParseEvent(deep_closed, ev).code(), Status::Code::kInvalidJson);
  EXPECT_EQ(p.ParseEvent("{\"type\":\"a\xff\"}", ev).code(), Status::Code::kInvalidJson);
}

TEST_F(EventParserTest, NonObjectBody) {
  EXPECT_EQ(p.ParseEvent("[1]", ev).code(), Status::Code::kValidation);
  EXPECT_EQ(p.ParseEvent("42", ev).code(), Status::Code::kValidation);
}

TEST_F(EventParserTest, BatchEntriesAreIndependent) {
  std::vector<Event> entries;
  std::vector<Status> st;
  ASSERT_TRUE(
      p.ParseBatch(R"({"events":[{"type":"a","data":{"k":[1]}},{"tpye":"b"},7,{"type":"c"}]})",
                   entries, st)
          .ok());
  ASSERT_EQ(st.size(), 4u);
  EXPECT_TRUE(st[0].ok());
  EXPECT_EQ(entries[0].data, R"({"k":[1]})");
  EXPECT_FALSE(st[1].ok());
  EXPECT_FALSE(st[2].ok());
  EXPECT_TRUE(st[3].ok());
  EXPECT_EQ(entries[3].type, "c");
}

TEST_F(EventParserTest, BatchLimits) {
  std::vector<Event> entries;
  std::vector<Status> st;
  EXPECT_EQ(p.ParseBatch(R"({"events":[]})", entries, st).code(), Status::Code::kValidation);
  EXPECT_EQ(p.ParseBatch(R"({})", entries, st).code(), Status::Code::kValidation);
  EXPECT_EQ(p.ParseBatch(R"({"events":{}})", entries, st).code(), Status::Code::kValidation);
  std::string many = R"({"events":[)";
  for (int i = 0; i < 501; ++i) many += std::string(i ? "," : "") + R"({"type":"a"})";
  many += "]}";
  EXPECT_EQ(p.ParseBatch(many, entries, st).code(), Status::Code::kValidation);
}

}  // namespace triggers::core
