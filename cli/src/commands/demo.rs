//! `backfill demo`: the whole flow in one process on the embedded defaults: an in-process
//! simulator, the SQLite ledger, the local RabbitMQ (in a namespace of its own, removed
//! afterwards), a producer, two workers and the reconciler. Exits 0 only when every
//! partition succeeded and was verified against the simulator.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use backfill_broker::{Broker, BrokerError};
use backfill_contract::PartitionDate;
use backfill_databricks::{ClientConfig, DatabricksClient};
use backfill_ledger::{Ledger, PartitionState};
use backfill_metrics::Group;
use backfill_producer::{Order, ProduceRequest, publish_pending, register};
use backfill_reconciler::reconcile_once;
use backfill_simulator::{SimConfig, Simulator};
use backfill_worker::{Worker, WorkerConfig, run_worker};
use tokio_util::sync::CancellationToken;

use super::signals::shutdown_on_signals;
use super::sim::{fault_rule, spawn_sim_metrics};
use super::worker_id::default_worker_id;
use crate::args::{DemoArgs, GlobalOpts};
use crate::exit::CliError;
use crate::observe;
use backfill_operations::contract::contract_for_produce;

const WORKERS: usize = 2;
/// The shipped policy: the demo gates every partition on it.
pub(super) const DEMO_POLICY: &str = include_str!("../../../policies/usage-daily.toml");

