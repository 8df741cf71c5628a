#include "core/webhook_signing.h"

#include <gtest/gtest.h>

#include <set>

#include "core/crypto.h"

namespace triggers::core {
namespace {

// The reference vector of the Standard Webhooks libraries.
constexpr char kRefSecret[] = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
constexpr char kRefMsgId[] = "msg_p5jXN8AQM9LWM0D4loKWxJek";
constexpr int64_t kRefTimestamp = 1614265330;
constexpr char kRefBody[] = R"({"test": 2432232314})";
constexpr char kRefSignature[] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";

TEST(WebhookSigning, MatchesTheStandardWebhooksReferenceVector) {
  std::string key;
  ASSERT_TRUE(DecodeWebhookSecret(kRefSecret, &key));
  EXPECT_EQ(key.size(), 24u);
  EXPECT_EQ(SignatureV1(key, kRefMsgId, kRefTimestamp, kRefBody), kRefSignature);
  EXPECT_EQ(SignatureHeader({kRefSecret}, kRefMsgId, kRefTimestamp, kRefBody), kRefSignature);
}

TEST(WebhookSigning, SignatureIsTheHmacOfIdTimestampAndBody) {
  std::string key = RandomBytes(32);
  std::string expected =
      "v1," + Base64(HmacSha256(key, std::string("evt_1.1700000000.") + R"({"a":1})"));
  EXPECT_EQ(SignatureV1(key, "evt_1", 1700000000, R"({"a":1})"), expected);
  // Every input changes the signature.
  EXPECT_NE(SignatureV1(key, "evt_2", 1700000000, R"({"a":1})"), expected);
  EXPECT_NE(SignatureV1(key, "evt_1", 1700000001, R"({"a":1})"), expected);
  EXPECT_NE(SignatureV1(key, "evt_1", 1700000000, R"({"a":2})"), expected);
  EXPECT_NE(SignatureV1(RandomBytes(32), "evt_1", 1700000000, R"({"a":1})"), expected);
}

TEST(WebhookSigning, GeneratedSecretsHaveTheRightShapeAndDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 20; ++i) {
    std::string s = GenerateWebhookSecret();
    ASSERT_TRUE(s.starts_with("whsec_")) << s;
    EXPECT_EQ(s.size(), 6u + 32u);
    std::string key;
    ASSERT_TRUE(DecodeWebhookSecret(s, &key));
    EXPECT_EQ(key.size(), 24u);
    seen.insert(s);
  }
  EXPECT_EQ(seen.size(), 20u);
}

TEST(WebhookSigning, DecodeRejectsMalformedSecrets) {
  std::string key;
  EXPECT_FALSE(DecodeWebhookSecret("", &key));
  EXPECT_FALSE(DecodeWebhookSecret("whsec_", &key));
  EXPECT_FALSE(DecodeWebhookSecret("whsec_not*base64!", &key));
  EXPECT_FALSE(DecodeWebhookSecret("whsec_A", &key));
  // Without the prefix, as the reference libraries accept.
  ASSERT_TRUE(DecodeWebhookSecret("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", &key));
  EXPECT_EQ(key.size(), 24u);
}

TEST(WebhookSigning, HeaderCarriesOneSignaturePerSecretDuringRotation) {
  std::string old_secret = GenerateWebhookSecret();
  std::string new_secret = GenerateWebhookSecret();
  std::string header = SignatureHeader({new_secret, old_secret}, "evt_9", 1700000000, "{}");
  std::string k_new, k_old;
  ASSERT_TRUE(DecodeWebhookSecret(new_secret, &k_new));
  ASSERT_TRUE(DecodeWebhookSecret(old_secret, &k_old));
  EXPECT_EQ(header, SignatureV1(k_new, "evt_9", 1700000000, "{}") + " " +
                        SignatureV1(k_old, "evt_9", 1700000000, "{}"));
  EXPECT_TRUE(VerifySignatureHeader(header, new_secret, "evt_9", 1700000000, "{}"));
  EXPECT_TRUE(VerifySignatureHeader(header, old_secret, "evt_9", 1700000000, "{}"));
  EXPECT_FALSE(VerifySignatureHeader(header, GenerateWebhookSecret(), "evt_9", 1700000000, "{}"));
  EXPECT_FALSE(VerifySignatureHeader(header, new_secret, "evt_9", 1700000000, "{ }"));
  EXPECT_FALSE(VerifySignatureHeader(header, new_secret, "evt_9", 1700000001, "{}"));
}

TEST(WebhookSigning, HeaderSkipsMalformedSecrets) {
  EXPECT_EQ(SignatureHeader({"whsec_***", kRefSecret}, kRefMsgId, kRefTimestamp, kRefBody),
            kRefSignature);
  EXPECT_EQ(SignatureHeader({}, kRefMsgId, kRefTimestamp, kRefBody), "");
  EXPECT_EQ(SignatureHeader({"whsec_"}, kRefMsgId, kRefTimestamp, kRefBody), "");
}

TEST(WebhookSigning, VerifyAcceptsTheReferenceAndRejectsOtherSchemes) {
  EXPECT_TRUE(VerifySignatureHeader(kRefSignature, kRefSecret, kRefMsgId, kRefTimestamp, kRefBody));
  EXPECT_TRUE(VerifySignatureHeader(std::string("v1,bogus ") + kRefSignature, kRefSecret, kRefMsgId,
                                    kRefTimestamp, kRefBody));
  std::string v2 = std::string(kRefSignature);
  v2[1] = '2';
  EXPECT_FALSE(VerifySignatureHeader(v2, kRefSecret, kRefMsgId, kRefTimestamp, kRefBody));
  EXPECT_FALSE(VerifySignatureHeader("", kRefSecret, kRefMsgId, kRefTimestamp, kRefBody));
  EXPECT_FALSE(VerifySignatureHeader(kRefSignature, "whsec_", kRefMsgId, kRefTimestamp, kRefBody));
}

}  // namespace
}  // namespace triggers::core
