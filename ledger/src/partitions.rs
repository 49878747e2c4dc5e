//! Reading partitions and moving them through their state machine by compare-and-set.

use std::collections::BTreeMap;

use backfill_contract::{Attempt, BackfillId, PartitionDate};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::insert_event;
use crate::model::corrupt;
use crate::{
    BackfillState, HoldReason, Ledger, LedgerError, NewEvent, Partition, PartitionKey,
    PartitionState, now_ms,
};

/// The result of trying to claim a partition for triggering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This caller holds the attempt; it may call `run-now` with the recorded token.
    Claimed,
    /// The backfill already has `cap` runs active fleet-wide; try again later.
    AtCapacity { active: i64, cap: i64 },
    /// The backfill is paused or cancelled; nothing may start.
    NotActive(BackfillState),
    /// The partition is no longer as expected: someone else claimed it or it moved on.
    Lost,
    /// A guard holds new runs back: which one, and in words.
    Held { reason: HoldReason, detail: String },
}

/// Spend so far plus what the active runs and one more will cost at the average run
/// length seen so far (no finished run yet: no projection, nothing held).
pub fn projected_spend(spent_ms: i64, finished: i64, active: i64, price_per_run_hour: f64) -> f64 {
    let average = if finished > 0 {
        spent_ms as f64 / finished as f64
    } else {
        0.0
    };
    (spent_ms as f64 + (active + 1) as f64 * average) / 3_600_000.0 * price_per_run_hour
}

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

/// A value bound into a statement.
#[derive(Debug, Clone)]
enum Bind {
    Int(i64),
    OptInt(Option<i64>),
    Text(String),
    OptText(Option<String>),
}

/// A conditional `UPDATE partitions ... WHERE <expected state> RETURNING check_seq`:
/// it changes the row only if the row is still as the caller saw it. Every one also
/// keeps what it saw (`prev_state`, and `prev_run_id`: the run of the row's attempt, if
/// any), which SQL reads from the old row, so its event can say where the partition came
/// from and which run it concerned without another statement.
#[derive(Debug)]
struct Cas {
    sets: Vec<String>,
    wheres: Vec<String>,
    binds: Vec<Bind>,
    /// The state this compare-and-set moves the row to, if it moves it.
    to: Option<PartitionState>,
}

/// What a compare-and-set that changed its row saw and left.
#[derive(Debug, Clone, Copy)]
struct Applied {
    check_seq: i64,
    from: Option<PartitionState>,
    run_id: Option<i64>,
}

impl Cas {
    fn on(key: &PartitionKey, attempt: Attempt) -> Self {
        let mut cas = Self {
            sets: Vec::new(),
            wheres: Vec::new(),
            binds: Vec::new(),
            to: None,
        };
        cas = cas
            .expect("backfill_id", Bind::Text(key.backfill_id.to_string()))
            .expect("partition_date", Bind::Text(key.date.to_string()))
            .expect("attempt", Bind::Int(i64::from(attempt.get())))
            .set("updated_at_ms", Bind::Int(now_ms()))
            // Right-hand sides read the row as it was. A run id belongs to the attempt
            // only while the attempt holds its claim's token: claiming clears run_id and
            // a new attempt clears the token, so a run of an earlier attempt is not taken.
            .set_expr("prev_state = state")
            .set_expr(
                "prev_run_id = CASE WHEN idempotency_token IS NOT NULL THEN run_id ELSE NULL END",
            );
        cas
    }

    fn set(mut self, column: &str, value: Bind) -> Self {
        self.binds.push(value);
        self.sets.push(format!("{column} = ${}", self.binds.len()));
        self
    }

    /// `column = column + value`: for the cumulative spend columns.
    fn add(mut self, column: &str, value: i64) -> Self {
        self.binds.push(Bind::Int(value));
        self.sets
            .push(format!("{column} = {column} + ${}", self.binds.len()));
        self
    }

