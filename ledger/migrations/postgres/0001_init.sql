-- The ledger: backfills, their day-partitions, and the append-only event log.
CREATE TABLE backfills (
    backfill_id     TEXT PRIMARY KEY,
    job_id          BIGINT NOT NULL,
    start_date      TEXT NOT NULL,
    end_date        TEXT NOT NULL,
    request_json    TEXT NOT NULL,
    manifest_id     TEXT NOT NULL,
    manifest_json   TEXT NOT NULL,
    state           TEXT NOT NULL,
    concurrency_cap BIGINT NOT NULL,
    created_by      TEXT NOT NULL,
    created_at_ms   BIGINT NOT NULL
);

CREATE TABLE partitions (
    backfill_id       TEXT NOT NULL REFERENCES backfills (backfill_id),
    partition_date    TEXT NOT NULL,
    state             TEXT NOT NULL,
    attempt           BIGINT NOT NULL,
    idempotency_token TEXT,
    run_id            BIGINT,
    run_url           TEXT,
    check_seq         BIGINT NOT NULL DEFAULT 0,
    enqueued          BIGINT NOT NULL DEFAULT 0,
    owner             TEXT,
    last_error        TEXT,
    triggered_at_ms   BIGINT,
    run_started_ms    BIGINT,
    run_ended_ms      BIGINT,
    verified_at_ms    BIGINT,
    updated_at_ms     BIGINT NOT NULL,
    PRIMARY KEY (backfill_id, partition_date)
);

CREATE INDEX partitions_by_state ON partitions (backfill_id, state);

CREATE TABLE events (
    event_id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms          BIGINT NOT NULL,
    actor          TEXT NOT NULL,
    backfill_id    TEXT NOT NULL,
    partition_date TEXT,
    attempt        BIGINT,
    run_id         BIGINT,
    kind           TEXT NOT NULL,
    from_state     TEXT,
    to_state       TEXT,
    detail         TEXT NOT NULL
);

CREATE INDEX events_by_backfill ON events (backfill_id, event_id);

CREATE FUNCTION events_are_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER events_are_append_only
BEFORE UPDATE OR DELETE ON events
FOR EACH ROW EXECUTE FUNCTION events_are_append_only();
