// SigV4 verification against AWS's published examples (the IAM ListUsers
// example of "Create a signed AWS API request" and get-vanilla of the
// aws-sig-v4-test-suite) and against signatures made by botocore for the
// cases those do not cover (double-encoded path, folded header values,
// presigned query form).
#include "aws/sigv4.h"

#include <gtest/gtest.h>

#include "core/crypto.h"
#include "core/time_util.h"

namespace triggers::aws {
namespace {

constexpr char kSecret[] = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

int64_t At(const char* iso) { return *core::ParseTimeMs(iso); }
const int64_t kSigned = At("2015-08-30T12:36:00Z");

SigV4Result Check(const SigV4Request& req, std::string_view service, int64_t now = kSigned,
                  std::string_view secret = kSecret) {
  SigV4Claim claim;
  SigV4Result r = ParseClaim(req, &claim);
  if (r.error != SigV4Error::kNone) return r;
  return Verify(req, claim, service, secret, now);
}

TEST(SigV4, PublishedIamListUsersExample) {
  HeaderList h = {{"Host", "iam.amazonaws.com"},
                  {"Content-Type", "application/x-www-form-urlencoded; charset=utf-8"},
                  {"X-Amz-Date", "20150830T123600Z"},
                  {"Authorization",
                   "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
                   "SignedHeaders=content-type;host;x-amz-date, "
                   "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"}};
  SigV4Request req{"GET", "/", "Action=ListUsers&Version=2010-05-08", &h, ""};
  EXPECT_EQ(Check(req, "iam").error, SigV4Error::kNone);
  EXPECT_EQ(core::Hex(SigningKey(kSecret, "20150830", "us-east-1", "iam")),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
  EXPECT_EQ(
      CanonicalRequest(req, "content-type;host;x-amz-date",
                       "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", false),
      "GET\n/\nAction=ListUsers&Version=2010-05-08\n"
      "content-type:application/x-www-form-urlencoded; charset=utf-8\n"
      "host:iam.amazonaws.com\nx-amz-date:20150830T123600Z\n\n"
      "content-type;host;x-amz-date\n"
      "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(SigV4, PublishedGetVanilla) {
  HeaderList h = {{"Host", "example.amazonaws.com"},
                  {"X-Amz-Date", "20150830T123600Z"},
                  {"Authorization",
                   "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
                   "aws4_request, SignedHeaders=host;x-amz-date, "
                   "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"}};
  SigV4Request req{"GET", "/", "", &h, ""};
  EXPECT_EQ(Check(req, "service").error, SigV4Error::kNone);
  // The same request under another secret, service, time or method fails.
  EXPECT_EQ(Check(req, "service", kSigned, "wrong").error, SigV4Error::kMismatch);
  EXPECT_EQ(Check(req, "sqs").error, SigV4Error::kIncomplete);
  EXPECT_EQ(Check(req, "service", kSigned + 16 * 60 * 1000).error, SigV4Error::kExpired);
  EXPECT_EQ(Check(req, "service", kSigned - 16 * 60 * 1000).error, SigV4Error::kExpired);
  EXPECT_EQ(Check(req, "service", kSigned + 14 * 60 * 1000).error, SigV4Error::kNone);
  SigV4Request post{"POST", "/", "", &h, ""};
  EXPECT_EQ(Check(post, "service").error, SigV4Error::kMismatch);
}

// botocore 1.29 (Debian's awscli): a JSON 1.0 POST with a path that needs
// encoding and a header whose value has runs of spaces.
TEST(SigV4, BotocorePostWithEncodedPathAndFoldedHeader) {
  HeaderList h = {{"Host", "example.amazonaws.com"},
                  {"Content-Type", "application/x-amz-json-1.0"},
                  {"X-Amz-Target", "AmazonSQS.ReceiveMessage"},
                  {"My-Header", "  a   b  c "},
                  {"X-Amz-Date", "20150830T123600Z"},
                  {"Authorization",
                   "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/sqs/aws4_request, "
                   "SignedHeaders=content-type;host;my-header;x-amz-date;x-amz-target, "
                   "Signature=40ed5e50b8f902ac68040c080514a7979d726f33d79f952883eb06b682099290"}};
  SigV4Request req{"POST", "/q/a%20b/~c", "", &h, R"({"QueueUrl":"x"})"};
  EXPECT_EQ(Check(req, "sqs").error, SigV4Error::kNone);
  SigV4Request tampered{"POST", "/q/a%20b/~c", "", &h, R"({"QueueUrl":"y"})"};
  EXPECT_EQ(Check(tampered, "sqs").error, SigV4Error::kMismatch);
}

TEST(SigV4, BotocorePresignedQuery) {
  HeaderList h = {{"Host", "example.amazonaws.com"}};
  std::string q =
      "Param2=value2&Param1=value%201&a=%2B&X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
      "AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fsqs%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-"
      "Expires=300&X-Amz-SignedHeaders=host&X-Amz-Signature="
      "57d8be6c2bf3f4cc342218dc20d75870087af2affff8104366787ebb9b00b5e4";
  SigV4Request req{"GET", "/", q, &h, ""};
  EXPECT_EQ(Check(req, "sqs").error, SigV4Error::kNone);
  EXPECT_EQ(Check(req, "sqs", kSigned + 301 * 1000).error, SigV4Error::kExpired);
  SigV4Request post{"POST", "/", q, &h, ""};
  EXPECT_EQ(Check(post, "sqs").error, SigV4Error::kUnsupported);
}

TEST(SigV4, MalformedClaims) {
  HeaderList none = {{"Host", "h"}};
  SigV4Request req{"POST", "/", "", &none, ""};
  SigV4Claim c;
  EXPECT_EQ(ParseClaim(req, &c).error, SigV4Error::kMissing);
  HeaderList partial = {{"Host", "h"},
                        {"X-Amz-Date", "20150830T123600Z"},
                        {"Authorization", "AWS4-HMAC-SHA256 Credential=AKID/20150830/r/s/x"}};
  req.headers = &partial;
  EXPECT_EQ(ParseClaim(req, &c).error, SigV4Error::kIncomplete);
  HeaderList other = {{"Authorization", "AWS AKID:sig"}};
  req.headers = &other;
  EXPECT_EQ(ParseClaim(req, &c).error, SigV4Error::kUnsupported);
}

TEST(SigV4, UriEncodeAndCanonicalQuery) {
  EXPECT_EQ(UriEncode("a b/~_.-+*", false), "a%20b%2F~_.-%2B%2A");
  EXPECT_EQ(UriEncode("/a b", true), "/a%20b");
  EXPECT_EQ(CanonicalQuery("b=2&a=1&a=0&c", false), "a=0&a=1&b=2&c=");
  EXPECT_EQ(CanonicalQuery("X-Amz-Signature=x&k=v%20w", true), "k=v%20w");
}

}  // namespace
}  // namespace triggers::aws