pub async fn run(global: &GlobalOpts, args: DemoArgs) -> Result<(), CliError> {
    let days = args.days.unwrap_or(180);
    let start = begin(global, days).await?;
    let backfill_id = format!("demo-{}", start.stamp)
        .parse()
        .map_err(anyhow::Error::new)?;
    let sim = Simulator::spawn(sim_config(&args)?)
        .await
        .context("starting the simulator")?;
    let sim_metrics = spawn_sim_metrics(
        sim.sim.clone(),
        start.metrics.clone(),
        start.shutdown.clone(),
    );
    let parts = DemoParts::connect(&start, &sim.url()).await?;
    eprintln!(
        "demo: simulator at {}, {} ledger, RabbitMQ namespace {}",
        sim.url(),
        parts.ledger.backend_name(),
        start.settings.namespace
    );

    let yesterday = chrono::Utc::now().date_naive() - chrono::Days::new(1);
    let first = yesterday - chrono::Days::new(u64::from(days - 1));
    let policy = backfill_reconciler::recorded_policy(DEMO_POLICY, "policies/usage-daily.toml")
        .map_err(anyhow::Error::msg)?;
    let contract = contract_for_produce(
        &parts.client,
        &backfill_reconciler::ContractFlags {
            dq_policy: Some(policy),
            ..Default::default()
        },
    )
    .await?;
    let request = ProduceRequest {
        backfill_id,
        job_id: 1,
        start: PartitionDate::new(first),
        end: PartitionDate::new(yesterday),
        params: BTreeMap::from([("code_version".to_owned(), "demo".to_owned())]),
        concurrency_cap: args.concurrency_cap,
        order: Order::NewestFirst,
        created_by: "demo".into(),
        contract: Some(contract),
    };
    let (manifest_id, _) = register(&parts.ledger, &parts.client, &request)
        .await
        .map_err(anyhow::Error::new)?;
    let published = publish_pending(
        &parts.ledger,
        &parts.broker.publisher(),
        &request.backfill_id,
        request.order,
        |_, _| {},
    )
    .await
    .map_err(anyhow::Error::new)?;
    eprintln!(
        "demo: backfill {} registered (manifest {manifest_id}); {published} partitions published",
        request.backfill_id
    );

    let workers = CancellationToken::new();
    let collector = observe::spawn_collector(
        start.metrics.clone(),
        parts.ledger.clone(),
        Some(backfill_operations::BrokerSource {
            url: start.settings.amqp()?,
            topology: start.settings.topology()?,
        }),
        workers.clone(),
    );
    let tasks = parts.spawn_workers(args.concurrency, &workers)?;

    let deadline = start.started + Duration::from_secs(args.timeout_s);
    let total = i64::from(days);
    let outcome = loop {
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
            () = start.shutdown.cancelled() => break Err("interrupted".to_owned()),
        }
        let counts = parts
            .ledger
            .state_counts(&request.backfill_id)
            .await
            .map_err(anyhow::Error::new)?;
        let n = |s: PartitionState| counts.get(&s).copied().unwrap_or(0);
        let done = n(PartitionState::Succeeded);
        eprintln!(
            "demo: {:>5.1}s  succeeded {done}/{total}  running {}  pending {}  retrying {}  dead-lettered {}",
            start.started.elapsed().as_secs_f64(),
            n(PartitionState::Running) + n(PartitionState::Triggering),
            n(PartitionState::Pending),
            n(PartitionState::Failed),
            n(PartitionState::DeadLettered),
        );
        if n(PartitionState::DeadLettered) > 0 || n(PartitionState::Cancelled) > 0 {
            break Err("some partitions were dead-lettered or cancelled".to_owned());
        }
        if done == total {
            let report = reconcile_once(
                &parts.ledger,
                &parts.client,
                &request.backfill_id,
                "demo-reconciler",
            )
            .await
            .map_err(anyhow::Error::new)?;
            let result = if report.complete {
                "complete"
            } else {
                "incomplete"
            };
            start
                .metrics
                .reconcile
                .pass(result, chrono::Utc::now().timestamp());
            if report.complete {
                break Ok(report.verified);
            }
        }
        if Instant::now() > deadline {
            break Err(format!("not complete after {} s", args.timeout_s));
        }
    };

    if let Some(linger) = args.linger_s.filter(|s| *s > 0) {
        eprintln!("demo: serving metrics for another {linger} s (--linger-s)");
        tokio::select! {
            () = tokio::time::sleep(Duration::from_secs(linger)) => {}
            () = start.shutdown.cancelled() => {}
        }
    }
    workers.cancel();
    for task in tasks {
        let _ = task.await;
    }
    collector.abort();
    sim_metrics.abort();
    parts.close().await;
    let stats = sim.sim.stats();
    let runs_per_partition_max = stats
        .runs_per_partition
        .values()
        .copied()
        .max()
        .unwrap_or(0);
    match outcome {
        Ok(verified) => {
            println!(
                "demo: backfill {} complete: {verified}/{total} partitions succeeded, verified and passed the data-quality gate in {:.1} s; \
                 {} Databricks runs ({} per partition at most), {} runs/get calls",
                request.backfill_id,
                start.started.elapsed().as_secs_f64(),
                stats.runs_created,
                runs_per_partition_max,
                stats.calls.get("jobs/runs/get").copied().unwrap_or(0),
            );
            println!(
                "see it with: backfill status --backfill-id {} --ledger-url {}",
                request.backfill_id,
                start.settings.ledger_url.as_deref().unwrap_or_default()
            );
            Ok(())
        }
        Err(why) => Err(CliError::Negative(format!(
            "demo: backfill {} failed: {why} (see: backfill status --backfill-id {} --ledger-url {})",
            request.backfill_id,
            request.backfill_id,
            start.settings.ledger_url.as_deref().unwrap_or_default()
        ))),
    }
}

/// The demo's settings: a broker namespace of its own, and the embedded ledger unless
/// told otherwise (it says which).
pub(super) fn demo_settings(global: &GlobalOpts, stamp: &str) -> GlobalOpts {
    let mut demo_global = global.clone();
    demo_global.namespace = format!("{}-demo-{stamp}", global.namespace);
    demo_global
        .ledger_url
        .get_or_insert_with(|| crate::settings::DEFAULT_LEDGER_URL.to_owned());
    demo_global
}

/// The demo's metrics: every role's families, ready once broker and ledger answer.
pub(super) async fn start_metrics(
    global: &GlobalOpts,
) -> Result<Arc<backfill_metrics::Metrics>, CliError> {
    let metrics = observe::start(
        global,
        "demo",
        &[
            Group::Worker,
            Group::Api,
            Group::Fleet,
            Group::Reconcile,
            Group::Sim,
        ],
    )
    .await?;
    metrics.health.require(true, true);
    Ok(metrics)
}

