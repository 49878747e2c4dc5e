//! Why a reconciler pass, promotion or rollback could not be carried out.

use backfill_contract::BackfillId;
use backfill_databricks::ApiError;
use backfill_ledger::LedgerError;

/// A pass, promotion or rollback that could not be carried out (a gap is not an error).
/// The messages name values, never a command-line flag: the command line adds those.
#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("backfill {0} is not registered")]
    UnknownBackfill(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Databricks(#[from] ApiError),
    #[error("{0}")]
    Timeout(String),
    #[error("partition {0} was never promoted, so there is nothing to roll back")]
    NotPromoted(String),
    /// The backfill's promotion contract refuses what was asked.
    #[error("{0}")]
    Contract(String),
    /// The backfill was produced before contracts were recorded and has none yet.
    #[error(
        "backfill {0} has no recorded promotion contract (it was produced before contracts \
         were recorded); record one with an amendment"
    )]
    NoContract(BackfillId),
    /// The staging table cannot change: the backfill's runs already wrote there.
    #[error(
        "the staging table cannot be amended: the backfill's runs write to {recorded} \
         (produce a new backfill to use {given})"
    )]
    StagingTableFixed { recorded: String, given: String },
    /// A job's definition changed since the contract recorded it.
    #[error(
        "the {role} job {job_id} changed since the contract recorded it (settings sha256 {now} \
         now, {recorded} recorded); review it, then record it with an amendment"
    )]
    JobChanged {
        role: String,
        job_id: i64,
        now: String,
        recorded: String,
    },
}
