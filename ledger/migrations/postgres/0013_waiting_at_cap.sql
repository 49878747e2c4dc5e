-- Whether the partition's trigger waits in the delay tiers at the concurrency cap (1),
-- rather than out a retry's backoff, a pause or a guard (0): a run's end wakes such a
-- trigger at once, and a retry only once its backoff is over.
ALTER TABLE partitions ADD COLUMN waiting_at_cap INTEGER NOT NULL DEFAULT 0;
