//! Ledger failures.

/// What went wrong with the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("invalid ledger URL: {0}")]
    Config(String),
    #[error("ledger database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("ledger migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
    #[error(
        "backfill {0} is already registered with a different request; choose a new backfill id"
    )]
    Conflict(String),
    /// A contract amendment or promotion record refused, with why.
    #[error("{0}")]
    Refused(String),
    #[error("ledger holds an unreadable value: {0}")]
    Corrupt(String),
    #[error("backfill {backfill_id} was published in broker namespace {bound:?}, not {asked:?}")]
    OtherNamespace {
        backfill_id: String,
        bound: String,
        asked: String,
    },
}

impl LedgerError {
    /// True for failures worth retrying later (the database is unreachable or busy).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Database(e) => {
                matches!(
                    e,
                    sqlx::Error::Io(_)
                        | sqlx::Error::PoolTimedOut
                        | sqlx::Error::PoolClosed
                        | sqlx::Error::WorkerCrashed
                ) || e.to_string().contains("database is locked")
            }
            _ => false,
        }
    }
}
