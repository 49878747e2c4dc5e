//! `backfill throttle show | clear`: the fleet-wide pauses of Databricks endpoints.

use backfill_operations::throttle::{clear_pauses, paused_endpoints};

use crate::args::{GlobalOpts, ThrottleArgs, ThrottleCommand};
use crate::exit::CliError;

pub async fn run(global: &GlobalOpts, args: ThrottleArgs) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    match args.command {
        ThrottleCommand::Show => {
            let paused = paused_endpoints(&ledger).await?;
            if paused.is_empty() {
                println!("no endpoint is paused");
            }
            for p in paused {
                println!("{} paused for another {} s", p.endpoint, p.remaining_s);
            }
        }
        ThrottleCommand::Clear { endpoint } => {
            let cleared = clear_pauses(&ledger, endpoint.as_deref()).await?;
            println!("{cleared} pauses cleared; workers follow within a heartbeat");
        }
    }
    Ok(())
}
