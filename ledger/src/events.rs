//! The append-only event log: every state change, who made it, and why.

use backfill_contract::{Attempt, BackfillId, PartitionDate, RunId};
use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use crate::model::corrupt;
use crate::{Ledger, LedgerError, PartitionKey, PartitionState, now_ms};

/// An event to record. Built with [`NewEvent::backfill`] or [`NewEvent::partition`].
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub actor: String,
    pub backfill_id: BackfillId,
    pub partition_date: Option<PartitionDate>,
    pub attempt: Option<Attempt>,
    pub run_id: Option<RunId>,
    pub kind: &'static str,
    pub from_state: Option<PartitionState>,
    pub to_state: Option<PartitionState>,
    pub detail: String,
}

impl NewEvent {
    pub fn backfill(actor: &str, backfill_id: &BackfillId, kind: &'static str) -> Self {
        Self {
            actor: actor.to_owned(),
            backfill_id: backfill_id.clone(),
            partition_date: None,
            attempt: None,
            run_id: None,
            kind,
            from_state: None,
            to_state: None,
            detail: String::new(),
        }
    }

    pub fn partition(
        actor: &str,
        key: &PartitionKey,
        attempt: Attempt,
        kind: &'static str,
    ) -> Self {
        Self {
            partition_date: Some(key.date),
            attempt: Some(attempt),
            ..Self::backfill(actor, &key.backfill_id, kind)
        }
    }

    pub fn run(mut self, run_id: Option<RunId>) -> Self {
        self.run_id = run_id;
        self
    }

    pub fn states(mut self, from: PartitionState, to: PartitionState) -> Self {
        self.from_state = Some(from);
        self.to_state = Some(to);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = detail.into();
        self
    }
}

/// A recorded event.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub event_id: i64,
    pub at_ms: i64,
    pub actor: String,
    pub backfill_id: String,
    pub partition_date: Option<String>,
    pub attempt: Option<i64>,
    pub run_id: Option<RunId>,
    pub kind: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    pub detail: String,
}

pub(crate) async fn insert_event(
    tx: &mut Transaction<'static, Any>,
    event: &NewEvent,
) -> Result<(), LedgerError> {
    sqlx::query(
        "INSERT INTO events (at_ms, actor, backfill_id, partition_date, attempt, run_id, kind, \
         from_state, to_state, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(now_ms())
    .bind(event.actor.clone())
    .bind(event.backfill_id.to_string())
    .bind(event.partition_date.map(|d| d.to_string()))
    .bind(event.attempt.map(|a| i64::from(a.get())))
    .bind(event.run_id.map(RunId::get))
    .bind(event.kind)
    .bind(event.from_state.map(|s| s.as_str()))
    .bind(event.to_state.map(|s| s.as_str()))
    .bind(event.detail.clone())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Ledger {
    /// Records an event that goes with no state change (an operator's note, a decision).
    pub async fn record_event(&self, event: &NewEvent) -> Result<(), LedgerError> {
        let mut tx = self.pool.begin().await?;
        insert_event(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Every event of a backfill, in the order they were recorded.
    pub async fn events(&self, backfill_id: &BackfillId) -> Result<Vec<Event>, LedgerError> {
        self.backfill_rows(
            "SELECT event_id, at_ms, actor, backfill_id, partition_date, attempt, run_id, kind, \
             from_state, to_state, detail FROM events WHERE backfill_id = $1 ORDER BY event_id",
            backfill_id,
            |r| {
                Ok(Event {
                    event_id: r.try_get("event_id").map_err(corrupt)?,
                    at_ms: r.try_get("at_ms").map_err(corrupt)?,
                    actor: r.try_get("actor").map_err(corrupt)?,
                    backfill_id: r.try_get("backfill_id").map_err(corrupt)?,
                    partition_date: r.try_get("partition_date").map_err(corrupt)?,
                    attempt: r.try_get("attempt").map_err(corrupt)?,
                    run_id: r
                        .try_get::<Option<i64>, _>("run_id")
                        .map_err(corrupt)?
                        .map(RunId::from),
                    kind: r.try_get("kind").map_err(corrupt)?,
                    from_state: r.try_get("from_state").map_err(corrupt)?,
                    to_state: r.try_get("to_state").map_err(corrupt)?,
                    detail: r.try_get("detail").map_err(corrupt)?,
                })
            },
        )
        .await
    }
}
