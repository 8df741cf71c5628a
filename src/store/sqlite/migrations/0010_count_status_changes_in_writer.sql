-- Status changes are counted by the writer in C++ (SqliteStore::CountMove),
-- one counter update per (tenant, status) and transaction: the per-row
-- trigger ran two counter statements for every changed delivery. Inserts and
-- deletes keep their triggers (deliveries_count_insert, _delete).
DROP TRIGGER deliveries_count_update;
