#include "aws/sigv4.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/crypto.h"
#include "core/time_util.h"
#include "core/url_decode.h"

namespace triggers::aws {
namespace {

constexpr std::string_view kAlgorithm = "AWS4-HMAC-SHA256";
constexpr std::string_view kUnsignedPayload = "UNSIGNED-PAYLOAD";

bool IEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i])))
      return false;
  }
  return true;
}

// SigV4 decodes query components without the form rule ('+' stays '+').
std::string PercentDecode(std::string_view s) { return core::PercentDecode(s, false); }

std::vector<std::pair<std::string, std::string>> QueryPairs(std::string_view q) {
  std::vector<std::pair<std::string, std::string>> out;
  while (!q.empty()) {
    size_t amp = q.find('&');
    std::string_view part = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
    if (part.empty()) continue;
    size_t eq = part.find('=');
    out.emplace_back(PercentDecode(part.substr(0, eq)),
                     eq == std::string_view::npos ? "" : PercentDecode(part.substr(eq + 1)));
  }
  return out;
}

std::string_view Header(const HeaderList& h, std::string_view name) {
  for (const auto& [k, v] : h) {
    if (IEquals(k, name)) return v;
  }
  return {};
}

// Trimmed, with runs of spaces collapsed to one (the spec's Trimall).
std::string TrimAll(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  return out;
}

// "Credential=AKID/20150830/us-east-1/sqs/aws4_request"
bool ParseCredential(std::string_view cred, SigV4Claim* c) {
  std::vector<std::string_view> parts;
  while (true) {
    size_t slash = cred.find('/');
    parts.push_back(cred.substr(0, slash));
    if (slash == std::string_view::npos) break;
    cred = cred.substr(slash + 1);
  }
  if (parts.size() != 5 || parts[4] != "aws4_request" || parts[0].empty()) return false;
  c->access_key_id = parts[0];
  c->scope_date = parts[1];
  c->region = parts[2];
  c->service = parts[3];
  return c->scope_date.size() == 8 && !c->region.empty() && !c->service.empty();
}

bool ParseAuthorizationHeader(std::string_view auth, SigV4Claim* c) {
  auth = auth.substr(kAlgorithm.size());
  bool cred = false, signed_h = false, sig = false;
  while (!auth.empty()) {
    size_t comma = auth.find(',');
    std::string_view part = auth.substr(0, comma);
    auth = comma == std::string_view::npos ? std::string_view() : auth.substr(comma + 1);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    size_t eq = part.find('=');
    if (eq == std::string_view::npos) return false;
    std::string_view k = part.substr(0, eq), v = part.substr(eq + 1);
    if (k == "Credential") {
      cred = ParseCredential(v, c);
    } else if (k == "SignedHeaders") {
      c->signed_headers = v;
      signed_h = !v.empty();
    } else if (k == "Signature") {
      c->signature = v;
      sig = !v.empty();
    }
  }
  return cred && signed_h && sig;
}

SigV4Result Fail(SigV4Error e, std::string msg) { return {e, std::move(msg)}; }

// yyyymmddThhmmssZ -> ms since the epoch; -1 when malformed.
int64_t ParseAmzDate(std::string_view d) {
  if (d.size() != 16 || d[8] != 'T' || d[15] != 'Z') return -1;
  std::string iso = std::string(d.substr(0, 4)) + "-" + std::string(d.substr(4, 2)) + "-" +
                    std::string(d.substr(6, 2)) + "T" + std::string(d.substr(9, 2)) + ":" +
                    std::string(d.substr(11, 2)) + ":" + std::string(d.substr(13, 2)) + "Z";
  auto ms = core::ParseTimeMs(iso);
  return ms ? *ms : -1;
}

}  // namespace

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string CanonicalQuery(std::string_view raw_query, bool drop_signature) {
  std::vector<std::pair<std::string, std::string>> enc;
  for (auto& [k, v] : QueryPairs(raw_query)) {
    if (drop_signature && k == "X-Amz-Signature") continue;
    enc.emplace_back(UriEncode(k, false), UriEncode(v, false));
  }
  std::sort(enc.begin(), enc.end());
  std::string out;
  for (const auto& [k, v] : enc) {
    if (!out.empty()) out += '&';
    out += k;
    out += '=';
    out += v;
  }
  return out;
}

std::string CanonicalRequest(const SigV4Request& req, std::string_view signed_headers,
                             std::string_view payload_hash, bool presigned) {
  std::string out(req.method);
  out += '\n';
  // Non-S3 services encode the (already encoded) path once more.
  out += req.raw_path.empty() ? "/" : UriEncode(req.raw_path, true);
  out += '\n';
  out += CanonicalQuery(req.raw_query, presigned);
  out += '\n';
  std::string_view names = signed_headers;
  while (!names.empty()) {
    size_t semi = names.find(';');
    std::string_view name = names.substr(0, semi);
    names = semi == std::string_view::npos ? std::string_view() : names.substr(semi + 1);
    std::string joined;
    bool first = true;
    for (const auto& [k, v] : *req.headers) {
      if (!IEquals(k, name)) continue;
      if (!first) joined += ',';
      joined += TrimAll(v);
      first = false;
    }
    out += name;
    out += ':';
    out += joined;
    out += '\n';
  }
  out += '\n';
  out += signed_headers;
  out += '\n';
  out += payload_hash;
  return out;
}

