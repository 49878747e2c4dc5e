//! Why a reconciler pass, promotion or rollback could not be carried out.

use backfill_databricks::ApiError;
use backfill_ledger::LedgerError;

/// A pass, promotion or rollback that could not be carried out (a gap is not an error).
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
    /// The backfill's promotion contract is missing or refuses what was asked.
    #[error("{0}")]
    Contract(String),
}
