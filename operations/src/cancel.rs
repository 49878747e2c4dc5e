//! Cancelling one backfill: no new runs, every unfinished partition recorded `cancelled`,
//! then each of its runs cancelled one by one through `runs/cancel` (never `cancel-all`,
//! which would hit other backfills and production).

use std::collections::BTreeSet;

use backfill_contract::{BackfillId, RunId};
use backfill_databricks::DatabricksClient;
use backfill_databricks::models::ListRuns;
use backfill_ledger::{BackfillState, Ledger, PartitionState};

use crate::error::OperationError;
use crate::lookup::load_backfill;
use crate::pause::Operator;

/// Active runs of the job looked through for this backfill's unrecorded runs.
const LISTED_RUNS: usize = 10_000;

/// What a cancel did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CancelOutcome {
    /// Partitions this call moved to `cancelled`.
    pub partitions: usize,
    /// Runs cancelled at Databricks.
    pub runs: usize,
    /// What could not be done (a run that could not be cancelled, the job's active runs
    /// that could not be listed); repeating the cancel tries again.
    pub failures: Vec<String>,
}

/// One run cancelled: the `done`-th of `total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunCancelled {
    pub run_id: RunId,
    pub done: usize,
    pub total: usize,
}

/// Cancels this backfill only: the ledger first (a worker's check then drops the run
/// instead of dead-lettering it), then every run of it: the recorded ones, and the active
/// runs of its job whose parameters name it (runs whose id was never recorded: a lost
/// `run-now` answer, a worker killed before recording). Errors on single runs are
/// collected without stopping the rest. Safe to repeat.
pub async fn cancel(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    operator: Operator<'_>,
    mut on_run: impl FnMut(RunCancelled),
) -> Result<CancelOutcome, OperationError> {
    let backfill = load_backfill(ledger, backfill_id).await?;
    let why = format!("cancelled by {}: {}", operator.by, operator.reason);
    ledger
        .set_backfill_state(
            backfill_id,
            BackfillState::Cancelled,
            operator.by,
            operator.reason,
        )
        .await?;
    let mut outcome = CancelOutcome::default();
    for p in ledger.partitions(backfill_id).await? {
        if !p.state.is_terminal()
            && ledger
                .cancel_active(&p.key(), p.attempt, operator.by, &why)
                .await?
        {
            outcome.partitions += 1;
        }
    }
    let mut run_ids: BTreeSet<RunId> = ledger
        .partitions(backfill_id)
        .await?
        .into_iter()
        .filter(|p| p.state == PartitionState::Cancelled)
        .filter_map(|p| p.run_id)
        .collect();
    let active = ListRuns {
        job_id: Some(backfill.job_id),
        active_only: true,
        ..ListRuns::default()
    };
    match client.list_runs(&active, LISTED_RUNS).await {
        Ok(listed) => run_ids.extend(
            listed
                .iter()
                .filter(|r| r.parameter("backfill_id") == Some(backfill_id.as_str()))
                .map(|r| RunId::from(r.run_id)),
        ),
        Err(e) => outcome.failures.push(format!(
            "could not list the job's active runs (unrecorded runs may remain): {e}"
        )),
    }
    let total = run_ids.len();
    for run_id in run_ids {
        // Cancelling a terminal run changes nothing, so a repeated cancel is harmless; an
        // error on one run does not stop the others.
        match client.cancel_run(run_id.get()).await {
            Ok(()) => {
                outcome.runs += 1;
                on_run(RunCancelled {
                    run_id,
                    done: outcome.runs,
                    total,
                });
            }
            Err(e) => outcome.failures.push(format!("run {run_id}: {e}")),
        }
    }
    Ok(outcome)
}
