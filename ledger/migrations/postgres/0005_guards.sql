-- Guards that hold new runs back: spend against a budget, protected windows, and the
-- production job whose active run pauses the backfill.
ALTER TABLE backfills ADD COLUMN price_per_run_hour DOUBLE PRECISION;
ALTER TABLE backfills ADD COLUMN budget DOUBLE PRECISION;
ALTER TABLE backfills ADD COLUMN protected_windows TEXT;
ALTER TABLE backfills ADD COLUMN production_job_id BIGINT;
