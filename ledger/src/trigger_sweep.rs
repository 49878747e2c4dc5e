//! The ledger's side of anti-entropy for waiting partitions: which pending, failed or
//! triggering partitions have had no trigger handled for too long (the broker lost it, a
//! worker on another ledger took it, a delivery limit dead-lettered it), and their
//! re-issue by compare-and-set, so that one sweeper re-issues and every older trigger
//! message of the partition dies on arrival (its `issue_seq` is no longer the row's
//! `check_seq`). Waking a trigger that waits at the cap when a slot frees is the same
//! move made early.

use backfill_contract::{Attempt, BackfillId, CheckSeq, PartitionDate};
use sqlx::Row;

use crate::events::insert_event;
use crate::model::corrupt;
use crate::partitions::columns;
use crate::{Ledger, LedgerError, NewEvent, Partition, PartitionKey, PartitionState, now_ms};

/// A trigger re-issued by the sweep: the sequence its message must carry, and how many
/// times in a row the partition's trigger had to be re-issued without progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reissued {
    pub issue_seq: CheckSeq,
    pub reissues: i64,
}

/// A trigger waiting at the cap: a pending partition's, or a failed one's whose retry
/// trigger met the cap (its backoff is over).
const WAITING_AT_CAP: &str = "(state = 'pending' OR (state = 'failed' AND waiting_at_cap = 1))";

/// A waiting trigger woken for a freed slot: its partition, attempt, and the sequence
/// its fresh message must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Woken {
    pub date: PartitionDate,
    pub attempt: Attempt,
    pub issue_seq: CheckSeq,
}

impl Ledger {
    /// Waiting partitions (pending, failed, triggering) of active backfills published in
    /// `namespace` (or before namespaces were recorded) whose trigger was due before
    /// `before_ms`, oldest first.
    pub async fn overdue_triggers(
        &self,
        before_ms: i64,
        limit: i64,
        namespace: &str,
    ) -> Result<Vec<Partition>, LedgerError> {
        self.partitions_due(
            concat!(
                "SELECT ",
                columns!(),
                " FROM partitions WHERE state IN ('pending', 'failed', 'triggering') \
                 AND COALESCE(check_due_ms, updated_at_ms) < $1 \
                 AND backfill_id IN (SELECT b.backfill_id FROM backfills b WHERE b.state = 'active' \
                 AND (b.namespace IS NULL OR b.namespace = $3)) \
                 ORDER BY COALESCE(check_due_ms, updated_at_ms) LIMIT $2"
            ),
            before_ms,
            limit,
            namespace,
        )
        .await
    }

