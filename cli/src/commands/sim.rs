//! `backfill sim`: serve the Databricks simulator until SIGTERM.

use std::time::Duration;

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
    let config = SimConfig {
        outcomes: scripted_outcomes(&args.outcomes)?,
        token: args.token,
        pending: Duration::from_millis(args.pending_ms),
        running: Duration::from_millis(args.running_ms),
        ..SimConfig::default()
    };
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
