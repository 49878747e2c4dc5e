//! The `backfill` command line. `main` parses flags, sets up logging, runs one command and
//! turns its result into an exit code: 0 success, 1 failure (or an incomplete backfill),
//! 2 bad usage. All the work is in the role and library crates.

mod args;
mod commands;
mod env_hint;
mod exit;
mod observe;
mod progress;
mod settings;
mod telemetry;

use std::process::ExitCode;

pub use args::Cli;
pub use exit::CliError;

/// Entry point of the `backfill` binary.
pub fn main() -> ExitCode {
    let cli = {
        use clap::FromArgMatches;
        let argv: Vec<String> = std::env::args().collect();
        let command = args::command_for(&argv);
        let matches = match command.clone().try_get_matches_from(&argv) {
            Ok(matches) => matches,
            Err(e) if e.use_stderr() => {
                let code = env_hint::report(&e, &command, &argv);
                return ExitCode::from(u8::try_from(code).unwrap_or(2));
            }
            Err(e) => e.exit(),
        };
        match Cli::from_arg_matches(&matches) {
            Ok(cli) => cli,
            Err(e) => e.exit(),
        }
    };
    telemetry::init(
        cli.global.log_format,
        // The demo prints its own progress; `topology` asks for queues that may be
        // absent, which lapin reports as channel errors.
        matches!(
            cli.command,
            args::Command::Demo(_) | args::Command::Topology(_)
        ),
    );
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => e.report(),
    }
}
