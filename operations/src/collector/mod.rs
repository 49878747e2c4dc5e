//! The metrics collector: copies backfill state from the ledger and queue depths from the
//! broker into gauges every few seconds, so every process that reports them says the
//! same (dashboards take `max` over instances).

mod queues;
mod snapshot;

use std::sync::Arc;
use std::time::Duration;

use backfill_broker::Broker;
use backfill_ledger::Ledger;
use backfill_metrics::Metrics;

use crate::broker_source::BrokerSource;
use tokio_util::sync::CancellationToken;

pub use queues::collect_queues;
pub use snapshot::snapshot;

/// How often the collector reads the ledger and the broker.
const COLLECT_EVERY: Duration = Duration::from_secs(5);
/// Backfills shown on dashboards: the most recently registered.
const RECENT_BACKFILLS: i64 = 20;

/// Copies ledger state (and queue depths, given a broker) into `metrics` until `shutdown`;
/// spend is priced at `price_per_run_hour` where a backfill's guards record no price.
pub fn spawn_collector(
    metrics: Arc<Metrics>,
    ledger: Ledger,
    broker: Option<BrokerSource>,
    price_per_run_hour: f64,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connection: Option<Broker> = None;
        loop {
            let up = collect_ledger(&metrics, &ledger, price_per_run_hour).await;
            metrics.fleet.ledger_up(up);
            metrics.health.set_ledger(up);
            if let Some(source) = &broker {
                collect_queues(&metrics, source, &mut connection).await;
            }
            tokio::select! {
                () = tokio::time::sleep(COLLECT_EVERY) => {}
                () = shutdown.cancelled() => break,
            }
        }
        if let Some(b) = connection {
            b.close().await;
        }
    })
}

/// One pass over the ledger: a snapshot of each recent backfill recorded into `metrics`.
/// False when the ledger could not be read.
pub async fn collect_ledger(metrics: &Metrics, ledger: &Ledger, price_per_run_hour: f64) -> bool {
    let ids = match ledger.recent_backfills(RECENT_BACKFILLS).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the ledger");
            return false;
        }
    };
    for id in ids {
        match snapshot(ledger, &id, price_per_run_hour).await {
            Ok(s) => metrics.fleet.record(&s),
            Err(e) => {
                tracing::warn!(backfill_id = %id, error = %e, "metrics: cannot read a backfill");
                return false;
            }
        }
    }
    true
}
