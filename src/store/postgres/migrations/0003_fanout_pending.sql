-- Pending fan-out: deliveries of a large fan-out that its ingest transaction recorded instead
-- of writing (docs/design.md, "Large fan-out"). A row stands for event_ids x subscription_ids
-- (space-separated; row order: FanoutRow), of which `done` are written; deleted when all are.
CREATE TABLE fanout_pending(
  seq bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  tenant text NOT NULL,
  event_ids text NOT NULL,
  subscription_ids text NOT NULL,
  received_at bigint NOT NULL,
  done bigint NOT NULL DEFAULT 0
);
