//! One side's run as the section reports it, and the fleet's side (the throughput
//! section's run).

use backfill_simulator::SimStats;

use crate::support;

/// One side's run: rates, phases and memory.
pub(super) struct Run {
    /// Partitions a second from the producer's start to the last partition done.
    pub(super) rate: f64,
    /// The same through the fleet's verify (the fleet only).
    pub(super) rate_verified: Option<f64>,
    pub(super) produce_s: f64,
    /// From the producer's exit to the last partition done.
    pub(super) run_s: f64,
    /// Peak resident set: the worker's own, or the sum over the pool's processes.
    pub(super) peak_rss: f64,
    /// Peak proportional set summed over the pool (shared pages counted once).
    pub(super) peak_pss: Option<f64>,
    /// `run-now` and `runs/get` calls per partition.
    pub(super) calls: (f64, f64),
}

/// `run-now` and `runs/get` calls per partition, from the simulator's counts.
pub(super) fn calls_per_partition(stats: &SimStats, n: u32) -> (f64, f64) {
    let get = |k: &str| stats.calls.get(k).copied().unwrap_or(0) as f64 / f64::from(n);
    (get("jobs/run-now"), get("jobs/runs/get"))
}

/// The fleet as the throughput section runs it: one worker process (256 per lane), SQLite.
pub(super) async fn fleet_run(n: u32) -> Run {
    let r = crate::load::fleet_run(n, support::sqlite_url()).await;
    Run {
        rate: f64::from(n) / (r.produce_s + r.run_s),
        rate_verified: Some(r.rate),
        produce_s: r.produce_s,
        run_s: r.run_s,
        peak_rss: r.peak_mib,
        peak_pss: None,
        calls: calls_per_partition(&r.stats, n),
    }
}
