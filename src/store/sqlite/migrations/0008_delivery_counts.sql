-- Deliveries per tenant and state, kept by triggers in the transaction of
-- every insert, state change and delete, so /metrics and the dashboard read a
-- few rows instead of counting the deliveries table on every scrape. One
-- writer at a time (the embedded store), so a row per (tenant, status).
CREATE TABLE delivery_counts(
  tenant TEXT NOT NULL,
  status TEXT NOT NULL,
  n INTEGER NOT NULL,
  PRIMARY KEY(tenant, status)
) WITHOUT ROWID;
INSERT INTO delivery_counts(tenant, status, n)
  SELECT tenant, status, count(*) FROM deliveries GROUP BY tenant, status;
CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries BEGIN
  INSERT INTO delivery_counts(tenant, status, n) VALUES(NEW.tenant, NEW.status, 1)
    ON CONFLICT(tenant, status) DO UPDATE SET n=n+1;
END;
CREATE TRIGGER deliveries_count_update AFTER UPDATE OF status ON deliveries
  WHEN OLD.status IS NOT NEW.status BEGIN
  UPDATE delivery_counts SET n=n-1 WHERE tenant=OLD.tenant AND status=OLD.status;
  INSERT INTO delivery_counts(tenant, status, n) VALUES(NEW.tenant, NEW.status, 1)
    ON CONFLICT(tenant, status) DO UPDATE SET n=n+1;
END;
CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries BEGIN
  UPDATE delivery_counts SET n=n-1 WHERE tenant=OLD.tenant AND status=OLD.status;
END;
