#include "api/json_body.h"

#include <gtest/gtest.h>

namespace triggers::api {
namespace {

TEST(JsonBodyTest, ReadsAnObject) {
  boost::json::object o;
  ASSERT_TRUE(ParseJsonObject(R"({"a":[1,2.5,1e308,-1e308]})", &o).ok());
  EXPECT_EQ(o.at("a").as_array().size(), 4u);
}

// Boost.JSON reads 1e999 as infinity and writes it back as `Infinity`, which
// is not JSON (found by fuzz/json_body_fuzz.cc): refused like any bad field.
TEST(JsonBodyTest, RefusesNumbersBeyondADouble) {
  for (const char* body : {R"({"filter":{"n":[{"numeric":[">",1e999]}]}})",
                           R"({"a":-1e400})", R"({"a":[[1,{"b":1000000e999}]]})"}) {
    boost::json::object o;
    Status s = ParseJsonObject(body, &o);
    EXPECT_EQ(s.code(), Status::Code::kValidation) << body;
  }
}

}  // namespace
}  // namespace triggers::api
