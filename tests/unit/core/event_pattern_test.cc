// Unit tests for event type globs and EventBridge-style content filters
// (src/core/event_pattern.h). Matching cases follow the examples of the AWS
// EventBridge "Event patterns" and "Content filtering" documentation, moved
// into our stored event shape ({"id","type","source","subject",...,"data"}).
#include "core/event_pattern.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <string>
#include <vector>

namespace triggers::core {
namespace {

namespace json = boost::json;

// ---- Type globs ----------------------------------------------------------------

TEST(TypeGlob, ValidatesPatterns) {
  for (const char* ok : {"order.created", "order.*", "*.created", "order.**", "*", "**", "a.*.c",
                         "a.*.**", "x:y/z-1_2", "order..created"}) {
    EXPECT_TRUE(ValidateTypeGlob(ok).ok()) << ok;
  }
  for (const char* bad :
       {"", "order.cre*", "*x", "order.***", "**.order", "a.**.b", "order created", "ordér.*"}) {
    Status s = ValidateTypeGlob(bad);
    EXPECT_EQ(s.code(), Status::Code::kValidation) << bad;
  }
  EXPECT_TRUE(ValidateTypeGlob(std::string(128, 'a')).ok());
  EXPECT_FALSE(ValidateTypeGlob(std::string(129, 'a')).ok());
}

TEST(TypeGlob, ErrorNamesThePattern) {
  Status s = ValidateTypeGlob("order.cre*");
  EXPECT_NE(s.message().find("\"order.cre*\""), std::string::npos) << s.message();
  s = ValidateTypeGlob("**.order");
  EXPECT_NE(s.message().find("\"**.order\""), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("last segment"), std::string::npos) << s.message();
}

TEST(TypeGlob, ExactNames) {
  EXPECT_TRUE(TypeGlobMatches("order.created", "order.created"));
  EXPECT_FALSE(TypeGlobMatches("order.created", "order.created.v2"));
  EXPECT_FALSE(TypeGlobMatches("order.created", "order"));
  EXPECT_FALSE(TypeGlobMatches("order.created", "order.create"));
}

TEST(TypeGlob, StarIsExactlyOneSegment) {
  EXPECT_TRUE(TypeGlobMatches("order.*", "order.created"));
  EXPECT_FALSE(TypeGlobMatches("order.*", "order"));
  EXPECT_FALSE(TypeGlobMatches("order.*", "order."));  // empty segment
  EXPECT_FALSE(TypeGlobMatches("order.*", "order.a.b"));
  EXPECT_FALSE(TypeGlobMatches("order.*", "orders.a"));
  EXPECT_TRUE(TypeGlobMatches("*.created", "order.created"));
  EXPECT_FALSE(TypeGlobMatches("*.created", ".created"));
  EXPECT_TRUE(TypeGlobMatches("a.*.c", "a.b.c"));
  EXPECT_FALSE(TypeGlobMatches("a.*.c", "a.b.x.c"));
  EXPECT_TRUE(TypeGlobMatches("*", "order"));
  EXPECT_FALSE(TypeGlobMatches("*", "order.created"));
}

TEST(TypeGlob, TrailingDoubleStarIsOneOrMoreSegments) {
  EXPECT_TRUE(TypeGlobMatches("order.**", "order.a"));
  EXPECT_TRUE(TypeGlobMatches("order.**", "order.a.b"));
  EXPECT_TRUE(TypeGlobMatches("order.**", "order.a.b.c"));
  EXPECT_FALSE(TypeGlobMatches("order.**", "order"));
  EXPECT_FALSE(TypeGlobMatches("order.**", "orders.a"));
  EXPECT_TRUE(TypeGlobMatches("a.*.**", "a.b.c"));
  EXPECT_FALSE(TypeGlobMatches("a.*.**", "a.b"));
  EXPECT_TRUE(TypeGlobMatches("**", "anything.at.all"));
  EXPECT_TRUE(TypeGlobMatches("**", "x"));
}

TEST(TypeFilter, EmptyListMatchesAllTypes) {
  Result<TypeFilter> f = TypeFilter::Compile({});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->matches_all());
  EXPECT_TRUE(f->Matches("anything"));
  EXPECT_TRUE(TypeFilter().Matches("x.y"));
}

TEST(TypeFilter, AnyGlobMatches) {
  Result<TypeFilter> f = TypeFilter::Compile({"order.*", "invoice.paid", "user.**"});
  ASSERT_TRUE(f.ok());
  EXPECT_TRUE(f->Matches("order.created"));
  EXPECT_TRUE(f->Matches("invoice.paid"));
  EXPECT_TRUE(f->Matches("user.a.b"));
  EXPECT_FALSE(f->Matches("invoice.sent"));
  EXPECT_FALSE(f->Matches("order.a.b"));
  EXPECT_FALSE(f->Matches("user"));
}

TEST(TypeFilter, ErrorNamesTheEntry) {
  Result<TypeFilter> f = TypeFilter::Compile({"order.*", "bad*"});
  ASSERT_FALSE(f.ok());
  EXPECT_EQ(f.status().code(), Status::Code::kValidation);
  EXPECT_EQ(f.status().message().rfind("event_types[1]: ", 0), 0u) << f.status().message();
  EXPECT_NE(f.status().message().find("\"bad*\""), std::string::npos);
}

// ---- Content filters -------------------------------------------------------------

// Compiles `pattern` (JSON text), failing the test when it does not compile.
EventPattern MustCompile(std::string_view pattern) {
  Result<EventPattern> p = EventPattern::Compile(json::parse(pattern));
  EXPECT_TRUE(p.ok()) << pattern << ": " << p.status().message();
  return p.ok() ? p.value() : EventPattern();
}

bool Match(std::string_view pattern, std::string_view event) {
  Result<EventPattern> p = EventPattern::Compile(json::parse(pattern));
  EXPECT_TRUE(p.ok()) << pattern << ": " << p.status().message();
  return p.ok() && p->Matches(json::parse(event));
}

// The compile error message for `pattern`, or "" when it compiles.
std::string CompileError(std::string_view pattern) {
  Result<EventPattern> p = EventPattern::Compile(json::parse(pattern));
  if (p.ok()) return "";
  EXPECT_EQ(p.status().code(), Status::Code::kValidation);
  return p.status().message();
}

// The EC2 state-change example of the EventBridge documentation, stored as a
// Triggers event.
constexpr std::string_view kEc2Event = R"({
  "id": "evt_01ARZ3NDEKTSV4RRFFQ69G5FAV",
  "type": "ec2.instance.state_change",
  "source": "aws.ec2",
  "subject": "i-1234567890abcdef0",
  "ordering_key": null,
  "time": "2017-12-22T18:43:48Z",
  "data": {
    "instance-id": "i-1234567890abcdef0",
    "state": "terminated",
    "region": "us-west-1",
    "resources": ["arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"],
    "c-count": 5, "d-count": 4, "x-limit": 301.8,
    "responseElements": null,
    "empty": "",
    "FileName": "photo.PNG", "Path": "dir/sub/photo.png",
    "tags": ["prod", "eu"],
    "items": [{"sku": "a", "qty": 1}, {"sku": "b", "qty": 7}],
    "customer": {"name": "Ada", "address": {"country": "FR"}}
  }
})";

