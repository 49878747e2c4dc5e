//! `backfill rerun`: new attempts for terminal partitions, each recorded with who and why.

use std::time::Duration;

use backfill_operations::Operator;
use backfill_operations::rerun::rerun;

use crate::args::{GlobalOpts, RerunArgs};
use crate::exit::CliError;

pub async fn run(global: &GlobalOpts, args: RerunArgs) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    let broker = global
        .broker("backfill rerun", Duration::from_secs(60))
        .await?;
    let operator = Operator::new(&args.by, &args.reason);
    let result = rerun(
        &ledger,
        &broker,
        &args.backfill_id,
        &args.partitions,
        operator,
        |date, attempt| println!("{date}: attempt {attempt} queued"),
    )
    .await;
    broker.close().await;
    Ok(result?)
}
