//! Promotion of proven partition attempts into production, and partition-scoped rollback
//! (SPEC invariant 10): what governs both is the backfill's recorded contract.
//!
//! Each proven attempt is promoted once, at the staging version its run wrote: the
//! promotion job is told that version per partition and copies exactly that snapshot. A
//! partition re-run after promotion is proven and promoted again. Every promotion is an
//! action with its own sequence number and token; a failed one is retried as a new action
//! (a new token: the old one would return the failed run). Wave size only batches work.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use backfill_contract::jobs::promotion::{self, item};
use backfill_contract::jobs::rollback;
use backfill_contract::{BackfillId, PartitionDate, rollback_token};
use backfill_databricks::models::RunNowRequest;
use backfill_databricks::{DatabricksClient, RunOutcome, classify};
use backfill_ledger::{Action, Ledger, PromotedVersions, PromotionContract, PromotionItem};
use serde_json::{Value, json};

use crate::contract::check_job_unchanged;
use crate::{ReconcileError, Report, reconcile_once};

/// How to carry out promotions and rollbacks (what and where is the contract's).
#[derive(Debug, Clone)]
pub struct PromotionSettings {
    /// Partitions per promotion run, oldest first. Only batches: it never changes what
    /// is promoted.
    pub wave_size: usize,
    /// How often to look at a promotion or rollback run, and for how long at most.
    pub poll: Duration,
    pub timeout: Duration,
}

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

/// How an action's run ended.
enum Ended {
    Succeeded {
        run_id: i64,
        detail: String,
        reported: Value,
    },
    Failed {
        run_id: Option<i64>,
        detail: String,
    },
}

/// Runs the action's job (once, by its token), waits for it and reads what it reported.
/// The caller records the end.
#[allow(clippy::too_many_arguments)] // one run: what, where, how long, by whom
async fn run_action(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    action: &Action,
    job_id: i64,
    params: BTreeMap<String, String>,
    settings: &PromotionSettings,
    actor: &str,
) -> Result<Ended, ReconcileError> {
    let request = RunNowRequest {
        job_id,
        job_parameters: params,
        idempotency_token: Some(action.token.clone()),
    };
    let run_id = match client.run_now(&request).await {
        Ok(r) => r.run_id,
        // Refused for good (the job is gone, no permission, bad parameters): no run was
        // started, and retrying the same request cannot help. The action ends failed, so
        // the next attempt is a new action (after, say, an amendment naming another job).
        Err(e) if e.is_permanent() => {
            return Ok(Ended::Failed {
                run_id: None,
                detail: json!({"refused": e.to_string()}).to_string(),
            });
        }
        Err(e) => return Err(e.into()),
    };
    ledger
        .move_action(
            backfill_id,
            &action.action_key,
            &["requested"],
            "running",
            Some(run_id),
            "",
            actor,
        )
        .await?;
    let deadline = Instant::now() + settings.timeout;
    let run = loop {
        let run = client.get_run(run_id).await?;
        if !matches!(classify(&run), RunOutcome::InProgress { .. }) {
            break run;
        }
        if Instant::now() > deadline {
            return Err(ReconcileError::Timeout(format!(
                "{} run {run_id} still running after {:?}; run the command again to follow it",
                action.action_key, settings.timeout
            )));
        }
        tokio::time::sleep(settings.poll).await;
    };
    Ok(match classify(&run) {
        RunOutcome::Succeeded => {
            let task = run.tasks.last().and_then(|t| t.run_id).unwrap_or(run_id);
            let output = client.get_run_output(task).await?;
            let reported: Value = output
                .notebook_output
                .and_then(|o| o.result)
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or(Value::Null);
            Ended::Succeeded {
                run_id,
                detail: json!({"run_page_url": run.run_page_url, "reported": reported}).to_string(),
                reported,
            }
        }
        other => Ended::Failed {
            run_id: Some(run_id),
            detail: json!({"run_page_url": run.run_page_url, "outcome": format!("{other:?}")})
                .to_string(),
        },
    })
}

/// The target's versions around each partition's commit, from the promotion job's output:
/// per partition when reported, else the whole run's before and after.
fn promoted_versions(reported: &Value, items: &[PromotionItem]) -> Vec<PromotedVersions> {
    let per_partition: HashMap<&str, &Value> = reported[promotion::result::PARTITIONS]
        .as_array()
        .map(|ps| {
            ps.iter()
                .filter_map(|p| p[item::PARTITION_DATE].as_str().map(|d| (d, p)))
                .collect()
        })
        .unwrap_or_default();
    items
        .iter()
        .map(|i| {
            let source = per_partition
                .get(i.partition_date.as_str())
                .copied()
                .unwrap_or(reported);
            PromotedVersions {
                partition_date: i.partition_date.clone(),
                version_before: source[item::VERSION_BEFORE].as_i64(),
                version_after: source[item::VERSION_AFTER].as_i64(),
            }
        })
        .collect()
}

/// The contract a backfill's promotion or rollback runs under, with its version.
async fn contract_of(
    ledger: &Ledger,
    backfill_id: &BackfillId,
) -> Result<(i64, PromotionContract), ReconcileError> {
    ledger
        .contract(backfill_id)
        .await?
        .map(|c| (c.version, c.contract))
        .ok_or_else(|| {
            ReconcileError::Contract(format!(
                "backfill {backfill_id} has no recorded promotion contract (it was produced before \
                 contracts were recorded); record one with `backfill amend --backfill-id {backfill_id} --reason ...`"
            ))
        })
}

