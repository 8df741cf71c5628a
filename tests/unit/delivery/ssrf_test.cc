#include "delivery/ssrf.h"

#include <gtest/gtest.h>

#include <string>

namespace triggers::delivery {
namespace {

TEST(Ssrf, ForbidsInternalIpv4) {
  const char* forbidden[] = {
      "127.0.0.1",       "127.255.255.254", "10.0.0.1",    "10.255.255.255",  "172.16.0.1",
      "172.31.255.255",  "192.168.1.1",     "169.254.0.1", "169.254.169.254", "100.64.0.1",
      "100.127.255.255", "100.100.100.200", "0.0.0.0",     "0.1.2.3",         "224.0.0.1",
      "239.255.255.250", "255.255.255.255", "240.0.0.1",   "192.0.0.170",     "198.18.0.1",
  };
  for (const char* ip : forbidden) EXPECT_TRUE(IsForbiddenAddress(ip)) << ip;
}

TEST(Ssrf, AllowsPublicIpv4IncludingNeighboursOfForbiddenRanges) {
  const char* allowed[] = {
      "8.8.8.8",        "1.1.1.1",     "93.184.216.34",   "172.15.255.255", "172.32.0.0",
      "100.63.255.255", "100.128.0.0", "169.253.255.255", "169.255.0.1",    "192.167.255.255",
      "192.169.0.0",    "11.0.0.1",    "126.255.255.255", "128.0.0.1",      "223.255.255.255",
      "198.20.0.1",     "192.0.1.1",
  };
  for (const char* ip : allowed) EXPECT_FALSE(IsForbiddenAddress(ip)) << ip;
}

TEST(Ssrf, ForbidsInternalIpv6) {
  const char* forbidden[] = {
      "::1",       "::",      "[::1]",         "fe80::1",         "febf::1",
      "fec0::1",   "fc00::1", "fd00:ec2::254", "fdff::1",         "ff02::1",
      "ff05::1:3", "100::1",  "64:ff9b:1::a",  "0:0:0:0:0:0:0:1",
  };
  for (const char* ip : forbidden) EXPECT_TRUE(IsForbiddenAddress(ip)) << ip;
}

TEST(Ssrf, JudgesEmbeddedIpv4ByItself) {
  // IPv4-mapped, SIIT-translated, IPv4-compatible, NAT64, 6to4, Teredo.
  EXPECT_TRUE(IsForbiddenAddress("::ffff:127.0.0.1"));
  EXPECT_TRUE(IsForbiddenAddress("::ffff:7f00:1"));
  EXPECT_TRUE(IsForbiddenAddress("::ffff:169.254.169.254"));
  EXPECT_TRUE(IsForbiddenAddress("::FFFF:10.1.2.3"));
  EXPECT_FALSE(IsForbiddenAddress("::ffff:8.8.8.8"));
  EXPECT_TRUE(IsForbiddenAddress("::ffff:0:192.168.0.1"));
  EXPECT_FALSE(IsForbiddenAddress("::ffff:0:8.8.8.8"));
  EXPECT_TRUE(IsForbiddenAddress("::127.0.0.1"));
  EXPECT_FALSE(IsForbiddenAddress("::8.8.8.8"));
  EXPECT_TRUE(IsForbiddenAddress("64:ff9b::127.0.0.1"));
  EXPECT_TRUE(IsForbiddenAddress("64:ff9b::a9fe:a9fe"));  // 169.254.169.254
  EXPECT_FALSE(IsForbiddenAddress("64:ff9b::8.8.8.8"));
  EXPECT_TRUE(IsForbiddenAddress("2002:7f00:1::1"));                         // 6to4 of 127.0.0.1
  EXPECT_TRUE(IsForbiddenAddress("2002:c0a8:101::"));                        // 6to4 of 192.168.1.1
  EXPECT_FALSE(IsForbiddenAddress("2002:808:808::1"));                       // 6to4 of 8.8.8.8
  EXPECT_TRUE(IsForbiddenAddress("2001:0:4136:e378:8000:63bf:80ff:fffe"));   // 127.0.0.1
  EXPECT_FALSE(IsForbiddenAddress("2001:0:4136:e378:8000:63bf:f7f7:f7f7"));  // 8.8.8.8
}

TEST(Ssrf, AllowsPublicIpv6) {
  const char* allowed[] = {"2606:4700:4700::1111",
                           "2001:4860:4860::8888",
                           "2a00:1450::1",
                           "[2606:4700:4700::1111]",
                           "fb00::1",
                           "fe00::1"};
  for (const char* ip : allowed) EXPECT_FALSE(IsForbiddenAddress(ip)) << ip;
}

TEST(Ssrf, UnparseableTextIsForbidden) {
  const char* bad[] = {"",
                       "localhost",
                       "127.1",
                       "0177.0.0.1",
                       "0x7f.0.0.1",
                       "2130706433",
                       "fe80::1%eth0",
                       "1.2.3.4.5",
                       "::1]",
                       "[::1",
                       " 8.8.8.8",
                       "8.8.8.8 ",
                       "256.1.1.1",
                       "[]",
                       "1111:2222:3333:4444:5555:6666:7777:8888:9999:aaaa:bbbb"};
  for (const char* ip : bad) EXPECT_TRUE(IsForbiddenAddress(ip)) << ip;
  EXPECT_TRUE(IsForbiddenAddress(std::string("8.8.8.8\0", 8)));
}

struct Parsed {
  Status status;
  std::string host;
  int port = 0;
  bool https = false;
};

Parsed Validate(std::string_view url) {
  Parsed p;
  p.status = ValidateWebhookUrl(url, &p.host, &p.port, &p.https);
  return p;
}

TEST(WebhookUrl, AcceptsHttpAndHttps) {
  Parsed p = Validate("https://example.com/hook");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.host, "example.com");
  EXPECT_EQ(p.port, 443);
  EXPECT_TRUE(p.https);

