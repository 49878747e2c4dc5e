//! Metrics for long-running commands: the `/metrics` endpoint on `--metrics-addr`, and a
//! collector that copies backfill state from the ledger and queue depths from the broker
//! into gauges every few seconds.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backfill_broker::{AmqpUrl, Broker, Lane, Topology};
use backfill_ledger::{ActionKind, ActionState, Ledger, PartitionState};
use backfill_metrics::{BackfillSnapshot, Group, Metrics, serve};
use tokio_util::sync::CancellationToken;

use crate::CliError;
use crate::args::GlobalOpts;
use crate::commands::status::status_report;

/// How often the collector reads the ledger and the broker.
const COLLECT_EVERY: Duration = Duration::from_secs(5);
/// Backfills shown on dashboards: the most recently registered.
const RECENT_BACKFILLS: i64 = 20;

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
            .map_err(|e| CliError::usage(format!("{e} (METRICS_ADDR)")))?;
    }
    Ok(metrics)
}

/// Where the collector reads queue depths.
#[derive(Debug, Clone)]
pub struct BrokerSource {
    pub url: AmqpUrl,
    pub topology: Topology,
}

/// Copies ledger state (and queue depths, given a broker) into `metrics` until `shutdown`.
pub fn spawn_collector(
    metrics: Arc<Metrics>,
    ledger: Ledger,
    broker: Option<BrokerSource>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut connection: Option<Broker> = None;
        loop {
            let up = collect_ledger(&metrics, &ledger).await;
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

async fn collect_ledger(metrics: &Metrics, ledger: &Ledger) -> bool {
    let ids = match ledger.recent_backfills(RECENT_BACKFILLS).await {
        Ok(ids) => ids,
        Err(e) => {
            tracing::warn!(error = %e, "metrics: cannot read the ledger");
            return false;
        }
    };
    let price = std::env::var("BACKFILL_PRICE_PER_RUN_HOUR")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    for id in ids {
        match snapshot(ledger, &id, price).await {
            Ok(s) => metrics.fleet.record(&s),
            Err(e) => {
                tracing::warn!(backfill_id = %id, error = %e, "metrics: cannot read a backfill");
                return false;
            }
        }
    }
    true
}

async fn snapshot(
    ledger: &Ledger,
    id: &backfill_contract::BackfillId,
    price: f64,
) -> Result<BackfillSnapshot, CliError> {
    let report = status_report(ledger, id, price).await?;
    let backfill = ledger
        .backfill(id)
        .await
        .map_err(anyhow::Error::new)?
        .ok_or_else(|| CliError::Negative(format!("backfill {id} vanished")))?;
    let active = report.states[PartitionState::Triggering.as_str()]
        + report.states[PartitionState::Running.as_str()];
    let failing = ledger.dq_failing(id).await.map_err(anyhow::Error::new)?;
    // Every (kind, state) pair is reported, zero included, so that series do not vanish.
    let mut actions: BTreeMap<(&'static str, &'static str), i64> = BTreeMap::new();
    for kind in ActionKind::ALL {
        for state in ActionState::ALL {
            actions.insert((kind.as_str(), state.as_str()), 0);
        }
    }
    for (kind, state, n) in ledger.action_counts(id).await.map_err(anyhow::Error::new)? {
        *actions.entry((kind.as_str(), state.as_str())).or_default() += n;
    }
    Ok(BackfillSnapshot {
        backfill: id.to_string(),
        states: report
            .states
            .iter()
            .map(|(state, n)| (*state, *n))
            .collect(),
        verified: report.verified,
        retries: report.retries,
        active_runs: active,
        cap: backfill.concurrency_cap,
        paused: report.state == "paused",
        held: report.held,
        spend: report.spend,
        projected_spend: report.projected_spend,
        budget: backfill.guards.budget,
        eta_s: report.eta_s,
        dq_failing: failing,
        actions: actions.into_iter().map(|((k, s), n)| (k, s, n)).collect(),
        promotion: report.promotion.as_pairs().to_vec(),
    })
}

async fn collect_queues(metrics: &Metrics, source: &BrokerSource, connection: &mut Option<Broker>) {
    if connection.as_ref().is_none_or(|b| !b.is_connected()) {
        *connection =
            match Broker::connect_once(&source.url, &source.topology, "backfill metrics").await {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::debug!(error = %e, "metrics: broker unavailable for queue depths");
                    return;
                }
            };
    }
    let Some(broker) = connection.as_ref() else {
        return;
    };
    let queues = [
        ("trigger", source.topology.work_queue(Lane::Trigger)),
        ("check", source.topology.work_queue(Lane::Check)),
        ("dlq", source.topology.dead_letter_queue()),
    ];
    for (label, name) in queues {
        match broker.queue_stats(&name).await {
            Ok((messages, consumers)) => metrics.queues.set(label, messages, consumers),
            Err(e) => {
                tracing::debug!(queue = name, error = %e, "metrics: cannot read a queue depth");
                *connection = None;
                return;
            }
        }
    }
}
