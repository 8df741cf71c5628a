-- AWS credentials (SPEC 12): an access key id and its secret sealed under the server key
-- (hex of AES-256-GCM nonce|ciphertext|tag); both NULL for trg_ keys.
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS access_key_id text;
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS aws_secret text;
-- A pull subscription's optional name: its SQS queue name, unique per tenant among live ones.
ALTER TABLE subscriptions ADD COLUMN IF NOT EXISTS name text;
CREATE UNIQUE INDEX IF NOT EXISTS subscriptions_name ON subscriptions(tenant, name)
  WHERE name IS NOT NULL AND deleted_at IS NULL;
