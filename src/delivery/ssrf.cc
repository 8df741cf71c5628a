#include "delivery/ssrf.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace triggers::delivery {
namespace {

bool InV4(uint32_t a, uint32_t net, int prefix) {
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (a & mask) == (net & mask);
}

constexpr uint32_t V4(uint32_t a, uint32_t b, uint32_t c, uint32_t d) {
  return (a << 24) | (b << 16) | (c << 8) | d;
}

bool IsForbiddenV4(uint32_t a) {
  struct Net {
    uint32_t net;
    int prefix;
  };
  static constexpr Net kForbidden[] = {
      {V4(0, 0, 0, 0), 8},       // "this network", unspecified
      {V4(10, 0, 0, 0), 8},      // private
      {V4(100, 64, 0, 0), 10},   // CGNAT (also Alibaba's metadata 100.100.100.200)
      {V4(127, 0, 0, 0), 8},     // loopback
      {V4(169, 254, 0, 0), 16},  // link-local, cloud metadata 169.254.169.254
      {V4(172, 16, 0, 0), 12},   // private
      {V4(192, 0, 0, 0), 24},    // IETF protocol assignments
      {V4(192, 168, 0, 0), 16},  // private
      {V4(198, 18, 0, 0), 15},   // benchmarking
      {V4(224, 0, 0, 0), 4},     // multicast
      {V4(240, 0, 0, 0), 4},     // reserved, incl. broadcast 255.255.255.255
  };
  return std::any_of(std::begin(kForbidden), std::end(kForbidden),
                     [a](const Net& n) { return InV4(a, n.net, n.prefix); });
}

uint32_t V4At(const unsigned char* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}

bool AllZero(const unsigned char* p, size_t n) {
  return std::all_of(p, p + n, [](unsigned char c) { return c == 0; });
}

bool HasPrefix(const unsigned char* a, std::initializer_list<unsigned char> prefix) {
  return std::equal(prefix.begin(), prefix.end(), a);
}

bool IsForbiddenV6(const unsigned char a[16]) {
  // Addresses that carry an IPv4 are judged by it.
  if (AllZero(a, 10) && a[10] == 0xff && a[11] == 0xff) return IsForbiddenV4(V4At(a + 12));
  if (AllZero(a, 8) && a[8] == 0xff && a[9] == 0xff && a[10] == 0 && a[11] == 0) {
    return IsForbiddenV4(V4At(a + 12));  // ::ffff:0:a.b.c.d, SIIT
  }
  if (AllZero(a, 12)) {
    // :: and ::1 land here too: 0.0.0.0 and 0.0.0.1 are in 0/8.
    return IsForbiddenV4(V4At(a + 12));  // ::a.b.c.d, IPv4-compatible
  }
  if (HasPrefix(a, {0x00, 0x64, 0xff, 0x9b}) && AllZero(a + 4, 8)) {
    return IsForbiddenV4(V4At(a + 12));  // 64:ff9b::/96, NAT64
  }
  if (HasPrefix(a, {0x20, 0x02})) return IsForbiddenV4(V4At(a + 2));  // 6to4
  if (HasPrefix(a, {0x20, 0x01, 0x00, 0x00})) {
    return IsForbiddenV4(~V4At(a + 12));  // Teredo: the client's IPv4, inverted
  }
  if (HasPrefix(a, {0x00, 0x64, 0xff, 0x9b, 0x00, 0x01})) return true;  // local NAT64
  if (HasPrefix(a, {0x01, 0x00}) && AllZero(a + 2, 6)) return true;     // 100::/64 discard
  if ((a[0] & 0xfe) == 0xfc) return true;                               // fc00::/7 ULA
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) return true;               // fe80::/10
  if (a[0] == 0xfe && (a[1] & 0xc0) == 0xc0) return true;               // fec0::/10
  if (a[0] == 0xff) return true;                                        // multicast
  return false;
}

bool IsAsciiLower(char c) { return c >= 'a' && c <= 'z'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

char ToLower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }

bool IsHostNameChar(char c) {
  return IsAsciiLower(c) || IsDigit(c) || c == '-' || c == '.' || c == '_';
}

Status UrlError(std::string_view what) { return Status::Validation("url " + std::string(what)); }

// Splits "scheme://" off; sets *https.
bool TakeScheme(std::string_view* rest, bool* https) {
  auto take = [rest](std::string_view scheme) {
    if (rest->size() < scheme.size()) return false;
    for (size_t i = 0; i < scheme.size(); ++i) {
      if (ToLower((*rest)[i]) != scheme[i]) return false;
    }
    rest->remove_prefix(scheme.size());
    return true;
  };
  if (take("https://")) {
    *https = true;
    return true;
  }
  if (take("http://")) {
    *https = false;
    return true;
  }
  return false;
}

