//! `backfill worker`: serve both lanes until SIGTERM.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use backfill_databricks::models::ListRuns;
use backfill_databricks::{ApiError, DatabricksClient};
use backfill_metrics::Group;
use backfill_worker::{ApiBudget, Worker, WorkerConfig, run_worker};

use super::signals::shutdown_on_signals;
use super::worker_id::default_worker_id;
use crate::args::{GlobalOpts, WorkerArgs};
use crate::exit::CliError;
use crate::observe;

/// The settings that choose a worker's fleet, as an operator sets them.
pub(crate) const FLEET_SETTINGS: &str =
    "--ledger-url / LEDGER_URL or --namespace / BACKFILL_NAMESPACE";

pub async fn run(global: &GlobalOpts, args: WorkerArgs) -> Result<(), CliError> {
    if args.concurrency == 0 {
        return Err(CliError::usage("--concurrency must be at least 1"));
    }
    let url = global.amqp()?;
    let topology = global.topology()?;
    let client = global.client()?;
    check_credentials(&client).await?;
    let ledger = global.ledger().await?;
    let mut config = WorkerConfig::new(args.worker_id.unwrap_or_else(default_worker_id));
    config.concurrency = args.concurrency;
    config.fleet_settings = FLEET_SETTINGS.into();
    config.shutdown_grace = Duration::from_secs(args.shutdown_grace_s);
    config.claim_lease = Duration::from_secs(args.claim_lease_s);
    config.check_grace = Duration::from_secs(args.check_grace_s);
    config.outage_budget = Duration::from_secs(args.outage_budget_s);
    config.sweep_interval = Duration::from_secs(args.sweep_interval_s.max(1));
    config.retry.base_delay = Duration::from_secs(args.retry_base_s);
    let budget: ApiBudget = global.api_budget.clone();
    let shutdown = shutdown_on_signals();
    let metrics =
        observe::start(global, "worker", &[Group::Worker, Group::Api, Group::Fleet]).await?;
    metrics.health.require(true, true);
    let collector = observe::spawn_collector(
        metrics.clone(),
        ledger.clone(),
        Some(backfill_operations::BrokerSource {
            url: url.clone(),
            topology: topology.clone(),
        }),
        shutdown.clone(),
    );
    let worker = Arc::new(
        Worker::new(config, ledger, client)
            .with_budget(budget)
            .with_metrics(metrics),
    );
    tracing::info!(worker = worker.id(), "worker starting");
    let stopped = run_worker(worker, url, topology, shutdown).await;
    collector.abort();
    stopped.context("worker stopped")?;
    tracing::info!("worker stopped cleanly");
    Ok(())
}

/// One cheap call before consuming anything: a token the workspace refuses would
/// otherwise dead-letter every trigger it meets. Unreachable is not refused: the worker
/// starts and its calls are retried as outages.
async fn check_credentials(client: &DatabricksClient) -> Result<(), CliError> {
    let one = ListRuns {
        limit: Some(1),
        ..ListRuns::default()
    };
    match client.list_runs_page(&one, None).await {
        Ok(_) => Ok(()),
        Err(e) if e.is_auth() => Err(CliError::usage(format!(
            "--databricks-token / DATABRICKS_TOKEN was refused by the workspace: {e}"
        ))),
        Err(e) if e.is_permanent() || matches!(e, ApiError::Decode { .. }) => {
            Err(CliError::usage(format!(
                "--databricks-host / DATABRICKS_HOST does not answer like a Databricks \
                 workspace: {e}"
            )))
        }
        Err(e) => {
            tracing::warn!(error = %e, "could not check the Databricks token at start; going on");
            Ok(())
        }
    }
}
