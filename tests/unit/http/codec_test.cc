// The server writes its own status line and headers (SerializeHeader) in
// front of the body: the bytes must be the ones Beast's serializer wrote.
#include "http/codec.h"

#include <gtest/gtest.h>

#include <sstream>

namespace triggers::http {
namespace {

std::string BeastBytes(const StringResponse& res) {
  std::ostringstream os;
  os << res;
  return os.str();
}

StringResponse Build(api::Response r, const api::Request& req, const std::string& cors,
                     bool keep_alive) {
  StringResponse res;
  BuildResponse(std::move(r), req, "req_1", cors, keep_alive, &res);
  return res;
}

TEST(CodecTest, HeaderBytesAreBeasts) {
  api::Request req;
  req.origin = "https://a.example";
  std::vector<StringResponse> cases;
  api::Response accepted;
  accepted.status = 202;
  accepted.body = R"({"id":"evt_1"})";
  cases.push_back(Build(accepted, req, "", true));
  cases.push_back(Build(accepted, req, "*", false));
  cases.push_back(Build(accepted, req, "https://b.example, https://a.example", true));
  api::Response empty;
  empty.status = 204;
  empty.headers.emplace_back("ETag", "\"x\"");
  cases.push_back(Build(empty, req, "", true));
  api::Response err = api::ErrorResponse(503, "unavailable", "busy", "req_1");
  err.headers.emplace_back("Retry-After", "1");
  err.headers.emplace_back("Content-Type", "text/plain");  // replaces the common one
  cases.push_back(Build(err, req, "", false));
  api::Response odd;
  odd.status = 299;  // no reason phrase of its own
  odd.body = "x";
  cases.push_back(Build(odd, req, "", true));
  for (const auto& res : cases) {
    EXPECT_EQ(SerializeHeader(res) + res.body(), BeastBytes(res));
  }
}

}  // namespace
}  // namespace triggers::http
