#include "core/json_reader.h"

#include <gtest/gtest.h>

#include <string>

namespace triggers::core {
namespace {

TEST(JsonReaderTest, AcceptsObjects) {
  JsonReader r;
  EXPECT_TRUE(r.Check(R"({})").ok());
  EXPECT_TRUE(r.Check(R"({"a":1,"b":{"a":2},"c":[{"a":3},{"a":4}]})").ok());
  // The same key in sibling objects, or in an object and its parent, is fine.
  EXPECT_TRUE(r.Check(R"({"x":{"k":1},"y":{"k":2},"k":[{"k":1},{"k":2}]})").ok());
}

TEST(JsonReaderTest, RefusesDuplicateKeysAtAnyDepthNamingTheKey) {
  JsonReader r;
  for (const char* body : {R"({"a":1,"a":2})", R"({"x":{"b":1,"c":2,"a":3,"a":4}})",
                           R"({"x":[1,{"y":[{"a":1,"a":1}]}]})", R"({"\u0061":1,"a":2})"}) {
    Status s = r.Check(body);
    EXPECT_EQ(s.code(), Status::Code::kInvalidJson) << body;
    EXPECT_NE(s.message().find("'a'"), std::string::npos) << s.message();
  }
}

TEST(JsonReaderTest, DuplicatesInLargeObjectsAreFound) {
  JsonReader r;
  std::string body = "{";
  for (int i = 0; i < 5000; ++i) body += "\"k" + std::to_string(i) + "\":1,";
  EXPECT_TRUE(r.Check(body + "\"last\":1}").ok());
  Status s = r.Check(body + "\"k4321\":2}");
  EXPECT_EQ(s.code(), Status::Code::kInvalidJson);
  EXPECT_NE(s.message().find("'k4321'"), std::string::npos);
}

TEST(JsonReaderTest, SyntaxDepthAndShape) {
  JsonReader r;
  EXPECT_EQ(r.Check("").code(), Status::Code::kInvalidJson);
  EXPECT_EQ(r.Check("{").code(), Status::Code::kInvalidJson);
  EXPECT_EQ(r.Check(R"({"a":1} x)").code(), Status::Code::kInvalidJson);
  EXPECT_EQ(r.Check(R"({"a":01})").code(), Status::Code::kInvalidJson);
  EXPECT_EQ(r.Check("[1]").code(), Status::Code::kValidation);
  EXPECT_EQ(r.Check("1").code(), Status::Code::kValidation);
  std::string deep = "{\"a\":" + std::string(127, '[') + std::string(127, ']') + "}";
  EXPECT_TRUE(r.Check(deep).ok());
  deep = "{\"a\":" + std::string(128, '[') + std::string(128, ']') + "}";
  EXPECT_EQ(r.Check(deep).code(), Status::Code::kInvalidJson);
}

TEST(JsonReaderTest, AKeyInTheMessageIsCutAndValidUtf8) {
  JsonReader r;
  std::string key(63, 'x');
  key += "\xc3\xa9";  // the cut falls inside this character
  Status s = r.Check("{\"" + key + "\":1,\"" + key + "\":2}");
  EXPECT_EQ(s.code(), Status::Code::kInvalidJson);
  EXPECT_EQ(s.message().find("\xc3\xa9"), std::string::npos);
  EXPECT_NE(s.message().find(std::string(63, 'x')), std::string::npos);
}

}  // namespace
}  // namespace triggers::core
