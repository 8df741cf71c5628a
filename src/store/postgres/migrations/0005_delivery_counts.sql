-- Deliveries per tenant and state without counting the table on every
-- /metrics scrape. Statement-level triggers append one delta row per
-- (tenant, status) a statement changed, in that statement's transaction;
-- inserting never waits on another transaction (no hot counter row shared by
-- every node's ingest and leases). Readers sum delivery_counts and the
-- deltas; the stats read folds the deltas into delivery_counts first, so
-- the deltas stay few.
CREATE TABLE delivery_counts(
  tenant text NOT NULL,
  status text NOT NULL,
  n bigint NOT NULL,
  PRIMARY KEY(tenant, status)
);
CREATE TABLE delivery_count_deltas(
  tenant text NOT NULL,
  status text NOT NULL,
  n bigint NOT NULL
);
CREATE INDEX delivery_count_deltas_tenant ON delivery_count_deltas(tenant);

CREATE FUNCTION deliveries_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO delivery_count_deltas(tenant, status, n)
    SELECT tenant, status, count(*) FROM new_rows GROUP BY tenant, status;
  RETURN NULL;
END $$;
CREATE FUNCTION deliveries_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO delivery_count_deltas(tenant, status, n)
    SELECT tenant, status, -count(*) FROM old_rows GROUP BY tenant, status;
  RETURN NULL;
END $$;
CREATE FUNCTION deliveries_count_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO delivery_count_deltas(tenant, status, n)
    SELECT tenant, status, sum(n) FROM (
      SELECT tenant, status, -1 AS n FROM old_rows
      UNION ALL SELECT tenant, status, 1 FROM new_rows) c
    GROUP BY tenant, status HAVING sum(n)<>0;
  RETURN NULL;
END $$;
CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries
  REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_count_insert();
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries
  REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_count_delete();
CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries
  REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
  FOR EACH STATEMENT EXECUTE FUNCTION deliveries_count_update();

-- The starting counts, exact: nodes of an older version may be writing, so
-- their writes wait for this count (the triggers above see the ones after it).
LOCK TABLE deliveries IN SHARE MODE;
INSERT INTO delivery_counts(tenant, status, n)
  SELECT tenant, status, count(*) FROM deliveries GROUP BY tenant, status;
