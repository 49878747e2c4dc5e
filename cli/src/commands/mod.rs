//! One module per subcommand (flags in, printing out; the procedures are
//! `backfill_operations`'), and what long-running ones share (signals, worker names).

mod audit;
mod contract;
mod control;
mod demo;
mod demo_spark;
mod dlq;
mod grid;
mod guards;
mod plan;
mod produce;
mod promote;
mod reconcile;
mod rehearsal;
mod rerun;
mod signals;
mod sim;
mod status;
mod throttle;
mod topology;
pub(crate) mod worker;
mod worker_id;

use crate::args::{Cli, Command, Engine};
use crate::exit::CliError;

pub async fn run(cli: Cli) -> Result<(), CliError> {
    let global = cli.global;
    if uses_broker(&cli.command) {
        // A malformed broker setting is refused before anything is done.
        global.amqp()?;
    }
    match cli.command {
        Command::Produce(args) => produce::run(&global, *args).await,
        Command::Plan(args) => plan::run(args),
        Command::Worker(args) => worker::run(&global, args).await,
        Command::Reconcile(args) => reconcile::run(&global, args).await,
        Command::Status(args) => status::run(&global, args).await,
        Command::Promote(args) => promote::run(&global, args).await,
        Command::Rollback(args) => promote::rollback(&global, args).await,
        Command::Amend(args) => contract::amend(&global, args).await,
        Command::Audit(args) => audit::run(&global, args).await,
        Command::Rerun(args) => rerun::run(&global, args).await,
        Command::Pause(args) => control::set_paused(&global, args, true).await,
        Command::Resume(args) => control::set_paused(&global, args, false).await,
        Command::Cancel(args) => control::cancel(&global, args).await,
        Command::Guards(args) => guards::run(&global, args).await,
        Command::Dlq(args) => dlq::run(&global, args).await,
        Command::Topology(args) => topology::run(&global, args).await,
        Command::Throttle(args) => throttle::run(&global, args).await,
        Command::Sim(args) => sim::run(&global, args).await,
        Command::Demo(args) if args.engine.engine == Engine::Spark => {
            demo_spark::run(&global, args).await
        }
        Command::Demo(args) => demo::run(&global, args).await,
        Command::RehearsalCheck(args) => rehearsal::check(&global, args).await,
        Command::Completions(args) => {
            use clap::CommandFactory;
            let mut command = Cli::command();
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
