// Sealing of AWS secret access keys at rest. The server needs the plain
// secret to verify a SigV4 signature (HMAC keyed by it), so it cannot keep
// only a hash as for API keys; instead the secret is stored encrypted with
// AES-256-GCM under a server key that lives outside the database
// (<data-dir>/aws-secrets.key, 32 random bytes, mode 0600). A copy of the
// database alone therefore reveals no secret. Nodes sharing one PostgreSQL
// database must share that file (copy it to each node's data dir).
#pragma once

#include <string>
#include <string_view>

#include "triggers/status.h"

namespace triggers::aws {

inline constexpr const char* kServerKeyFileName = "aws-secrets.key";

class SecretBox {
 public:
  // Reads <data_dir>/aws-secrets.key; with `create`, makes it (0600, 32
  // bytes from the CSPRNG) when missing. Validation when the file exists
  // but is not exactly 32 bytes; NotFound when missing and !create.
  static Status Load(const std::string& data_dir, bool create, SecretBox* out);
  // A box over `key` (32 bytes): for tests.
  static SecretBox FromKey(std::string key);

  bool loaded() const { return key_.size() == 32; }
  // nonce(12) | ciphertext | tag(16), with `bound_to` (the access key id) as
  // additional data, so a sealed secret cannot be moved to another key row.
  std::string Seal(std::string_view plain, std::string_view bound_to) const;
  // False when the box is not loaded, or `sealed` was not made by Seal with
  // this server key and `bound_to`.
  bool Open(std::string_view sealed, std::string_view bound_to, std::string* plain) const;

 private:
  std::string key_;
};

}  // namespace triggers::aws
