-- The first schema. deliveries.seq orders ordered work; next_attempt_at is the due time, the
-- lease expiry while in flight, NULL once finished.
CREATE TABLE api_keys(
  id text PRIMARY KEY,
  tenant text NOT NULL,
  name text,
  scopes bigint NOT NULL,
  hash text NOT NULL UNIQUE,
  admin boolean NOT NULL DEFAULT false,
  created_at bigint NOT NULL,
  revoked_at bigint
);
CREATE INDEX api_keys_tenant ON api_keys(tenant, id);
CREATE INDEX api_keys_revoked ON api_keys(revoked_at) WHERE revoked_at IS NOT NULL;
CREATE TABLE events(
  id text NOT NULL,
  tenant text NOT NULL,
  type text NOT NULL,
  source text,
  subject text,
  ordering_key text,
  data text NOT NULL,
  received_at bigint NOT NULL,
  PRIMARY KEY(tenant, id)
);
CREATE INDEX events_received ON events(received_at);
CREATE TABLE idempotency(
  tenant text NOT NULL,
  key text NOT NULL,
  body_hash text NOT NULL,
  event_id text NOT NULL,
  created_at bigint NOT NULL,
  PRIMARY KEY(tenant, key)
);
CREATE INDEX idempotency_created ON idempotency(created_at);
CREATE TABLE subscriptions(
  id text PRIMARY KEY,
  tenant text NOT NULL,
  kind text NOT NULL,
  url text,
  event_types text NOT NULL,
  filter text,
  max_in_flight integer NOT NULL,
  rate_limit_per_s double precision NOT NULL,
  ordered boolean NOT NULL,
  description text,
  enabled boolean NOT NULL,
  secret text NOT NULL,
  previous_secret text,
  previous_secret_expires_at bigint NOT NULL DEFAULT 0,
  max_receives integer NOT NULL,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  deleted_at bigint
);
CREATE INDEX subscriptions_tenant ON subscriptions(tenant, id);
CREATE INDEX subscriptions_updated ON subscriptions(updated_at);
CREATE TABLE deliveries(
  id text PRIMARY KEY,
  seq bigint GENERATED ALWAYS AS IDENTITY,
  tenant text NOT NULL,
  event_id text NOT NULL,
  subscription_id text NOT NULL,
  status text NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  next_attempt_at bigint,
  last_error text,
  last_status_code integer,
  created_at bigint NOT NULL,
  updated_at bigint NOT NULL,
  ordering_key text,
  receipt text
);
CREATE INDEX deliveries_due ON deliveries(subscription_id, next_attempt_at, seq)
  WHERE next_attempt_at IS NOT NULL;
CREATE INDEX deliveries_event ON deliveries(tenant, event_id);
CREATE INDEX deliveries_sub ON deliveries(tenant, subscription_id, id);
CREATE INDEX deliveries_order ON deliveries(subscription_id, ordering_key, seq)
  WHERE next_attempt_at IS NOT NULL AND ordering_key IS NOT NULL;
CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE next_attempt_at IS NULL;
CREATE TABLE delivery_attempts(
  delivery_id text NOT NULL,
  n integer NOT NULL,
  at bigint NOT NULL,
  status_code integer,
  latency_ms bigint NOT NULL,
  error text,
  response_snippet text NOT NULL,
  PRIMARY KEY(delivery_id, n)
);
