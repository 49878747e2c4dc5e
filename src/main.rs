//! The `backfill` binary: every role of the fleet as a subcommand.

fn main() -> std::process::ExitCode {
    backfill_cli::main()
}
