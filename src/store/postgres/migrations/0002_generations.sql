-- The subscriptions generation per tenant (bumped by every subscription write, checked by
-- every ingest transaction); events get a commit-ordered seq for listing (taken under the
-- commit-order lock); deliveries that older versions could leave to deleted subscriptions
-- are swept (they could never be sent).
CREATE TABLE subscription_generations(
  tenant text PRIMARY KEY,
  generation bigint NOT NULL
);
INSERT INTO subscription_generations SELECT tenant, 1 FROM subscriptions GROUP BY tenant;
DELETE FROM deliveries WHERE next_attempt_at IS NOT NULL AND subscription_id NOT IN
  (SELECT id FROM subscriptions WHERE deleted_at IS NULL);
ALTER TABLE events ADD COLUMN seq bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX events_tenant_seq ON events(tenant, seq);
