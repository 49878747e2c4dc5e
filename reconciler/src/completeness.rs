//! One completeness pass over a backfill: every partition proven (its run re-read, what it
//! reported on record, the recorded policy passed) or reported as a gap.

use std::collections::HashMap;

use backfill_contract::jobs::backfill::result;
use backfill_contract::{BackfillId, RunId};
use backfill_databricks::DatabricksClient;
use backfill_databricks::models::Run;
use backfill_ledger::{
    Backfill, DqResult, Ledger, Partition, PartitionState, PromotionContract, Proof,
};
use futures_util::StreamExt;

use crate::contract::policy_of;
use crate::verify::verify;
use crate::{DqPolicy, Gap, GapKind, Proven, ReconcileError, Report};

/// Which runs a pass reads again from Databricks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reverify {
    /// Every succeeded partition's run (what promotion and `reconcile --once` do).
    Everything,
    /// Only runs not yet verified (a service's later passes): a partition already verified
    /// at its attempt, and proven under the contract's current policy, is taken as proven.
    Unverified,
}

/// Re-reads every succeeded partition's run, gates it on the backfill's recorded policy,
/// and reports what is not proven.
pub async fn reconcile_once(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    actor: &str,
) -> Result<Report, ReconcileError> {
    reconcile_pass(ledger, client, backfill_id, actor, Reverify::Everything).await
}

/// What a pass proves against: the backfill, its contract and policy, what is on record.
struct Context<'a> {
    ledger: &'a Ledger,
    client: &'a DatabricksClient,
    backfill: Backfill,
    contract: Option<PromotionContract>,
    policy: Option<DqPolicy>,
    proofs: HashMap<(String, i64), Proof>,
    verdicts: HashMap<(String, i64), Vec<DqResult>>,
    actor: &'a str,
    reverify: Reverify,
}

impl Context<'_> {
    fn policy_key(&self) -> &str {
        self.contract
            .as_ref()
            .map_or("-", PromotionContract::policy_key)
    }
}

/// A pass that re-reads what `reverify` says.
pub async fn reconcile_pass(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    actor: &str,
    reverify: Reverify,
) -> Result<Report, ReconcileError> {
    let backfill = ledger
        .backfill(backfill_id)
        .await?
        .ok_or_else(|| ReconcileError::UnknownBackfill(backfill_id.to_string()))?;
    let contract = ledger.contract(backfill_id).await?;
    let contract_version = contract.as_ref().map(|c| c.version);
    let contract = contract.map(|c| c.contract);
    let policy = contract.as_ref().map(policy_of).transpose()?.flatten();
    let partitions = ledger.partitions(backfill_id).await?;
    let proofs = ledger
        .proofs(backfill_id)
        .await?
        .into_iter()
        .map(|p| ((p.partition_date.clone(), p.attempt), p))
        .collect();
    let policy_key = contract
        .as_ref()
        .map_or("-", PromotionContract::policy_key)
        .to_owned();
    let mut verdicts: HashMap<(String, i64), Vec<DqResult>> = HashMap::new();
    if policy.is_some() {
        for r in ledger.dq_results(backfill_id).await? {
            if r.policy_hash == policy_key {
                verdicts
                    .entry((r.partition_date.clone(), r.attempt))
                    .or_default()
                    .push(r);
            }
        }
    }
    let cx = Context {
        ledger,
        client,
        backfill,
        contract,
        policy,
        proofs,
        verdicts,
        actor,
        reverify,
    };
    // Partitions are proven several at a time (each is a few API calls), in order.
    let outcomes: Vec<Result<Result<Proven, Gap>, ReconcileError>> =
        futures_util::stream::iter(&partitions)
            .map(|p| prove(&cx, p))
            .buffered(RECONCILE_CONCURRENCY)
            .collect()
            .await;
    let mut gaps = Vec::new();
    let mut proven = Vec::new();
    for outcome in outcomes {
        match outcome? {
            Ok(p) => proven.push(p),
            Err(gap) => gaps.push(gap),
        }
    }
    Ok(Report {
        backfill_id: backfill_id.to_string(),
        total: partitions.len(),
        verified: proven.len(),
        complete: gaps.is_empty() && proven.len() == partitions.len() && !partitions.is_empty(),
        contract_version,
        policy: (policy_key != "-").then_some(policy_key),
        gaps,
        proven,
    })
}

/// Partitions proven at once in a pass.
const RECONCILE_CONCURRENCY: usize = 16;

