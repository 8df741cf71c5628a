#include "core/webhook_signing.h"

#include "core/crypto.h"

namespace triggers::core {

std::string GenerateWebhookSecret() {
  return std::string(kWebhookSecretPrefix) + Base64(RandomBytes(kWebhookSecretBytes));
}

bool DecodeWebhookSecret(std::string_view whsec, std::string* key) {
  if (whsec.starts_with(kWebhookSecretPrefix)) whsec.remove_prefix(kWebhookSecretPrefix.size());
  if (whsec.empty()) return false;
  return Base64Decode(whsec, *key) && !key->empty();
}

std::string SignatureV1(std::string_view key_bytes, std::string_view msg_id, int64_t timestamp_s,
                        std::string_view body) {
  std::string ts = std::to_string(timestamp_s);
  std::string to_sign;
  to_sign.reserve(msg_id.size() + ts.size() + body.size() + 2);
  to_sign.append(msg_id).append(1, '.').append(ts).append(1, '.').append(body);
  return "v1," + Base64(HmacSha256(key_bytes, to_sign));
}

std::string SignatureHeader(const std::vector<std::string>& secrets_whsec, std::string_view msg_id,
                            int64_t timestamp_s, std::string_view body) {
  std::string header;
  std::string key;
  for (const std::string& secret : secrets_whsec) {
    if (!DecodeWebhookSecret(secret, &key)) continue;
    if (!header.empty()) header += ' ';
    header += SignatureV1(key, msg_id, timestamp_s, body);
  }
  return header;
}

bool VerifySignatureHeader(std::string_view header, std::string_view secret_whsec,
                           std::string_view msg_id, int64_t timestamp_s, std::string_view body) {
  std::string key;
  if (!DecodeWebhookSecret(secret_whsec, &key)) return false;
  const std::string expected = SignatureV1(key, msg_id, timestamp_s, body);
  bool found = false;
  while (!header.empty()) {
    size_t space = header.find(' ');
    std::string_view sig = header.substr(0, space);
    // Compare every candidate so the time taken does not say which one matched.
    if (sig.starts_with("v1,") && ConstantTimeEquals(sig, expected)) found = true;
    if (space == std::string_view::npos) break;
    header.remove_prefix(space + 1);
  }
  return found;
}

}  // namespace triggers::core
