-- When the live check of a running partition is due; a sweep re-issues overdue checks.
ALTER TABLE partitions ADD COLUMN check_due_ms BIGINT;
CREATE INDEX partitions_check_due ON partitions (state, check_due_ms);
