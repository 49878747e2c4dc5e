-- Invariant 10: promote what was proven, once per proof.
--
-- contracts: what governs a backfill's promotion (policy, approval, tables, jobs), version
-- 1 recorded when it is produced, later versions only by an audited amendment.
CREATE TABLE contracts (
    backfill_id   TEXT NOT NULL,
    version       BIGINT NOT NULL,
    contract_json TEXT NOT NULL,
    amended_by    TEXT NOT NULL,
    reason        TEXT NOT NULL,
    at_ms         BIGINT NOT NULL,
    PRIMARY KEY (backfill_id, version)
);

-- proofs: per partition attempt, what its run reported (the staging snapshot it wrote),
-- and the policy whose every rule it passed ('-' when the contract has no policy).
CREATE TABLE proofs (
    backfill_id      TEXT NOT NULL,
    partition_date   TEXT NOT NULL,
    attempt          BIGINT NOT NULL,
    run_id           BIGINT NOT NULL,
    staging_table    TEXT,
    staging_version  BIGINT,
    output_json      TEXT NOT NULL,
    passed_policy    TEXT,
    at_ms            BIGINT NOT NULL,
    PRIMARY KEY (backfill_id, partition_date, attempt)
);

-- A verdict holds only under the policy it was reached with.
ALTER TABLE dq_results ADD COLUMN policy_hash TEXT NOT NULL DEFAULT '';

-- promotion_items: which partition attempt, at which staging version, each promotion
-- action copies, and the target's versions around it. At most one live (requested or
-- running) promotion per partition, so promotions of a partition happen in order.
CREATE TABLE promotion_items (
    backfill_id     TEXT NOT NULL,
    action_key      TEXT NOT NULL,
    partition_date  TEXT NOT NULL,
    attempt         BIGINT NOT NULL,
    staging_version BIGINT NOT NULL,
    state           TEXT NOT NULL,
    version_before  BIGINT,
    version_after   BIGINT,
    rolled_back_by  TEXT,
    PRIMARY KEY (backfill_id, action_key, partition_date)
);
CREATE UNIQUE INDEX promotion_items_live ON promotion_items (backfill_id, partition_date)
    WHERE state IN ('requested', 'running');
CREATE INDEX promotion_items_by_partition ON promotion_items (backfill_id, partition_date, attempt);

-- Which contract version an action was started under.
ALTER TABLE actions ADD COLUMN contract_version BIGINT;