std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request) {
  std::string out(kAlgorithm);
  out += '\n';
  out += amz_date;
  out += '\n';
  out += scope;
  out += '\n';
  out += core::Hex(core::Sha256(canonical_request));
  return out;
}

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service) {
  std::string k = core::HmacSha256("AWS4" + std::string(secret), date);
  k = core::HmacSha256(k, region);
  k = core::HmacSha256(k, service);
  return core::HmacSha256(k, "aws4_request");
}

std::string ComputeSignature(const SigV4Request& req, const SigV4Claim& c, std::string_view secret,
                             std::string_view payload_hash) {
  std::string scope = c.scope_date + "/" + c.region + "/" + c.service + "/aws4_request";
  std::string canonical = CanonicalRequest(req, c.signed_headers, payload_hash, c.presigned);
  std::string sts = StringToSign(c.amz_date, scope, canonical);
  return core::Hex(core::HmacSha256(SigningKey(secret, c.scope_date, c.region, c.service), sts));
}

SigV4Result ParseClaim(const SigV4Request& req, SigV4Claim* c) {
  std::string_view auth = Header(*req.headers, "Authorization");
  if (!auth.empty()) {
    if (auth.substr(0, kAlgorithm.size()) != kAlgorithm) {
      return Fail(SigV4Error::kUnsupported, "only AWS4-HMAC-SHA256 signatures are supported");
    }
    if (!ParseAuthorizationHeader(auth, c)) {
      return Fail(SigV4Error::kIncomplete,
                  "Authorization header requires Credential, SignedHeaders and Signature");
    }
    std::string_view date = Header(*req.headers, "X-Amz-Date");
    if (date.empty()) {
      return Fail(SigV4Error::kIncomplete, "the X-Amz-Date header is required");
    }
    c->amz_date = date;
    return {};
  }
  auto pairs = QueryPairs(req.raw_query);
  auto get = [&](std::string_view k) -> std::string {
    for (auto& [pk, pv] : pairs) {
      if (pk == k) return pv;
    }
    return {};
  };
  c->signature = get("X-Amz-Signature");
  if (c->signature.empty()) {
    return Fail(SigV4Error::kMissing, "the request is not signed (no Authorization header)");
  }
  if (get("X-Amz-Algorithm") != kAlgorithm) {
    return Fail(SigV4Error::kUnsupported, "only AWS4-HMAC-SHA256 signatures are supported");
  }
  if (req.method != "GET") {
    return Fail(SigV4Error::kUnsupported, "presigned requests must be GET");
  }
  c->presigned = true;
  c->amz_date = get("X-Amz-Date");
  c->signed_headers = get("X-Amz-SignedHeaders");
  std::string expires = get("X-Amz-Expires");
  c->expires_s = std::atoll(expires.c_str());
  if (!ParseCredential(get("X-Amz-Credential"), c) || c->signed_headers.empty() ||
      c->expires_s < 1 || c->expires_s > 604800) {
    return Fail(SigV4Error::kIncomplete,
                "a presigned request needs X-Amz-Credential, X-Amz-Date, X-Amz-SignedHeaders and "
                "X-Amz-Expires (1-604800)");
  }
  return {};
}

SigV4Result Verify(const SigV4Request& req, const SigV4Claim& c, std::string_view service,
                   std::string_view secret, int64_t now_ms) {
  int64_t t = ParseAmzDate(c.amz_date);
  if (t < 0) return Fail(SigV4Error::kIncomplete, "X-Amz-Date must be yyyymmddThhmmssZ");
  if (c.amz_date.substr(0, 8) != c.scope_date) {
    return Fail(SigV4Error::kIncomplete, "the credential scope date must be the X-Amz-Date's date");
  }
  if (c.service != service) {
    return Fail(SigV4Error::kIncomplete,
                "Credential should be scoped to correct service: '" + std::string(service) + "'");
  }
  if (c.presigned) {
    if (now_ms + kMaxSkewMs < t || now_ms > t + c.expires_s * 1000) {
      return Fail(SigV4Error::kExpired, "Request has expired");
    }
  } else if (now_ms - t > kMaxSkewMs || t - now_ms > kMaxSkewMs) {
    return Fail(SigV4Error::kExpired, "Signature expired: " + c.amz_date +
                                          " is more than 15 minutes away from the server's time");
  }
  std::string body_hash = core::Hex(core::Sha256(req.body));
  std::string payload = body_hash;
  std::string_view declared = Header(*req.headers, "X-Amz-Content-Sha256");
  if (!declared.empty()) {
    if (declared == kUnsignedPayload ? !(c.presigned || req.body.empty()) : declared != body_hash) {
      return Fail(SigV4Error::kMismatch, "x-amz-content-sha256 does not match the body");
    }
    payload = declared;
  }
  std::string expected = ComputeSignature(req, c, secret, payload);
  // A presigned URL signs the empty body's hash (botocore) or UNSIGNED-PAYLOAD (S3 style).
  if (c.presigned && declared.empty() && !core::ConstantTimeEquals(expected, c.signature)) {
    expected = ComputeSignature(req, c, secret, kUnsignedPayload);
  }
  if (!core::ConstantTimeEquals(expected, c.signature)) {
    return Fail(SigV4Error::kMismatch,
                "The request signature we calculated does not match the signature you provided. "
                "Check your AWS Secret Access Key and signing method.");
  }
  return {};
}

}  // namespace triggers::aws
