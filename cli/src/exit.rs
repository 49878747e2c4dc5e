//! Command failures and their exit codes.

use std::process::ExitCode;

use backfill_operations::OperationError;
use backfill_reconciler::ReconcileError;

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage: exit 2, with a message naming the problem.
    #[error("{0}")]
    Usage(String),
    /// The command ran and the answer is "no" (for example an incomplete backfill): exit 1
    /// without an error line, the command has printed its report.
    #[error("{0}")]
    Negative(String),
    /// Something failed: exit 1.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl CliError {
    pub fn usage(msg: impl Into<String>) -> Self {
        Self::Usage(msg.into())
    }

    pub(crate) fn report(&self) -> ExitCode {
        match self {
            Self::Usage(msg) => {
                eprintln!("error: {msg}");
                ExitCode::from(2)
            }
            Self::Negative(msg) => {
                eprintln!("{msg}");
                ExitCode::from(1)
            }
            Self::Failed(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}

impl From<OperationError> for CliError {
    /// An operation's error in the command line's words: refusals are bad usage (exit 2)
    /// naming the flag that would fix them, failures exit 1.
    fn from(e: OperationError) -> Self {
        match e {
            OperationError::UnknownBackfill(id) => {
                Self::usage(format!("--backfill-id: no backfill {id} in the ledger"))
            }
            OperationError::Request(problem) => Self::usage(request_problem(&problem)),
            OperationError::ContractJob {
                role,
                job_id,
                source,
            } => {
                let flag = format!("--{role}-job-id");
                if source.is_not_found() || source.is_permanent() {
                    Self::usage(format!("{flag} {job_id}: {source}"))
                } else {
                    Self::Failed(anyhow::anyhow!(
                        "reading {flag} {job_id} from Databricks: {source}"
                    ))
                }
            }
            OperationError::ContractDisagrees {
                backfill_id,
                disagreements,
                recorded,
            } => Self::usage(format!(
                "{}\nbackfill {backfill_id} is governed by its contract version {} (recorded by {}: {}); \
                 change it with `backfill amend --backfill-id {backfill_id} --reason ...`, or drop the flag",
                disagreements
                    .iter()
                    .map(|d| d.describe(contract_flag(d.field)))
                    .collect::<Vec<_>>()
                    .join("\n"),
                recorded.version,
                recorded.amended_by,
                recorded.reason
            )),
            OperationError::BrokerUnreachable { url, source } => {
                Self::Failed(anyhow::Error::new(source).context(format!(
                    "cannot reach RabbitMQ at {url} (--amqp-url / AMQP_URL); is it running? \
                     Locally: `rabbitmq-server -detached`"
                )))
            }
            OperationError::Reconcile(ReconcileError::NoContract(id)) => Self::usage(format!(
                "backfill {id} has no recorded promotion contract (it was produced before \
                 contracts were recorded); record one with `backfill amend --backfill-id {id} --reason ...`"
            )),
            OperationError::Reconcile(ReconcileError::StagingTableFixed { recorded, given }) => {
                Self::usage(format!(
                    "--staging-table cannot be amended: the backfill's runs write to {recorded} \
                     (produce a new backfill to use {given})"
                ))
            }
            OperationError::Reconcile(ReconcileError::JobChanged {
                role,
                job_id,
                now,
                recorded,
            }) => Self::usage(format!(
                "the {role} job {job_id} changed since the contract recorded it (settings sha256 \
                 {now} now, {recorded} recorded); review it, then record it with \
                 `backfill amend --reason ...`"
            )),
            e if e.is_refused() => Self::usage(e.to_string()),
            e => Self::Failed(anyhow::Error::new(e)),
        }
    }
}

impl From<ReconcileError> for CliError {
    /// A contract refusal is the operator's to fix (exit 2).
    fn from(e: ReconcileError) -> Self {
        OperationError::from(e).into()
    }
}

/// A refused backfill request in the flags' words.
pub(crate) fn request_problem(problem: &backfill_producer::RequestProblem) -> String {
    use backfill_producer::RequestProblem;
    match problem {
        RequestProblem::EndBeforeStart { start, end } => {
            format!("--end {end} is before --start {start}")
        }
        RequestProblem::JobId(_) => "--job-id must be a positive number".into(),
        RequestProblem::ConcurrencyCap(_) => "--concurrency-cap must be at least 1".into(),
        RequestProblem::ReservedParam(p) => format!("--param {p} is set by the fleet itself"),
    }
}

/// The flag that gives a value of the promotion contract.
fn contract_flag(field: backfill_reconciler::ContractField) -> &'static str {
    use backfill_reconciler::ContractField;
    match field {
        ContractField::DqPolicy => "--dq-policy",
        ContractField::NoDqPolicy => "--no-dq-policy",
        ContractField::RequireApproval => "--require-approval",
        ContractField::StagingTable => "--staging-table",
        ContractField::TargetTable => "--target-table",
        ContractField::PromotionJobId => "--promotion-job-id",
        ContractField::RollbackJobId => "--rollback-job-id",
    }
}
