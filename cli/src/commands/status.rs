//! `backfill status`: the report of `backfill_operations::status` printed (the grid,
//! counts by state, retries, spend, throughput, ETA, and why new runs are held), or the
//! most recent backfills listed.

use std::io::IsTerminal;
use std::time::Duration;

use backfill_ledger::{Ledger, Partition, PartitionState};
use backfill_operations::status::{BackfillLine, StatusReport, recent_backfills, status_report};

use super::grid;
use crate::args::{GlobalOpts, StatusArgs};
use crate::exit::CliError;

/// How many backfills the listing shows, newest first.
const LISTED: i64 = 50;

pub async fn run(global: &GlobalOpts, args: StatusArgs) -> Result<(), CliError> {
    let ledger = global.ledger().await?;
    let Some(backfill_id) = args.backfill_id else {
        return list(&ledger, args.json).await;
    };
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

fn print_text(report: &StatusReport, partitions: &[Partition]) {
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    println!(
        "backfill {} ({}), job {}, {} to {}, manifest {}",
        report.backfill_id,
        report.state.as_str(),
        report.job_id,
        report.start,
        report.end,
        report.manifest_id
    );
    print!("{}", grid::render(partitions, colour));
    let counts: Vec<String> = report
        .states
        .by_word()
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

/// The most recent backfills, one line each (newest first).
async fn list(ledger: &Ledger, json: bool) -> Result<(), CliError> {
    let lines = recent_backfills(ledger, LISTED).await?;
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
        print_line(l);
    }
    if lines.len() as i64 == LISTED {
        println!("(the {LISTED} most recent; `backfill status --backfill-id ID` shows one)");
    }
    Ok(())
}

fn print_line(l: &BackfillLine) {
    let n = |s: PartitionState| l.states.get(s);
    println!(
        "{:<40} {:<10} {:<23} {:>6} {:>9} {:>8} {:>6} {:>6.1}%",
        l.backfill_id.as_str(),
        l.state.as_str(),
        format!("{}..{}", l.start, l.end),
        l.total,
        n(PartitionState::Succeeded),
        n(PartitionState::Running) + n(PartitionState::Triggering),
        n(PartitionState::DeadLettered),
        l.progress_pct
    );
}
