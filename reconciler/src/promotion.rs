//! Promotion of proven partition attempts into production (SPEC invariant 10): what
//! governs it is the backfill's recorded contract (rollback, under the same contract, is
//! in `rollback`).
//!
//! Each proven attempt is promoted once, at the staging version its run wrote: the
//! promotion job is told that version per partition and copies exactly that snapshot. A
//! partition re-run after promotion is proven and promoted again. Every promotion is an
//! action with its own sequence number and token; a failed one is retried as a new action
//! (a new token: the old one would return the failed run). Wave size only batches work.

use std::collections::{HashMap, HashSet};

use backfill_contract::{BackfillId, PartitionDate};
use backfill_databricks::DatabricksClient;
use backfill_ledger::{Action, ActionKind, ActionState, Ledger};
use serde_json::json;

use crate::action_run::PromotionSettings;
use crate::contract::{check_job_unchanged, contract_of};
use crate::promotion_wave::carry_out_promotion;
use crate::{ReconcileError, Report, reconcile_once};

/// What a promotion came to.
#[derive(Debug, Clone)]
pub enum PromotionOutcome {
    /// Not complete, or a data-quality rule failed: nothing was promoted.
    NotReady(Report),
    /// Complete and green, waiting for `backfill promote --approve`.
    AwaitingApproval,
    /// Every proven partition attempt is promoted: `actions` ran now (in order),
    /// `already` partitions were promoted at their proven snapshot before.
    Promoted {
        actions: Vec<Action>,
        already: usize,
        /// Partitions whose proven attempt was promoted and then rolled back: not promoted
        /// again (a re-run is).
        rolled_back: usize,
        /// Partitions another reconciler is promoting right now.
        elsewhere: usize,
        /// True when the contract records no data-quality policy.
        without_policy: bool,
    },
    /// A promotion run failed; later waves were not started. `promote` again retries it
    /// as a new action.
    Failed(Action),
}

/// Promotes every proven, not yet promoted partition attempt of a complete, green (and, if
/// the contract requires it, approved) backfill, in waves.
pub async fn promote(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    settings: &PromotionSettings,
    actor: &str,
) -> Result<PromotionOutcome, ReconcileError> {
    let (contract_version, contract) = contract_of(ledger, backfill_id).await?;
    let report = reconcile_once(ledger, client, backfill_id, actor).await?;
    if !report.complete {
        return Ok(PromotionOutcome::NotReady(report));
    }
    if contract.require_approval
        && ledger
            .approval(backfill_id, contract_version)
            .await?
            .is_none()
    {
        return Ok(PromotionOutcome::AwaitingApproval);
    }
    check_job_unchanged(client, &contract.promotion_job, "promotion").await?;
    let backfill = ledger
        .backfill(backfill_id)
        .await?
        .ok_or_else(|| ReconcileError::UnknownBackfill(backfill_id.to_string()))?;
    let fresh: HashSet<(String, i64, Option<i64>)> = report
        .proven
        .iter()
        .map(|p| (p.date.to_string(), p.attempt, p.staging_version))
        .collect();
    // Follows an action to its end: `Err` with it when it did not succeed.
    let carry_out = async |action| -> Result<Result<Action, Action>, ReconcileError> {
        let manifest_id = &backfill.manifest_id;
        let action = carry_out_promotion(
            ledger,
            client,
            backfill_id,
            manifest_id,
            action,
            settings,
            actor,
        )
        .await?;
        Ok(if action.state == ActionState::Succeeded {
            Ok(action)
        } else {
            Err(action)
        })
    };
    let mut done = Vec::new();
    // Actions left unfinished (a crash, a timeout, a racing reconciler) first: their token
    // returns the run they started, if any. One whose partitions are no longer all proven
    // as recorded (a re-run since) and that may not have started is superseded instead;
    // one that did start is followed to its end (the promotion job runs one at a time, in
    // order, so the newer proof promoted after it still wins).
    for action in ledger.actions(backfill_id).await? {
        if action.kind != ActionKind::Promote || !action.state.is_live() {
            continue;
        }
        let items = ledger.promotion_items(backfill_id).await?;
        let stale: Vec<String> = items
            .iter()
            .filter(|i| i.action_key == action.action_key)
            .filter(|i| {
                !fresh.contains(&(i.partition_date.clone(), i.attempt, Some(i.staging_version)))
            })
            .map(|i| format!("{} attempt {}", i.partition_date, i.attempt))
            .collect();
        if !stale.is_empty() && action.state == ActionState::Requested {
            let detail = json!({"superseded": format!(
                "no longer the proven attempt: {}; promoted anew instead", stale.join(", ")
            )})
            .to_string();
            ledger
                .move_action(
                    backfill_id,
                    &action.action_key,
                    &[ActionState::Requested],
                    ActionState::Failed,
                    None,
                    &detail,
                    actor,
                )
                .await?;
            continue;
        }
        match carry_out(action).await? {
            Ok(action) => done.push(action),
            Err(failed) => return Ok(PromotionOutcome::Failed(failed)),
        }
    }
    let items = ledger.promotion_items(backfill_id).await?;
    let resumed: HashSet<&str> = done.iter().map(|a| a.action_key.as_str()).collect();
    let promoted: HashMap<(String, i64, i64), (bool, bool)> = items
        .iter()
        .filter(|i| i.state == ActionState::Succeeded)
        .map(|i| {
            (
                (i.partition_date.clone(), i.attempt, i.staging_version),
                (
                    i.rolled_back_by.is_some(),
                    resumed.contains(i.action_key.as_str()),
                ),
            )
        })
        .collect();
    let mut already = 0;
    let mut rolled_back = 0;
    let mut todo: Vec<(PartitionDate, i64, i64)> = Vec::new();
    for p in &report.proven {
        let Some(version) = p.staging_version else {
            return Err(ReconcileError::Contract(format!(
                "partition {} was proven without a staging version",
                p.date
            )));
        };
        match promoted.get(&(p.date.to_string(), p.attempt, version)) {
            // Promoted by an action this call followed to its end: counted with it.
            Some((false, true)) => {}
            Some((false, false)) => already += 1,
            Some((true, _)) => rolled_back += 1,
            None => todo.push((p.date, p.attempt, version)),
        }
    }
    let ledger_id = ledger.ledger_id().await?;
    let mut elsewhere = 0;
    for wave in todo.chunks(settings.wave_size.max(1)) {
        let Some(action) = ledger
            .create_promotion(backfill_id, wave, contract_version, &ledger_id, actor)
            .await?
        else {
            elsewhere += wave.len();
            continue;
        };
        elsewhere += wave.len() - action.partitions.len();
        match carry_out(action).await? {
            Ok(action) => done.push(action),
            Err(failed) => return Ok(PromotionOutcome::Failed(failed)),
        }
    }
    if elsewhere > 0 {
        // What another reconciler held may have finished meanwhile: count only what is
        // still not promoted.
        let now: HashSet<(String, i64, i64)> = ledger
            .promotion_items(backfill_id)
            .await?
            .into_iter()
            .filter(|i| i.state == ActionState::Succeeded)
            .map(|i| (i.partition_date, i.attempt, i.staging_version))
            .collect();
        let pending = todo
            .iter()
            .filter(|(d, a, v)| !now.contains(&(d.to_string(), *a, *v)))
            .count();
        already += elsewhere - pending.min(elsewhere);
        elsewhere = pending.min(elsewhere);
    }
    Ok(PromotionOutcome::Promoted {
        actions: done,
        already,
        rolled_back,
        elsewhere,
        without_policy: contract.dq_policy.is_none(),
    })
}