    /// Takes over the partition's trigger: only if it is still in `state` at `attempt`
    /// with `seen_seq` and still overdue, bumps `check_seq` (older trigger messages die),
    /// makes the trigger due now and counts the re-issue, with an event, in one
    /// transaction. `None` when another sweeper or a worker acted first.
    pub async fn reissue_trigger(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        state: PartitionState,
        seen_seq: CheckSeq,
        before_ms: i64,
        actor: &str,
    ) -> Result<Option<Reissued>, LedgerError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        let row = sqlx::query(
            "UPDATE partitions SET check_seq = check_seq + 1, check_due_ms = $1, \
             reissues = reissues + 1, updated_at_ms = $1 \
             WHERE backfill_id = $2 AND partition_date = $3 AND attempt = $4 AND state = $5 \
             AND check_seq = $6 AND COALESCE(check_due_ms, updated_at_ms) < $7 \
             RETURNING check_seq, reissues",
        )
        .bind(now)
        .bind(key.backfill_id.to_string())
        .bind(key.date.to_string())
        .bind(i64::from(attempt.get()))
        .bind(state.as_str())
        .bind(seen_seq.get())
        .bind(before_ms)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            tx.rollback().await?;
            return Ok(None);
        };
        let reissued = Reissued {
            issue_seq: CheckSeq::from(row.try_get::<i64, _>(0).map_err(corrupt)?),
            reissues: row.try_get(1).map_err(corrupt)?,
        };
        let event = NewEvent::partition(actor, key, attempt, "trigger_reissued")
            .states(state, state)
            .detail(format!(
                "no trigger handled while {state}; re-issued (time {} in a row)",
                reissued.reissues
            ));
        insert_event(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(Some(reissued))
    }

    /// A slot of the backfill freed: takes over the trigger that waits at the cap (a
    /// pending partition's sent round the delay tiers, or a failed one's whose retry
    /// met the cap after its backoff) and is due next after `now_ms`, bumping
    /// `check_seq` (that message dies on arrival) and making it due now, so the caller's
    /// fresh trigger can take the slot at once. `None` when no trigger waits, or every
    /// waiting one is being woken by another caller. A retry still waiting out its
    /// backoff is never woken early. Not an event: no state changes.
    pub async fn wake_waiting_trigger(
        &self,
        backfill_id: &BackfillId,
        now_ms: i64,
    ) -> Result<Option<Woken>, LedgerError> {
        // On PostgreSQL concurrent wakers would all pick the same row and free slots
        // would go unused: each skips the rows another is waking.
        let skip_locked = if self.is_postgres() {
            " FOR UPDATE SKIP LOCKED"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE partitions SET check_seq = check_seq + 1, check_due_ms = $2, \
             waiting_at_cap = 0 \
             WHERE backfill_id = $1 AND {WAITING_AT_CAP} AND check_due_ms > $2 \
             AND partition_date = (SELECT partition_date FROM partitions \
               WHERE backfill_id = $1 AND {WAITING_AT_CAP} AND check_due_ms > $2 \
               ORDER BY check_due_ms LIMIT 1{skip_locked}) \
             RETURNING partition_date, attempt, check_seq"
        );
        // Built from literals only; values are bound. Every row fetched: the statement
        // runs to its end, so a failed commit is an error, not a row of a change undone.
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(backfill_id.to_string())
            .bind(now_ms)
            .fetch_all(&self.pool)
            .await?;
        let Some(row) = rows.first() else {
            return Ok(None);
        };
        let date: String = row.try_get(0).map_err(corrupt)?;
        let attempt: i64 = row.try_get(1).map_err(corrupt)?;
        let attempt = u32::try_from(attempt).map_err(corrupt)?;
        Ok(Some(Woken {
            date: date.parse().map_err(corrupt)?,
            attempt: Attempt::try_from(attempt).map_err(corrupt)?,
            issue_seq: CheckSeq::from(row.try_get::<i64, _>(2).map_err(corrupt)?),
        }))
    }

    /// A waiting partition whose trigger keeps being lost → dead_lettered, only if it is
    /// still in `state` with the sequence the sweep gave it.
    pub async fn dead_letter_waiting(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        state: PartitionState,
        issue_seq: CheckSeq,
        reason: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        // A claimed partition's run may exist, its end unknown: the spend counts it from
        // the claim to now (an upper bound), as for a cancelled run.
        let done = sqlx::query(
            "UPDATE partitions SET state = 'dead_lettered', last_error = $1, updated_at_ms = $2, \
             prev_state = state, \
             prev_run_id = CASE WHEN idempotency_token IS NOT NULL THEN run_id ELSE NULL END, \
             spent_run_ms = spent_run_ms + CASE WHEN state = 'triggering' \
               AND triggered_at_ms IS NOT NULL AND $2 > triggered_at_ms \
               THEN $2 - triggered_at_ms ELSE 0 END \
             WHERE backfill_id = $3 AND partition_date = $4 AND attempt = $5 AND state = $6 \
             AND check_seq = $7",
        )
        .bind(reason)
        .bind(now)
        .bind(key.backfill_id.to_string())
        .bind(key.date.to_string())
        .bind(i64::from(attempt.get()))
        .bind(state.as_str())
        .bind(issue_seq.get())
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if !done {
            tx.rollback().await?;
            return Ok(false);
        }
        let event = NewEvent::partition(actor, key, attempt, "dead_lettered")
            .states(state, PartitionState::DeadLettered)
            .detail(reason);
        insert_event(&mut tx, &event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Notes that the partition's current step failed for an outage: returns when its
    /// outage began (kept across re-issued messages, cleared by progress), or `None` when
    /// the partition is no longer at `attempt` or is finished.
    pub async fn note_outage(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        now_ms: i64,
    ) -> Result<Option<i64>, LedgerError> {
        let since: Vec<Option<i64>> = sqlx::query_scalar(
            "UPDATE partitions SET outage_since_ms = COALESCE(outage_since_ms, $1) \
             WHERE backfill_id = $2 AND partition_date = $3 AND attempt = $4 \
             AND state IN ('pending', 'failed', 'triggering', 'running') \
             RETURNING outage_since_ms",
        )
        .bind(now_ms)
        .bind(key.backfill_id.to_string())
        .bind(key.date.to_string())
        .bind(i64::from(attempt.get()))
        .fetch_all(&self.pool)
        .await?;
        // Every row fetched: the statement runs to its end, so a failed commit is an error.
        Ok(since.into_iter().next().flatten())
    }

    /// Moves a waiting partition's trigger due time to `due_ms` (its trigger message was
    /// just sent round the delay tiers), if `issue_seq` (when given) is still the live one;
    /// a live trigger was handled, so the count of re-issues without progress restarts,
    /// `handled` (sent round without an error) ends any outage on record, and `at_cap`
    /// says whether it waits at the concurrency cap (a run's end may wake it).
    /// Not an event: nothing changes but when the sweep would step in.
    pub async fn touch_trigger(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        issue_seq: Option<CheckSeq>,
        due_ms: i64,
        handled: bool,
        at_cap: bool,
    ) -> Result<(), LedgerError> {
        let live = if issue_seq.is_some() {
            " AND check_seq = $5"
        } else {
            ""
        };
        let outage = if handled {
            ", outage_since_ms = NULL"
        } else {
            ""
        };
        let sql = format!(
            "UPDATE partitions SET check_due_ms = $1, reissues = 0, \
             waiting_at_cap = {}{outage} WHERE backfill_id = $2 \
             AND partition_date = $3 AND attempt = $4 \
             AND state IN ('pending', 'failed', 'triggering'){live}",
            i32::from(at_cap)
        );
        // Built from literals only; values are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(due_ms)
            .bind(key.backfill_id.to_string())
            .bind(key.date.to_string())
            .bind(i64::from(attempt.get()));
        if let Some(seq) = issue_seq {
            query = query.bind(seq.get());
        }
        query.execute(&self.pool).await?;
        Ok(())
    }
}
