-- Data-quality evaluations, promotion and rollback actions, operator approvals.
CREATE TABLE dq_results (
    result_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    backfill_id    TEXT NOT NULL,
    partition_date TEXT NOT NULL,
    attempt        BIGINT NOT NULL,
    run_id         BIGINT NOT NULL,
    rule           TEXT NOT NULL,
    passed         BIGINT NOT NULL,
    value          TEXT NOT NULL,
    threshold      TEXT NOT NULL,
    at_ms          BIGINT NOT NULL
);
CREATE INDEX dq_results_by_partition ON dq_results (backfill_id, partition_date, attempt);

CREATE TABLE actions (
    backfill_id   TEXT NOT NULL,
    action_key    TEXT NOT NULL,
    kind          TEXT NOT NULL,
    seq           BIGINT NOT NULL,
    partitions    TEXT NOT NULL,
    token         TEXT NOT NULL,
    state         TEXT NOT NULL,
    run_id        BIGINT,
    detail        TEXT NOT NULL,
    actor         TEXT NOT NULL,
    at_ms         BIGINT NOT NULL,
    PRIMARY KEY (backfill_id, action_key)
);

CREATE TABLE approvals (
    backfill_id TEXT PRIMARY KEY,
    approved_by TEXT NOT NULL,
    at_ms       BIGINT NOT NULL
);
