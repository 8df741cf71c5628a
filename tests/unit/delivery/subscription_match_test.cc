// Filter matching against stored events: `data` as deep as ingest accepts
// it is matched (top-level and deep fields), and data that cannot be parsed
// is a counted filter error, never matched as if it were null.
#include <gtest/gtest.h>

#include <sstream>
#include <string>
#include <vector>

#include "core/event_parser.h"
#include "delivery/subscription_cache.h"
#include "obs/metrics.h"

namespace triggers::delivery {
namespace {

// {"kind":"x","a":{"a":...{"leaf":"y"}...},"deep":[[...[1]...]]}: `depth`
// levels of arrays and objects in all (the data object is level 1), with
// "leaf" at data.a.a...a (20 times).
std::string DeepData(int depth) {
  std::string a;
  for (int i = 0; i < 19; ++i) a += "{\"a\":";
  a += "{\"leaf\":\"y\"}";
  a += std::string(19, '}');
  return "{\"kind\":\"x\",\"a\":" + a + ",\"deep\":" + std::string(depth - 1, '[') + "1" +
         std::string(depth - 1, ']') + "}";
}

std::shared_ptr<const CompiledSubscription> Compile(const std::string& filter) {
  Subscription sub;
  sub.id = "sub_01JTESTSUBSCRIPTION000000000";
  sub.tenant = "t";
  sub.filter_json = filter;
  auto c = CompileSubscription(sub);
  EXPECT_TRUE(c.ok()) << c.status().message();
  return c.value();
}

bool MatchesData(const std::string& filter, const std::string& data) {
  Event ev;
  ev.id = "evt_01JTESTEVENT0000000000000000";
  ev.tenant = "t";
  ev.type = "deep.event";
  ev.data = data;
  std::vector<std::string> out;
  MatchOne(*Compile(filter), ev, &out);
  return !out.empty();
}

// {"data":{"a":{"a":...{"leaf":["y"]}}}}: 20 "a" levels, within the 32
// levels a pattern may have.
std::string DeepFilter() {
  std::string f = "{\"data\":";
  for (int i = 0; i < 20; ++i) f += "{\"a\":";
  f += "{\"leaf\":[\"y\"]}";
  f += std::string(20, '}');
  return f + "}";
}

uint64_t FilterErrors() {
  std::istringstream text(obs::Metrics::Get().Render(nullptr));
  std::string line;
  const std::string name = "triggers_filter_errors_total ";
  while (std::getline(text, line)) {
    if (line.rfind(name, 0) == 0) return std::stoull(line.substr(name.size()));
  }
  ADD_FAILURE() << "no triggers_filter_errors_total sample";
  return 0;
}

TEST(SubscriptionMatch, DeepDataMatchesOnTopLevelAndDeepFields) {
  const uint64_t errors = FilterErrors();
  for (int depth : {40, core::kMaxJsonDepth - 1, core::kMaxJsonDepth}) {
    const std::string data = DeepData(depth);
    EXPECT_TRUE(MatchesData(R"({"data":{"kind":["x"]}})", data)) << depth;
    EXPECT_TRUE(MatchesData(DeepFilter(), data)) << depth;
    EXPECT_FALSE(MatchesData(R"({"data":{"kind":["z"]}})", data)) << depth;
    EXPECT_FALSE(MatchesData(R"({"data":{"kind":[{"exists":false}]}})", data)) << depth;
  }
  EXPECT_EQ(FilterErrors(), errors);
}

TEST(SubscriptionMatch, EveryBodyIngestAcceptsCanBeMatched) {
  // The deepest body ingest accepts (kMaxJsonDepth levels, the body object
  // included), and one level more, which ingest refuses.
  core::EventParser parser;
  Event ev;
  const std::string deepest = DeepData(core::kMaxJsonDepth - 1);
  ASSERT_TRUE(parser.ParseEvent(R"({"type":"a.b","data":)" + deepest + "}", ev).ok());
  EXPECT_EQ(ev.data, deepest);
  EXPECT_TRUE(MatchesData(R"({"data":{"kind":["x"]}})", ev.data));
  EXPECT_TRUE(MatchesData(DeepFilter(), ev.data));
  Status s =
      parser.ParseEvent(R"({"type":"a.b","data":)" + DeepData(core::kMaxJsonDepth) + "}", ev);
  EXPECT_EQ(s.code(), Status::Code::kInvalidJson);
  EXPECT_NE(s.message().find("nesting deeper than 128 levels"), std::string::npos) << s.message();
}

TEST(SubscriptionMatch, UnparsableDataIsAFilterErrorNotNull) {
  const uint64_t errors = FilterErrors();
  // A filter that null data would satisfy: a silent null would match.
  const std::string absent = R"({"data":{"kind":[{"exists":false}]}})";
  EXPECT_FALSE(MatchesData(absent, DeepData(core::kMaxJsonDepth + 1)));
  EXPECT_FALSE(MatchesData(R"({"data":{"kind":["x"]}})", DeepData(core::kMaxJsonDepth + 1)));
  EXPECT_FALSE(MatchesData(absent, "{\"kind\":"));
  EXPECT_EQ(FilterErrors(), errors + 3);
}

TEST(SubscriptionMatch, WithoutAFilterDataIsNotRead) {
  const uint64_t errors = FilterErrors();
  Subscription sub;
  sub.id = "sub_01JTESTSUBSCRIPTION000000001";
  sub.tenant = "t";
  auto c = CompileSubscription(sub);
  ASSERT_TRUE(c.ok());
  Event ev;
  ev.tenant = "t";
  ev.type = "a.b";
  ev.data = DeepData(core::kMaxJsonDepth + 1);
  std::vector<std::string> out;
  MatchOne(*c.value(), ev, &out);
  EXPECT_EQ(out.size(), 1u);
  EXPECT_EQ(FilterErrors(), errors);
}

}  // namespace
}  // namespace triggers::delivery
