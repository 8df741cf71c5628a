// AWS Signature Version 4 verification (header form and presigned query
// form), per the AWS "Create a signed AWS API request" specification:
// canonical request (URI-encoded path, sorted query, signed headers, payload
// hash), string to sign, the derived signing key and HMAC-SHA256 (OpenSSL).
// Pure: no I/O; the caller looks up the secret of the access key id.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace triggers::aws {

using HeaderList = std::vector<std::pair<std::string_view, std::string_view>>;

// What a signed request claims, from its Authorization header or its
// X-Amz-* query parameters.
struct SigV4Claim {
  bool presigned = false;
  std::string access_key_id;
  std::string scope_date;  // yyyymmdd
  std::string region;
  std::string service;
  std::string signed_headers;  // "host;x-amz-date", lowercase, as sent
  std::string signature;       // hex
  std::string amz_date;        // yyyymmddThhmmssZ
  int64_t expires_s = 0;       // presigned only
};

enum class SigV4Error {
  kNone,
  kMissing,      // no Authorization header nor X-Amz-Signature parameter
  kIncomplete,   // present but malformed (a part missing, a bad date, a bad scope)
  kExpired,      // X-Amz-Date more than 15 minutes away, or a presigned URL past its expiry
  kMismatch,     // the signature is not the one the secret gives
  kUnsupported,  // another algorithm, or a presigned request that is not a GET
};

struct SigV4Result {
  SigV4Error error = SigV4Error::kNone;
  std::string message;  // for the client; never holds the secret
};

// The request as SigV4 sees it.
struct SigV4Request {
  std::string_view method;
  std::string_view raw_path;   // as sent, still percent-encoded
  std::string_view raw_query;  // after '?', as sent
  const HeaderList* headers = nullptr;
  std::string_view body;
};

inline constexpr int64_t kMaxSkewMs = 15 * 60 * 1000;

// Reads the claim; kMissing / kIncomplete / kUnsupported on failure.
SigV4Result ParseClaim(const SigV4Request& req, SigV4Claim* claim);

// Checks the claim's dates against `now_ms` and its scope against
// `service`, then the signature against `secret`. Constant-time compare.
SigV4Result Verify(const SigV4Request& req, const SigV4Claim& claim, std::string_view service,
                   std::string_view secret, int64_t now_ms);

// The steps, exposed for the published test vectors.
std::string UriEncode(std::string_view s, bool keep_slash);
std::string CanonicalQuery(std::string_view raw_query, bool drop_signature);
std::string CanonicalRequest(const SigV4Request& req, std::string_view signed_headers,
                             std::string_view payload_hash, bool presigned);
std::string StringToSign(std::string_view amz_date, std::string_view scope,
                         std::string_view canonical_request);
std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region,
                       std::string_view service);
// Lowercase hex of HMAC-SHA256(SigningKey(...), StringToSign(...)).
std::string ComputeSignature(const SigV4Request& req, const SigV4Claim& claim,
                             std::string_view secret, std::string_view payload_hash);

}  // namespace triggers::aws