/// Carries one promotion action out: runs the job with each item's proven staging version,
/// records the end (with the target's versions) in one step.
#[allow(clippy::too_many_arguments)]
async fn carry_out_promotion(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    manifest_id: &str,
    action: Action,
    settings: &PromotionSettings,
    actor: &str,
) -> Result<Action, ReconcileError> {
    let history = ledger.contract_history(backfill_id).await?;
    let contract = history
        .iter()
        .find(|c| Some(c.version) == action.contract_version)
        .map(|c| c.contract.clone())
        .ok_or_else(|| {
            ReconcileError::Contract(format!(
                "{backfill_id}: {} names contract version {:?}, which is not on record",
                action.action_key, action.contract_version
            ))
        })?;
    let items: Vec<PromotionItem> = ledger
        .promotion_items(backfill_id)
        .await?
        .into_iter()
        .filter(|i| i.action_key == action.action_key)
        .collect();
    let partitions: Vec<Value> = items
        .iter()
        .map(|i| {
            json!({item::PARTITION_DATE: i.partition_date, item::STAGING_VERSION: i.staging_version})
        })
        .collect();
    use promotion::param;
    let params = BTreeMap::from([
        (param::BACKFILL_ID.to_owned(), backfill_id.to_string()),
        (param::MANIFEST_ID.to_owned(), manifest_id.to_owned()),
        (
            param::STAGING_TABLE.to_owned(),
            contract.staging_table.clone(),
        ),
        (
            param::TARGET_TABLE.to_owned(),
            contract.target_table.clone(),
        ),
        (
            param::PARTITIONS.to_owned(),
            Value::from(partitions).to_string(),
        ),
    ]);
    let ended = run_action(
        ledger,
        client,
        backfill_id,
        &action,
        contract.promotion_job.job_id,
        params,
        settings,
        actor,
    )
    .await?;
    match ended {
        Ended::Succeeded {
            run_id,
            detail,
            reported,
        } => {
            let versions = promoted_versions(&reported, &items);
            ledger
                .complete_promotion(
                    backfill_id,
                    &action.action_key,
                    run_id,
                    &detail,
                    &versions,
                    actor,
                )
                .await?;
        }
        Ended::Failed { run_id, detail } => {
            ledger
                .move_action(
                    backfill_id,
                    &action.action_key,
                    &["requested", "running"],
                    "failed",
                    run_id,
                    &detail,
                    actor,
                )
                .await?;
        }
    }
    ledger
        .action(backfill_id, &action.action_key)
        .await?
        .ok_or_else(|| ReconcileError::Timeout(format!("action {} vanished", action.action_key)))
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
    let mut done = Vec::new();
    // Actions left unfinished (a crash, a timeout, a racing reconciler) first: their token
    // returns the run they started, if any. One whose partitions are no longer all proven
    // as recorded (a re-run since) and that may not have started is superseded instead;
    // one that did start is followed to its end (the promotion job runs one at a time, in
    // order, so the newer proof promoted after it still wins).
    for action in ledger.actions(backfill_id).await? {
        if action.kind != "promote" || !matches!(action.state.as_str(), "requested" | "running") {
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
        if !stale.is_empty() && action.state == "requested" {
            let detail = json!({"superseded": format!(
                "no longer the proven attempt: {}; promoted anew instead", stale.join(", ")
            )})
            .to_string();
            ledger
                .move_action(
                    backfill_id,
                    &action.action_key,
                    &["requested"],
                    "failed",
                    None,
                    &detail,
                    actor,
                )
                .await?;
            continue;
        }
        let action = carry_out_promotion(
            ledger,
            client,
            backfill_id,
            &backfill.manifest_id,
            action,
            settings,
            actor,
        )
        .await?;
        if action.state != "succeeded" {
            return Ok(PromotionOutcome::Failed(action));
        }
        done.push(action);
    }
    let items = ledger.promotion_items(backfill_id).await?;
    let resumed: HashSet<&str> = done.iter().map(|a| a.action_key.as_str()).collect();
    let promoted: HashMap<(String, i64, i64), (bool, bool)> = items
        .iter()
        .filter(|i| i.state == "succeeded")
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
        let action = carry_out_promotion(
            ledger,
            client,
            backfill_id,
            &backfill.manifest_id,
            action,
            settings,
            actor,
        )
        .await?;
        if action.state != "succeeded" {
            return Ok(PromotionOutcome::Failed(action));
        }
        done.push(action);
    }
    if elsewhere > 0 {
        // What another reconciler held may have finished meanwhile: count only what is
        // still not promoted.
        let now: HashSet<(String, i64, i64)> = ledger
            .promotion_items(backfill_id)
            .await?
            .into_iter()
            .filter(|i| i.state == "succeeded")
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

/// Each partition's latest promotion that succeeded.
fn latest_promotions(items: Vec<PromotionItem>) -> BTreeMap<String, PromotionItem> {
    let mut out: BTreeMap<String, PromotionItem> = BTreeMap::new();
    for i in items.into_iter().filter(|i| i.state == "succeeded") {
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
            .filter(|a| a.kind == "rollback" && a.action_key.starts_with(&prefix))
            .cloned()
            .collect();
        if let Some(finished) = tries.iter().find(|a| a.state == "succeeded") {
            done.push(finished.clone());
            continue;
        }
        let action = match tries
            .iter()
            .find(|a| matches!(a.state.as_str(), "requested" | "running"))
        {
            Some(live) => live.clone(),
            None => {
                let key = format!("{prefix}{}", tries.len() + 1);
                let token = rollback_token(&ledger_id, backfill_id, &key);
                ledger
                    .create_action(
                        backfill_id,
                        &key,
                        "rollback",
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
        if matches!(action.state.as_str(), "succeeded" | "failed") {
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
                    .move_action(
                        backfill_id,
                        &key,
                        &["requested", "running"],
                        "failed",
                        run_id,
                        &detail,
                        actor,
                    )
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
