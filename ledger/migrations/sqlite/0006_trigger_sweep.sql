-- check_due_ms now also says when a waiting partition's trigger is due (pending, failed,
-- triggering): a sweep re-issues overdue triggers, bumping check_seq so that only the
-- newest trigger message stays valid. reissues counts re-issues without progress; past a
-- bound the partition is dead-lettered with the reason instead of re-issued forever.
-- Waiting rows of an upgraded ledger are due from the upgrade on (no mass re-issue).
ALTER TABLE partitions ADD COLUMN reissues BIGINT NOT NULL DEFAULT 0;
UPDATE partitions SET check_due_ms = CAST(strftime('%s', 'now') AS INTEGER) * 1000
    WHERE state IN ('pending', 'failed', 'triggering') AND check_due_ms IS NULL;
