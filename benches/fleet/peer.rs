//! The peer: the fleet against what a team would write in an afternoon, a Celery worker
//! pool (benches/peer: one task per partition, `acks_late`, prefetch 1, polling the run
//! every 50 ms, outcomes in SQLite). Both sides get a fresh simulator with instant runs,
//! the same RabbitMQ, and are timed from the start of their producer process to the
//! last partition recorded as done; the fleet is also timed through its verify
//! (`reconcile --once`), as in the throughput section. Repeats alternate the sides, so a
//! busy machine slows both alike.

mod celery;
mod process_group;
mod side;

use std::fmt::Write as _;

use crate::sizes::{Sizes, median};
use celery::{celery_run, peer_venv};
use side::{Run, fleet_run};

fn fmt_runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One row of the table, and the median rate.
fn row(out: &mut String, what: &str, runs: &[Run]) -> f64 {
    let rates: Vec<f64> = runs.iter().map(|r| r.rate).collect();
    let m = median(rates.clone());
    let verified = if runs.iter().all(|r| r.rate_verified.is_some()) {
        let v: Vec<f64> = runs.iter().filter_map(|r| r.rate_verified).collect();
        format!("{:.0}/s ({})", median(v.clone()), fmt_runs(&v))
    } else {
        "no verify step".to_owned()
    };
    let peak = runs.iter().map(|r| r.peak_rss).fold(0.0, f64::max);
    let pss = runs
        .iter()
        .filter_map(|r| r.peak_pss)
        .fold(None, |a: Option<f64>, p| Some(a.map_or(p, |a| a.max(p))));
    let pss = pss.map_or("(one process)".to_owned(), |p| format!("{p:.0} MiB"));
    let _ = writeln!(
        out,
        "| {what} | **{m:.0}/s** | {} | {verified} | {:.1} s | {:.1} s | {:.2} + {:.2} | {peak:.0} MiB | {pss} |",
        fmt_runs(&rates),
        median(runs.iter().map(|r| r.produce_s).collect()),
        median(runs.iter().map(|r| r.run_s).collect()),
        median(runs.iter().map(|r| r.calls.0).collect()),
        median(runs.iter().map(|r| r.calls.1).collect()),
    );
    m
}

pub async fn peer(sizes: Sizes) -> String {
    let n = sizes.pick(300, 5000);
    let pools = pool_sizes(sizes);
    let pools = pools.as_slice();
    let venv = peer_venv();
    let mut fleet = Vec::new();
    let mut celery: Vec<Vec<Run>> = pools.iter().map(|_| Vec::new()).collect();
    let mut load = Vec::new();
    for _ in 0..sizes.repeats {
        load.push(load_average());
        fleet.push(fleet_run(n).await);
        for (runs, c) in celery.iter_mut().zip(pools) {
            runs.push(celery_run(&venv, n, *c).await);
        }
    }

    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Peer: the fleet against a Celery pool, {n} partitions, instant runs\n"
    );
    let _ = writeln!(
        out,
        "Each side: a fresh simulator, the same RabbitMQ, timed from the start of its \
         producer process to the last partition recorded done (the fleet's ledger: \
         succeeded; Celery's `done` table: a row). Celery: `celery -A tasks worker -c N \
         --prefetch-multiplier 1`, `acks_late`, polling every 50 ms, one SQLite \
         transaction per task (benches/peer). Medians of {} run(s).\n",
        sizes.repeats
    );
    let _ = writeln!(
        out,
        "| what | partitions/s, produce to last done | runs | with the fleet's verify | produce | producer's exit to last done | run-now + runs/get per partition | peak RSS | peak PSS |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    let f = row(
        &mut out,
        "fleet: one `backfill` worker process (256 per lane), SQLite ledger",
        &fleet,
    );
    let mut ratios = Vec::new();
    for (runs, c) in celery.iter().zip(pools) {
        let m = row(
            &mut out,
            &format!(
                "Celery {} pool `-c {c}`, SQLite `done` table",
                celery_version()
            ),
            runs,
        );
        ratios.push((c, m));
    }
    let fv = median(fleet.iter().filter_map(|r| r.rate_verified).collect());
    let _ = writeln!(
        out,
        "\nRepeats run the fleet, then each pool. Load average (1 min) as each repeat \
         began: {} on {} cores; Celery spends more CPU per partition, so a busy machine \
         slows it more.\n",
        load.join(", "),
        std::thread::available_parallelism().map_or(0, std::num::NonZero::get)
    );
    for (c, m) in ratios {
        let _ = writeln!(
            out,
            "- fleet / Celery `-c {c}`: **{:.2}x** (with the fleet's verify counted against it: {:.2}x)",
            f / m,
            fv / m
        );
    }
    let _ = writeln!(
        out,
        "\nPeak RSS: the worker process's high-water mark (VmHWM); for Celery the highest \
         sum over the pool's process group (main process and its prefork children), \
         sampled every 100 ms, which counts pages the children share with their parent \
         once per process; PSS (sampled every second) counts them once. Producer and \
         reconciler processes are not counted on either side. The fleet's API calls \
         include its producer's and verify's."
    );
    out
}

/// The Celery pool sizes to run: `BENCH_PEER_POOLS` (`8,16`, or `none` for the fleet's
/// side alone), else 8, and 16 too in the full run.
fn pool_sizes(sizes: Sizes) -> Vec<usize> {
    match std::env::var("BENCH_PEER_POOLS") {
        Ok(v) if v == "none" => Vec::new(),
        Ok(v) => v
            .split(',')
            .map(|c| c.trim().parse().expect("BENCH_PEER_POOLS: sizes like 8,16"))
            .collect(),
        Err(_) => sizes.pick(vec![8], vec![8, 16]),
    }
}

/// The 1-minute load average (from /proc/loadavg).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".to_owned())
}

/// The Celery version the peer pins (benches/peer/requirements.txt).
fn celery_version() -> String {
    let req = include_str!("../peer/requirements.txt");
    req.lines()
        .find_map(|l| l.strip_prefix("celery=="))
        .unwrap_or("5.x")
        .to_owned()
}