Status ParsePort(std::string_view digits, int* port) {
  if (digits.empty() || digits.size() > 5 || !std::all_of(digits.begin(), digits.end(), IsDigit)) {
    return UrlError("port must be a number from 1 to 65535");
  }
  int value = 0;
  for (char c : digits) value = value * 10 + (c - '0');
  if (value < 1 || value > 65535) return UrlError("port must be a number from 1 to 65535");
  *port = value;
  return Status::Ok();
}

}  // namespace

bool IsForbiddenAddress(std::string_view ip_text) {
  if (ip_text.size() >= 2 && ip_text.front() == '[' && ip_text.back() == ']') {
    ip_text = ip_text.substr(1, ip_text.size() - 2);
  }
  if (ip_text.empty() || ip_text.size() >= INET6_ADDRSTRLEN ||
      ip_text.find('\0') != std::string_view::npos) {
    return true;
  }
  char text[INET6_ADDRSTRLEN];
  std::memcpy(text, ip_text.data(), ip_text.size());
  text[ip_text.size()] = '\0';
  unsigned char buf[16];
  if (inet_pton(AF_INET, text, buf) == 1) return IsForbiddenV4(V4At(buf));
  if (inet_pton(AF_INET6, text, buf) == 1) return IsForbiddenV6(buf);
  return true;
}

Status ValidateWebhookUrl(std::string_view url, std::string* host, int* port, bool* https) {
  if (url.empty()) return UrlError("is required");
  if (url.size() > kMaxWebhookUrlLength) {
    return UrlError("must be at most " + std::to_string(kMaxWebhookUrlLength) + " characters");
  }
  for (char c : url) {
    auto u = static_cast<unsigned char>(c);
    if (u <= 0x20 || u == 0x7f) return UrlError("must not contain blanks or control characters");
    if (u >= 0x80) return UrlError("must be ASCII (use punycode and percent-encoding)");
  }
  std::string_view rest = url;
  bool is_https = false;
  if (!TakeScheme(&rest, &is_https)) return UrlError("must use http or https");
  std::string_view authority = rest.substr(0, rest.find_first_of("/?#"));
  if (authority.find('@') != std::string_view::npos) return UrlError("must not contain userinfo");
  if (authority.find('\\') != std::string_view::npos) return UrlError("host is malformed");

  std::string_view host_part;
  std::string_view port_part;
  bool has_port = false;
  bool ipv6 = false;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) return UrlError("host is malformed");
    host_part = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') return UrlError("host is malformed");
      has_port = true;
      port_part = after.substr(1);
    }
    ipv6 = true;
  } else {
    size_t colon = authority.find(':');
    host_part = authority.substr(0, colon);
    if (colon != std::string_view::npos) {
      has_port = true;
      port_part = authority.substr(colon + 1);
    }
  }
  if (host_part.empty()) return UrlError("must have a host");

  std::string lowered(host_part.size(), '\0');
  std::transform(host_part.begin(), host_part.end(), lowered.begin(), ToLower);
  if (ipv6) {
    char text[INET6_ADDRSTRLEN];
    unsigned char buf[16];
    if (lowered.size() >= sizeof(text)) return UrlError("host is not a valid IPv6 address");
    std::memcpy(text, lowered.data(), lowered.size());
    text[lowered.size()] = '\0';
    if (inet_pton(AF_INET6, text, buf) != 1) return UrlError("host is not a valid IPv6 address");
  } else {
    // A fully qualified name may end in one dot ("localhost.", "127.0.0.1."):
    // the same host as without it, so it is judged without it (getaddrinfo
    // does not read "127.0.0.1." as an address, nor find "localhost." in
    // /etc/hosts). What is left must be labels separated by single dots.
    if (lowered.back() == '.') lowered.pop_back();
    if (lowered.empty() || lowered.front() == '.' || lowered.back() == '.' ||
        lowered.find("..") != std::string::npos ||
        !std::all_of(lowered.begin(), lowered.end(), IsHostNameChar)) {
      return UrlError("host is malformed");
    }
  }

  int port_value = is_https ? 443 : 80;
  if (has_port) {
    Status s = ParsePort(port_part, &port_value);
    if (!s.ok()) return s;
  }
  *host = std::move(lowered);
  *port = port_value;
  *https = is_https;
  return Status::Ok();
}

}  // namespace triggers::delivery