    /// Adds to the spend the run of this attempt whose end is not known (cancelled, or
    /// given up while it ran): a conservative upper bound, from its claim
    /// (`triggered_at_ms`, or the take-over of the claim) to `now`, and only if the row
    /// is claimed or running (a waiting partition has no run of this attempt). A run
    /// started before a take-over of its claim is bounded from the take-over.
    fn add_unfinished_run(mut self, now: i64) -> Self {
        self.binds.push(Bind::Int(now));
        let n = self.binds.len();
        self.sets.push(format!(
            "spent_run_ms = spent_run_ms + CASE WHEN state IN ('triggering', 'running') \
             AND triggered_at_ms IS NOT NULL AND ${n} > triggered_at_ms \
             THEN ${n} - triggered_at_ms ELSE 0 END"
        ));
        self
    }

    /// Adds a finished run's measured time (Databricks start to end) to the spend.
    fn add_finished_run(self, run: &RunTimes) -> Self {
        match (run.started_ms, run.ended_ms) {
            (Some(start), Some(end)) => self
                .add("spent_run_ms", (end - start).max(0))
                .add("runs_finished", 1),
            _ => self,
        }
    }

    fn set_expr(mut self, expr: &str) -> Self {
        self.sets.push(expr.to_owned());
        self
    }

    fn expect(mut self, column: &str, value: Bind) -> Self {
        self.binds.push(value);
        self.wheres
            .push(format!("{column} = ${}", self.binds.len()));
        self
    }

    fn expect_state(self, states: &[PartitionState]) -> Self {
        let list: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let mut cas = self;
        cas.wheres.push(format!("state IN ({})", list.join(", ")));
        cas
    }

    fn move_to(mut self, state: PartitionState) -> Self {
        self.to = Some(state);
        self.set("state", Bind::Text(state.as_str().to_owned()))
    }

    fn sql(&self) -> String {
        format!(
            "UPDATE partitions SET {} WHERE {} RETURNING check_seq, prev_state, prev_run_id",
            self.sets.join(", "),
            self.wheres.join(" AND ")
        )
    }
}

