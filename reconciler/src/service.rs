//! The reconciler as a service: a pass every interval until complete or shut down.

use std::time::Duration;

use backfill_contract::BackfillId;
use backfill_databricks::DatabricksClient;
use backfill_ledger::Ledger;
use tokio_util::sync::CancellationToken;

use crate::{DqPolicy, ReconcileError, Report, reconcile_once};

/// Runs passes every `interval` until the backfill is complete (returns its report) or
/// `shutdown` is cancelled (returns the last report, if any). Outages are logged and
/// retried at the next pass.
pub async fn run_reconciler(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    actor: &str,
    interval: Duration,
    policy: Option<&DqPolicy>,
    shutdown: CancellationToken,
) -> Result<Option<Report>, ReconcileError> {
    let mut last = None;
    loop {
        match reconcile_once(ledger, client, backfill_id, actor, policy).await {
            Ok(report) if report.complete => return Ok(Some(report)),
            Ok(report) => {
                tracing::info!(backfill_id = %backfill_id, verified = report.verified, total = report.total, gaps = report.gaps.len(), "backfill not complete yet");
                last = Some(report);
            }
            Err(ReconcileError::UnknownBackfill(id)) => {
                return Err(ReconcileError::UnknownBackfill(id));
            }
            Err(e) => {
                tracing::warn!(backfill_id = %backfill_id, error = %e, "reconcile pass failed; retrying next interval")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return Ok(last),
        }
    }
}
