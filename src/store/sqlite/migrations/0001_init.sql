-- The first schema: keys, events (seq = rowid, the commit order), idempotency records.
CREATE TABLE api_keys(
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  name TEXT,
  scopes TEXT NOT NULL,
  hash BLOB NOT NULL UNIQUE,
  admin INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);
CREATE INDEX api_keys_tenant ON api_keys(tenant, id);
CREATE INDEX api_keys_revoked ON api_keys(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE events(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL,
  tenant TEXT NOT NULL,
  type TEXT NOT NULL,
  source TEXT,
  subject TEXT,
  ordering_key TEXT,
  data TEXT NOT NULL,
  received_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX events_tenant_id ON events(tenant, id);
CREATE TABLE idempotency(
  tenant TEXT NOT NULL,
  key TEXT NOT NULL,
  body_hash BLOB NOT NULL,
  event_id TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY(tenant, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency(created_at);
