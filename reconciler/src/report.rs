//! What a pass reports: the partitions not proven (gaps, by kind) and those proven.

use backfill_contract::{PartitionDate, RunId};
use serde::Serialize;

/// Why a partition does not (yet) count as done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// Not triggered yet (pending, or waiting for its next attempt).
    Missing,
    /// Triggered and not finished.
    Running,
    /// The ledger says succeeded, but Databricks reports otherwise.
    Failed,
    DeadLettered,
    Cancelled,
    /// Databricks no longer knows the run (runs expire after 60 days): it ran, but cannot
    /// be proven now.
    RunNotFound,
    /// The run exists but belongs to another job or ran with other parameters.
    ParametersMismatch,
    /// The run succeeded but its data failed a data-quality rule.
    DqFailed,
    /// The run succeeded but reported no readable data-quality metrics.
    DqUnavailable,
    /// The run reported no staging snapshot (table and Delta version) of the contract's
    /// staging table: there is nothing exact to promote.
    StagingUnknown,
}

impl GapKind {
    pub const ALL: [GapKind; 10] = [
        Self::Missing,
        Self::Running,
        Self::Failed,
        Self::DeadLettered,
        Self::Cancelled,
        Self::RunNotFound,
        Self::ParametersMismatch,
        Self::DqFailed,
        Self::DqUnavailable,
        Self::StagingUnknown,
    ];

    /// The snake_case name used in JSON and as a metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Cancelled => "cancelled",
            Self::RunNotFound => "run_not_found",
            Self::ParametersMismatch => "parameters_mismatch",
            Self::DqFailed => "dq_failed",
            Self::DqUnavailable => "dq_unavailable",
            Self::StagingUnknown => "staging_unknown",
        }
    }
}

/// One partition that is not proven complete.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub partition: String,
    pub kind: GapKind,
    pub attempt: u32,
    pub run_id: Option<RunId>,
    pub detail: String,
}

/// The result of a pass.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub backfill_id: String,
    pub total: usize,
    /// Partitions whose run was re-read from Databricks in this pass and proven.
    pub verified: usize,
    pub complete: bool,
    /// The contract version and the policy (its SHA-256) the pass gated on.
    pub contract_version: Option<i64>,
    pub policy: Option<String>,
    pub gaps: Vec<Gap>,
    /// The partition attempts proven, with their staging snapshots.
    #[serde(skip)]
    pub proven: Vec<Proven>,
}

/// A partition attempt proven in a pass: what promotion copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    pub date: PartitionDate,
    pub attempt: i64,
    /// The staging snapshot the attempt wrote (`None` only for a backfill without a
    /// contract, which cannot be promoted).
    pub staging_version: Option<i64>,
}
