-- Spend over every attempt's run, not only the latest one: run_started_ms/run_ended_ms
-- describe the latest attempt's run only, and a retry, a dead-lettered or a cancelled run
-- would otherwise drop out of the spend. Both columns only ever grow, in the same UPDATE
-- that records a run's end.
--   spent_run_ms:  run-milliseconds charged to the partition over all its attempts: each
--                  finished run's Databricks start to end, and for a run whose end is not
--                  known (cancelled, or dead-lettered while running) a conservative upper
--                  bound, from its claim to the moment it was given up.
--   runs_finished: runs with a measured start and end (what the average run length, and
--                  so the projected spend, is taken over).
-- Existing rows start from their latest run; earlier attempts' runs were not recorded.
ALTER TABLE partitions ADD COLUMN spent_run_ms BIGINT NOT NULL DEFAULT 0;
ALTER TABLE partitions ADD COLUMN runs_finished BIGINT NOT NULL DEFAULT 0;
UPDATE partitions SET
    spent_run_ms = CASE WHEN run_ended_ms > run_started_ms
        THEN run_ended_ms - run_started_ms ELSE 0 END,
    runs_finished = CASE WHEN run_started_ms IS NOT NULL AND run_ended_ms IS NOT NULL
        THEN 1 ELSE 0 END;

-- What every compare-and-set on a partition saw before it changed the row (the right-hand
-- sides of an UPDATE read the old row), so its event records where the partition came
-- from, and the run of the attempt, when it had one: a run id left from an earlier attempt
-- (a partition is claimed with a token and run_id cleared; a new attempt clears the token)
-- is not the attempt's.
ALTER TABLE partitions ADD COLUMN prev_state TEXT;
ALTER TABLE partitions ADD COLUMN prev_run_id BIGINT;
