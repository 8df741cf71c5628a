#include "core/keys.h"

#include <gtest/gtest.h>

#include <set>

#include "core/crypto.h"
#include "triggers/model.h"

namespace triggers::core {

TEST(Keys, GeneratedKeysHaveTheFormatAndDiffer) {
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    std::string k = GenerateApiKey();
    EXPECT_TRUE(LooksLikeApiKey(k)) << k;
    EXPECT_EQ(k.size(), 47u);
    EXPECT_TRUE(seen.insert(k).second);
  }
}

TEST(Keys, ShapeCheck) {
  EXPECT_FALSE(LooksLikeApiKey(""));
  EXPECT_FALSE(LooksLikeApiKey("trg_short"));
  EXPECT_FALSE(LooksLikeApiKey("xyz_" + std::string(43, 'a')));
  EXPECT_FALSE(LooksLikeApiKey("trg_" + std::string(42, 'a') + "-"));
  EXPECT_TRUE(LooksLikeApiKey("trg_" + std::string(43, 'a')));
}

TEST(Keys, ExtractFromEitherHeader) {
  EXPECT_EQ(ExtractKey("Bearer trg_x", ""), "trg_x");
  EXPECT_EQ(ExtractKey("bearer   trg_x ", ""), "trg_x");
  EXPECT_EQ(ExtractKey("", "trg_y"), "trg_y");
  EXPECT_EQ(ExtractKey("Basic abc", "trg_y"), "");  // a wrong scheme is not silently ignored
  EXPECT_EQ(ExtractKey("", ""), "");
}

TEST(Keys, HashIsSha256) {
  EXPECT_EQ(Hex(Sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(Hex(Sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  const std::string bytes("\x00\xff\x10\xab", 4);
  EXPECT_EQ(Unhex(Hex(bytes)), bytes);
  EXPECT_EQ(Unhex("00FFab"), std::string("\x00\xff\xab", 3));
}

TEST(Tenants, Names) {
  EXPECT_TRUE(IsValidTenant("acme"));
  EXPECT_TRUE(IsValidTenant("a_b-9"));
  EXPECT_FALSE(IsValidTenant(""));
  EXPECT_FALSE(IsValidTenant("Acme"));
  EXPECT_FALSE(IsValidTenant(std::string(65, 'a')));
  EXPECT_FALSE(IsValidTenant("a b"));
}

TEST(Scopes, CsvRoundTrip) {
  auto s = ScopesFromCsv("read, ingest");
  ASSERT_TRUE(s);
  EXPECT_EQ(*s, kScopeIngest | kScopeRead);
  EXPECT_EQ(ScopesToCsv(*s), "ingest,read");
  EXPECT_FALSE(ScopesFromCsv("read,admin"));
  EXPECT_FALSE(ScopesFromCsv(""));
}

TEST(Crypto, Base64RoundTrip) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar"}) {
    std::string out;
    ASSERT_TRUE(Base64Decode(Base64(s), out));
    EXPECT_EQ(out, s);
    ASSERT_TRUE(Base64UrlDecode(Base64Url(s), out));
    EXPECT_EQ(out, s);
  }
  EXPECT_EQ(Base64("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64("fo"), "Zm8=");
  std::string out;
  EXPECT_FALSE(Base64Decode("Zm9v!", out));
}

TEST(Crypto, HmacSha256Rfc4231Case2) {
  EXPECT_EQ(Hex(HmacSha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}

}  // namespace triggers::core
