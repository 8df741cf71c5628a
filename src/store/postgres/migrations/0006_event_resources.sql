-- An event's EventBridge Resources (SPEC 12): a JSON array of strings as
-- PutEvents received it, NULL for every other event. Shown in the SQS
-- envelope and matched by a filter's `resources`.
ALTER TABLE events ADD COLUMN IF NOT EXISTS resources text;
