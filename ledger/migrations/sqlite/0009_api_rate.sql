-- When a fleet has more processes than an endpoint's budget allows calls per second, the
-- calls are spaced through this row (a compare-and-set per call, at most the budget's
-- rate of them): the earliest time the next call to the endpoint may go.
CREATE TABLE api_rate (
    endpoint TEXT PRIMARY KEY,
    next_ms  BIGINT NOT NULL
);
