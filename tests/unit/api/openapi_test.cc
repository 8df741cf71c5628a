// docs/openapi.yaml (as compiled into the binary) against the router's route
// table: every route is documented, nothing else is, and each operation's
// security and error responses match how the router treats the route.
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <set>
#include <string>

#include "api/openapi_document.h"
#include "api/router.h"

namespace triggers::api {
namespace {

namespace json = boost::json;

// Routes that docs/openapi.yaml describes ahead of the branch that adds them
// to the router (the probes of issue 13 item 4). Documented but not routed is
// allowed for these only; once they are routed they are checked like any
// other route, and this list can be emptied.

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

json::object Document() {
  json::value v = json::parse(OpenApiJson());
  return v.as_object();
}

std::set<std::string> DocumentedOperations(const json::object& doc) {
  static const std::set<std::string> kMethods = {"get",   "put",     "post", "delete",
                                                 "patch", "options", "head", "trace"};
  std::set<std::string> out;
  for (const auto& [path, item] : doc.at("paths").as_object()) {
    for (const auto& [method, op] : item.as_object()) {
      if (!kMethods.count(std::string(method))) continue;
      std::string m(method);
      for (char& c : m) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
      out.insert(m + " " + std::string(path));
    }
  }
  return out;
}

const json::object& Operation(const json::object& doc, const RouteInfo& r) {
  return doc.at("paths").at(r.pattern).at(Lower(r.method)).as_object();
}

TEST(OpenApiTest, IsOpenApi31) {
  json::object doc = Document();
  EXPECT_EQ(std::string(doc.at("openapi").as_string()).substr(0, 4), "3.1.");
  EXPECT_TRUE(doc.contains("info"));
}

TEST(OpenApiTest, EveryRouteIsDocumentedAndNothingElse) {
  json::object doc = Document();
  std::set<std::string> documented = DocumentedOperations(doc);
  std::set<std::string> routed;
  for (const RouteInfo& r : RouteTable()) {
    std::string op = std::string(r.method) + " " + std::string(r.pattern);
    routed.insert(op);
    EXPECT_TRUE(documented.count(op)) << op << " is routed but not in docs/openapi.yaml";
  }
  for (const std::string& op : documented) {
    EXPECT_TRUE(routed.count(op)) << op << " is in docs/openapi.yaml but not routed";
  }
}

TEST(OpenApiTest, SecurityMatchesTheRouter) {
  json::object doc = Document();
  for (const RouteInfo& r : RouteTable()) {
    const json::object& op = Operation(doc, r);
    std::string name = std::string(r.method) + " " + std::string(r.pattern);
    ASSERT_TRUE(op.contains("security")) << name << ": no security requirement";
    const json::array& sec = op.at("security").as_array();
    if (r.access == "public") {
      EXPECT_TRUE(sec.empty()) << name << " is public: security must be []";
      continue;
    }
    // Every requirement names the role the router checks: the scope, or
    // "admin" for the admin-only form of /metrics; {} only where public.
    bool anonymous = false;
    for (const json::value& req : sec) {
      if (req.as_object().empty()) {
        anonymous = true;
        continue;
      }
      for (const auto& [scheme, roles] : req.as_object()) {
        ASSERT_EQ(roles.as_array().size(), 1u) << name << " " << std::string(scheme);
        std::string role(roles.as_array()[0].as_string());
        EXPECT_EQ(role, r.scope.empty() ? "admin" : std::string(r.scope)) << name;
      }
    }
    EXPECT_EQ(anonymous, r.access == "public or admin") << name;
  }
}

TEST(OpenApiTest, ErrorsOfTheRouterAreDocumented) {
  json::object doc = Document();
  for (const RouteInfo& r : RouteTable()) {
    const json::object& op = Operation(doc, r);
    std::string name = std::string(r.method) + " " + std::string(r.pattern);
    const json::object& responses = op.at("responses").as_object();
    // Every route may answer 503 (shutting down, a full pool).
    EXPECT_TRUE(responses.contains("503")) << name;
    if (r.access != "public") {
      for (const char* status : {"400", "401", "403", "429"})
        EXPECT_TRUE(responses.contains(status)) << name << " lacks " << status;
    }
    if (op.contains("requestBody")) {
      for (const char* status : {"400", "413", "415"})
        EXPECT_TRUE(responses.contains(status)) << name << " lacks " << status;
    }
    if (r.pattern.find("{id}") != std::string_view::npos) {
      EXPECT_TRUE(responses.contains("404")) << name << " lacks 404";
    }
  }
}

}  // namespace
}  // namespace triggers::api
