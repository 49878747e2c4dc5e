//! `backfill sim`: serve the Databricks simulator until SIGTERM.

use std::time::Duration;

use anyhow::Context;
use backfill_simulator::{SimConfig, Simulator, serve};

use super::shutdown_on_signals;
use crate::CliError;
use crate::args::SimArgs;

pub async fn run(args: SimArgs) -> Result<(), CliError> {
    let config = SimConfig {
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
