//! One completeness pass over a backfill.

use backfill_contract::BackfillId;
use std::collections::HashMap;

use backfill_contract::PartitionDate;
use backfill_contract::jobs::backfill::{param, result};
use backfill_databricks::models::Run;
use backfill_databricks::{ApiError, DatabricksClient, RunOutcome, classify};
use backfill_ledger::{
    Backfill, DqResult, Ledger, LedgerError, Partition, PartitionState, PromotionContract, Proof,
};
use serde::Serialize;

use futures_util::StreamExt;

use crate::DqPolicy;
use crate::contract::policy_of;

/// Why a partition does not (yet) count as done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GapKind {
    /// Not triggered yet (pending, or waiting for its next attempt).
    Missing,
    /// Triggered and not finished.
    Running,
    /// The ledger says succeeded, but Databricks reports otherwise.
    Failed,
    DeadLettered,
    Cancelled,
    /// Databricks no longer knows the run (runs expire after 60 days): it ran, but cannot
    /// be proven now.
    RunNotFound,
    /// The run exists but belongs to another job or ran with other parameters.
    ParametersMismatch,
    /// The run succeeded but its data failed a data-quality rule.
    DqFailed,
    /// The run succeeded but reported no readable data-quality metrics.
    DqUnavailable,
    /// The run reported no staging snapshot (table and Delta version) of the contract's
    /// staging table: there is nothing exact to promote.
    StagingUnknown,
}

impl GapKind {
    pub const ALL: [GapKind; 10] = [
        Self::Missing,
        Self::Running,
        Self::Failed,
        Self::DeadLettered,
        Self::Cancelled,
        Self::RunNotFound,
        Self::ParametersMismatch,
        Self::DqFailed,
        Self::DqUnavailable,
        Self::StagingUnknown,
    ];

    /// The snake_case name used in JSON and as a metric label.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Running => "running",
            Self::Failed => "failed",
            Self::DeadLettered => "dead_lettered",
            Self::Cancelled => "cancelled",
            Self::RunNotFound => "run_not_found",
            Self::ParametersMismatch => "parameters_mismatch",
            Self::DqFailed => "dq_failed",
            Self::DqUnavailable => "dq_unavailable",
            Self::StagingUnknown => "staging_unknown",
        }
    }
}

/// One partition that is not proven complete.
#[derive(Debug, Clone, Serialize)]
pub struct Gap {
    pub partition: String,
    pub kind: GapKind,
    pub attempt: u32,
    pub run_id: Option<i64>,
    pub detail: String,
}

/// The result of a pass.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub backfill_id: String,
    pub total: usize,
    /// Partitions whose run was re-read from Databricks in this pass and proven.
    pub verified: usize,
    pub complete: bool,
    /// The contract version and the policy (its SHA-256) the pass gated on.
    pub contract_version: Option<i64>,
    pub policy: Option<String>,
    pub gaps: Vec<Gap>,
    /// The partition attempts proven, with their staging snapshots.
    #[serde(skip)]
    pub proven: Vec<Proven>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("backfill {0} is not registered")]
    UnknownBackfill(String),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error(transparent)]
    Databricks(#[from] ApiError),
    #[error("{0}")]
    Timeout(String),
    #[error("partition {0} was never promoted, so there is nothing to roll back")]
    NotPromoted(String),
    /// The backfill's promotion contract is missing or refuses what was asked.
    #[error("{0}")]
    Contract(String),
}

/// Which runs a pass reads again from Databricks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reverify {
    /// Every succeeded partition's run (what promotion and `reconcile --once` do).
    Everything,
    /// Only runs not yet verified (a service's later passes): a partition already verified
    /// at its attempt, and proven under the contract's current policy, is taken as proven.
    Unverified,
}

/// A partition attempt proven in a pass: what promotion copies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proven {
    pub date: PartitionDate,
    pub attempt: i64,
    /// The staging snapshot the attempt wrote (`None` only for a backfill without a
    /// contract, which cannot be promoted).
    pub staging_version: Option<i64>,
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
        Some(s) if s.run_id == run.run_id => s.clone(),
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
                        run_id: run.run_id,
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
                run_id: run.run_id,
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
            run.run_id,
            staging_table.as_deref(),
            staging_version,
            &output_json,
            cx.actor,
        )
        .await?;
    Ok(Ok(Proof {
        partition_date: p.date.to_string(),
        attempt: i64::from(p.attempt.get()),
        run_id: run.run_id,
        staging_table,
        staging_version,
        output_json,
        passed_policy: None,
    }))
}

async fn verify(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill: &Backfill,
    p: &Partition,
    actor: &str,
) -> Result<Result<Run, Gap>, ReconcileError> {
    let gap = |kind, detail: String| {
        Err(Gap {
            partition: p.date.to_string(),
            kind,
            attempt: p.attempt.get(),
            run_id: p.run_id,
            detail,
        })
    };
    let run_id = match (p.state, p.run_id) {
        (PartitionState::Succeeded, Some(run_id)) => run_id,
        (PartitionState::Succeeded, None) => {
            return Ok(gap(GapKind::Failed, "succeeded without a run id".into()));
        }
        (PartitionState::Pending | PartitionState::Failed, _) => {
            return Ok(gap(
                GapKind::Missing,
                p.last_error.clone().unwrap_or_default(),
            ));
        }
        (PartitionState::Triggering | PartitionState::Running, _) => {
            return Ok(gap(GapKind::Running, String::new()));
        }
        (PartitionState::DeadLettered, _) => {
            return Ok(gap(
                GapKind::DeadLettered,
                p.last_error.clone().unwrap_or_default(),
            ));
        }
        (PartitionState::Cancelled, _) => return Ok(gap(GapKind::Cancelled, String::new())),
    };
    let run = match client.get_run(run_id).await {
        Ok(run) => run,
        Err(e) if e.is_not_found() => {
            return Ok(gap(
                GapKind::RunNotFound,
                format!("Databricks no longer knows run {run_id}: {e}"),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if run.job_id != Some(backfill.job_id) {
        return Ok(gap(
            GapKind::ParametersMismatch,
            format!(
                "run belongs to job {:?}, not {}",
                run.job_id, backfill.job_id
            ),
        ));
    }
    let date = p.date.to_string();
    let backfill_id = backfill.backfill_id.to_string();
    let attempt = p.attempt.to_string();
    let expected = backfill
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([
            (param::PARTITION_DATE, date.as_str()),
            (param::BACKFILL_ID, backfill_id.as_str()),
            (param::MANIFEST_ID, backfill.manifest_id.as_str()),
            (param::ATTEMPT, attempt.as_str()),
        ]);
    for (name, want) in expected {
        let got = run.parameter(name);
        // Runs triggered before the fleet passed `attempt` lack it; their run id comes
        // from this attempt's ledger row all the same.
        if name == param::ATTEMPT && got.is_none() {
            continue;
        }
        if got != Some(want) {
            return Ok(gap(
                GapKind::ParametersMismatch,
                format!("job parameter {name} is {got:?}, expected {want:?}"),
            ));
        }
    }
    match classify(&run) {
        RunOutcome::Succeeded => {}
        other => {
            return Ok(gap(
                GapKind::Failed,
                format!("Databricks reports {other:?}"),
            ));
        }
    }
    if p.verified_at_ms.is_none() {
        ledger
            .mark_verified(&p.key(), p.attempt, run_id, actor)
            .await?;
    }
    Ok(Ok(run))
}