/// What both demos begin with: when, a stamp naming the run, settings of their own (a
/// broker namespace, the embedded ledger), the shutdown signal and the metrics.
#[derive(Debug)]
pub(super) struct DemoStart {
    pub started: Instant,
    pub stamp: String,
    pub settings: GlobalOpts,
    pub shutdown: CancellationToken,
    pub metrics: Arc<backfill_metrics::Metrics>,
}

/// Checks the number of days and starts the run's settings, signal handling and metrics.
pub(super) async fn begin(global: &GlobalOpts, days: u32) -> Result<DemoStart, CliError> {
    if days == 0 {
        return Err(CliError::usage("--days must be at least 1"));
    }
    let started = Instant::now();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    Ok(DemoStart {
        started,
        settings: demo_settings(global, &stamp),
        stamp,
        shutdown: shutdown_on_signals(),
        metrics: start_metrics(global).await?,
    })
}

/// What a demo's fleet runs on: the simulator's client, the ledger and the broker, with
/// the run's settings and metrics.
#[derive(Debug)]
pub(super) struct DemoParts {
    pub client: DatabricksClient,
    pub ledger: Ledger,
    pub broker: Broker,
    settings: GlobalOpts,
    metrics: Arc<backfill_metrics::Metrics>,
}

impl DemoParts {
    /// Connects to the simulator at `sim_url`, the ledger and the broker.
    pub(super) async fn connect(start: &DemoStart, sim_url: &str) -> Result<Self, CliError> {
        let client = DatabricksClient::new(ClientConfig::new(sim_url, "demo-token"))
            .map_err(anyhow::Error::new)?
            .with_metrics(start.metrics.api.clone());
        let ledger = start.settings.ledger().await?;
        let broker = start
            .settings
            .broker("backfill demo", Duration::from_secs(10))
            .await?;
        Ok(Self {
            client,
            ledger,
            broker,
            settings: start.settings.clone(),
            metrics: start.metrics.clone(),
        })
    }

    /// The demo's workers (in this process), until `stop` is cancelled.
    pub(super) fn spawn_workers(
        &self,
        concurrency: usize,
        stop: &CancellationToken,
    ) -> Result<Vec<tokio::task::JoinHandle<Result<(), BrokerError>>>, CliError> {
        let mut tasks = Vec::new();
        for n in 1..=WORKERS {
            let mut config = WorkerConfig::new(format!("{}-demo{n}", default_worker_id()));
            config.fleet_settings = crate::commands::worker::FLEET_SETTINGS.into();
            config.concurrency = concurrency;
            config.admission_delay = Duration::from_secs(1);
            // The simulator has no rate limits by default; a generous budget still
            // exercises the fleet's sharing of it.
            let budget = backfill_worker::ApiBudget(BTreeMap::from([
                ("jobs/run-now".to_owned(), 500),
                ("jobs/runs/get".to_owned(), 2000),
            ]));
            let worker = Arc::new(
                Worker::new(config, self.ledger.clone(), self.client.clone())
                    .with_budget(budget)
                    .with_metrics(self.metrics.clone()),
            );
            tasks.push(tokio::spawn(run_worker(
                worker,
                self.settings.amqp()?,
                self.settings.topology()?,
                stop.clone(),
            )));
        }
        Ok(tasks)
    }

    /// Deletes the demo's namespace from the broker and closes the connection; the
    /// ledger stays for what is left to read.
    pub(super) async fn close(self) -> Ledger {
        if let Ok(channel) = self.broker.channel().await {
            let _ = self.broker.topology().delete(&channel).await;
        }
        self.broker.close().await;
        self.ledger
    }
}

/// The simulator of the demo: instant-ish runs by default, `--run-ms` for a slower show.
pub(super) fn sim_config(args: &DemoArgs) -> Result<SimConfig, CliError> {
    let mut config = SimConfig::default();
    if let Some(ms) = args.run_ms {
        config.running_ms = ms;
    }
    for flag in &args.faults {
        config.faults.push(fault_rule(flag)?);
    }
    Ok(config)
}
