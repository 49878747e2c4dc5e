//! Promotion of the backfilled staging data into production, in waves, only after proof;
//! and partition-scoped rollback from the recorded pre-promotion version.
//!
//! Each wave and each rollback is an action created once in the ledger (racing
//! reconcilers share it) with an idempotency token derived from it, so a repeated or
//! concurrent promotion starts one Databricks run per wave, never two.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backfill_contract::{BackfillId, PartitionDate};
use backfill_databricks::models::RunNowRequest;
use backfill_databricks::{DatabricksClient, RunOutcome, classify};
use backfill_ledger::{Action, Ledger};
use serde_json::{Value, json};

use crate::{DqPolicy, ReconcileError, Report, reconcile_once};

/// Where and how to promote and roll back.
#[derive(Debug, Clone)]
pub struct PromotionSettings {
    pub promotion_job_id: i64,
    pub rollback_job_id: i64,
    /// Partitions per promotion run, oldest first.
    pub wave_size: usize,
    pub staging_table: String,
    pub target_table: String,
    /// Promote only after an operator's approval is recorded.
    pub require_approval: bool,
    /// How often to look at a promotion or rollback run, and for how long at most.
    pub poll: Duration,
    pub timeout: Duration,
}

/// What a promotion attempt came to.
#[derive(Debug, Clone)]
pub enum PromotionOutcome {
    /// Not complete, or a data-quality rule failed: nothing was promoted.
    NotReady(Report),
    /// Complete and green, waiting for `backfill promote --approve`.
    AwaitingApproval,
    /// Every wave promoted (now or before), in order.
    Promoted(Vec<Action>),
    /// A wave's run failed; later waves were not started.
    Failed(Action),
}

/// Runs the action's job (once, by its token), waits for it, records the outcome and the
/// table versions its output reports. Returns the action as it ended.
#[allow(clippy::too_many_arguments)]
async fn carry_out(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    action: Action,
    job_id: i64,
    params: BTreeMap<String, String>,
    settings: &PromotionSettings,
    actor: &str,
) -> Result<Action, ReconcileError> {
    if action.state == "succeeded" || action.state == "failed" {
        return Ok(action);
    }
    let request = RunNowRequest {
        job_id,
        job_parameters: params,
        idempotency_token: Some(action.token.clone()),
    };
    let run_id = client.run_now(&request).await?.run_id;
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
                "{} run {run_id} still running after {:?}",
                action.action_key, settings.timeout
            )));
        }
        tokio::time::sleep(settings.poll).await;
    };
    let (state, detail) = match classify(&run) {
        RunOutcome::Succeeded => {
            let task = run.tasks.last().and_then(|t| t.run_id).unwrap_or(run_id);
            let output = client.get_run_output(task).await?;
            let reported: Value = output
                .notebook_output
                .and_then(|o| o.result)
                .and_then(|r| serde_json::from_str(&r).ok())
                .unwrap_or(Value::Null);
            (
                "succeeded",
                json!({"run_page_url": run.run_page_url, "reported": reported}).to_string(),
            )
        }
        other => (
            "failed",
            json!({"run_page_url": run.run_page_url, "outcome": format!("{other:?}")}).to_string(),
        ),
    };
    ledger
        .move_action(
            backfill_id,
            &action.action_key,
            &["requested", "running"],
            state,
            Some(run_id),
            &detail,
            actor,
        )
        .await?;
    ledger
        .action(backfill_id, &action.action_key)
        .await?
        .ok_or_else(|| ReconcileError::Timeout(format!("action {} vanished", action.action_key)))
}

