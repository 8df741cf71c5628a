-- Pending fan-out: deliveries of a large fan-out that its ingest transaction recorded instead
-- of writing (docs/design.md, "Large fan-out"). A row stands for event_ids x subscription_ids
-- (space-separated; row order: FanoutRow), of which `done` are written; deleted when all are.
CREATE TABLE fanout_pending(
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  event_ids TEXT NOT NULL,
  subscription_ids TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  done INTEGER NOT NULL DEFAULT 0
);
