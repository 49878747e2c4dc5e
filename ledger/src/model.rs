//! The rows of the ledger and the state machine of a partition.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use backfill_contract::{Attempt, BackfillId, CheckSeq, PartitionDate, RunId};
use serde::Serialize;

use crate::{Guards, LedgerError};

/// Milliseconds since the Unix epoch, the ledger's clock.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Where one day-partition stands.
///
/// ```text
/// pending ─claim─► triggering ─run id─► running ─► succeeded
///    ▲                                     │
///    └──────── failed (next attempt) ◄─────┤
///                                          └─► dead_lettered
/// any non-terminal state ──operator──► cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionState {
    /// Waiting for its trigger message.
    Pending,
    /// Claimed by a worker; the idempotency token is recorded, `run-now` may be in flight.
    Triggering,
    /// A Databricks run exists and is being followed.
    Running,
    /// The run of the current attempt succeeded.
    Succeeded,
    /// The previous attempt failed; `attempt` already names the next one, due after a backoff.
    Failed,
    /// Given up; the message is in the dead-letter queue with the reason.
    DeadLettered,
    /// Cancelled by an operator.
    Cancelled,
}

impl PartitionState {
    pub const ALL: [PartitionState; 7] = [
        Self::Pending,
        Self::Triggering,
        Self::Running,
        Self::Succeeded,
        Self::Failed,
        Self::DeadLettered,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Triggering => "triggering",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Cancelled => "cancelled",
        }
    }

    /// Succeeded, dead-lettered and cancelled partitions take no further automatic step.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::Succeeded | Self::DeadLettered | Self::Cancelled)
    }
}

impl fmt::Display for PartitionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PartitionState {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| LedgerError::Corrupt(format!("unknown partition state {s:?}")))
    }
}

/// Whether a backfill may start new runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillState {
    Active,
    Paused,
    Cancelled,
}

impl BackfillState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Paused => "paused",
            Self::Cancelled => "cancelled",
        }
    }
}

impl FromStr for BackfillState {
    type Err = LedgerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "active" => Ok(Self::Active),
            "paused" => Ok(Self::Paused),
            "cancelled" => Ok(Self::Cancelled),
            _ => Err(LedgerError::Corrupt(format!(
                "unknown backfill state {s:?}"
            ))),
        }
    }
}

/// Names one partition of one backfill.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PartitionKey {
    pub backfill_id: BackfillId,
    pub date: PartitionDate,
}

impl PartitionKey {
    pub fn new(backfill_id: BackfillId, date: PartitionDate) -> Self {
        Self { backfill_id, date }
    }
}

/// A registered backfill.
#[derive(Debug, Clone, Serialize)]
pub struct Backfill {
    pub backfill_id: BackfillId,
    pub job_id: i64,
    pub start: PartitionDate,
    pub end: PartitionDate,
    pub params: BTreeMap<String, String>,
    pub manifest_id: String,
    pub manifest: serde_json::Value,
    pub state: BackfillState,
    pub concurrency_cap: i64,
    pub created_by: String,
    pub created_at_ms: i64,
    pub guards: Guards,
}

/// One day-partition's row.
#[derive(Debug, Clone, Serialize)]
pub struct Partition {
    pub backfill_id: BackfillId,
    pub date: PartitionDate,
    pub state: PartitionState,
    pub attempt: Attempt,
    pub idempotency_token: Option<String>,
    pub run_id: Option<RunId>,
    pub run_url: Option<String>,
    pub check_seq: CheckSeq,
    /// When the live check is due (running partitions).
    pub check_due_ms: Option<i64>,
    pub enqueued: bool,
    pub owner: Option<String>,
    pub last_error: Option<String>,
    pub triggered_at_ms: Option<i64>,
    pub run_started_ms: Option<i64>,
    pub run_ended_ms: Option<i64>,
    pub verified_at_ms: Option<i64>,
    pub updated_at_ms: i64,
}

impl Partition {
    pub fn key(&self) -> PartitionKey {
        PartitionKey::new(self.backfill_id.clone(), self.date)
    }
}

pub(crate) fn corrupt(e: impl fmt::Display) -> LedgerError {
    LedgerError::Corrupt(e.to_string())
}

/// The first two columns of a row, decoded; a value that does not decode is corrupt.
pub(crate) fn two_columns<A, B>(r: &sqlx::any::AnyRow) -> Result<(A, B), LedgerError>
where
    A: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
    B: for<'r> sqlx::Decode<'r, sqlx::Any> + sqlx::Type<sqlx::Any>,
{
    use sqlx::Row;
    Ok((
        r.try_get(0).map_err(corrupt)?,
        r.try_get(1).map_err(corrupt)?,
    ))
}