TEST(EventPattern, DefaultAndEmptyPatternsMatchEverything) {
  EXPECT_TRUE(EventPattern().Matches(json::parse(kEc2Event)));
  EXPECT_TRUE(Match("{}", kEc2Event));
}

TEST(EventPattern, ExactValues) {
  EXPECT_TRUE(Match(R"({"source":["aws.ec2"]})", kEc2Event));
  EXPECT_FALSE(Match(R"({"source":["aws.s3"]})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"state":["terminated"]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"state":["Terminated"]}})", kEc2Event));  // case-sensitive
  // Types matter: a string is not a number and vice versa.
  EXPECT_FALSE(Match(R"({"data":{"c-count":["5"]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"state":[5]}})", kEc2Event));
}

TEST(EventPattern, OrWithinAnArrayAndAcrossFields) {
  EXPECT_TRUE(Match(R"({"data":{"state":["running","terminated","stopped"]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"state":["running","stopped"]}})", kEc2Event));
  // All fields must match (AND).
  EXPECT_TRUE(Match(R"({"source":["aws.ec2"],"data":{"state":["terminated"]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"source":["aws.ec2"],"data":{"state":["running"]}})", kEc2Event));
}

TEST(EventPattern, NullBooleanAndEmptyString) {
  EXPECT_TRUE(Match(R"({"data":{"responseElements":[null]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"ordering_key":[null]})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"missing":[null]}})", kEc2Event));  // null is not absence
  EXPECT_TRUE(Match(R"({"data":{"empty":[""]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"responseElements":[""]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"on":[true]}})", R"({"data":{"on":true}})"));
  EXPECT_FALSE(Match(R"({"data":{"on":[true]}})", R"({"data":{"on":false}})"));
  EXPECT_FALSE(Match(R"({"data":{"on":[true]}})", R"({"data":{"on":"true"}})"));
}

