-- When the partition's current step first failed for an outage (Databricks or the ledger
-- unreachable), kept across re-issued messages and cleared by progress; past the worker's
-- outage budget the partition is dead-lettered with the last error.
ALTER TABLE partitions ADD COLUMN outage_since_ms BIGINT;
