//! Throughput with instant runs against the raw broker, and memory with runs in flight.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use backfill_broker::{Destination, Headers, Lane};
use backfill_contract::{Attempt, PartitionMessage, Step};
use backfill_ledger::PartitionState;
use tokio::sync::Semaphore;

use crate::common::{Memory, ProcFleet, memory_mib, sim_config};
use crate::sizes::{Sizes, median};
use crate::support;

/// One end-to-end run: its rate and where the time went.
pub(crate) struct FleetRun {
    /// Partitions a second, producing and verifying included.
    pub rate: f64,
    pub produce_s: f64,
    pub run_s: f64,
    pub verify_s: f64,
    pub peak_mib: f64,
    /// What the simulator saw.
    pub stats: backfill_simulator::SimStats,
}

/// One worker process, instant runs: produce, trigger, follow and verify `n` partitions.
pub(crate) async fn fleet_run(n: u32, ledger_url: String) -> FleetRun {
    let mut fleet = ProcFleet::new(sim_config(0, 0, 0, n as usize), ledger_url).await;
    let pid = fleet.spawn_ready_worker("bench-w1", 256).await;
    let started = Instant::now();
    fleet.produce(n, n);
    let produce_s = started.elapsed().as_secs_f64();
    fleet
        .wait_for(
            &[PartitionState::Succeeded],
            i64::from(n),
            Duration::from_secs(600),
        )
        .await;
    let done = started.elapsed().as_secs_f64();
    fleet.verify();
    let secs = started.elapsed().as_secs_f64();
    let (_, peak_mib) = memory_mib(pid);
    let stats = fleet.sim.sim.stats();
    assert_eq!(stats.runs_created, u64::from(n), "one run per partition");
    fleet.stop().await;
    FleetRun {
        rate: f64::from(n) / secs,
        produce_s,
        run_s: done - produce_s,
        verify_s: secs - done,
        peak_mib,
        stats,
    }
}

