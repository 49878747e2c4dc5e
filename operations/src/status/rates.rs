//! Throughput, ETA and projected spend from a backfill's partition summary.

use backfill_ledger::PartitionSummary;

/// An hour in milliseconds: the window throughput is measured over.
pub const HOUR_MS: i64 = 3_600_000;

/// Partitions finished per hour over the last hour (or since the first trigger, when
/// sooner), and the seconds left at that rate (none without a rate yet).
pub fn rates(summary: &PartitionSummary, now: i64) -> (f64, Option<i64>) {
    let began = summary.first_triggered_ms.unwrap_or(now);
    let window_hours = ((now - began.max(now - HOUR_MS)) as f64 / HOUR_MS as f64).max(1.0 / 60.0);
    let throughput = summary.finished_since as f64 / window_hours;
    let remaining = summary.unfinished() as f64;
    let eta = (throughput > 0.0).then(|| (remaining / throughput * 3600.0) as i64);
    (throughput, eta)
}

/// Spend once every partition has run, at the average run length seen so far (the spend
/// so far when no run has finished with a measured length).
pub fn spend_at_completion(summary: &PartitionSummary, run_hours: f64, price: f64) -> f64 {
    if summary.finished_runs == 0 {
        return run_hours * price;
    }
    (run_hours + run_hours / summary.finished_runs as f64 * summary.unfinished() as f64) * price
}
