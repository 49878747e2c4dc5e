//! One module per subcommand, and what they share (signals, worker names).

mod audit;
mod contract;
pub(crate) mod control;
mod demo;
mod demo_spark;
mod dlq;
mod grid;
mod produce;
mod promote;
pub(crate) mod reconcile;
mod rehearsal;
pub(crate) mod sim;
pub(crate) mod status;
mod topology;
mod worker;

use tokio_util::sync::CancellationToken;

use crate::CliError;
use crate::args::{Cli, Command};

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let global = cli.global;
    if uses_broker(&cli.command) {
        // A malformed broker setting is refused before anything is done.
        global.amqp()?;
    }
    match cli.command {
        Command::Produce(args) => produce::run(&global, *args).await,
        Command::Plan(args) => produce::plan(args),
        Command::Worker(args) => worker::run(&global, args).await,
        Command::Reconcile(args) => reconcile::run(&global, args).await,
        Command::Status(args) => status::run(&global, args).await,
        Command::Promote(args) => promote::run(&global, args).await,
        Command::Rollback(args) => promote::rollback(&global, args).await,
        Command::Amend(args) => contract::amend(&global, args).await,
        Command::Audit(args) => audit::run(&global, args).await,
        Command::Rerun(args) => produce::rerun(&global, args).await,
        Command::Pause(args) => control::set_paused(&global, args, true).await,
        Command::Resume(args) => control::set_paused(&global, args, false).await,
        Command::Cancel(args) => control::cancel(&global, args).await,
        Command::Guards(args) => control::guards(&global, args).await,
        Command::Dlq(args) => dlq::run(&global, args).await,
        Command::Topology(args) => topology::run(&global, args).await,
        Command::Throttle(args) => control::throttle(&global, args).await,
        Command::Sim(args) => sim::run(&global, args).await,
        Command::Demo(args) if args.engine.engine == crate::args::Engine::Spark => {
            demo_spark::run(&global, args).await
        }
        Command::Demo(args) => demo::run(&global, args).await,
        Command::RehearsalCheck(args) => rehearsal::check(&global, args).await,
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut command = crate::args::Cli::command();
            clap_complete::generate(args.shell, &mut command, "backfill", &mut std::io::stdout());
            Ok(())
        }
    }
}

/// The commands that talk to RabbitMQ.
fn uses_broker(command: &Command) -> bool {
    matches!(
        command,
        Command::Produce(_)
            | Command::Worker(_)
            | Command::Rerun(_)
            | Command::Dlq(_)
            | Command::Topology(_)
            | Command::Demo(_)
    )
}

/// A token cancelled on SIGTERM or Ctrl-C.
pub(crate) fn shutdown_on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            match signal(SignalKind::terminate()) {
                Ok(mut term) => {
                    tokio::select! {
                        _ = tokio::signal::ctrl_c() => {}
                        _ = term.recv() => {}
                    }
                }
                Err(_) => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        tracing::info!("shutdown requested; draining");
        cancel.cancel();
    });
    token
}

/// `host-pid`, unique per process on a machine.
pub(crate) fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}", std::process::id())
}

pub(crate) fn parse_backfill_id(text: &str) -> Result<backfill_contract::BackfillId, CliError> {
    text.parse()
        .map_err(|e| CliError::usage(format!("--backfill-id: {e}")))
}

/// The backfill named by `--backfill-id`, or a usage error naming it.
pub(crate) async fn load_backfill(
    ledger: &backfill_ledger::Ledger,
    backfill_id: &backfill_contract::BackfillId,
) -> Result<backfill_ledger::Backfill, CliError> {
    ledger
        .backfill(backfill_id)
        .await
        .map_err(anyhow::Error::new)?
        .ok_or_else(|| {
            CliError::usage(format!(
                "--backfill-id: no backfill {backfill_id} in the ledger"
            ))
        })
}

/// `--partition` values as dates, naming the bad one.
pub(crate) fn parse_partitions(
    values: &[String],
) -> Result<Vec<backfill_contract::PartitionDate>, CliError> {
    values
        .iter()
        .map(|p| {
            p.parse()
                .map_err(|e| CliError::usage(format!("--partition: {e}")))
        })
        .collect()
}