/// Proves one partition attempt: its run re-read from Databricks, what it reported (the
/// staging snapshot it wrote) on record, and every rule of the recorded policy passed.
async fn prove(cx: &Context<'_>, p: &Partition) -> Result<Result<Proven, Gap>, ReconcileError> {
    let attempt = i64::from(p.attempt.get());
    let key = (p.date.to_string(), attempt);
    let gap = |kind, detail: String| {
        Ok(Err(Gap {
            partition: p.date.to_string(),
            kind,
            attempt: p.attempt.get(),
            run_id: p.run_id,
            detail,
        }))
    };
    let stored = cx.proofs.get(&key);
    let already = cx.reverify == Reverify::Unverified
        && p.state == PartitionState::Succeeded
        && p.verified_at_ms.is_some()
        && stored.is_some_and(|s| s.passed_policy.as_deref() == Some(cx.policy_key()));
    if let (true, Some(s)) = (already, stored) {
        return Ok(Ok(Proven {
            date: p.date,
            attempt,
            staging_version: s.staging_version,
        }));
    }
    let run = match verify(cx.ledger, cx.client, &cx.backfill, p, cx.actor).await? {
        Ok(run) => run,
        Err(gap) => return Ok(Err(gap)),
    };
    let proof = match stored {
        Some(s) if s.run_id == RunId::from(run.run_id) => s.clone(),
        Some(s) => {
            return gap(
                GapKind::ParametersMismatch,
                format!(
                    "the proof of attempt {} is recorded for run {}, but the attempt's run is {}",
                    p.attempt, s.run_id, run.run_id
                ),
            );
        }
        None => match read_output(cx, p, &run).await? {
            Ok(proof) => proof,
            Err(gap) => return Ok(Err(gap)),
        },
    };
    let Some(contract) = &cx.contract else {
        // A backfill registered before contracts were recorded: completeness only.
        return Ok(Ok(Proven {
            date: p.date,
            attempt,
            staging_version: proof.staging_version,
        }));
    };
    let reported: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&proof.output_json).unwrap_or_default();
    let missing = backfill_contract::jobs::backfill::missing_fields(&reported);
    if !missing.is_empty() {
        return gap(
            GapKind::DqUnavailable,
            format!(
                "run {}: its result lacks the required field{} {} (the job contract, bundle/README.md)",
                run.run_id,
                if missing.len() == 1 { "" } else { "s" },
                missing.join(", ")
            ),
        );
    }
    if proof.staging_table.as_deref() != Some(contract.staging_table.as_str()) {
        return gap(
            GapKind::StagingUnknown,
            format!(
                "run {} reported staging table {:?}, the contract records {}",
                run.run_id, proof.staging_table, contract.staging_table
            ),
        );
    }
    let Some(staging_version) = proof.staging_version else {
        return gap(
            GapKind::StagingUnknown,
            format!(
                "run {} reported no staging_version: there is no snapshot to promote",
                run.run_id
            ),
        );
    };
    if let Some(policy) = &cx.policy {
        let results = match cx.verdicts.get(&key) {
            Some(results) => results.clone(),
            None => {
                let Ok(serde_json::Value::Object(metrics)) =
                    serde_json::from_str::<serde_json::Value>(&proof.output_json)
                else {
                    return gap(
                        GapKind::DqUnavailable,
                        format!("run {}: its output is not a JSON object", run.run_id),
                    );
                };
                let results: Vec<DqResult> = policy
                    .evaluate(&metrics)
                    .into_iter()
                    .map(|v| DqResult {
                        partition_date: p.date.to_string(),
                        attempt,
                        run_id: RunId::from(run.run_id),
                        rule: v.rule,
                        passed: v.passed,
                        value: v.value,
                        threshold: v.threshold,
                        policy_hash: cx.policy_key().to_owned(),
                    })
                    .collect();
                cx.ledger
                    .record_dq(&p.key(), p.attempt, cx.actor, &results)
                    .await?;
                results
            }
        };
        let failed: Vec<String> = results
            .iter()
            .filter(|r| !r.passed)
            .map(|r| format!("{}: {} (required {})", r.rule, r.value, r.threshold))
            .collect();
        if !failed.is_empty() {
            return gap(GapKind::DqFailed, failed.join("; "));
        }
    }
    if proof.passed_policy.as_deref() != Some(cx.policy_key()) {
        cx.ledger
            .pass_gate(&p.key(), p.attempt, cx.policy_key(), cx.actor)
            .await?;
    }
    Ok(Ok(Proven {
        date: p.date,
        attempt,
        staging_version: Some(staging_version),
    }))
}

/// Reads what the attempt's (last) task reported and records it as the attempt's proof.
async fn read_output(
    cx: &Context<'_>,
    p: &Partition,
    run: &Run,
) -> Result<Result<Proof, Gap>, ReconcileError> {
    let run_id = RunId::from(run.run_id);
    let task_run = run
        .tasks
        .last()
        .and_then(|t| t.run_id)
        .unwrap_or(run.run_id);
    let output = cx.client.get_run_output(task_run).await?;
    let text = output.notebook_output.and_then(|o| o.result);
    let reported = text
        .as_deref()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
        .filter(serde_json::Value::is_object);
    let Some(reported) = reported else {
        if cx.contract.is_none() && cx.policy.is_none() {
            // Nothing to gate and nothing to promote: the run's success is the proof.
            return Ok(Ok(Proof {
                partition_date: p.date.to_string(),
                attempt: i64::from(p.attempt.get()),
                run_id,
                staging_table: None,
                staging_version: None,
                output_json: String::new(),
                passed_policy: None,
            }));
        }
        return Ok(Err(Gap {
            partition: p.date.to_string(),
            kind: GapKind::DqUnavailable,
            attempt: p.attempt.get(),
            run_id: p.run_id,
            detail: format!("task run {task_run} reported no JSON object as its result"),
        }));
    };
    let staging_table = reported[result::STAGING_TABLE].as_str().map(str::to_owned);
    let staging_version = reported[result::STAGING_VERSION].as_i64();
    let output_json = reported.to_string();
    cx.ledger
        .record_proof(
            &p.key(),
            p.attempt,
            run_id,
            staging_table.as_deref(),
            staging_version,
            &output_json,
            cx.actor,
        )
        .await?;
    Ok(Ok(Proof {
        partition_date: p.date.to_string(),
        attempt: i64::from(p.attempt.get()),
        run_id,
        staging_table,
        staging_version,
        output_json,
        passed_policy: None,
    }))
}
