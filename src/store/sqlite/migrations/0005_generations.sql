-- The subscriptions generation per tenant (bumped by every subscription write, read by every
-- ingest transaction), the purge's index, and the sweep of deliveries that older versions
-- could leave to deleted subscriptions (they could never be sent).
CREATE TABLE subscription_generations(
  tenant TEXT PRIMARY KEY,
  generation INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO subscription_generations SELECT tenant, 1 FROM subscriptions GROUP BY tenant;
DELETE FROM deliveries WHERE next_attempt_at IS NOT NULL AND subscription_id NOT IN
  (SELECT id FROM subscriptions WHERE deleted_at IS NULL);
CREATE INDEX deliveries_finished ON deliveries(updated_at) WHERE next_attempt_at IS NULL;
