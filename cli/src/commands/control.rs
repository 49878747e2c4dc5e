//! `backfill pause`, `resume` and `cancel`: an operator's hand on a running backfill.

use backfill_operations::Operator;
use backfill_operations::cancel::{RunCancelled, cancel as cancel_backfill};
use backfill_operations::pause;

use crate::args::{ControlArgs, GlobalOpts};
use crate::exit::CliError;

/// Pause (no new runs start; running ones are followed to their end) or resume.
pub async fn set_paused(
    global: &GlobalOpts,
    args: ControlArgs,
    paused: bool,
) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    let operator = Operator::new(&args.by, &args.reason);
    let changed = pause::set_paused(&ledger, &args.backfill_id, paused, operator).await?;
    let verb = if paused { "paused" } else { "resumed" };
    println!(
        "backfill {} {}",
        args.backfill_id,
        if changed { verb } else { "was already so" }
    );
    Ok(())
}

/// Cancels this backfill only (see `backfill_operations::cancel`); runs that could not be
/// cancelled are listed at the end (exit 1). Safe to repeat.
pub async fn cancel(global: &GlobalOpts, args: ControlArgs) -> Result<(), CliError> {
    let backfill_id = &args.backfill_id;
    if !args.yes {
        return Err(CliError::usage(format!(
            "cancelling {backfill_id} stops its runs and cannot be undone; repeat with --yes"
        )));
    }
    let ledger = global.ledger().await?;
    let (client, _membership) = global.fleet_client(&ledger, "cancel").await?;
    let operator = Operator::new(&args.by, &args.reason);
    let outcome = cancel_backfill(
        &ledger,
        &client,
        backfill_id,
        operator,
        |r: RunCancelled| {
            eprintln!("cancelled run {} ({}/{})", r.run_id, r.done, r.total);
        },
    )
    .await?;
    println!(
        "backfill {backfill_id} cancelled: {} partitions cancelled, {} runs cancelled",
        outcome.partitions, outcome.runs
    );
    if outcome.failures.is_empty() {
        return Ok(());
    }
    Err(CliError::Negative(format!(
        "could not cancel everything ({} left); repeat the command:\n  {}",
        outcome.failures.len(),
        outcome.failures.join("\n  ")
    )))
}
