//! `backfill sim`: serve the Databricks simulator until SIGTERM.

use anyhow::Context;
use std::collections::BTreeMap;

use backfill_contract::PartitionDate;
use backfill_simulator::{Outcome, SimConfig, Simulator, serve};

use super::shutdown_on_signals;
use crate::CliError;
use crate::args::SimArgs;

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

pub async fn run(args: SimArgs) -> Result<(), CliError> {
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
    println!(
        "Databricks simulator listening on http://{} (jobs: {})",
        args.addr,
        jobs.join(", ")
    );
    let shutdown = shutdown_on_signals();
    serve(listener, Simulator::new(config), async move {
        shutdown.cancelled().await
    })
    .await
    .context("simulator stopped")?;
    Ok(())
}
