//! Re-reading a partition's run at Databricks: it exists, succeeded, and belongs to the
//! backfill's job with the partition's parameters.

use backfill_contract::jobs::backfill::param;
use backfill_databricks::models::Run;
use backfill_databricks::{DatabricksClient, RunOutcome, classify};
use backfill_ledger::{Backfill, Ledger, Partition, PartitionState};

use crate::{Gap, GapKind, ReconcileError};

/// The partition's run as Databricks shows it, or the gap that keeps it from counting;
/// marks a first verification in the ledger.
pub(crate) async fn verify(
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
    let run = match client.get_run(run_id.get()).await {
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