TEST(EventPattern, NumbersCompareNumerically) {
  EXPECT_TRUE(Match(R"({"data":{"c-count":[5]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"c-count":[5.0]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"c-count":[5e0]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"n":[5]}})", R"({"data":{"n":5.0}})"));
  EXPECT_TRUE(Match(R"({"data":{"x-limit":[3.018e2]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"c-count":[5.5]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"n":[-3]}})", R"({"data":{"n":-3}})"));
  // Large integers stay exact.
  EXPECT_TRUE(Match(R"({"data":{"n":[9007199254740993]}})", R"({"data":{"n":9007199254740993}})"));
  EXPECT_FALSE(Match(R"({"data":{"n":[9007199254740993]}})", R"({"data":{"n":9007199254740992}})"));
}

TEST(EventPattern, Prefix) {
  EXPECT_TRUE(Match(R"({"time":[{"prefix":"2017-12-22"}]})", kEc2Event));
  EXPECT_FALSE(Match(R"({"time":[{"prefix":"2017-10-02"}]})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"region":[{"prefix":"us-"}]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"region":[{"prefix":""}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"c-count":[{"prefix":"5"}]}})", kEc2Event));  // strings only
  EXPECT_TRUE(Match(R"({"data":{"region":[{"prefix":{"equals-ignore-case":"US-"}}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"region":[{"prefix":"US-"}]}})", kEc2Event));
}

TEST(EventPattern, Suffix) {
  EXPECT_TRUE(Match(R"({"data":{"Path":[{"suffix":".png"}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"FileName":[{"suffix":".png"}]}})", kEc2Event));
  EXPECT_TRUE(
      Match(R"({"data":{"FileName":[{"suffix":{"equals-ignore-case":".png"}}]}})", kEc2Event));
  EXPECT_FALSE(
      Match(R"({"data":{"FileName":[{"suffix":"a-much-longer-suffix.PNG"}]}})", kEc2Event));
}

TEST(EventPattern, EqualsIgnoreCase) {
  EXPECT_TRUE(Match(R"({"data":{"state":[{"equals-ignore-case":"TERMINATED"}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"state":[{"equals-ignore-case":"TERMINATE"}]}})", kEc2Event));
}

