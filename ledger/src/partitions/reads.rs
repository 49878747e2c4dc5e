//! Reading partitions: one, a backfill's, counted by state, overdue checks; and noting
//! that a partition's trigger was confirmed by the broker (not a transition).

use std::collections::BTreeMap;

use backfill_contract::{Attempt, BackfillId, CheckSeq, PartitionDate, RunId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::model::corrupt;
use crate::{Ledger, LedgerError, Partition, PartitionKey, PartitionState, now_ms};

macro_rules! columns {
    () => {
        "backfill_id, partition_date, state, attempt, idempotency_token, run_id, run_url, \
         check_seq, check_due_ms, enqueued, owner, last_error, triggered_at_ms, run_started_ms, \
         run_ended_ms, verified_at_ms, updated_at_ms"
    };
}
pub(crate) use columns;

/// Marks a trigger as confirmed by the broker; a pending partition's trigger is due now.
const ENQUEUED_SQL: &str = "UPDATE partitions SET enqueued = 1, \
     check_due_ms = CASE WHEN state = 'pending' AND enqueued = 0 \
     AND (check_due_ms IS NULL OR check_due_ms < $3) THEN $3 ELSE check_due_ms END \
     WHERE backfill_id = $1 AND partition_date = $2";

impl Ledger {
    pub async fn partition(&self, key: &PartitionKey) -> Result<Option<Partition>, LedgerError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM partitions WHERE backfill_id = $1 AND partition_date = $2"
        ))
        .bind(key.backfill_id.to_string())
        .bind(key.date.to_string())
        .fetch_optional(&self.reads)
        .await?;
        row.as_ref().map(partition_from_row).transpose()
    }

    /// Every partition of a backfill, oldest day first.
    pub async fn partitions(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Vec<Partition>, LedgerError> {
        self.backfill_rows(
            concat!(
                "SELECT ",
                columns!(),
                " FROM partitions WHERE backfill_id = $1 ORDER BY partition_date"
            ),
            backfill_id,
            partition_from_row,
        )
        .await
    }

    /// How many partitions are in each state (every state present, zero included).
    pub async fn state_counts(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<BTreeMap<PartitionState, i64>, LedgerError> {
        let rows = sqlx::query(
            "SELECT state, COUNT(*) AS n FROM partitions WHERE backfill_id = $1 GROUP BY state",
        )
        .bind(backfill_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        let mut counts: BTreeMap<PartitionState, i64> =
            PartitionState::ALL.iter().map(|s| (*s, 0)).collect();
        for row in rows {
            let state: PartitionState = row
                .try_get::<String, _>("state")
                .map_err(corrupt)?
                .parse()?;
            counts.insert(state, row.try_get("n").map_err(corrupt)?);
        }
        Ok(counts)
    }

    /// Partitions that hold a Databricks run or are about to (triggering or running).
    pub async fn active_runs(&self, backfill_id: &BackfillId) -> Result<i64, LedgerError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM partitions WHERE backfill_id = $1 \
             AND state IN ('triggering', 'running')",
        )
        .bind(backfill_id.to_string())
        .fetch_one(&self.pool)
        .await?;
        Ok(n)
    }

    /// Pending first-attempt partitions whose trigger message was never confirmed by the
    /// broker (so a re-run of the producer publishes exactly those), with the sequence
    /// their trigger must carry.
    pub async fn unenqueued(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Vec<(PartitionDate, CheckSeq)>, LedgerError> {
        let rows = sqlx::query(
            "SELECT partition_date, check_seq FROM partitions WHERE backfill_id = $1 \
             AND enqueued = 0 AND state = 'pending' ORDER BY partition_date",
        )
        .bind(backfill_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let date: String = r.try_get(0).map_err(corrupt)?;
                Ok((
                    date.parse().map_err(corrupt)?,
                    CheckSeq::from(r.try_get::<i64, _>(1).map_err(corrupt)?),
                ))
            })
            .collect()
    }

    /// Notes that the partition's trigger message was confirmed by the broker.
    pub async fn mark_enqueued(&self, key: &PartitionKey) -> Result<(), LedgerError> {
        sqlx::query(ENQUEUED_SQL)
            .bind(key.backfill_id.to_string())
            .bind(key.date.to_string())
            .bind(now_ms())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Notes that the trigger messages of `dates` were confirmed.
    pub async fn mark_enqueued_many(
        &self,
        backfill_id: &BackfillId,
        dates: &[PartitionDate],
    ) -> Result<(), LedgerError> {
        // One statement a thousand dates: the write lock is held for as short as can be
        // (a worker's writes wait for it). A note, not a transition: marked in parts, a
        // failure leaves the rest unmarked, to be published again.
        let now = now_ms();
        for part in dates.chunks(1000) {
            let list: Vec<String> = (0..part.len()).map(|i| format!("${}", i + 3)).collect();
            let sql = format!(
                "UPDATE partitions SET enqueued = 1, \
                 check_due_ms = CASE WHEN state = 'pending' AND enqueued = 0 \
                 AND (check_due_ms IS NULL OR check_due_ms < $2) THEN $2 ELSE check_due_ms END \
                 WHERE backfill_id = $1 AND partition_date IN ({})",
                list.join(", ")
            );
            // Built from placeholders only; values are bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(backfill_id.to_string())
                .bind(now);
            for date in part {
                query = query.bind(date.to_string());
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Running partitions (of backfills published in `namespace`, or before namespaces
    /// were recorded) whose live check was due before `before_ms`: its message was lost (a
    /// crash between handing the chain on and publishing).
    pub async fn overdue_checks(
        &self,
        before_ms: i64,
        limit: i64,
        namespace: &str,
    ) -> Result<Vec<Partition>, LedgerError> {
        self.partitions_due(
            concat!(
                "SELECT ",
                columns!(),
                " FROM partitions WHERE state = 'running' AND check_due_ms < $1 \
                 AND backfill_id IN (SELECT b.backfill_id FROM backfills b \
                 WHERE b.namespace IS NULL OR b.namespace = $3) \
                 ORDER BY check_due_ms LIMIT $2"
            ),
            before_ms,
            limit,
            namespace,
        )
        .await
    }

    /// The partitions `sql` selects with `$1` the time they were due before, `$2` how many
    /// at the most and `$3` the namespace: the sweeps' overdue checks and triggers.
    pub(crate) async fn partitions_due(
        &self,
        sql: &'static str,
        before_ms: i64,
        limit: i64,
        namespace: &str,
    ) -> Result<Vec<Partition>, LedgerError> {
        let rows = sqlx::query(sql)
            .bind(before_ms)
            .bind(limit)
            .bind(namespace)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(partition_from_row).collect()
    }
}

pub(crate) fn partition_from_row(r: &AnyRow) -> Result<Partition, LedgerError> {
    let attempt: i64 = r.try_get("attempt").map_err(corrupt)?;
    let enqueued: i64 = r.try_get("enqueued").map_err(corrupt)?;
    Ok(Partition {
        backfill_id: r
            .try_get::<String, _>("backfill_id")
            .map_err(corrupt)?
            .parse()
            .map_err(corrupt)?,
        date: r
            .try_get::<String, _>("partition_date")
            .map_err(corrupt)?
            .parse()
            .map_err(corrupt)?,
        state: r.try_get::<String, _>("state").map_err(corrupt)?.parse()?,
        attempt: u32::try_from(attempt)
            .map_err(corrupt)
            .and_then(|a| Attempt::try_from(a).map_err(corrupt))?,
        idempotency_token: r.try_get("idempotency_token").map_err(corrupt)?,
        run_id: r
            .try_get::<Option<i64>, _>("run_id")
            .map_err(corrupt)?
            .map(RunId::from),
        run_url: r.try_get("run_url").map_err(corrupt)?,
        check_seq: CheckSeq::from(r.try_get::<i64, _>("check_seq").map_err(corrupt)?),
        check_due_ms: r.try_get("check_due_ms").map_err(corrupt)?,
        enqueued: enqueued != 0,
        owner: r.try_get("owner").map_err(corrupt)?,
        last_error: r.try_get("last_error").map_err(corrupt)?,
        triggered_at_ms: r.try_get("triggered_at_ms").map_err(corrupt)?,
        run_started_ms: r.try_get("run_started_ms").map_err(corrupt)?,
        run_ended_ms: r.try_get("run_ended_ms").map_err(corrupt)?,
        verified_at_ms: r.try_get("verified_at_ms").map_err(corrupt)?,
        updated_at_ms: r.try_get("updated_at_ms").map_err(corrupt)?,
    })
}
