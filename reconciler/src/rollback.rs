//! Partition-scoped rollback: each partition restored to the target's version before its
//! latest promotion, in the table it was promoted into, as an action keyed by partition,
//! promotion and try.

use std::collections::BTreeMap;

use backfill_contract::jobs::rollback;
use backfill_contract::{BackfillId, PartitionDate, rollback_token};
use backfill_databricks::DatabricksClient;
use backfill_ledger::{Action, ActionKind, ActionState, Ledger, PromotionItem};

use crate::ReconcileError;
use crate::action_run::{Ended, PromotionSettings, run_action};
use crate::contract::{check_job_unchanged, contract_of};

/// Each partition's latest promotion that succeeded.
fn latest_promotions(items: Vec<PromotionItem>) -> BTreeMap<String, PromotionItem> {
    let mut out: BTreeMap<String, PromotionItem> = BTreeMap::new();
    for i in items
        .into_iter()
        .filter(|i| i.state == ActionState::Succeeded)
    {
        if out.get(&i.partition_date).is_none_or(|o| o.seq < i.seq) {
            out.insert(i.partition_date.clone(), i);
        }
    }
    out
}

/// Rolls back the given partitions (all promoted ones when empty), each to the target's
/// version before its latest promotion: a partition-scoped rewrite, never a table-wide
/// restore. Idempotent: a partition is rolled back once per promotion.
pub async fn rollback(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    partitions: &[PartitionDate],
    settings: &PromotionSettings,
    actor: &str,
) -> Result<Vec<Action>, ReconcileError> {
    let (contract_version, contract) = contract_of(ledger, backfill_id).await?;
    let latest = latest_promotions(ledger.promotion_items(backfill_id).await?);
    let wanted: Vec<String> = if partitions.is_empty() {
        latest.keys().cloned().collect()
    } else {
        partitions.iter().map(ToString::to_string).collect()
    };
    if wanted.is_empty() {
        return Ok(Vec::new());
    }
    check_job_unchanged(client, &contract.rollback_job, "rollback").await?;
    let ledger_id = ledger.ledger_id().await?;
    let actions = ledger.actions(backfill_id).await?;
    let history = ledger.contract_history(backfill_id).await?;
    let mut done = Vec::new();
    for date in wanted {
        let Some(item) = latest.get(&date) else {
            return Err(ReconcileError::NotPromoted(date));
        };
        // The table the partition was promoted into: the version number is of its history.
        let promoted_under = actions
            .iter()
            .find(|a| a.action_key == item.action_key)
            .and_then(|a| a.contract_version);
        let target_table = history
            .iter()
            .find(|c| Some(c.version) == promoted_under)
            .map_or_else(
                || contract.target_table.clone(),
                |c| c.contract.target_table.clone(),
            );
        let Some(before) = item.version_before else {
            return Err(ReconcileError::Contract(format!(
                "promotion {} of {date} reported no version_before: nothing to restore from",
                item.action_key
            )));
        };
        // A failed rollback is tried again as a new action (a new token); a finished one
        // is not repeated; an unfinished one is followed.
        let prefix = format!("rollback-{date}-{}-", item.action_key);
        let tries: Vec<Action> = actions
            .iter()
            .filter(|a| a.kind == ActionKind::Rollback && a.action_key.starts_with(&prefix))
            .cloned()
            .collect();
        if let Some(finished) = tries.iter().find(|a| a.state == ActionState::Succeeded) {
            done.push(finished.clone());
            continue;
        }
        let action = match tries.iter().find(|a| a.state.is_live()) {
            Some(live) => live.clone(),
            None => {
                let key = format!("{prefix}{}", tries.len() + 1);
                let token = rollback_token(&ledger_id, backfill_id, &key);
                ledger
                    .create_action(
                        backfill_id,
                        &key,
                        ActionKind::Rollback,
                        item.seq,
                        std::slice::from_ref(&date),
                        &token,
                        Some(contract_version),
                        actor,
                    )
                    .await?
            }
        };
        let key = action.action_key.clone();
        if !action.state.is_live() {
            done.push(action);
            continue;
        }
        let params = BTreeMap::from([
            (
                rollback::param::BACKFILL_ID.to_owned(),
                backfill_id.to_string(),
            ),
            (rollback::param::PARTITION_DATE.to_owned(), date.clone()),
            (rollback::param::TARGET_TABLE.to_owned(), target_table),
            (
                rollback::param::RESTORE_VERSION.to_owned(),
                before.to_string(),
            ),
        ]);
        let ended = run_action(
            ledger,
            client,
            backfill_id,
            &action,
            contract.rollback_job.job_id,
            params,
            settings,
            actor,
        )
        .await?;
        match ended {
            Ended::Succeeded { run_id, detail, .. } => {
                ledger
                    .complete_rollback(
                        backfill_id,
                        &key,
                        run_id,
                        &detail,
                        (&item.action_key, &date),
                        actor,
                    )
                    .await?;
            }
            Ended::Failed { run_id, detail } => {
                ledger
                    .fail_action(backfill_id, &key, run_id, &detail, actor)
                    .await?;
            }
        }
        done.push(
            ledger
                .action(backfill_id, &key)
                .await?
                .ok_or_else(|| ReconcileError::Timeout(format!("action {key} vanished")))?,
        );
    }
    Ok(done)
}
