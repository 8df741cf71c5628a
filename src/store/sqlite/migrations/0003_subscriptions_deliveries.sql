-- Subscriptions and deliveries. A delivery is due when next_attempt_at is set and has passed;
-- while in flight it holds the lease expiry; it is NULL once finished (succeeded or dead),
-- which keeps the due index small.
CREATE TABLE subscriptions(
  id TEXT PRIMARY KEY,
  tenant TEXT NOT NULL,
  kind TEXT NOT NULL,
  url TEXT,
  event_types TEXT NOT NULL,
  filter TEXT,
  max_in_flight INTEGER NOT NULL,
  rate_limit_per_s REAL NOT NULL,
  ordered INTEGER NOT NULL,
  description TEXT,
  enabled INTEGER NOT NULL,
  secret TEXT NOT NULL,
  previous_secret TEXT,
  previous_secret_expires_at INTEGER NOT NULL DEFAULT 0,
  max_receives INTEGER NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  deleted_at INTEGER
);
CREATE INDEX subscriptions_tenant ON subscriptions(tenant, id);
CREATE INDEX subscriptions_updated ON subscriptions(updated_at);
CREATE TABLE deliveries(
  seq INTEGER PRIMARY KEY,
  id TEXT NOT NULL UNIQUE,
  tenant TEXT NOT NULL,
  event_id TEXT NOT NULL,
  subscription_id TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at INTEGER,
  last_error TEXT,
  last_status_code INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX deliveries_due ON deliveries(subscription_id, next_attempt_at)
  WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_event ON deliveries(tenant, event_id);
CREATE INDEX deliveries_sub ON deliveries(tenant, subscription_id, id);
CREATE TABLE delivery_attempts(
  delivery_id TEXT NOT NULL,
  n INTEGER NOT NULL,
  at INTEGER NOT NULL,
  status_code INTEGER,
  latency_ms INTEGER NOT NULL,
  error TEXT,
  response_snippet TEXT NOT NULL,
  PRIMARY KEY(delivery_id, n)
) WITHOUT ROWID;