TEST(EventPattern, Wildcard) {
  EXPECT_TRUE(Match(R"({"data":{"Path":[{"wildcard":"dir/*.png"}]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"Path":[{"wildcard":"*/sub/*"}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"Path":[{"wildcard":"dir/*.jpg"}]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"s":[{"wildcard":"a\\*b"}]}})", R"({"data":{"s":"a*b"}})"));
  EXPECT_FALSE(Match(R"({"data":{"s":[{"wildcard":"a\\*b"}]}})", R"({"data":{"s":"axb"}})"));
  EXPECT_FALSE(Match(R"({"data":{"s":[{"wildcard":"ab*ba"}]}})", R"({"data":{"s":"aba"}})"));
}

TEST(EventPattern, AnythingButValue) {
  EXPECT_FALSE(Match(R"({"data":{"state":[{"anything-but":"terminated"}]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"state":[{"anything-but":"initializing"}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"c-count":[{"anything-but":5}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"c-count":[{"anything-but":5.0}]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"c-count":[{"anything-but":6}]}})", kEc2Event));
  // anything-but never matches a missing field.
  EXPECT_FALSE(Match(R"({"data":{"missing":[{"anything-but":"x"}]}})", kEc2Event));
}

TEST(EventPattern, AnythingButList) {
  EXPECT_TRUE(
      Match(R"({"data":{"state":[{"anything-but":["stopped","overloaded"]}]}})", kEc2Event));
  EXPECT_FALSE(
      Match(R"({"data":{"state":[{"anything-but":["stopped","terminated"]}]}})", kEc2Event));
  EXPECT_FALSE(
      Match(R"({"data":{"x":[{"anything-but":[100,200,300]}]}})", R"({"data":{"x":200}})"));
  EXPECT_TRUE(Match(R"({"data":{"x":[{"anything-but":[100,200,300]}]}})", R"({"data":{"x":201}})"));
}

TEST(EventPattern, AnythingButOperators) {
  EXPECT_TRUE(Match(R"({"data":{"state":[{"anything-but":{"prefix":"init"}}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"state":[{"anything-but":{"prefix":"term"}}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"Path":[{"anything-but":{"suffix":".png"}}]}})", kEc2Event));
  EXPECT_FALSE(Match(
      R"({"data":{"state":[{"anything-but":{"equals-ignore-case":["RUNNING","Terminated"]}}]}})",
      kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"state":[{"anything-but":{"equals-ignore-case":"RUNNING"}}]}})",
                    kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"Path":[{"anything-but":{"wildcard":"dir/*"}}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"missing":[{"anything-but":{"prefix":"x"}}]}})", kEc2Event));
}

TEST(EventPattern, NumericRanges) {
  // The documentation's example: all three hold for c-count 5, d-count 4, x-limit 301.8.
  EXPECT_TRUE(Match(R"({"data":{
      "c-count":[{"numeric":[">",0,"<=",5]}],
      "d-count":[{"numeric":["<",10]}],
      "x-limit":[{"numeric":["=",3.018e2]}]}})",
                    kEc2Event));
  auto in_0_5 = MustCompile(R"({"data":{"n":[{"numeric":[">",0,"<=",5]}]}})");
  auto ev = [](std::string_view n) {
    return json::parse(R"({"data":{"n":)" + std::string(n) + "}}");
  };
  EXPECT_FALSE(in_0_5.Matches(ev("0")));
  EXPECT_TRUE(in_0_5.Matches(ev("0.0001")));
  EXPECT_TRUE(in_0_5.Matches(ev("1")));
  EXPECT_TRUE(in_0_5.Matches(ev("5")));
  EXPECT_TRUE(in_0_5.Matches(ev("5.0")));
  EXPECT_FALSE(in_0_5.Matches(ev("5.0001")));
  EXPECT_FALSE(in_0_5.Matches(ev("-1")));
  EXPECT_FALSE(in_0_5.Matches(ev("\"3\"")));  // numbers only
  EXPECT_FALSE(in_0_5.Matches(json::parse(R"({"data":{}})")));
  // Bounds in either order, and the other operators.
  EXPECT_TRUE(Match(R"({"data":{"n":[{"numeric":["<=",10,">=",10]}]}})", R"({"data":{"n":10}})"));
  EXPECT_FALSE(Match(R"({"data":{"n":[{"numeric":["<",10,">=",10]}]}})", R"({"data":{"n":10}})"));
  EXPECT_TRUE(Match(R"({"data":{"n":[{"numeric":["<",11,">",9]}]}})", R"({"data":{"n":10}})"));
  EXPECT_TRUE(Match(R"({"data":{"n":[{"numeric":[">=",-1.5]}]}})", R"({"data":{"n":-1.5}})"));
  EXPECT_FALSE(Match(R"({"data":{"n":[{"numeric":[">",-1.5]}]}})", R"({"data":{"n":-1.5}})"));
  EXPECT_TRUE(Match(R"({"data":{"n":[{"numeric":["=",7]}]}})", R"({"data":{"n":7.0}})"));
  // Numeric ranges OR'd with each other.
  EXPECT_TRUE(Match(R"({"data":{"n":[{"numeric":["<",0]},{"numeric":[">",100]}]}})",
                    R"({"data":{"n":101}})"));
  EXPECT_FALSE(Match(R"({"data":{"n":[{"numeric":["<",0]},{"numeric":[">",100]}]}})",
                     R"({"data":{"n":50}})"));
}

TEST(EventPattern, Exists) {
  EXPECT_TRUE(Match(R"({"data":{"state":[{"exists":true}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"state":[{"exists":false}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"missing":[{"exists":true}]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"missing":[{"exists":false}]}})", kEc2Event));
  // A null value is present.
  EXPECT_TRUE(Match(R"({"data":{"responseElements":[{"exists":true}]}})", kEc2Event));
  // Absent when the parent is absent or not an object.
  EXPECT_TRUE(Match(R"({"data":{"a":{"b":[{"exists":false}]}}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"state":{"b":[{"exists":false}]}}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"a":{"b":[{"exists":true}]}}})", kEc2Event));
  // exists only sees leaves: an object or an empty array counts as absent.
  EXPECT_FALSE(Match(R"({"data":{"customer":[{"exists":true}]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"l":[{"exists":false}]}})", R"({"data":{"l":[]}})"));
  // OR'd with a value.
  EXPECT_TRUE(Match(R"({"data":{"tier":["gold",{"exists":false}]}})", R"({"data":{}})"));
  EXPECT_TRUE(
      Match(R"({"data":{"tier":["gold",{"exists":false}]}})", R"({"data":{"tier":"gold"}})"));
  EXPECT_FALSE(
      Match(R"({"data":{"tier":["gold",{"exists":false}]}})", R"({"data":{"tier":"free"}})"));
}

TEST(EventPattern, MissingFieldsFailEverythingButExistsFalse) {
  for (const char* leaf : {R"(["x"])", R"([null])", R"([{"prefix":""}])", R"([{"suffix":""}])",
                           R"([{"anything-but":"x"}])", R"([{"numeric":[">",0]}])",
                           R"([{"exists":true}])", R"([{"equals-ignore-case":"x"}])"}) {
    EXPECT_FALSE(Match(R"({"data":{"nope":)" + std::string(leaf) + "}}", kEc2Event)) << leaf;
  }
  EXPECT_FALSE(Match(R"({"data":{"x":["a"]}})", R"({"type":"t"})"));
  EXPECT_FALSE(Match(R"({"data":{"x":["a"]}})", "[1,2]"));  // not an object: no fields
}

TEST(EventPattern, ArraysInTheEvent) {
  // The documentation's resources example: matches when the intersection is non-empty.
  EXPECT_TRUE(Match(R"({"data":{"resources":[
      "arn:aws:ec2:us-east-1:123456789012:instance/i-b188560f",
      "arn:aws:ec2:us-west-1:123456789012:instance/i-1234567890abcdef0"]}})",
                    kEc2Event));
  EXPECT_FALSE(Match(
      R"({"data":{"resources":["arn:aws:ec2:us-east-1:123456789012:instance/i-x"]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"tags":["eu"]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"tags":[{"prefix":"pr"}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"tags":["us"]}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"n":[{"numeric":[">",10]}]}})", R"({"data":{"n":[1,[2,30]]}})"));
  // anything-but on an array: some element is not excluded.
  EXPECT_TRUE(Match(R"({"data":{"tags":[{"anything-but":"prod"}]}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"tags":[{"anything-but":["prod","eu"]}]}})", kEc2Event));
}

TEST(EventPattern, NestedObjects) {
  EXPECT_TRUE(Match(R"({"data":{"customer":{"address":{"country":["FR","DE"]}}}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"customer":{"address":{"country":["US"]}}}})", kEc2Event));
  EXPECT_TRUE(
      Match(R"({"data":{"customer":{"name":["Ada"],"address":{"country":["FR"]}}}})", kEc2Event));
  EXPECT_FALSE(
      Match(R"({"data":{"customer":{"name":["Bob"],"address":{"country":["FR"]}}}})", kEc2Event));
  // A leaf array does not match an object.
  EXPECT_FALSE(Match(R"({"data":{"customer":["Ada"]}})", kEc2Event));
  // Arrays of objects: one element must match the whole sub-pattern.
  EXPECT_TRUE(Match(R"({"data":{"items":{"sku":["b"]}}})", kEc2Event));
  EXPECT_TRUE(Match(R"({"data":{"items":{"sku":["b"],"qty":[{"numeric":[">",5]}]}}})", kEc2Event));
  EXPECT_FALSE(Match(R"({"data":{"items":{"sku":["a"],"qty":[{"numeric":[">",5]}]}}})", kEc2Event));
}

TEST(EventPattern, OrAcrossFields) {
  constexpr std::string_view kOr = R"({"data":{"$or":[
      {"c-count":[{"numeric":[">",10]}]},
      {"d-count":[{"numeric":["<",10]}]}]}})";
  EXPECT_TRUE(Match(kOr, kEc2Event));
  EXPECT_FALSE(Match(kOr, R"({"data":{"c-count":1,"d-count":20}})"));
  EXPECT_TRUE(Match(
      R"({"source":["aws.ec2"],"$or":[{"type":["x"]},{"subject":[{"prefix":"i-"}]}]})", kEc2Event));
  EXPECT_FALSE(Match(
      R"({"source":["aws.s3"],"$or":[{"type":["x"]},{"subject":[{"prefix":"i-"}]}]})", kEc2Event));
}

TEST(EventPattern, CopiesShareTheCompiledPattern) {
  EventPattern a = MustCompile(R"({"source":["aws.ec2"]})");
  EventPattern b = a;
  EXPECT_TRUE(b.Matches(json::parse(kEc2Event)));
}

// ---- Compile errors ---------------------------------------------------------------

TEST(EventPatternCompile, ErrorsNameThePath) {
  EXPECT_EQ(CompileError(R"({"data":{"total":[{"numerc":[">",1]}]}})"),
            R"(filter.data.total[0]: unknown operator "numerc")");
  EXPECT_EQ(CompileError(R"({"data":{"total":5}})").rfind("filter.data.total: must be an array", 0),
            0u);
  EXPECT_EQ(
      CompileError(R"({"data":{"total":"x"}})").rfind("filter.data.total: must be an array", 0),
      0u);
  EXPECT_EQ(CompileError(R"({"data":{"total":[]}})"),
            "filter.data.total: must not be an empty array");
  EXPECT_EQ(CompileError(R"({"data":{}})"), "filter.data: must not be an empty object");
  EXPECT_EQ(CompileError(R"({"a":["x",["y"]]})").rfind("filter.a[1]: must be a string", 0), 0u);
  EXPECT_EQ(CompileError(R"({"a":[{"prefix":"x","suffix":"y"}]})"),
            "filter.a[0]: an operator object must have exactly one key");
  EXPECT_EQ(CompileError(R"({"a":[{}]})"),
            "filter.a[0]: an operator object must have exactly one key");
}

TEST(EventPatternCompile, RejectsNonObjectPatterns) {
  EXPECT_EQ(CompileError("[]"), "filter: must be a JSON object");
  EXPECT_EQ(CompileError("\"x\""), "filter: must be a JSON object");
  EXPECT_EQ(CompileError("null"), "filter: must be a JSON object");
  Result<EventPattern> p = EventPattern::Compile(json::parse("1"), "pattern");
  EXPECT_EQ(p.status().message(), "pattern: must be a JSON object");
}

TEST(EventPatternCompile, StringOperatorOperands) {
  EXPECT_EQ(
      CompileError(R"({"a":[{"prefix":5}]})").rfind("filter.a[0].prefix: must be a string", 0), 0u);
  EXPECT_EQ(
      CompileError(R"({"a":[{"suffix":null}]})").rfind("filter.a[0].suffix: must be a string", 0),
      0u);
  EXPECT_EQ(CompileError(R"({"a":[{"prefix":{"nope":"x"}}]})")
                .rfind("filter.a[0].prefix: must be a string", 0),
            0u);
  EXPECT_EQ(CompileError(R"({"a":[{"equals-ignore-case":["x"]}]})"),
            "filter.a[0].equals-ignore-case: must be a string");
  EXPECT_EQ(CompileError(R"({"a":[{"wildcard":1}]})"), "filter.a[0].wildcard: must be a string");
  EXPECT_EQ(CompileError(R"({"a":[{"exists":"yes"}]})"),
            "filter.a[0].exists: must be true or false");
}

TEST(EventPatternCompile, NumericOperands) {
  EXPECT_EQ(CompileError(R"({"a":[{"numeric":[">"]}]})").rfind("filter.a[0].numeric: must be", 0),
            0u);
  EXPECT_EQ(
      CompileError(R"({"a":[{"numeric":[">",1,"<"]}]})").rfind("filter.a[0].numeric: must be", 0),
      0u);
  EXPECT_EQ(CompileError(R"({"a":[{"numeric":[">",1,"<",2,"=",3]}]})")
                .rfind("filter.a[0].numeric: must be", 0),
            0u);
  EXPECT_EQ(CompileError(R"({"a":[{"numeric":5}]})").rfind("filter.a[0].numeric: must be", 0), 0u);
  EXPECT_EQ(CompileError(R"({"a":[{"numeric":[">","1"]}]})"),
            "filter.a[0].numeric[1]: must be a number");
  EXPECT_EQ(CompileError(R"({"a":[{"numeric":[">",0,"<=",null]}]})"),
            "filter.a[0].numeric[3]: must be a number");
  EXPECT_EQ(CompileError(R"({"a":[{"numeric":["=>",1]}]})")
                .rfind(R"(filter.a[0].numeric[0]: unknown comparison "=>")", 0),
            0u);
  EXPECT_EQ(CompileError(R"({"a":[{"numeric":[1,1]}]})")
                .rfind("filter.a[0].numeric[0]: must be one of", 0),
            0u);
  EXPECT_EQ(CompileError(R"({"a":[{"numeric":[">",1,">",2]}]})")
                .rfind("filter.a[0].numeric: two comparisons must be one lower", 0),
            0u);
  EXPECT_NE(CompileError(R"({"a":[{"numeric":["=",1,"<",2]}]})"), "");
}

TEST(EventPatternCompile, AnythingButOperands) {
  EXPECT_EQ(CompileError(R"({"a":[{"anything-but":[]}]})"),
            "filter.a[0].anything-but: must not be an empty array");
  EXPECT_EQ(CompileError(R"({"a":[{"anything-but":["x",{"prefix":"y"}]}]})")
                .rfind("filter.a[0].anything-but[1]: must be", 0),
            0u);
  EXPECT_EQ(CompileError(R"({"a":[{"anything-but":{"prefix":1}}]})"),
            "filter.a[0].anything-but.prefix: must be a string");
  EXPECT_EQ(CompileError(R"({"a":[{"anything-but":{"numeric":[">",1]}}]})")
                .rfind("filter.a[0].anything-but.numeric: unknown operator", 0),
            0u);
  EXPECT_EQ(CompileError(R"({"a":[{"anything-but":{"prefix":"x","suffix":"y"}}]})"),
            "filter.a[0].anything-but: an operator object must have exactly one key");
}

TEST(EventPatternCompile, OrOperands) {
  EXPECT_EQ(CompileError(R"({"$or":[]})"), "filter.$or: must be a non-empty array of patterns");
  EXPECT_EQ(CompileError(R"({"$or":{"a":["x"]}})"),
            "filter.$or: must be a non-empty array of patterns");
  EXPECT_EQ(CompileError(R"({"$or":[{"a":["x"]},"b"]})"), "filter.$or[1]: must be a JSON object");
  EXPECT_EQ(CompileError(R"({"$or":[{"a":["x"]},{"b":[{"numerc":[]}]}]})"),
            R"(filter.$or[1].b[0]: unknown operator "numerc")");
}

TEST(EventPatternCompile, BoundsDepth) {
  auto nested = [](int depth) {
    json::value leaf = json::array{"x"};
    for (int i = 0; i < depth; ++i) {
      json::object o;
      o["k"] = std::move(leaf);
      leaf = std::move(o);
    }
    return leaf;
  };
  EXPECT_TRUE(EventPattern::Compile(nested(EventPattern::kMaxDepth)).ok());
  Result<EventPattern> p = EventPattern::Compile(nested(EventPattern::kMaxDepth + 1));
  ASSERT_FALSE(p.ok());
  EXPECT_EQ(p.status().code(), Status::Code::kValidation);
  EXPECT_NE(p.status().message().find("nesting deeper than 32 levels"), std::string::npos);
  EXPECT_EQ(p.status().message().rfind("filter.k.k.", 0), 0u) << p.status().message();
}

TEST(EventPatternCompile, BoundsTotalValues) {
  auto with_values = [](size_t n, size_t fields) {
    json::object o;
    for (size_t f = 0; f < fields; ++f) {
      json::array a;
      for (size_t i = 0; i < n / fields; ++i) a.push_back(static_cast<int64_t>(i));
      o["f" + std::to_string(f)] = std::move(a);
    }
    return json::value(std::move(o));
  };
  EXPECT_TRUE(EventPattern::Compile(with_values(256, 1)).ok());
  EXPECT_TRUE(EventPattern::Compile(with_values(256, 4)).ok());
  Result<EventPattern> p = EventPattern::Compile(with_values(257, 1));
  ASSERT_FALSE(p.ok());
  EXPECT_NE(p.status().message().find("more than 256 values"), std::string::npos);
  EXPECT_FALSE(EventPattern::Compile(with_values(260, 4)).ok());
  // Operands count too.
  std::string many = R"({"a":[{"anything-but":[)";
  for (int i = 0; i < 300; ++i) many += (i ? "," : "") + std::to_string(i);
  many += "]}]}";
  EXPECT_NE(CompileError(many).find("more than 256 values"), std::string::npos);
}

TEST(EventPatternCompile, ErrorMessagesAreSanitizedAndBounded) {
  std::string key(500, 'k');
  std::string msg = CompileError(R"({")" + key + R"(\n":5})");
  EXPECT_LT(msg.size(), 200u) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
  EXPECT_EQ(CompileError(R"({"a\nb":[{"x":1}]})"), R"(filter.a?b[0]: unknown operator "x")");
}

}  // namespace
}  // namespace triggers::core
