//! `backfill status`: where a backfill stands: the grid, counts by state, retries, spend,
//! throughput, ETA, and why new runs are held.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Duration;

use backfill_ledger::{BackfillState, Ledger, Partition, PartitionState, PartitionSummary, now_ms};
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
    /// Hours of runs over every attempt (Databricks' start and end times; cancelled runs
    /// and runs given up while running up to that moment, an upper bound). Never goes down.
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
    /// Where partitions stand towards production (promoted, proven and not yet promoted,
    /// rolled back).
    pub promotion: backfill_ledger::PromotionCounts,
}

const HOUR_MS: i64 = 3_600_000;

/// Partitions finished per hour over the last hour (or since the first trigger, when
/// sooner), and the seconds left at that rate.
fn rates(summary: &PartitionSummary, now: i64) -> (f64, Option<i64>) {
    let began = summary.first_triggered_ms.unwrap_or(now);
    let window_hours = ((now - began.max(now - HOUR_MS)) as f64 / HOUR_MS as f64).max(1.0 / 60.0);
    let throughput = summary.finished_since as f64 / window_hours;
    let remaining = summary.unfinished() as f64;
    let eta = (throughput > 0.0).then(|| (remaining / throughput * 3600.0) as i64);
    (throughput, eta)
}

/// The report of one backfill, from aggregates: its memory does not grow with the
/// backfill's size.
pub async fn status_report(
    ledger: &Ledger,
    backfill_id: &backfill_contract::BackfillId,
    price_per_run_hour: f64,
) -> Result<StatusReport, CliError> {
    let backfill = super::load_backfill(ledger, backfill_id).await?;
    let now = now_ms();
    let summary = ledger
        .partition_summary(backfill_id, now - HOUR_MS)
        .await
        .map_err(anyhow::Error::new)?;
    let states: BTreeMap<&'static str, i64> = summary
        .states
        .iter()
        .map(|(s, n)| (s.as_str(), *n))
        .collect();
    let run_hours = summary.run_ms as f64 / HOUR_MS as f64;
    let (throughput_per_hour, eta_s) = rates(&summary, now);
    let guard = guard_reason(&backfill, &summary);
    let promotion = ledger
        .promotion_counts(backfill_id)
        .await
        .map_err(anyhow::Error::new)?;
    let price = backfill
        .guards
        .price_per_run_hour
        .unwrap_or(price_per_run_hour);
    Ok(StatusReport {
        backfill_id: backfill_id.to_string(),
        state: backfill.state.as_str().to_owned(),
        job_id: backfill.job_id,
        start: backfill.start.to_string(),
        end: backfill.end.to_string(),
        manifest_id: backfill.manifest_id.clone(),
        total: summary.total(),
        states,
        verified: summary.verified,
        retries: summary.retries,
        run_hours,
        spend: run_hours * price,
        projected_spend: projected(&summary, run_hours, price),
        throughput_per_hour,
        eta_s,
        held: guard.as_ref().and_then(|(held, _)| *held),
        guard: guard.map(|(_, why)| why),
        promotion,
    })
}

/// Spend once every partition has run, at the average run length seen so far (the spend
/// so far when no run has finished with a measured length).
fn projected(summary: &PartitionSummary, run_hours: f64, price: f64) -> f64 {
    if summary.finished_runs == 0 {
        return run_hours * price;
    }
    (run_hours + run_hours / summary.finished_runs as f64 * summary.unfinished() as f64) * price
}

