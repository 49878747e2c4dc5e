//! Promotion and rollback under a backfill's recorded contract.

use backfill_contract::{BackfillId, PartitionDate};
use backfill_databricks::DatabricksClient;
use backfill_ledger::{Action, ActionState, ContractVersion, Ledger, NewEvent};
use backfill_reconciler::{PromotionOutcome, PromotionSettings, promote, rollback};

use crate::error::OperationError;

/// What a promotion asks.
#[derive(Debug, Clone)]
pub struct PromoteRequest<'a> {
    /// Who promotes (recorded in the audit trail).
    pub actor: &'a str,
    /// Record this operator's approval of the contract version first.
    pub approve_by: Option<&'a str>,
    pub settings: PromotionSettings,
}

/// Promotes every proven, not yet promoted partition attempt of the backfill under its
/// recorded `contract`. A contract without a data-quality policy is recorded as such in
/// the audit trail first; an approval asked for is recorded next, and `on_approval` hears
/// whether it was the first for this contract version.
pub async fn promote_under(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    contract: &ContractVersion,
    request: &PromoteRequest<'_>,
    on_approval: impl FnOnce(bool),
) -> Result<PromotionOutcome, OperationError> {
    if contract.contract.dq_policy.is_none() {
        ledger
            .record_event(
                &NewEvent::backfill(request.actor, backfill_id, "promoting_without_policy").detail(
                    format!(
                        "contract version {} records no data-quality policy: partitions are promoted on run success alone",
                        contract.version
                    ),
                ),
            )
            .await?;
    }
    if let Some(by) = request.approve_by {
        let first = ledger.approve(backfill_id, contract.version, by).await?;
        on_approval(first);
    }
    Ok(promote(
        ledger,
        client,
        backfill_id,
        &request.settings,
        request.actor,
    )
    .await?)
}

/// What a rollback did: each action, and whether every one succeeded.
#[derive(Debug, Clone)]
pub struct RollbackOutcome {
    pub actions: Vec<Action>,
    pub all_succeeded: bool,
}

/// Rolls back the given partitions (every promoted one when none is given) from their
/// recorded pre-promotion versions, one action per partition.
pub async fn roll_back(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    partitions: &[PartitionDate],
    settings: &PromotionSettings,
    actor: &str,
) -> Result<RollbackOutcome, OperationError> {
    let actions = rollback(ledger, client, backfill_id, partitions, settings, actor).await?;
    let all_succeeded = actions.iter().all(|a| a.state == ActionState::Succeeded);
    Ok(RollbackOutcome {
        actions,
        all_succeeded,
    })
}
