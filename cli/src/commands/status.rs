//! `backfill status`: counts by state for one backfill.

use std::collections::BTreeMap;

use backfill_ledger::{Ledger, PartitionState};
use serde::Serialize;

use super::parse_backfill_id;
use crate::CliError;
use crate::args::{GlobalOpts, StatusArgs};

/// The `--json` shape of `backfill status`.
#[derive(Debug, Serialize)]
pub struct StatusReport {
    pub backfill_id: String,
    pub state: String,
    pub job_id: i64,
    pub start: String,
    pub end: String,
    pub manifest_id: String,
    pub total: i64,
    /// Counts keyed by partition state (every state present).
    pub states: BTreeMap<&'static str, i64>,
    /// Succeeded partitions proven against Databricks by the reconciler.
    pub verified: i64,
    /// Attempts beyond the first, summed over partitions.
    pub retries: i64,
}

pub async fn status_report(
    ledger: &Ledger,
    backfill_id: &backfill_contract::BackfillId,
) -> Result<StatusReport, CliError> {
    let backfill = ledger
        .backfill(backfill_id)
        .await
        .map_err(anyhow::Error::new)?
        .ok_or_else(|| {
            CliError::usage(format!(
                "--backfill-id: no backfill {backfill_id} in the ledger"
            ))
        })?;
    let partitions = ledger
        .partitions(backfill_id)
        .await
        .map_err(anyhow::Error::new)?;
    let mut states: BTreeMap<&'static str, i64> = PartitionState::ALL
        .iter()
        .map(|s| (s.as_str(), 0))
        .collect();
    for p in &partitions {
        *states.entry(p.state.as_str()).or_default() += 1;
    }
    Ok(StatusReport {
        backfill_id: backfill_id.to_string(),
        state: backfill.state.as_str().to_owned(),
        job_id: backfill.job_id,
        start: backfill.start.to_string(),
        end: backfill.end.to_string(),
        manifest_id: backfill.manifest_id.clone(),
        total: partitions.len() as i64,
        states,
        verified: partitions
            .iter()
            .filter(|p| p.verified_at_ms.is_some())
            .count() as i64,
        retries: partitions
            .iter()
            .map(|p| i64::from(p.attempt.get()) - 1)
            .sum(),
    })
}

pub async fn run(global: &GlobalOpts, args: StatusArgs) -> Result<(), CliError> {
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    let ledger = global.ledger().await?;
    let report = status_report(&ledger, &backfill_id).await?;
    if args.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(anyhow::Error::new)?
        );
        return Ok(());
    }
    println!(
        "backfill {} ({}), job {}, {} to {}, manifest {}",
        report.backfill_id,
        report.state,
        report.job_id,
        report.start,
        report.end,
        report.manifest_id
    );
    let counts: Vec<String> = report
        .states
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!("{} partitions: {}", report.total, counts.join(", "));
    println!(
        "verified against Databricks: {}/{}; retries: {}",
        report.verified, report.total, report.retries
    );
    Ok(())
}
