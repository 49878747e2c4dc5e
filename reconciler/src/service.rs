//! The reconciler as a service: a pass every interval until complete or shut down.

use std::sync::Arc;
use std::time::Duration;

use backfill_contract::BackfillId;
use backfill_databricks::DatabricksClient;
use backfill_ledger::Ledger;
use backfill_metrics::Metrics;
use tokio_util::sync::CancellationToken;

use crate::{GapKind, ReconcileError, Report, Reverify, reconcile_pass};

/// The reconciler service's settings.
#[derive(Debug, Clone)]
pub struct ServiceOptions<'a> {
    pub actor: &'a str,
    pub interval: Duration,
    /// Which runs each pass reads again: by default only those not yet verified (a
    /// service re-reading 10,000 verified runs every pass would spend the fleet's API
    /// budget on nothing); promotion re-reads everything in any case.
    pub reverify: Reverify,
    /// Passes and gaps are counted here.
    pub metrics: Arc<Metrics>,
}

/// Runs passes every `interval` until the backfill is complete (returns its report) or
/// `shutdown` is cancelled (returns the last report, if any). Outages are logged and
/// retried at the next pass.
pub async fn run_reconciler(
    ledger: &Ledger,
    client: &DatabricksClient,
    backfill_id: &BackfillId,
    options: ServiceOptions<'_>,
    shutdown: CancellationToken,
) -> Result<Option<Report>, ReconcileError> {
    let ServiceOptions {
        actor,
        interval,
        reverify,
        metrics,
    } = options;
    let mut last = None;
    loop {
        let pass = reconcile_pass(ledger, client, backfill_id, actor, reverify).await;
        record_pass(&metrics, backfill_id, &pass);
        match pass {
            Ok(report) if report.complete => return Ok(Some(report)),
            Ok(report) => {
                tracing::info!(backfill_id = %backfill_id, verified = report.verified, total = report.total, gaps = report.gaps.len(), "backfill not complete yet");
                last = Some(report);
            }
            Err(ReconcileError::UnknownBackfill(id)) => {
                return Err(ReconcileError::UnknownBackfill(id));
            }
            Err(
                e @ (ReconcileError::Contract(_)
                | ReconcileError::NoContract(_)
                | ReconcileError::StagingTableFixed { .. }
                | ReconcileError::JobChanged { .. }),
            ) => return Err(e),
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

fn record_pass(metrics: &Metrics, backfill_id: &BackfillId, pass: &Result<Report, ReconcileError>) {
    let now_s = chrono::Utc::now().timestamp();
    match pass {
        Ok(report) => {
            let result = if report.complete {
                "complete"
            } else {
                "incomplete"
            };
            metrics.reconcile.pass(result, now_s);
            let counts: Vec<(&'static str, i64)> =
                report.gaps.iter().map(|g| (g.kind.as_str(), 1)).collect();
            let kinds = GapKind::ALL.map(|k| k.as_str());
            metrics
                .reconcile
                .set_gaps(backfill_id.as_str(), &kinds, &counts);
        }
        Err(_) => metrics.reconcile.pass("error", now_s),
    }
}
