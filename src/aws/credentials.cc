#include "aws/credentials.h"

#include "core/crypto.h"

namespace triggers::aws {

std::string GenerateAccessKeyId() {
  static constexpr char kBase32[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string rnd = core::RandomBytes(17);
  std::string id = "TRG";
  for (char c : rnd) id += kBase32[static_cast<unsigned char>(c) & 31];
  return id;
}

std::string GenerateSecretAccessKey() { return core::Base64(core::RandomBytes(30)); }

bool LooksLikeAccessKeyId(std::string_view id) {
  if (id.size() < 16 || id.size() > 128) return false;
  for (char c : id) {
    if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
  }
  return true;
}

std::string AccessKeyHash(std::string_view access_key_id) {
  std::string in = "aws-access-key-id:";
  in += access_key_id;
  return core::Sha256(in);
}

std::string MakeAwsCredentials(const SecretBox& box, ApiKey* key) {
  key->access_key_id = GenerateAccessKeyId();
  std::string secret = GenerateSecretAccessKey();
  key->sealed_secret = box.Seal(secret, key->access_key_id);
  if (key->sealed_secret.empty()) return {};
  key->hash = AccessKeyHash(key->access_key_id);
  return secret;
}

}  // namespace triggers::aws
