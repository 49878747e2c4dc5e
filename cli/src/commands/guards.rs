//! `backfill guards`: change a backfill's budget and freshness guards.

use backfill_operations::guards::change_guards;

use crate::args::{GlobalOpts, GuardsArgs};
use crate::exit::CliError;

pub async fn run(global: &GlobalOpts, args: GuardsArgs) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    let change = args.guards.change(args.clear_windows);
    let guards = change_guards(&ledger, &args.backfill_id, &change, &args.by)
        .await
        .map_err(guard_error)?;
    println!("{}", serde_json::to_string(&guards).unwrap_or_default());
    Ok(())
}

/// A refused guard value names the flags that give it.
pub fn guard_error(e: backfill_operations::OperationError) -> CliError {
    match e {
        backfill_operations::OperationError::Refused(_) => {
            CliError::usage("--budget and --price-per-run-hour must not be negative")
        }
        other => other.into(),
    }
}