/// The broker alone, the same way: `n` messages published with confirms (256 at once,
/// as the worker's concurrency), consumed and acknowledged, on a quorum queue.
async fn broker_run(n: u32) -> f64 {
    let topology = support::test_topology();
    let broker = support::connect(&topology).await;
    let publisher = broker.publisher();
    let body = PartitionMessage::new(
        "bench".parse().unwrap(),
        "2026-01-01".parse().unwrap(),
        Attempt::FIRST,
        "m-0123456789abcdef",
        Step::Trigger,
    )
    .encode();
    let started = Instant::now();
    let mut consumer = broker
        .consume(Lane::Trigger, 256, "bench-raw")
        .await
        .unwrap();
    let consume = tokio::spawn(async move {
        for _ in 0..n {
            let delivery = consumer.next().await.unwrap();
            delivery.ack().await.unwrap();
        }
    });
    let permits = Arc::new(Semaphore::new(256));
    let mut tasks = Vec::new();
    for i in 0..n {
        let permit = permits.clone().acquire_owned().await.unwrap();
        let (p, body) = (publisher.clone(), body.clone());
        tasks.push(tokio::spawn(async move {
            p.publish(
                Destination::Lane(Lane::Trigger),
                &body,
                &i.to_string(),
                &Headers::new(),
            )
            .await
            .unwrap();
            drop(permit);
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    consume.await.unwrap();
    let rate = f64::from(n) / started.elapsed().as_secs_f64();
    support::teardown(&broker).await;
    rate
}

pub async fn throughput(sizes: Sizes) -> String {
    let n = sizes.pick(300, 5000);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Throughput: {n} partitions, instant runs, one worker process (concurrency 256 per lane)\n"
    );
    let _ = writeln!(
        out,
        "| what | median | runs | per message | worker peak RSS |\n| --- | --- | --- | --- | --- |"
    );
    let mut broker = Vec::new();
    for _ in 0..sizes.repeats {
        broker.push(broker_run(n * 2).await);
    }
    let raw = median(broker.clone());
    let _ = writeln!(
        out,
        "| raw broker: publish with confirm, consume, ack | {raw:.0} messages/s | {} | 1 | |",
        fmt_runs(&broker)
    );
    let mut phases = Vec::new();
    for backend in ["SQLite", "PostgreSQL"] {
        let mut runs = Vec::new();
        for _ in 0..sizes.repeats {
            let url = if backend == "SQLite" {
                support::sqlite_url()
            } else {
                support::postgres_url().await
            };
            runs.push(fleet_run(n, url).await);
        }
        let rates: Vec<f64> = runs.iter().map(|r| r.rate).collect();
        let peak = runs.iter().map(|r| r.peak_mib).fold(0.0, f64::max);
        let m = median(rates.clone());
        phases.push(format!(
            "| {backend} | {:.1} s | {:.1} s ({:.0} partitions/s) | {:.1} s |",
            median(runs.iter().map(|r| r.produce_s).collect()),
            median(runs.iter().map(|r| r.run_s).collect()),
            f64::from(n) / median(runs.iter().map(|r| r.run_s).collect()),
            median(runs.iter().map(|r| r.verify_s).collect()),
        ));
        // A partition is two messages through the broker (its trigger and its check,
        // the check by way of a delay queue).
        let _ = writeln!(
            out,
            "| fleet, {backend} ledger: produce, trigger, follow, verify | {m:.0} partitions/s | {} | {:.0} messages/s = {:.0}% of raw | {peak:.0} MiB |",
            fmt_runs(&rates),
            m * 2.0,
            m * 2.0 / raw * 100.0
        );
    }
    let _ = writeln!(
        out,
        "\nWhere the time goes (medians): the producer process registering and publishing, \
         the worker triggering and following every run (from the producer's exit to the \
         last success), the reconciler process re-reading every run.\n\n\
         | ledger | produce | trigger and follow | verify |\n| --- | --- | --- | --- |"
    );
    for p in phases {
        let _ = writeln!(out, "{p}");
    }
    out
}

fn fmt_runs(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.0}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Resident memory of one worker process holding `k` runs in flight (runs of 30 min).
async fn in_flight(k: u32) -> (f64, f64, f64, f64) {
    let mut fleet = ProcFleet::new(
        sim_config(0, 30 * 60 * 1000, 0, k as usize),
        support::postgres_url().await,
    )
    .await;
    let pid = fleet.spawn_worker("bench-mem", MEMORY_CONCURRENCY);
    let started = Instant::now();
    fleet.produce(k, k);
    fleet
        .wait_for(
            &[PartitionState::Running],
            i64::from(k),
            Duration::from_secs(600),
        )
        .await;
    let ramp = started.elapsed().as_secs_f64();
    // Let checks cycle for a while, sampling the resident set.
    let (mut rss, mut anon) = (0.0f64, 0.0f64);
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let m = Memory::of(pid);
        rss = rss.max(m.rss);
        anon = anon.max(m.anon);
    }
    let peak = Memory::of(pid).peak;
    fleet.stop().await;
    (rss, anon, peak, ramp)
}

/// Messages handled at once per lane by the worker whose memory is measured: memory
/// follows this, not the runs in flight (a run in flight is a row and a message).
const MEMORY_CONCURRENCY: usize = 64;

pub async fn memory(sizes: Sizes) -> String {
    let many = sizes.pick(1000, 10_000);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Memory: one worker process (concurrency {MEMORY_CONCURRENCY} per lane), runs of 30 minutes in flight (PostgreSQL ledger)\n"
    );
    let _ = writeln!(
        out,
        "| runs in flight | RSS while following them | of which heap and stacks | peak RSS | time to start them all |\n| --- | --- | --- | --- | --- |"
    );
    let mut rows = Vec::new();
    for k in [100, many / 10, many] {
        let (rss, anon, peak, ramp) = in_flight(k).await;
        let _ = writeln!(
            out,
            "| {k} | {rss:.1} MiB | {anon:.1} MiB | {peak:.1} MiB | {ramp:.1} s |"
        );
        rows.push(rss);
    }
    let _ = writeln!(
        out,
        "\nRSS with {many} in flight is {:.0}% of RSS with 100.",
        rows[2] / rows[0] * 100.0
    );
    out
}
