-- A proof is promoted once: at most one requested, running or succeeded promotion per
-- (partition, attempt, staging version), however promoters race (a failed one frees it).
CREATE UNIQUE INDEX promotion_items_once
    ON promotion_items (backfill_id, partition_date, attempt, staging_version)
    WHERE state IN ('requested', 'running', 'succeeded');

-- An operator's approval holds for the contract version it was given under: an amendment
-- (a new policy, another target) needs approving again.
CREATE TABLE contract_approvals (
    backfill_id      TEXT NOT NULL,
    contract_version BIGINT NOT NULL,
    approved_by      TEXT NOT NULL,
    at_ms            BIGINT NOT NULL,
    PRIMARY KEY (backfill_id, contract_version)
);
