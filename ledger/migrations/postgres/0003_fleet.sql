-- Live workers (heartbeats) and fleet-wide pauses of Databricks endpoints after a 429:
-- how the fleet shares one workspace's API budget.
CREATE TABLE workers (
    worker_id     TEXT PRIMARY KEY,
    started_at_ms BIGINT NOT NULL,
    last_seen_ms  BIGINT NOT NULL
);

CREATE TABLE api_throttle (
    endpoint TEXT PRIMARY KEY,
    until_ms BIGINT NOT NULL
);
