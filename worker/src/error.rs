//! Why a message could not be handled now.

use backfill_broker::BrokerError;
use backfill_databricks::ApiError;
use backfill_ledger::LedgerError;

/// A failure while handling a message. None of these loses the message: the loop delays
/// it (outages) or returns it to the queue (broker trouble).
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Databricks(#[from] ApiError),
    /// The message can be neither handled nor moved anywhere else.
    #[error("{0}")]
    Undeliverable(String),
}

impl StepError {
    /// Broker trouble: the follow-up could not be published, so the delivery must go
    /// back to the queue rather than be acknowledged.
    pub fn is_broker(&self) -> bool {
        matches!(self, Self::Broker(_))
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ledger(_) => "ledger",
            Self::Broker(_) => "broker",
            Self::Databricks(_) => "databricks",
            Self::Undeliverable(_) => "undeliverable",
        }
    }
}
