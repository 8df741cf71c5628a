-- AWS credentials (SPEC 12): an access key id and its secret sealed under the server key
-- (hex of AES-256-GCM nonce|ciphertext|tag); both NULL for trg_ keys.
ALTER TABLE api_keys ADD COLUMN access_key_id TEXT;
ALTER TABLE api_keys ADD COLUMN aws_secret TEXT;
-- A pull subscription's optional name: its SQS queue name, unique per tenant among live ones.
ALTER TABLE subscriptions ADD COLUMN name TEXT;
CREATE UNIQUE INDEX subscriptions_name ON subscriptions(tenant, name)
  WHERE name IS NOT NULL AND deleted_at IS NULL;
