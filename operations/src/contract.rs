//! The promotion contract: recorded when a backfill is produced, changed only by an
//! audited amendment, and only repeated (never overridden) by the commands it governs.

use backfill_contract::BackfillId;
use backfill_databricks::DatabricksClient;
use backfill_ledger::{ContractVersion, Ledger, LedgerError, PromotionContract};
use backfill_reconciler::{ContractFlags, recorded_job};

use crate::error::{JobRole, OperationError};
use crate::lookup::load_backfill;

/// Where a backfill's runs write unless its contract says otherwise.
pub const DEFAULT_STAGING_TABLE: &str = "main.usage.daily_customer_usage_staging";
/// The production table promoted into unless the contract says otherwise.
pub const DEFAULT_TARGET_TABLE: &str = "main.usage.daily_customer_usage";
/// The job that replaces partitions of the target from staging, by default.
pub const DEFAULT_PROMOTION_JOB_ID: i64 = 2;
/// The job that rewrites a partition of the target from an earlier version, by default.
pub const DEFAULT_ROLLBACK_JOB_ID: i64 = 3;

/// The contract a new backfill records: the given values, defaults for the rest, the
/// promotion and rollback jobs read from Databricks for their settings hashes.
pub async fn contract_for_produce(
    client: &DatabricksClient,
    given: &ContractFlags,
) -> Result<PromotionContract, OperationError> {
    let job = |role: JobRole, job_id: i64| async move {
        recorded_job(client, job_id)
            .await
            .map_err(|source| OperationError::ContractJob {
                role,
                job_id,
                source,
            })
    };
    Ok(PromotionContract {
        dq_policy: given.dq_policy.clone(),
        require_approval: given.require_approval.unwrap_or(false),
        staging_table: given
            .staging_table
            .clone()
            .unwrap_or_else(|| DEFAULT_STAGING_TABLE.to_owned()),
        target_table: given
            .target_table
            .clone()
            .unwrap_or_else(|| DEFAULT_TARGET_TABLE.to_owned()),
        promotion_job: job(
            JobRole::Promotion,
            given.promotion_job_id.unwrap_or(DEFAULT_PROMOTION_JOB_ID),
        )
        .await?,
        rollback_job: job(
            JobRole::Rollback,
            given.rollback_job_id.unwrap_or(DEFAULT_ROLLBACK_JOB_ID),
        )
        .await?,
    })
}

/// The recorded contract (none for a backfill produced before contracts were recorded),
/// after checking that every given value agrees with it:
/// [`OperationError::ContractDisagrees`] names each value that does not.
pub async fn recorded_agreeing(
    ledger: &Ledger,
    backfill_id: &BackfillId,
    given: &ContractFlags,
) -> Result<Option<ContractVersion>, OperationError> {
    let Some(recorded) = ledger.contract(backfill_id).await? else {
        return Ok(None);
    };
    let disagreements = given.disagreements(&recorded.contract);
    if disagreements.is_empty() {
        return Ok(Some(recorded));
    }
    Err(OperationError::ContractDisagrees {
        backfill_id: backfill_id.clone(),
        disagreements,
        recorded: Box::new(recorded),
    })
}

/// A new contract version, recorded.
#[derive(Debug, Clone)]
pub struct Amendment {
    /// The version amended (0 when the backfill had none).
    pub from_version: i64,
    pub to_version: i64,
    /// Each change, in words.
    pub changes: Vec<String>,
    pub contract: PromotionContract,
}

/// Records the next contract version of the backfill with the given values applied (its
/// first, from defaults, when it had none), by compare-and-set on the version number.
pub async fn amend(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    given: &ContractFlags,
    by: &str,
    reason: &str,
) -> Result<Amendment, OperationError> {
    match load_backfill(ledger, backfill_id).await {
        Err(OperationError::UnknownBackfill(_)) => {
            return Err(OperationError::Refused(format!(
                "backfill {backfill_id} is not registered"
            )));
        }
        other => other?,
    };
    let current = ledger.contract(backfill_id).await?;
    let (from_version, contract) = match &current {
        Some(c) => (c.version, given.amend(client, &c.contract).await?),
        // A backfill registered before contracts were recorded gets its first one.
        None => (0, contract_for_produce(client, given).await?),
    };
    let to_version = ledger
        .amend_contract(backfill_id, from_version, &contract, by, reason)
        .await
        .map_err(|e| match e {
            LedgerError::Refused(m) => OperationError::Refused(m),
            other => OperationError::Ledger(other),
        })?;
    let changes = current
        .map(|c| c.contract.changes_to(&contract))
        .unwrap_or_else(|| vec!["first contract recorded".to_owned()]);
    Ok(Amendment {
        from_version,
        to_version,
        changes,
        contract,
    })
}
