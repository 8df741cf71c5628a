-- Ordered delivery and lease tokens. `ordering_key` is set only on deliveries of ordered
-- subscriptions (the event's key, or '' for all); `receipt` is the token of the current lease
-- (the pull receipt).
ALTER TABLE deliveries ADD COLUMN ordering_key TEXT;
ALTER TABLE deliveries ADD COLUMN receipt TEXT;
CREATE INDEX deliveries_order ON deliveries(subscription_id, ordering_key, seq)
  WHERE next_attempt_at IS NOT NULL AND ordering_key IS NOT NULL;
