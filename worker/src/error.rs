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
    /// `run-now` answered something unreadable: the run may exist, so it is asked again
    /// with the same token (transient, within the outage budget).
    #[error("{0} (the run may exist; asking again with the same token)")]
    RunMayExist(ApiError),
    /// The message belongs to another fleet (another ledger): this worker is
    /// misconfigured and must leave it, undamaged, to the workers it belongs to.
    #[error("{0}")]
    Foreign(String),
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

    /// Handling the message again cannot succeed: dead-letter it at once with the reason
    /// (a refused or unreadable Databricks answer, an unreadable ledger row). Everything
    /// else is an outage, retried within the outage budget.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Databricks(e) => e.is_permanent(),
            Self::Ledger(e) => matches!(
                e,
                LedgerError::Corrupt(_)
                    | LedgerError::Config(_)
                    | LedgerError::Conflict(_)
                    | LedgerError::Refused(_)
                    | LedgerError::OtherNamespace { .. }
            ),
            Self::Broker(_) | Self::RunMayExist(_) | Self::Foreign(_) | Self::Undeliverable(_) => {
                false
            }
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Ledger(_) => "ledger",
            Self::Broker(_) => "broker",
            Self::Databricks(_) | Self::RunMayExist(_) => "databricks",
            Self::Foreign(_) => "foreign",
            Self::Undeliverable(_) => "undeliverable",
        }
    }
}
