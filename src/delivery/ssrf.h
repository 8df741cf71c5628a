// The SSRF guard of webhook delivery (SPEC section 5): which destination
// addresses a webhook may not reach (loopback, private, link-local, cloud
// metadata, ...) and the syntax check of a webhook URL. Host names are
// resolved elsewhere; every resolved address is checked here, at creation and
// again at every connection. Pure functions, thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "triggers/status.h"

namespace triggers::delivery {

// True when `ip_text`, an IPv4 or IPv6 literal (brackets allowed around
// IPv6), is an address a webhook must not reach:
//   IPv4: 0.0.0.0/8 (unspecified), 10/8, 100.64/10 (CGNAT), 127/8,
//         169.254/16 (link-local, incl. metadata 169.254.169.254), 172.16/12,
//         192.0.0/24 (IETF protocol assignments), 192.168/16, 198.18/15
//         (benchmarking), 224/4 (multicast), 240/4 (reserved, incl.
//         255.255.255.255 broadcast);
//   IPv6: :: and ::1, fe80::/10 (link-local), fec0::/10 (old site-local),
//         fc00::/7 (ULA, incl. metadata fd00:ec2::254), ff00::/8 (multicast),
//         64:ff9b:1::/48 (local NAT64), 100::/64 (discard);
//   IPv6 with an embedded IPv4 is judged by that IPv4: ::ffff:a.b.c.d
//   (mapped), ::ffff:0:a.b.c.d (translated), ::a.b.c.d (compatible),
//   64:ff9b::/96 (NAT64), 2002:AABB:CCDD::/48 (6to4), 2001:0::/32 (Teredo,
//   the client address in the last 32 bits, inverted).
// Text inet_pton does not accept (zone ids, "127.1", octal, names) is
// forbidden: a guard fails closed.
bool IsForbiddenAddress(std::string_view ip_text);

inline constexpr size_t kMaxWebhookUrlLength = 2048;

// Checks the syntax of a webhook URL: scheme http or https (any case), a
// non-empty ASCII host (name, IPv4, or [IPv6] without zone id), no userinfo,
// an optional port 1-65535, at most 2048 characters, no blanks or control
// characters. On success fills *host (lowercased, IPv6 without brackets, one
// trailing dot of a name removed: "LOCALHOST." -> "localhost"), *port
// (explicit, else 80/443) and *https. A name with an empty label ("a..b",
// ".a", "a..") is malformed. Validation errors name `url`.
// Does not resolve the host nor judge its address (see IsForbiddenAddress).
Status ValidateWebhookUrl(std::string_view url, std::string* host, int* port, bool* https);

}  // namespace triggers::delivery
