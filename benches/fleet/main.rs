//! The fleet's benchmarks (BENCHMARKS.md): throughput against the raw broker, memory with
//! runs in flight, API calls per run and detection delay, makespan under a cap, recovery
//! after `kill -9` and a broker restart, throughput against a Celery pool (`peer`). Real
//! parts only: the local RabbitMQ (a private node for the restart), SQLite and
//! PostgreSQL, the simulator over HTTP, and the `backfill` binary of the same build as
//! worker processes (and, for `peer`, a Celery app in its own virtual environment).
//!
//! cargo bench --bench fleet                      # every figure, medians of 3 runs
//! cargo bench --bench fleet -- --quick           # small sizes, one run (CI)
//! cargo bench --bench fleet -- throughput api    # some sections only
//! cargo bench --bench fleet -- peer              # against a Celery pool (benches/peer)
//! cargo bench --bench fleet -- makespan --repeats 1  # medians over another count of runs
//! BENCH_PEER_POOLS=none cargo bench --bench fleet -- peer   # the fleet's side only
//!
//! Results are printed and written to target/bench-results.md. Nothing here asserts a
//! speed: a slow machine gets slow figures, not a failure.

#![allow(clippy::unwrap_used, clippy::print_stdout)] // a harness: a panic is a failed run

#[path = "../../tests/support/mod.rs"]
mod support;

mod admission;
mod common;
mod efficiency;
mod faults;
mod load;
mod peer;
mod sizes;
mod timeline;

mod sections {
    pub use super::admission::admission;
    pub use super::efficiency::{api, makespan};
    pub use super::faults::recovery;
    pub use super::load::{memory, throughput};
    pub use super::peer::peer;
}

use std::fmt::Write as _;

use sizes::Sizes;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let quick = args.iter().any(|a| a == "--quick");
    let wanted: Vec<&str> = args
        .iter()
        .filter(|a| !a.starts_with('-') && a.parse::<usize>().is_err())
        .map(String::as_str)
        .collect();
    let sizes = Sizes {
        quick,
        repeats: repeats_arg(&args).unwrap_or(if quick { 1 } else { 3 }),
    };
    let all = [
        "throughput",
        "memory",
        "api",
        "makespan",
        "admission",
        "recovery",
        "peer",
    ];
    let mut report = String::new();
    let _ = writeln!(
        report,
        "# backfill bench ({})\n",
        if quick { "quick" } else { "full" }
    );
    let started = std::time::Instant::now();
    for name in all {
        if !wanted.is_empty() && !wanted.contains(&name) {
            continue;
        }
        eprintln!("bench: {name}...");
        let section = match name {
            "throughput" => sections::throughput(sizes).await,
            "memory" => sections::memory(sizes).await,
            "api" => sections::api(sizes).await,
            "makespan" => sections::makespan(sizes).await,
            "admission" => sections::admission(sizes).await,
            "peer" => sections::peer(sizes).await,
            _ => sections::recovery(sizes).await,
        };
        println!("{section}");
        report.push_str(&section);
        report.push('\n');
    }
    let _ = writeln!(
        report,
        "total bench time: {:.0} s",
        started.elapsed().as_secs_f64()
    );
    let out = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-results.md");
    std::fs::write(&out, &report).unwrap();
    eprintln!("bench: written to {}", out.display());
}

/// `--repeats N`: how many runs each median is taken over (3 by default, 1 with `--quick`).
fn repeats_arg(args: &[String]) -> Option<usize> {
    let at = args.iter().position(|a| a == "--repeats")?;
    let n = args.get(at + 1).and_then(|n| n.parse().ok());
    Some(
        n.filter(|n| *n > 0)
            .expect("--repeats takes a whole number above zero"),
    )
}
