//! `backfill audit`: the manifest and the event log, as JSON or CSV, on stdout.

use backfill_reconciler::{ReconcileError, audit_csv, audit_json};

use crate::args::{AuditArgs, AuditFormat, GlobalOpts};
use crate::exit::CliError;

pub async fn run(global: &GlobalOpts, args: AuditArgs) -> Result<(), CliError> {
    let backfill_id = &args.backfill_id;
    let ledger = global.ledger().await?;
    let not_found = |e: ReconcileError| match e {
        ReconcileError::UnknownBackfill(id) => {
            CliError::usage(format!("--backfill-id: no backfill {id} in the ledger"))
        }
        other => CliError::Failed(anyhow::Error::new(other)),
    };
    match args.format {
        AuditFormat::Json => {
            let doc = audit_json(&ledger, backfill_id).await.map_err(not_found)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&doc).map_err(anyhow::Error::new)?
            );
        }
        AuditFormat::Csv => print!(
            "{}",
            audit_csv(&ledger, backfill_id).await.map_err(not_found)?
        ),
    }
    Ok(())
}