  p = Validate("http://Example.COM:8080");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.host, "example.com");
  EXPECT_EQ(p.port, 8080);
  EXPECT_FALSE(p.https);

  p = Validate("HTTPS://hooks.example.com:65535/a/b?x=1&y=%20#frag");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.port, 65535);
  EXPECT_TRUE(p.https);

  p = Validate("http://93.184.216.34?x");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.host, "93.184.216.34");
  EXPECT_EQ(p.port, 80);

  p = Validate("https://[2606:4700:4700::1111]:8443/x");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.host, "2606:4700:4700::1111");
  EXPECT_EQ(p.port, 8443);

  p = Validate("https://[2606:4700:4700::1111]");
  ASSERT_TRUE(p.status.ok()) << p.status.message();
  EXPECT_EQ(p.port, 443);
}

TEST(WebhookUrl, SyntaxOnlyLeavesAddressesToTheGuard) {
  // Loopback passes the syntax check; the caller resolves and asks IsForbiddenAddress.
  Parsed p = Validate("http://127.0.0.1:9000/");
  ASSERT_TRUE(p.status.ok());
  EXPECT_TRUE(IsForbiddenAddress(p.host));
  p = Validate("http://[::1]/");
  ASSERT_TRUE(p.status.ok());
  EXPECT_TRUE(IsForbiddenAddress(p.host));
}

TEST(WebhookUrl, TrailingDotIsStrippedBeforeTheGuard) {
  // "localhost." and "127.0.0.1." name the same hosts as without the dot, but
  // getaddrinfo reads neither as /etc/hosts' localhost nor as an address: the
  // host handed to the resolver and the guard has no trailing dot.
  struct Case {
    const char* url;
    const char* host;
    int port;
  } cases[] = {
      {"http://localhost./hook", "localhost", 80},
      {"http://LOCALHOST.:9000/", "localhost", 9000},
      {"https://127.0.0.1./", "127.0.0.1", 443},
      {"http://127.0.0.1.:8080?x", "127.0.0.1", 8080},
      {"http://169.254.169.254./latest/meta-data", "169.254.169.254", 80},
      {"https://Hooks.Example.COM./x", "hooks.example.com", 443},
  };
  for (const Case& c : cases) {
    Parsed p = Validate(c.url);
    ASSERT_TRUE(p.status.ok()) << c.url << ": " << p.status.message();
    EXPECT_EQ(p.host, c.host) << c.url;
    EXPECT_EQ(p.port, c.port) << c.url;
  }
  EXPECT_TRUE(IsForbiddenAddress(Validate("http://127.0.0.1./").host));
  EXPECT_TRUE(IsForbiddenAddress(Validate("http://169.254.169.254./").host));
  // Only one dot is a name's root; an empty label is malformed, wherever it is.
  for (const char* url : {"http://localhost../", "http://127.0.0.1../", "http://./", "http://../",
                          "http://.localhost/", "http://a..b.example/"}) {
    Parsed p = Validate(url);
    EXPECT_FALSE(p.status.ok()) << url << " -> host " << p.host;
  }
}

TEST(WebhookUrl, RejectsWithMessagesNamingUrl) {
  struct Case {
    std::string url;
    const char* must_mention;
  } cases[] = {
      {"", "required"},
      {"ftp://example.com/", "http or https"},
      {"example.com/hook", "http or https"},
      {"file:///etc/passwd", "http or https"},
      {"gopher://127.0.0.1:70/", "http or https"},
      {"https:/example.com", "http or https"},
      {"https://", "host"},
      {"https:///path", "host"},
      {"https://:443/", "host"},
      {"https://user:pw@example.com/", "userinfo"},
      {"https://example.com@127.0.0.1/", "userinfo"},
      {"https://@example.com/", "userinfo"},
      {"https://example.com:0/", "port"},
      {"https://example.com:65536/", "port"},
      {"https://example.com:/", "port"},
      {"https://example.com:-1/", "port"},
      {"https://example.com:80a/", "port"},
      {"https://example.com:000443/", "port"},
      {"https://example.com:1:2/", "port"},
      {"https://exa mple.com/", "blanks"},
      {"https://example.com/\n", "control"},
      {"https://ex\xc3\xa4mple.com/", "ASCII"},
      {"https://example.com\\@127.0.0.1/", "userinfo"},
      {"https://example.com\\.evil/", "host"},
      {"https://exa%6dple.com/", "host"},
      {"https://[::1/", "host"},
      {"https://[::1]x/", "host"},
      {"https://[not-ipv6]/", "IPv6"},
      {"https://[fe80::1%25eth0]/", "IPv6"},
      {"https://" + std::string(2048, 'a') + ".com/", "2048"},
  };
  for (const Case& c : cases) {
    Parsed p = Validate(c.url);
    ASSERT_FALSE(p.status.ok()) << c.url;
    EXPECT_EQ(p.status.code(), Status::Code::kValidation) << c.url;
    EXPECT_TRUE(p.status.message().starts_with("url ")) << p.status.message();
    EXPECT_NE(p.status.message().find(c.must_mention), std::string::npos)
        << c.url << " -> " << p.status.message();
  }
}

TEST(WebhookUrl, LengthLimitIsInclusive) {
  std::string prefix = "https://example.com/";
  std::string url = prefix + std::string(kMaxWebhookUrlLength - prefix.size(), 'a');
  EXPECT_TRUE(Validate(url).status.ok());
  EXPECT_FALSE(Validate(url + "a").status.ok());
}

}  // namespace
}  // namespace triggers::delivery