/// Promotes a complete, green (and, if required, approved) backfill wave by wave.
pub async fn promote(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    settings: &PromotionSettings,
    policy: Option<&DqPolicy>,
    actor: &str,
) -> Result<PromotionOutcome, ReconcileError> {
    let report = reconcile_once(ledger, client, backfill_id, actor, policy).await?;
    if !report.complete {
        return Ok(PromotionOutcome::NotReady(report));
    }
    if settings.require_approval && ledger.approval(backfill_id).await?.is_none() {
        return Ok(PromotionOutcome::AwaitingApproval);
    }
    let backfill = ledger
        .backfill(backfill_id)
        .await?
        .ok_or_else(|| ReconcileError::UnknownBackfill(backfill_id.to_string()))?;
    let dates: Vec<String> = ledger
        .partitions(backfill_id)
        .await?
        .iter()
        .map(|p| p.date.to_string())
        .collect();
    let mut done = Vec::new();
    for (i, wave) in dates.chunks(settings.wave_size.max(1)).enumerate() {
        let n = i as i64 + 1;
        let key = format!("promote-w{n}");
        let token = format!("promote-{backfill_id}-w{n}");
        let action = ledger
            .create_action(backfill_id, &key, "promote", n, wave, &token, actor)
            .await?;
        let params = BTreeMap::from([
            ("backfill_id".to_owned(), backfill_id.to_string()),
            ("manifest_id".to_owned(), backfill.manifest_id.clone()),
            ("partitions".to_owned(), wave.join(",")),
            ("staging_table".to_owned(), settings.staging_table.clone()),
            ("target_table".to_owned(), settings.target_table.clone()),
        ]);
        let action = carry_out(
            ledger,
            client,
            backfill_id,
            action,
            settings.promotion_job_id,
            params,
            settings,
            actor,
        )
        .await?;
        if action.state != "succeeded" {
            return Ok(PromotionOutcome::Failed(action));
        }
        done.push(action);
    }
    Ok(PromotionOutcome::Promoted(done))
}

/// The version of the target table before the wave that promoted it, by partition.
fn promoted_versions(actions: &[Action]) -> BTreeMap<String, (i64, String, i64)> {
    let mut out = BTreeMap::new();
    for a in actions
        .iter()
        .filter(|a| a.kind == "promote" && a.state == "succeeded")
    {
        let detail: Value = serde_json::from_str(&a.detail).unwrap_or(Value::Null);
        let Some(before) = detail["reported"]["version_before"].as_i64() else {
            continue;
        };
        for p in &a.partitions {
            out.insert(p.clone(), (before, a.action_key.clone(), a.seq));
        }
    }
    out
}

/// Rolls back the given partitions (all promoted ones when empty), each from the table
/// version recorded before its promotion: a partition-scoped rewrite, never a table-wide
/// restore. Idempotent: a partition is rolled back once per promotion.
pub async fn rollback(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    partitions: &[PartitionDate],
    settings: &PromotionSettings,
    actor: &str,
) -> Result<Vec<Action>, ReconcileError> {
    let promoted = promoted_versions(&ledger.actions(backfill_id).await?);
    let wanted: Vec<String> = if partitions.is_empty() {
        promoted.keys().cloned().collect()
    } else {
        partitions.iter().map(ToString::to_string).collect()
    };
    let mut done = Vec::new();
    for date in wanted {
        let Some((before, promotion, seq)) = promoted.get(&date).cloned() else {
            return Err(ReconcileError::NotPromoted(date));
        };
        let key = format!("rollback-{date}-{promotion}");
        let token = format!("rollback-{backfill_id}-{}-w{seq}", date.replace('-', ""));
        let action = ledger
            .create_action(
                backfill_id,
                &key,
                "rollback",
                seq,
                std::slice::from_ref(&date),
                &token,
                actor,
            )
            .await?;
        let params = BTreeMap::from([
            ("backfill_id".to_owned(), backfill_id.to_string()),
            ("partition_date".to_owned(), date.clone()),
            ("target_table".to_owned(), settings.target_table.clone()),
            ("restore_version".to_owned(), before.to_string()),
        ]);
        done.push(
            carry_out(
                ledger,
                client,
                backfill_id,
                action,
                settings.rollback_job_id,
                params,
                settings,
                actor,
            )
            .await?,
        );
    }
    Ok(done)
}
