//! `backfill status`: where a backfill stands: the grid, counts by state, retries, spend,
//! throughput, ETA, and why new runs are held.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use backfill_ledger::{BackfillState, Ledger, Partition, PartitionState, now_ms};
use serde::Serialize;

use super::{grid, parse_backfill_id};
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
    /// Hours of finished runs (Databricks' start and end times).
    pub run_hours: f64,
    /// `run_hours` times the price per run-hour.
    pub spend: f64,
    /// Spend once every partition has run, at the average run length so far.
    pub projected_spend: f64,
    /// Partitions finished per hour, over the last hour.
    pub throughput_per_hour: f64,
    /// Seconds until every partition is done at that rate (none without a rate yet).
    pub eta_s: Option<i64>,
    /// Why new runs are held, when they are.
    pub guard: Option<String>,
    /// The hold as a fixed word (`paused`, `cancelled`, `budget`, `protected_window`),
    /// for metrics and scripts; none while new runs may start.
    pub held: Option<&'static str>,
}

fn rates(partitions: &[Partition], now: i64) -> (f64, Option<i64>) {
    let hour = 3_600_000;
    let finished = partitions
        .iter()
        .filter(|p| p.state.is_terminal() && p.updated_at_ms > now - hour)
        .count() as f64;
    let began = partitions
        .iter()
        .filter_map(|p| p.triggered_at_ms)
        .min()
        .unwrap_or(now);
    let window_hours = ((now - began.max(now - hour)) as f64 / hour as f64).max(1.0 / 60.0);
    let throughput = finished / window_hours;
    let remaining = partitions.iter().filter(|p| !p.state.is_terminal()).count() as f64;
    let eta = (throughput > 0.0).then(|| (remaining / throughput * 3600.0) as i64);
    (throughput, eta)
}

pub async fn status_report(
    ledger: &Ledger,
    backfill_id: &backfill_contract::BackfillId,
    price_per_run_hour: f64,
) -> Result<(StatusReport, Vec<Partition>), CliError> {
    let backfill = super::load_backfill(ledger, backfill_id).await?;
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
    let run_hours: f64 = partitions
        .iter()
        .filter_map(|p| Some((p.run_ended_ms? - p.run_started_ms?).max(0) as f64 / 3_600_000.0))
        .sum();
    let (throughput_per_hour, eta_s) = rates(&partitions, now_ms());
    let guard = guard_reason(&backfill, &partitions);
    let price = backfill
        .guards
        .price_per_run_hour
        .unwrap_or(price_per_run_hour);
    let report = StatusReport {
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
        run_hours,
        spend: run_hours * price,
        projected_spend: projected(&partitions, run_hours, price),
        throughput_per_hour,
        eta_s,
        held: guard.as_ref().and_then(|(held, _)| *held),
        guard: guard.map(|(_, why)| why),
    };
    Ok((report, partitions))
}

/// Spend once every partition has run, at the average run length seen so far.
fn projected(partitions: &[Partition], run_hours: f64, price: f64) -> f64 {
    let finished = partitions
        .iter()
        .filter(|p| p.run_ended_ms.is_some() && p.run_started_ms.is_some())
        .count();
    let unfinished = partitions.iter().filter(|p| !p.state.is_terminal()).count();
    if finished == 0 {
        return 0.0;
    }
    (run_hours + run_hours / finished as f64 * unfinished as f64) * price
}

/// Why new runs are held now, as far as the ledger can tell (the worker also watches the
/// production job's runs at Databricks).
fn guard_reason(
    backfill: &backfill_ledger::Backfill,
    partitions: &[Partition],
) -> Option<(Option<&'static str>, String)> {
    use chrono::Timelike;
    if backfill.state != BackfillState::Active {
        let why = format!("new runs held: backfill {}", backfill.state.as_str());
        return Some((Some(backfill.state.as_str()), why));
    }
    let g = &backfill.guards;
    if let (Some(price), Some(budget)) = (g.price_per_run_hour, g.budget) {
        let finished: Vec<i64> = partitions
            .iter()
            .filter_map(|p| Some((p.run_ended_ms? - p.run_started_ms?).max(0)))
            .collect();
        let active = partitions
            .iter()
            .filter(|p| {
                matches!(
                    p.state,
                    PartitionState::Triggering | PartitionState::Running
                )
            })
            .count() as i64;
        let projected = backfill_ledger::projected_spend(
            finished.iter().sum(),
            finished.len() as i64,
            active,
            price,
        );
        let pending = partitions
            .iter()
            .any(|p| matches!(p.state, PartitionState::Pending | PartitionState::Failed));
        if pending && projected > budget {
            let why = format!(
                "new runs held: budget: projected spend {projected:.2} would exceed {budget:.2}"
            );
            return Some((Some("budget"), why));
        }
    }
    let now = chrono::Utc::now();
    if let Some(w) = backfill_worker::freshness::open_window(
        &g.protected_windows,
        now.hour() * 60 + now.minute(),
    ) {
        let why = format!("new runs held: protected window {w} UTC");
        return Some((Some("protected_window"), why));
    }
    g.production_job_id.map(|job| {
        let why = format!("watching production job {job}: new runs wait while it runs");
        (None, why)
    })
}

fn print_text(report: &StatusReport, partitions: &[Partition]) {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    println!(
        "backfill {} ({}), job {}, {} to {}, manifest {}",
        report.backfill_id,
        report.state,
        report.job_id,
        report.start,
        report.end,
        report.manifest_id
    );
    print!("{}", grid::render(partitions, colour));
    let counts: Vec<String> = report
        .states
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(s, n)| format!("{s} {n}"))
        .collect();
    println!("{} partitions: {}", report.total, counts.join(", "));
    println!(
        "verified against Databricks: {}/{}; retries: {}; run-hours {:.2}, spend {:.2} (projected {:.2})",
        report.verified,
        report.total,
        report.retries,
        report.run_hours,
        report.spend,
        report.projected_spend
    );
    let eta = report.eta_s.map_or("unknown".to_owned(), |s| {
        format!("{}h{:02}m", s / 3600, s % 3600 / 60)
    });
    println!(
        "throughput {:.1} partitions/h, ETA {eta}",
        report.throughput_per_hour
    );
    if let Some(guard) = &report.guard {
        println!("{guard}");
    }
}

pub async fn run(global: &GlobalOpts, args: StatusArgs) -> Result<(), CliError> {
    let backfill_id = parse_backfill_id(&args.backfill_id)?;
    let ledger = global.ledger().await?;
    loop {
        let (report, partitions) =
            status_report(&ledger, &backfill_id, args.price_per_run_hour).await?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&report).map_err(anyhow::Error::new)?
            );
        } else {
            if args.watch {
                print!("\x1b[2J\x1b[H");
            }
            print_text(&report, &partitions);
        }
        if !args.watch {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
