-- Which fleet this ledger is: a random id stamped into every message the fleet sends, so
-- a worker given another ledger recognises messages that are not its own; and the broker
-- namespace each backfill was published in, so a sweep only re-issues into its own.
CREATE TABLE fleet_identity (
    ledger_id TEXT NOT NULL
);
INSERT INTO fleet_identity (ledger_id) VALUES (md5(random()::text || clock_timestamp()::text));
ALTER TABLE backfills ADD COLUMN namespace TEXT;
