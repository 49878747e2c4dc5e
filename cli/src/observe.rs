//! Metrics for long-running commands: the `/metrics` endpoint on `--metrics-addr`, and
//! `backfill_operations::collector` started with the price the environment gives.

use std::sync::Arc;

use backfill_ledger::Ledger;
use backfill_metrics::{Group, Metrics, serve};
use backfill_operations::BrokerSource;
use backfill_operations::collector;
use tokio_util::sync::CancellationToken;

use crate::args::GlobalOpts;
use crate::exit::CliError;

/// Creates the process's metrics and, with `--metrics-addr`, serves them.
pub async fn start(
    global: &GlobalOpts,
    role: &'static str,
    groups: &[Group],
) -> Result<Arc<Metrics>, CliError> {
    let metrics = Arc::new(Metrics::new(role, groups));
    if let Some(addr) = global.metrics_addr {
        // Not stopped at shutdown: during the drain `/readyz` says so, and the endpoint
        // ends with the process.
        serve(addr, metrics.clone(), CancellationToken::new())
            .await
            .map_err(|e| CliError::usage(format!("--metrics-addr {e} (METRICS_ADDR)")))?;
    }
    Ok(metrics)
}

/// Copies ledger state (and queue depths, given a broker) into `metrics` until
/// `shutdown`; spend is priced at `BACKFILL_PRICE_PER_RUN_HOUR` where a backfill records
/// no price.
pub fn spawn_collector(
    metrics: Arc<Metrics>,
    ledger: Ledger,
    broker: Option<BrokerSource>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    let price = std::env::var("BACKFILL_PRICE_PER_RUN_HOUR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    collector::spawn_collector(metrics, ledger, broker, price, shutdown)
}
