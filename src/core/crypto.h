// Hashing, randomness and encodings on OpenSSL 3. The SHA-256 EVP_MD is
// fetched once per process (OpenSSL's one-shot SHA256() looks it up per call).
#pragma once

#include <string>
#include <string_view>

namespace triggers::core {

// 32 raw bytes.
std::string Sha256(std::string_view data);
// 32 raw bytes of HMAC-SHA256(key, data).
std::string HmacSha256(std::string_view key, std::string_view data);
// n bytes from the OS CSPRNG. Aborts if the CSPRNG fails (nothing safe to do then).
std::string RandomBytes(size_t n);
std::string Hex(std::string_view bytes);
// The inverse of Hex (either case); a character that is not a hex digit counts as 0.
std::string Unhex(std::string_view hex);
std::string Base64(std::string_view bytes);
// Standard alphabet, padding optional. Empty on malformed input -> returns false.
bool Base64Decode(std::string_view in, std::string& out);
std::string Base64Url(std::string_view bytes);  // no padding
bool Base64UrlDecode(std::string_view in, std::string& out);
bool ConstantTimeEquals(std::string_view a, std::string_view b);

}  // namespace triggers::core
