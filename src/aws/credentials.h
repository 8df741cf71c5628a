// AWS-style credentials of a tenant (SPEC 12): an access key id (20
// characters, "TRG" + 17 of [A-Z2-7], like AWS's "AKIA...") and a secret
// access key (40 base64 characters, 240 bits from the CSPRNG). They are an
// ApiKey row like any other: the row's hash is AccessKeyHash(id), so the key
// cache, listing and revocation treat them as any key; the secret is kept
// sealed (secret_box.h).
#pragma once

#include <string>
#include <string_view>

#include "aws/secret_box.h"
#include "triggers/model.h"

namespace triggers::aws {

std::string GenerateAccessKeyId();
std::string GenerateSecretAccessKey();
// Shape check: 16-128 of [A-Z0-9] (AWS's own rule), cheap before hashing.
bool LooksLikeAccessKeyId(std::string_view id);
// What the key row's `hash` holds for an access key id (never equal to the
// hash of a trg_ key: the prefix differs).
std::string AccessKeyHash(std::string_view access_key_id);

// Fills the AWS parts of `key` (access_key_id, sealed_secret, hash) and
// returns the plain secret, to be shown once. Empty when sealing failed.
std::string MakeAwsCredentials(const SecretBox& box, ApiKey* key);

}  // namespace triggers::aws