/// Why new runs are held now, as far as the ledger can tell (the worker also watches the
/// production job's runs at Databricks).
fn guard_reason(
    backfill: &backfill_ledger::Backfill,
    summary: &PartitionSummary,
) -> Option<(Option<&'static str>, String)> {
    use chrono::Timelike;
    if backfill.state != BackfillState::Active {
        let why = format!("new runs held: backfill {}", backfill.state.as_str());
        return Some((Some(backfill.state.as_str()), why));
    }
    let g = &backfill.guards;
    if let (Some(price), Some(budget)) = (g.price_per_run_hour, g.budget) {
        let projected = backfill_ledger::projected_spend(
            summary.run_ms,
            summary.finished_runs,
            summary.active(),
            price,
        );
        let pending =
            summary.count(PartitionState::Pending) + summary.count(PartitionState::Failed) > 0;
        if pending && projected > budget {
            let why = format!(
                "new runs held: budget: projected spend {projected:.2} would exceed {budget:.2}"
            );
            return Some((Some("budget"), why));
        }
    }
    let now = chrono::Utc::now();
    if let Some(w) = g.open_window(now.hour() * 60 + now.minute()) {
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
    let p = &report.promotion;
    println!(
        "production: {} promoted, {} proven and not yet promoted{}, {} rolled back",
        p.promoted,
        p.proven_not_promoted,
        if p.proven_not_promoted > 0 {
            " (backfill promote promotes them)"
        } else {
            ""
        },
        p.rolled_back
    );
    if let Some(guard) = &report.guard {
        println!("{guard}");
    }
}

/// One line of `backfill status` without a backfill id.
#[derive(Debug, Serialize)]
pub struct BackfillLine {
    pub backfill_id: String,
    pub state: String,
    pub start: String,
    pub end: String,
    pub total: i64,
    /// Counts keyed by partition state (every state present).
    pub states: BTreeMap<&'static str, i64>,
    /// Partitions that reached an end (succeeded, dead-lettered, cancelled), in percent.
    pub progress_pct: f64,
}

/// How many backfills the listing shows, newest first.
const LISTED: i64 = 50;

/// The most recent backfills, one line each (newest first).
async fn list(ledger: &Ledger, json: bool) -> Result<(), CliError> {
    let ids = ledger
        .recent_backfills(LISTED)
        .await
        .map_err(anyhow::Error::new)?;
    let mut lines = Vec::new();
    for id in &ids {
        let backfill = super::load_backfill(ledger, id).await?;
        let summary = ledger
            .partition_summary(id, now_ms())
            .await
            .map_err(anyhow::Error::new)?;
        let states: BTreeMap<&'static str, i64> = summary
            .states
            .iter()
            .map(|(s, n)| (s.as_str(), *n))
            .collect();
        let total = summary.total();
        let ended = summary.count(PartitionState::Succeeded)
            + summary.count(PartitionState::DeadLettered)
            + summary.count(PartitionState::Cancelled);
        lines.push(BackfillLine {
            backfill_id: id.to_string(),
            state: backfill.state.as_str().to_owned(),
            start: backfill.start.to_string(),
            end: backfill.end.to_string(),
            total,
            states,
            progress_pct: if total > 0 {
                (ended as f64 * 1000.0 / total as f64).round() / 10.0
            } else {
                0.0
            },
        });
    }
    if json {
        println!(
            "{}",
            serde_json::to_string(&lines).map_err(anyhow::Error::new)?
        );
        return Ok(());
    }
    if lines.is_empty() {
        println!("no backfills in this ledger");
        return Ok(());
    }
    println!(
        "{:<40} {:<10} {:<23} {:>6} {:>9} {:>8} {:>6} {:>7}",
        "backfill", "state", "range", "total", "succeeded", "running", "dead", "done"
    );
    for l in &lines {
        let n = |s: PartitionState| l.states.get(s.as_str()).copied().unwrap_or(0);
        println!(
            "{:<40} {:<10} {:<23} {:>6} {:>9} {:>8} {:>6} {:>6.1}%",
            l.backfill_id,
            l.state,
            format!("{}..{}", l.start, l.end),
            l.total,
            n(PartitionState::Succeeded),
            n(PartitionState::Running) + n(PartitionState::Triggering),
            n(PartitionState::DeadLettered),
            l.progress_pct
        );
    }
    if lines.len() as i64 == LISTED {
        println!("(the {LISTED} most recent; `backfill status --backfill-id ID` shows one)");
    }
    Ok(())
}

pub async fn run(global: &GlobalOpts, args: StatusArgs) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    let Some(id) = args.backfill_id.as_deref() else {
        return list(&ledger, args.json).await;
    };
    let backfill_id = parse_backfill_id(id)?;
    loop {
        let report = status_report(&ledger, &backfill_id, args.price_per_run_hour).await?;
        if args.json {
            println!(
                "{}",
                serde_json::to_string(&report).map_err(anyhow::Error::new)?
            );
        } else {
            if args.watch {
                print!("\x1b[2J\x1b[H");
            }
            let partitions = ledger
                .partitions(&backfill_id)
                .await
                .map_err(anyhow::Error::new)?;
            print_text(&report, &partitions);
        }
        if !args.watch {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
