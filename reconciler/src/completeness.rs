//! One completeness pass over a backfill.

use backfill_contract::BackfillId;
use std::collections::HashMap;

use backfill_databricks::models::Run;
use backfill_databricks::{ApiError, DatabricksClient, RunOutcome, classify};
use backfill_ledger::{Backfill, DqResult, Ledger, LedgerError, Partition, PartitionState};
use serde::Serialize;

use futures_util::StreamExt;

use crate::DqPolicy;

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
}

impl GapKind {
    pub const ALL: [GapKind; 9] = [
        Self::Missing,
        Self::Running,
        Self::Failed,
        Self::DeadLettered,
        Self::Cancelled,
        Self::RunNotFound,
        Self::ParametersMismatch,
        Self::DqFailed,
        Self::DqUnavailable,
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
    pub gaps: Vec<Gap>,
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
}

/// Which runs a pass reads again from Databricks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reverify {
    /// Every succeeded partition's run (what promotion and `reconcile --once` do).
    Everything,
    /// Only runs not yet verified (a service's later passes): a partition already verified
    /// at its attempt, with its data-quality verdicts stored, is taken as proven.
    Unverified,
}

/// Re-reads every succeeded partition's run, gates it on the data-quality policy (when
/// one is given), and reports what is not proven.
pub async fn reconcile_once(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    actor: &str,
    policy: Option<&DqPolicy>,
) -> Result<Report, ReconcileError> {
    reconcile_pass(
        ledger,
        client,
        backfill_id,
        actor,
        policy,
        Reverify::Everything,
    )
    .await
}

/// A pass that re-reads what `reverify` says.
pub async fn reconcile_pass(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    actor: &str,
    policy: Option<&DqPolicy>,
    reverify: Reverify,
) -> Result<Report, ReconcileError> {
    let backfill = ledger
        .backfill(backfill_id)
        .await?
        .ok_or_else(|| ReconcileError::UnknownBackfill(backfill_id.to_string()))?;
    let partitions = ledger.partitions(backfill_id).await?;
    let mut stored: HashMap<(String, i64), Vec<DqResult>> = HashMap::new();
    if policy.is_some() {
        for r in ledger.dq_results(backfill_id).await? {
            stored
                .entry((r.partition_date.clone(), r.attempt))
                .or_default()
                .push(r);
        }
    }
    // Partitions are proven several at a time (each is a few API calls), in order.
    let outcomes: Vec<Result<Option<Gap>, ReconcileError>> =
        futures_util::stream::iter(&partitions)
            .map(|p| {
                prove(
                    ledger, client, &backfill, p, actor, policy, &stored, reverify,
                )
            })
            .buffered(RECONCILE_CONCURRENCY)
            .collect()
            .await;
    let mut gaps = Vec::new();
    let mut verified = 0;
    for outcome in outcomes {
        match outcome? {
            None => verified += 1,
            Some(gap) => gaps.push(gap),
        }
    }
    Ok(Report {
        backfill_id: backfill_id.to_string(),
        total: partitions.len(),
        verified,
        complete: gaps.is_empty() && verified == partitions.len() && !partitions.is_empty(),
        gaps,
    })
}

/// Partitions proven at once in a pass.
const RECONCILE_CONCURRENCY: usize = 16;

/// Proves one partition: its run re-read from Databricks, then (with a policy) its data
/// quality, from the stored verdicts or from the run's output. `None` when proven.
#[allow(clippy::too_many_arguments)]
async fn prove(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill: &Backfill,
    p: &Partition,
    actor: &str,
    policy: Option<&DqPolicy>,
    stored: &HashMap<(String, i64), Vec<DqResult>>,
    reverify: Reverify,
) -> Result<Option<Gap>, ReconcileError> {
    let key = (p.date.to_string(), i64::from(p.attempt.get()));
    let already = reverify == Reverify::Unverified
        && p.state == PartitionState::Succeeded
        && p.verified_at_ms.is_some()
        && (policy.is_none() || stored.contains_key(&key));
    let run = if already {
        None
    } else {
        match verify(ledger, client, backfill, p, actor).await? {
            Ok(run) => Some(run),
            Err(gap) => return Ok(Some(gap)),
        }
    };
    let Some(policy) = policy else {
        return Ok(None);
    };
    let results = match (stored.get(&key), run) {
        (Some(results), _) => results.clone(),
        (None, None) => return Ok(None),
        (None, Some(run)) => match gate(ledger, client, policy, p, &run, actor).await? {
            Ok(results) => results,
            Err(gap) => return Ok(Some(gap)),
        },
    };
    let failed: Vec<String> = results
        .iter()
        .filter(|r| !r.passed)
        .map(|r| format!("{}: {} (required {})", r.rule, r.value, r.threshold))
        .collect();
    if failed.is_empty() {
        return Ok(None);
    }
    Ok(Some(Gap {
        partition: p.date.to_string(),
        kind: GapKind::DqFailed,
        attempt: p.attempt.get(),
        run_id: p.run_id,
        detail: failed.join("; "),
    }))
}

/// Reads the partition's metrics from its (last) task run's output, evaluates the policy,
/// records every verdict.
async fn gate(
    ledger: &Ledger,
    client: &DatabricksClient,
    policy: &DqPolicy,
    p: &Partition,
    run: &Run,
    actor: &str,
) -> Result<Result<Vec<DqResult>, Gap>, ReconcileError> {
    let unavailable = |detail: String| {
        Err(Gap {
            partition: p.date.to_string(),
            kind: GapKind::DqUnavailable,
            attempt: p.attempt.get(),
            run_id: p.run_id,
            detail,
        })
    };
    let task_run = run
        .tasks
        .last()
        .and_then(|t| t.run_id)
        .unwrap_or(run.run_id);
    let output = client.get_run_output(task_run).await?;
    let Some(text) = output.notebook_output.and_then(|o| o.result) else {
        return Ok(unavailable(format!(
            "task run {task_run} reported no notebook output"
        )));
    };
    let Ok(serde_json::Value::Object(metrics)) = serde_json::from_str(&text) else {
        return Ok(unavailable(format!(
            "task run {task_run}: notebook output is not a JSON object"
        )));
    };
    let results: Vec<DqResult> = policy
        .evaluate(&metrics)
        .into_iter()
        .map(|v| DqResult {
            partition_date: p.date.to_string(),
            attempt: i64::from(p.attempt.get()),
            run_id: run.run_id,
            rule: v.rule,
            passed: v.passed,
            value: v.value,
            threshold: v.threshold,
        })
        .collect();
    ledger
        .record_dq(&p.key(), p.attempt, actor, &results)
        .await?;
    Ok(Ok(results))
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
    let expected = backfill
        .params
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .chain([
            ("partition_date", date.as_str()),
            ("backfill_id", backfill_id.as_str()),
            ("manifest_id", backfill.manifest_id.as_str()),
        ]);
    for (name, want) in expected {
        let got = run.parameter(name);
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
