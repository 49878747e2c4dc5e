//! `backfill sim`: serve the Databricks simulator until SIGTERM.

use anyhow::Context;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use backfill_metrics::{Group, Metrics, SimSnapshot};
use tokio_util::sync::CancellationToken;

use backfill_contract::PartitionDate;
use backfill_simulator::{FaultRule, Outcome, SimConfig, Simulator, serve};
use serde::Deserialize;

use super::rehearsal;
use super::signals::shutdown_on_signals;
use crate::args::{Engine, GlobalOpts, SimArgs};
use crate::exit::CliError;
use crate::observe;

/// Parses `--outcome DATE=kind,kind` flags.
fn scripted_outcomes(flags: &[String]) -> Result<BTreeMap<String, Vec<Outcome>>, CliError> {
    let mut script = BTreeMap::new();
    for flag in flags {
        let Some((date, kinds)) = flag.split_once('=') else {
            return Err(CliError::usage(format!(
                "--outcome {flag:?} must look like DATE=OUTCOME[,OUTCOME...]"
            )));
        };
        let date: PartitionDate = date
            .parse()
            .map_err(|e| CliError::usage(format!("--outcome: {e}")))?;
        let outcomes = kinds
            .split(',')
            .map(|k| {
                Outcome::parse(k.trim())
                    .ok_or_else(|| CliError::usage(format!("--outcome: unknown outcome {k:?}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        script.insert(date.to_string(), outcomes);
    }
    Ok(script)
}

/// Parses a `--fault ENDPOINT=KIND[,key=value...]` flag into a rule (through the same
/// deserializer as scenario files, so both accept the same things).
pub(super) fn fault_rule(flag: &str) -> Result<FaultRule, CliError> {
    let bad = |why: String| CliError::usage(format!("--fault {flag:?}: {why}"));
    let (endpoint, rest) = flag
        .split_once('=')
        .ok_or_else(|| bad("must look like ENDPOINT=KIND[,key=value...]".into()))?;
    let mut parts = rest.split(',');
    let kind = parts.next().unwrap_or_default();
    let mut table = toml::Table::new();
    table.insert("endpoint".into(), toml::Value::String(endpoint.to_owned()));
    table.insert("kind".into(), toml::Value::String(kind.to_owned()));
    for part in parts {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| bad(format!("{part:?} is not key=value")))?;
        let value = match k {
            "partition" => toml::Value::String(v.to_owned()),
            "probability" => toml::Value::Float(
                v.parse()
                    .map_err(|_| bad(format!("probability {v:?} is not a number")))?,
            ),
            _ => toml::Value::Integer(
                v.parse()
                    .map_err(|_| bad(format!("{k} {v:?} is not a whole number")))?,
            ),
        };
        table.insert(k.to_owned(), value);
    }
    FaultRule::deserialize(toml::Value::Table(table)).map_err(|e| bad(e.to_string()))
}

pub async fn run(global: &GlobalOpts, args: SimArgs) -> Result<(), CliError> {
    let mut config = match &args.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::usage(format!("--scenario {}: {e}", path.display())))?;
            SimConfig::from_toml(&text)
                .map_err(|e| CliError::usage(format!("--scenario {}: {e}", path.display())))?
        }
        None => SimConfig::default(),
    };
    if args.token.is_some() {
        config.token = args.token.clone();
    }
    if let Some(ms) = args.pending_ms {
        config.pending_ms = ms;
    }
    if let Some(ms) = args.running_ms {
        config.running_ms = ms;
    }
    config.outcomes.extend(scripted_outcomes(&args.outcomes)?);
    for flag in &args.faults {
        config.faults.push(fault_rule(flag)?);
    }
    for flag in &args.rate_limits {
        let parsed = flag
            .split_once('=')
            .and_then(|(e, r)| Some((e.to_owned(), r.parse::<f64>().ok()?)));
        let Some((endpoint, rate)) = parsed.filter(|(_, r)| *r > 0.0) else {
            return Err(CliError::usage(format!(
                "--rate-limit {flag:?} must look like ENDPOINT=RATE with RATE > 0"
            )));
        };
        config.rate_limits.insert(endpoint, rate);
    }
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .with_context(|| format!("cannot listen on --addr {}", args.addr))?;
    let jobs: Vec<String> = config.jobs.iter().map(|j| j.job_id.to_string()).collect();
    let shutdown = shutdown_on_signals();
    let metrics = observe::start(global, "sim", &[Group::Sim]).await?;
    let sim = match args.engine.engine {
        Engine::Instant => Simulator::new(config),
        Engine::Spark => {
            let dir = rehearsal::sample_dir(&args.engine)?;
            let spec = rehearsal::sample_spec(
                dir,
                args.sample_start,
                args.sample_days,
                args.seed,
                args.gate_failing_day,
            )?;
            let (sim, summary) = rehearsal::spark_simulator(&args.engine, &spec, config).await?;
            println!(
                "Spark engine ready ({} runs at once); sample {} to {} in {} (pins: {})",
                args.engine.slots,
                summary.start,
                summary.end,
                spec.dir.display(),
                summary
                    .pins
                    .iter()
                    .map(|(t, v)| format!("{t}={v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            sim
        }
    };
    // Said once the engine is up: a caller waiting for this line can send requests.
    println!(
        "Databricks simulator listening on http://{} (jobs: {})",
        args.addr,
        jobs.join(", ")
    );
    let engine = sim.engine();
    let copier = spawn_sim_metrics(sim.clone(), metrics, shutdown.clone());
    let served = serve(listener, sim, async move { shutdown.cancelled().await }).await;
    copier.abort();
    if let Some(engine) = engine {
        engine.stop(Duration::from_secs(30)).await;
    }
    served.context("simulator stopped")?;
    Ok(())
}

/// Copies the simulator's counters into its metrics every second until `shutdown`.
pub fn spawn_sim_metrics(
    sim: Simulator,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let stats = sim.stats();
            metrics.sim.record(&SimSnapshot {
                calls: stats.calls.into_iter().collect(),
                throttled: stats.throttled.values().sum(),
                faults: stats.faults.values().sum(),
                runs_started: stats.runs_created,
                runs_active: sim.active_runs() as i64,
            });
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
                () = shutdown.cancelled() => break,
            }
        }
    })
}