impl Ledger {
    /// Applies a compare-and-set and, if it changed the row, records its event in the same
    /// transaction. Returns the row's `check_seq` after the change, or `None` when the row
    /// was not as expected (someone else acted first).
    async fn apply(&self, cas: Cas, event: NewEvent) -> Result<Option<i64>, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let seq = Self::apply_in(&mut tx, cas, Some(event)).await?;
        match seq {
            Some(_) => tx.commit().await?,
            None => tx.rollback().await?,
        }
        Ok(seq)
    }

    /// The event completed from what the compare-and-set saw: its from and to states
    /// (to is the state it saw when it does not move the row) and the attempt's run,
    /// where the caller did not give them.
    fn complete(mut event: NewEvent, applied: Applied, to: Option<PartitionState>) -> NewEvent {
        if event.from_state.is_none() && event.to_state.is_none() {
            event.from_state = applied.from;
            event.to_state = to.or(applied.from);
        }
        if event.run_id.is_none() {
            event.run_id = applied.run_id;
        }
        event
    }

    async fn apply_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        cas: Cas,
        event: Option<NewEvent>,
    ) -> Result<Option<i64>, LedgerError> {
        let sql = cas.sql();
        // Built only from column names and states in this file; values are bound.
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for bind in cas.binds {
            query = match bind {
                Bind::Int(v) => query.bind(v),
                Bind::OptInt(v) => query.bind(v),
                Bind::Text(v) => query.bind(v),
                Bind::OptText(v) => query.bind(v),
            };
        }
        let Some(row) = query.fetch_optional(&mut **tx).await? else {
            return Ok(None);
        };
        let from: Option<String> = row.try_get(1).map_err(corrupt)?;
        let applied = Applied {
            check_seq: row.try_get(0).map_err(corrupt)?,
            from: from.map(|s| s.parse()).transpose()?,
            run_id: row.try_get(2).map_err(corrupt)?,
        };
        if let Some(event) = event {
            insert_event(tx, &Self::complete(event, applied, cas.to)).await?;
        }
        Ok(Some(applied.check_seq))
    }

    pub async fn partition(&self, key: &PartitionKey) -> Result<Option<Partition>, LedgerError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM partitions WHERE backfill_id = $1 AND partition_date = $2"
        ))
        .bind(key.backfill_id.to_string())
        .bind(key.date.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(partition_from_row).transpose()
    }

    /// Every partition of a backfill, oldest day first.
    pub async fn partitions(
        &self,
        backfill_id: &BackfillId,
    ) -> Result<Vec<Partition>, LedgerError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM partitions WHERE backfill_id = $1 ORDER BY partition_date"
        ))
        .bind(backfill_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(partition_from_row).collect()
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
    ) -> Result<Vec<(PartitionDate, i64)>, LedgerError> {
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
                    r.try_get(1).map_err(corrupt)?,
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

    /// Notes, in one transaction, that the trigger messages of `dates` were confirmed.
    pub async fn mark_enqueued_many(
        &self,
        backfill_id: &BackfillId,
        dates: &[PartitionDate],
    ) -> Result<(), LedgerError> {
        let now = now_ms();
        let mut tx = self.pool.begin().await?;
        for date in dates {
            sqlx::query(ENQUEUED_SQL)
                .bind(backfill_id.to_string())
                .bind(date.to_string())
                .bind(now)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// pending/failed → triggering: claims the attempt and records its idempotency token
    /// before any `run-now`. Only one claimant of an attempt succeeds, and only while the
    /// backfill is active and below its concurrency cap across the whole fleet: the
    /// backfill row is locked first, so concurrent claims are counted one at a time.
    pub async fn claim_trigger(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        token: &str,
        owner: &str,
    ) -> Result<Claim, LedgerError> {
        let mut tx = self.pool.begin().await?;
        let locked = sqlx::query(
            "UPDATE backfills SET state = state WHERE backfill_id = $1 \
             RETURNING state, concurrency_cap, price_per_run_hour, budget",
        )
        .bind(key.backfill_id.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(locked) = locked else {
            tx.rollback().await?;
            return Ok(Claim::Lost);
        };
        let state: BackfillState = locked.try_get::<String, _>(0).map_err(corrupt)?.parse()?;
        let cap: i64 = locked.try_get(1).map_err(corrupt)?;
        if state != BackfillState::Active {
            tx.rollback().await?;
            return Ok(Claim::NotActive(state));
        }
        let active: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM partitions WHERE backfill_id = $1 \
             AND state IN ('triggering', 'running')",
        )
        .bind(key.backfill_id.to_string())
        .fetch_one(&mut *tx)
        .await?;
        if active >= cap {
            tx.rollback().await?;
            return Ok(Claim::AtCapacity { active, cap });
        }
        let price: Option<f64> = locked.try_get(2).map_err(corrupt)?;
        let budget: Option<f64> = locked.try_get(3).map_err(corrupt)?;
        if let (Some(price), Some(budget)) = (price, budget) {
            // Every attempt's runs, failed, dead-lettered and cancelled ones included.
            let row = sqlx::query(
                "SELECT CAST(COALESCE(SUM(spent_run_ms), 0) AS BIGINT), \
                 CAST(COALESCE(SUM(runs_finished), 0) AS BIGINT) FROM partitions \
                 WHERE backfill_id = $1",
            )
            .bind(key.backfill_id.to_string())
            .fetch_one(&mut *tx)
            .await?;
            let (spent_ms, finished): (i64, i64) = (
                row.try_get(0).map_err(corrupt)?,
                row.try_get(1).map_err(corrupt)?,
            );
            let projected = projected_spend(spent_ms, finished, active, price);
            if projected > budget {
                tx.rollback().await?;
                return Ok(Claim::Held {
                    reason: HoldReason::Budget,
                    detail: format!(
                        "budget: projected spend {projected:.2} with this run would exceed the budget of {budget:.2}"
                    ),
                });
            }
        }
        let now = now_ms();
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Pending, PartitionState::Failed])
            .move_to(PartitionState::Triggering)
            .set("idempotency_token", Bind::Text(token.to_owned()))
            .set("owner", Bind::Text(owner.to_owned()))
            .set("triggered_at_ms", Bind::Int(now))
            .set("check_due_ms", Bind::Int(now))
            .set_expr("reissues = 0")
            .set_expr("outage_since_ms = NULL")
            .set("run_id", Bind::OptInt(None))
            .set("run_url", Bind::OptText(None));
        let event = NewEvent::partition(owner, key, attempt, "claimed")
            .detail(format!("idempotency token {token}"));
        if Self::apply_in(&mut tx, cas, Some(event)).await?.is_none() {
            tx.rollback().await?;
            return Ok(Claim::Lost);
        }
        tx.commit().await?;
        Ok(Claim::Claimed)
    }

    /// Re-takes a claim whose owner is gone (its trigger message came back to another
    /// worker); the token stays, so `run-now` returns the run the first owner started.
    pub async fn take_over_trigger(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        owner: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Triggering])
            .set("owner", Bind::Text(owner.to_owned()))
            .set("triggered_at_ms", Bind::Int(now_ms()))
            .set("check_due_ms", Bind::Int(now_ms()));
        let event = NewEvent::partition(owner, key, attempt, "claim_taken_over");
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// triggering → running: records the run id; returns the new check sequence, which
    /// names the one live chain of check messages.
    pub async fn record_run(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        run_id: i64,
        run_url: Option<&str>,
        check_due_ms: i64,
        actor: &str,
    ) -> Result<Option<i64>, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Triggering])
            .move_to(PartitionState::Running)
            .set("run_id", Bind::Int(run_id))
            .set("run_url", Bind::OptText(run_url.map(str::to_owned)))
            .set("check_due_ms", Bind::Int(check_due_ms))
            .set_expr("check_seq = check_seq + 1")
            .set_expr("outage_since_ms = NULL")
            .set_expr("reissues = 0");
        let event = NewEvent::partition(actor, key, attempt, "run_started")
            .run(Some(run_id))
            .states(PartitionState::Triggering, PartitionState::Running)
            .detail(run_url.unwrap_or_default().to_owned());
        self.apply(cas, event).await
    }

    /// Starts a new chain of checks for a running partition (the old chain, if any, dies
    /// at its next message). Used when a trigger message finds its run already recorded.
    pub async fn restart_checks(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        run_id: i64,
        check_due_ms: i64,
        actor: &str,
    ) -> Result<Option<i64>, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("run_id", Bind::Int(run_id))
            .set("check_due_ms", Bind::Int(check_due_ms))
            .set_expr("check_seq = check_seq + 1");
        let event = NewEvent::partition(actor, key, attempt, "checks_restarted").run(Some(run_id));
        self.apply(cas, event).await
    }

    /// Hands the check chain on: `check_seq` → `check_seq + 1`, due at `check_due_ms`.
    /// Only the holder of the live check succeeds, so a duplicated check message dies
    /// here instead of growing a second chain. Not an event: the state does not change.
    pub async fn advance_check(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: i64,
        check_due_ms: i64,
    ) -> Result<Option<i64>, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("check_seq", Bind::Int(check_seq))
            .set("check_due_ms", Bind::Int(check_due_ms))
            .set_expr("check_seq = check_seq + 1")
            .set_expr("outage_since_ms = NULL");
        let mut tx = self.pool.begin().await?;
        let seq = Self::apply_in(&mut tx, cas, None).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Moves the live check's due time to `due_ms` (its message was sent round the delay
    /// tiers, for an outage say), so the sweep does not replace a check that is only
    /// waiting; `handled` (it was sent round without an error) ends any outage on record.
    /// Not an event.
    pub async fn touch_check(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: i64,
        due_ms: i64,
        handled: bool,
    ) -> Result<(), LedgerError> {
        let mut cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("check_seq", Bind::Int(check_seq))
            .set("check_due_ms", Bind::Int(due_ms));
        if handled {
            cas = cas.set_expr("outage_since_ms = NULL");
        }
        let mut tx = self.pool.begin().await?;
        Self::apply_in(&mut tx, cas, None).await?;
        tx.commit().await?;
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
        let rows = sqlx::query(concat!(
            "SELECT ",
            columns!(),
            " FROM partitions WHERE state = 'running' AND check_due_ms < $1 \
             AND backfill_id IN (SELECT b.backfill_id FROM backfills b \
             WHERE b.namespace IS NULL OR b.namespace = $3) \
             ORDER BY check_due_ms LIMIT $2"
        ))
        .bind(before_ms)
        .bind(limit)
        .bind(namespace)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(partition_from_row).collect()
    }

    /// pending/failed → cancelled (nothing runs for it); used when its backfill is cancelled.
    pub async fn cancel_partition(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        actor: &str,
        why: &str,
    ) -> Result<bool, LedgerError> {
        let waiting = [PartitionState::Pending, PartitionState::Failed];
        self.cancel_from(key, attempt, &waiting, actor, why).await
    }

    /// Any non-terminal state → cancelled, by an operator cancelling the backfill (its
    /// run, if any, is cancelled through `runs/cancel` by the caller).
    pub async fn cancel_active(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        actor: &str,
        why: &str,
    ) -> Result<bool, LedgerError> {
        let unfinished = [
            PartitionState::Pending,
            PartitionState::Triggering,
            PartitionState::Running,
            PartitionState::Failed,
        ];
        self.cancel_from(key, attempt, &unfinished, actor, why)
            .await
    }

    /// One of `from` → cancelled, with the reason.
    async fn cancel_from(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        from: &[PartitionState],
        actor: &str,
        why: &str,
    ) -> Result<bool, LedgerError> {
        // The run of a claimed or running partition is being cancelled: its end is not
        // known here, so the spend counts it up to now (an upper bound).
        let cas = Cas::on(key, attempt)
            .expect_state(from)
            .add_unfinished_run(now_ms())
            .move_to(PartitionState::Cancelled)
            .set("last_error", Bind::Text(why.to_owned()));
        let event = NewEvent::partition(actor, key, attempt, "cancelled").detail(why);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// triggering → dead_lettered, only by the worker holding the claim (its `run-now`
    /// was refused), so a run recorded meanwhile by another worker is never dead-lettered.
    pub async fn dead_letter_claim(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        owner: &str,
        reason: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Triggering])
            .expect("owner", Bind::Text(owner.to_owned()))
            .move_to(PartitionState::DeadLettered)
            .set("last_error", Bind::Text(reason.to_owned()));
        let event = NewEvent::partition(owner, key, attempt, "dead_lettered").detail(reason);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// running → succeeded, by the live check chain only.
    pub async fn record_success(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: i64,
        run: RunTimes,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("check_seq", Bind::Int(check_seq))
            .move_to(PartitionState::Succeeded)
            .add_finished_run(&run)
            .set("run_url", Bind::OptText(run.run_url.clone()))
            .set("run_started_ms", Bind::OptInt(run.started_ms))
            .set("run_ended_ms", Bind::OptInt(run.ended_ms))
            .set("last_error", Bind::OptText(None));
        let event = NewEvent::partition(actor, key, attempt, "succeeded")
            .run(Some(run.run_id))
            .states(PartitionState::Running, PartitionState::Succeeded);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// running → failed with the next attempt number: a deliberate, recorded new attempt,
    /// whose trigger is due at `retry_due_ms`.
    #[allow(clippy::too_many_arguments)]
    pub async fn schedule_retry(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: i64,
        run: RunTimes,
        retry_due_ms: i64,
        error: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("check_seq", Bind::Int(check_seq))
            .move_to(PartitionState::Failed)
            .add_finished_run(&run)
            .set("run_url", Bind::OptText(run.run_url.clone()))
            .set("attempt", Bind::Int(i64::from(attempt.next().get())))
            .set("idempotency_token", Bind::OptText(None))
            .set("last_error", Bind::Text(error.to_owned()))
            .set("run_started_ms", Bind::OptInt(run.started_ms))
            .set("run_ended_ms", Bind::OptInt(run.ended_ms))
            .set("check_due_ms", Bind::Int(retry_due_ms))
            .set_expr("reissues = 0")
            .set_expr("outage_since_ms = NULL");
        let event = NewEvent::partition(actor, key, attempt, "retry_scheduled")
            .run(Some(run.run_id))
            .states(PartitionState::Running, PartitionState::Failed)
            .detail(format!("attempt {} failed: {error}", attempt));
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// Any non-terminal state of this attempt → dead_lettered, with the reason. When
    /// `check_seq` is given only the live check chain may do it. `run` is the attempt's
    /// run when it ended (failed for good): its time is recorded and added to the spend.
    pub async fn dead_letter(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        check_seq: Option<i64>,
        run: Option<&RunTimes>,
        reason: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let mut cas = Cas::on(key, attempt).expect_state(&[
            PartitionState::Pending,
            PartitionState::Triggering,
            PartitionState::Running,
            PartitionState::Failed,
        ]);
        if let Some(seq) = check_seq {
            cas = cas.expect("check_seq", Bind::Int(seq));
        }
        if let Some(run) = run {
            cas = cas
                .add_finished_run(run)
                .set("run_url", Bind::OptText(run.run_url.clone()))
                .set("run_started_ms", Bind::OptInt(run.started_ms))
                .set("run_ended_ms", Bind::OptInt(run.ended_ms));
        }
        let cas = cas
            .move_to(PartitionState::DeadLettered)
            .set("last_error", Bind::Text(reason.to_owned()));
        let event = NewEvent::partition(actor, key, attempt, "dead_lettered")
            .run(run.map(|r| r.run_id))
            .detail(reason);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// running → dead_lettered by the live check of `run_id` only (a superseded check of a
    /// partition whose live chain is running changes nothing).
    pub async fn dead_letter_check(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        run_id: i64,
        check_seq: i64,
        reason: &str,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Running])
            .expect("run_id", Bind::Int(run_id))
            .expect("check_seq", Bind::Int(check_seq))
            // Its run is cancelled next, its end unknown: counted up to now (an upper bound).
            .add_unfinished_run(now_ms())
            .move_to(PartitionState::DeadLettered)
            .set("last_error", Bind::Text(reason.to_owned()));
        let event = NewEvent::partition(actor, key, attempt, "dead_lettered")
            .run(Some(run_id))
            .states(PartitionState::Running, PartitionState::DeadLettered)
            .detail(reason);
        Ok(self.apply(cas, event).await?.is_some())
    }

    /// An operator's deliberate new attempt (for example after a failed data-quality
    /// gate): succeeded/dead_lettered/cancelled → failed with the next attempt number.
    pub async fn request_rerun(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        actor: &str,
        why: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[
                PartitionState::Succeeded,
                PartitionState::DeadLettered,
                PartitionState::Cancelled,
            ])
            .move_to(PartitionState::Failed)
            .set("attempt", Bind::Int(i64::from(attempt.next().get())))
            .set("idempotency_token", Bind::OptText(None))
            .set("verified_at_ms", Bind::OptInt(None))
            .set("check_due_ms", Bind::Int(now_ms()))
            .set_expr("reissues = 0")
            .set_expr("outage_since_ms = NULL")
            .set("last_error", Bind::Text(format!("rerun requested: {why}")));
        let event = NewEvent::partition(actor, key, attempt, "rerun_requested")
            .detail(format!("attempt {} requested: {why}", attempt.next()));
        let mut tx = self.pool.begin().await?;
        if Self::apply_in(&mut tx, cas, Some(event)).await?.is_none() {
            tx.rollback().await?;
            return Ok(false);
        }
        // Read after the row is changed (and locked): a promotion created meanwhile is
        // seen, so a re-run never slips under a promotion of the attempt it replaces.
        let live: Option<String> = sqlx::query_scalar(
            "SELECT action_key FROM promotion_items WHERE backfill_id = $1 \
             AND partition_date = $2 AND state IN ('requested', 'running') LIMIT 1",
        )
        .bind(key.backfill_id.to_string())
        .bind(key.date.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(action) = live {
            tx.rollback().await?;
            return Err(LedgerError::Refused(format!(
                "partition {} is being promoted ({action}); let `backfill promote` finish it, then re-run",
                key.date
            )));
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Marks a succeeded partition as verified against Databricks by the reconciler.
    pub async fn mark_verified(
        &self,
        key: &PartitionKey,
        attempt: Attempt,
        run_id: i64,
        actor: &str,
    ) -> Result<bool, LedgerError> {
        let cas = Cas::on(key, attempt)
            .expect_state(&[PartitionState::Succeeded])
            .expect("run_id", Bind::Int(run_id))
            .set("verified_at_ms", Bind::Int(now_ms()));
        let cas = Cas {
            wheres: {
                let mut w = cas.wheres;
                w.push("verified_at_ms IS NULL".into());
                w
            },
            ..cas
        };
        let event = NewEvent::partition(actor, key, attempt, "verified").run(Some(run_id));
        Ok(self.apply(cas, event).await?.is_some())
    }
}

/// The run a transition is about, with its Databricks timings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunTimes {
    pub run_id: i64,
    pub run_url: Option<String>,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
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
        run_id: r.try_get("run_id").map_err(corrupt)?,
        run_url: r.try_get("run_url").map_err(corrupt)?,
        check_seq: r.try_get("check_seq").map_err(corrupt)?,
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
