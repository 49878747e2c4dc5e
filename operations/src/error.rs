//! Why an operation did not happen. The messages name the problem in the fleet's terms,
//! never a command-line flag or an environment variable: the command line adds those.

use backfill_broker::BrokerError;
use backfill_contract::BackfillId;
use backfill_databricks::ApiError;
use backfill_ledger::{ContractVersion, LedgerError};
use backfill_producer::{ProduceError, RequestProblem};
use backfill_reconciler::{Disagreement, ReconcileError};

/// Why an operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// The ledger has no backfill of this id.
    #[error("no backfill {0} in the ledger")]
    UnknownBackfill(BackfillId),
    /// The operation is refused as asked (the operator's to fix: another value, another
    /// state of the backfill); the message says why.
    #[error("{0}")]
    Refused(String),
    /// A backfill request the producer refuses, by the value at fault.
    #[error("invalid request: {0}")]
    Request(RequestProblem),
    /// A promotion or rollback job of the contract could not be read from Databricks.
    #[error("the {role} job {job_id} could not be read from Databricks")]
    ContractJob {
        role: JobRole,
        job_id: i64,
        #[source]
        source: ApiError,
    },
    /// Values given for the backfill's promotion contract disagree with the recorded one
    /// (each disagreement in words).
    #[error("{}\nbackfill {backfill_id} is governed by its contract version {} (recorded by {}: {})",
        .disagreements.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n"), .recorded.version, .recorded.amended_by, .recorded.reason)]
    ContractDisagrees {
        backfill_id: BackfillId,
        disagreements: Vec<Disagreement>,
        recorded: Box<ContractVersion>,
    },
    /// The broker could not be reached (the URL has its password redacted).
    #[error("cannot reach RabbitMQ at {url}")]
    BrokerUnreachable {
        url: String,
        #[source]
        source: BrokerError,
    },
    /// Publishing a backfill's partitions failed.
    #[error("publishing partitions")]
    Publish(#[source] ProduceError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Broker(#[from] BrokerError),
    #[error(transparent)]
    Databricks(#[from] ApiError),
    #[error(transparent)]
    Produce(ProduceError),
    #[error(transparent)]
    Reconcile(ReconcileError),
    /// The broker did not answer in time (an acknowledgement, a requeue).
    #[error("{0} timed out")]
    Timeout(&'static str),
    /// The broker's channel closed before a message was settled; it stays in its queue.
    #[error("{0}: the broker channel closed first; the message stays in its queue")]
    Unsettled(&'static str),
}

/// Which of a contract's jobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobRole {
    Promotion,
    Rollback,
}

impl std::fmt::Display for JobRole {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobRole::Promotion => "promotion",
            JobRole::Rollback => "rollback",
        })
    }
}

impl OperationError {
    /// The operator asked for something that cannot be done as asked (bad usage at the
    /// command line, exit 2), as opposed to a failure of the ledger, broker or Databricks.
    pub fn is_refused(&self) -> bool {
        match self {
            Self::UnknownBackfill(_)
            | Self::Refused(_)
            | Self::Request(_)
            | Self::ContractDisagrees { .. } => true,
            Self::ContractJob { source, .. } => source.is_not_found() || source.is_permanent(),
            Self::Reconcile(e) => {
                matches!(
                    e,
                    ReconcileError::Contract(_)
                        | ReconcileError::NoContract(_)
                        | ReconcileError::StagingTableFixed { .. }
                        | ReconcileError::JobChanged { .. }
                        | ReconcileError::NotPromoted(_)
                )
            }
            _ => false,
        }
    }
}

impl From<ProduceError> for OperationError {
    /// A request the producer refuses is the operator's to fix.
    fn from(e: ProduceError) -> Self {
        match e {
            ProduceError::Invalid(m) => Self::Refused(m),
            ProduceError::Request(problem) => Self::Request(problem),
            other => Self::Produce(other),
        }
    }
}

impl From<ReconcileError> for OperationError {
    fn from(e: ReconcileError) -> Self {
        Self::Reconcile(e)
    }
}
