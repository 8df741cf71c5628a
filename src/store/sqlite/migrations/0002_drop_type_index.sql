-- Builds before the type filter became a bounded scan had this index (it cost a third of the ingest rate).
DROP INDEX IF EXISTS events_tenant_type;
