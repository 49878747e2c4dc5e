//! The compare-and-set every transition of a partition is made of, and how it is applied
//! together with its event.

use backfill_contract::{Attempt, CheckSeq, RunId};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::events::insert_event;
use crate::group::{Job, query};
use crate::model::corrupt;
use crate::partitions::RunTimes;
use crate::{Ledger, LedgerError, NewEvent, PartitionKey, PartitionState, now_ms};

pub(super) use crate::group::Bind;

/// A conditional `UPDATE partitions ... WHERE <expected state> RETURNING check_seq`:
/// it changes the row only if the row is still as the caller saw it. Every one also
/// keeps what it saw (`prev_state`, and `prev_run_id`: the run of the row's attempt, if
/// any), which SQL reads from the old row, so its event can say where the partition came
/// from and which run it concerned without another statement.
#[derive(Debug)]
pub(super) struct Cas {
    pub(super) sets: Vec<String>,
    pub(super) wheres: Vec<String>,
    pub(super) binds: Vec<Bind>,
    /// The state this compare-and-set moves the row to, if it moves it.
    pub(super) to: Option<PartitionState>,
}

/// What a compare-and-set that changed its row saw and left.
#[derive(Debug, Clone, Copy)]
struct Applied {
    check_seq: CheckSeq,
    from: Option<PartitionState>,
    run_id: Option<RunId>,
}

impl Cas {
    pub(super) fn on(key: &PartitionKey, attempt: Attempt) -> Self {
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

    pub(super) fn set(mut self, column: &str, value: Bind) -> Self {
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
    pub(super) fn add_unfinished_run(mut self, now: i64) -> Self {
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
    pub(super) fn add_finished_run(self, run: &RunTimes) -> Self {
        match (run.started_ms, run.ended_ms) {
            (Some(start), Some(end)) => self
                .add("spent_run_ms", (end - start).max(0))
                .add("runs_finished", 1),
            _ => self,
        }
    }

    pub(super) fn set_expr(mut self, expr: &str) -> Self {
        self.sets.push(expr.to_owned());
        self
    }

    pub(super) fn expect(mut self, column: &str, value: Bind) -> Self {
        self.binds.push(value);
        self.wheres
            .push(format!("{column} = ${}", self.binds.len()));
        self
    }

    pub(super) fn expect_state(self, states: &[PartitionState]) -> Self {
        let list: Vec<String> = states.iter().map(|s| format!("'{}'", s.as_str())).collect();
        let mut cas = self;
        cas.wheres.push(format!("state IN ({})", list.join(", ")));
        cas
    }

    pub(super) fn move_to(mut self, state: PartitionState) -> Self {
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

    fn push(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// SQLite: the statement that records `event` right after this compare-and-set, in
    /// the same batch, only if it changed its row (`changes()`: the rows the statement
    /// before changed), completed as [`Ledger::complete`] does from what the row kept
    /// (`prev_state`, `prev_run_id`). `$1` and `$2` are the row's key (see [`Cas::on`]).
    pub(super) fn event_sql(&mut self, event: NewEvent) -> String {
        let (from, to) = if event.from_state.is_none() && event.to_state.is_none() {
            let to = match self.to {
                Some(to) => self.push(Bind::Text(to.as_str().to_owned())),
                None => "prev_state".to_owned(),
            };
            ("prev_state".to_owned(), to)
        } else {
            let text = |s: Option<PartitionState>| Bind::OptText(s.map(|s| s.as_str().to_owned()));
            (
                self.push(text(event.from_state)),
                self.push(text(event.to_state)),
            )
        };
        let run_id = match event.run_id {
            Some(run_id) => self.push(Bind::Int(run_id.get())),
            None => "prev_run_id".to_owned(),
        };
        let values = [
            self.push(Bind::Int(now_ms())),
            self.push(Bind::Text(event.actor)),
            self.push(Bind::Text(event.backfill_id.to_string())),
            self.push(Bind::OptText(event.partition_date.map(|d| d.to_string()))),
            self.push(Bind::OptInt(event.attempt.map(|a| i64::from(a.get())))),
            run_id,
            self.push(Bind::Text(event.kind.to_owned())),
            from,
            to,
            self.push(Bind::Text(event.detail)),
        ];
        format!(
            "INSERT INTO events (at_ms, actor, backfill_id, partition_date, attempt, run_id, \
             kind, from_state, to_state, detail) SELECT {} FROM partitions \
             WHERE backfill_id = $1 AND partition_date = $2 AND changes() = 1",
            values.join(", ")
        )
    }

    /// SQLite: this compare-and-set, its event, then `after` (statements in the same
    /// transaction), as a job for the group commit.
    pub(super) fn job(mut self, event: Option<NewEvent>, after: &[&str]) -> Job {
        let mut statements = vec![self.sql()];
        if let Some(event) = event {
            statements.push(self.event_sql(event));
        }
        statements.extend(after.iter().map(|s| (*s).to_owned()));
        Job {
            statements,
            binds: self.binds,
        }
    }
}

/// What a compare-and-set's `RETURNING` row says.
fn applied(row: &AnyRow) -> Result<Applied, LedgerError> {
    let from: Option<String> = row.try_get(1).map_err(corrupt)?;
    Ok(Applied {
        check_seq: CheckSeq::from(row.try_get::<i64, _>(0).map_err(corrupt)?),
        from: from.map(|s| s.parse()).transpose()?,
        run_id: row
            .try_get::<Option<i64>, _>(2)
            .map_err(corrupt)?
            .map(RunId::from),
    })
}

impl Ledger {
    /// Applies a compare-and-set and, if it changed the row, records its event in the same
    /// transaction. Returns the row's `check_seq` after the change, or `None` when the row
    /// was not as expected (someone else acted first).
    pub(super) async fn apply(
        &self,
        cas: Cas,
        event: NewEvent,
    ) -> Result<Option<CheckSeq>, LedgerError> {
        if self.is_sqlite() {
            let rows = self
                .group
                .run(&self.pool, cas.job(Some(event), &[]))
                .await?;
            return rows
                .first()
                .and_then(|rows| rows.first())
                .map(|row| applied(row).map(|a| a.check_seq))
                .transpose();
        }
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

    pub(super) async fn apply_in(
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        cas: Cas,
        event: Option<NewEvent>,
    ) -> Result<Option<CheckSeq>, LedgerError> {
        let sql = cas.sql();
        let Some(row) = query(sql, cas.binds, true)
            .fetch_optional(&mut **tx)
            .await?
        else {
            return Ok(None);
        };
        let applied = applied(&row)?;
        if let Some(event) = event {
            insert_event(tx, &Self::complete(event, applied, cas.to)).await?;
        }
        Ok(Some(applied.check_seq))
    }
}
