//! Recovery: how long until work moves again after `kill -9` of a worker and after a
//! broker restart, with the production defaults (claim lease 15 s, check grace 60 s,
//! sweep every 15 s, reconnect backoff up to 5 s).

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use backfill_ledger::{PartitionState, now_ms};

use crate::common::{ProcFleet, sim_config};
use crate::sizes::{Sizes, median};
use crate::support;
use crate::support::private_broker::PrivateBroker;

/// Kills one of two workers mid-backfill; for every unfinished partition whose last event
/// before the kill was the killed worker's, the time until its next event (by the
/// survivor). Returns (median, max) in seconds.
async fn kill_9(n: u32) -> (f64, f64, usize) {
    let mut fleet = ProcFleet::new(
        sim_config(0, 3000, 2000, n as usize),
        support::postgres_url().await,
    )
    .await;
    fleet.spawn_worker("victim", 32);
    fleet.spawn_worker("survivor", 32);
    fleet.produce(n, 40);
    succeeded(&fleet, n / 4, 120).await;
    let victim = &mut fleet.workers[0];
    victim.kill().unwrap();
    let killed_at = now_ms();
    let _ = victim.wait();
    succeeded(&fleet, n, 300).await;
    let id = fleet.backfill.parse().unwrap();
    let events = fleet.ledger.events(&id).await.unwrap();
    let mut waits = Vec::new();
    let dates: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| e.partition_date.clone())
        .collect();
    for date in dates {
        let mine: Vec<_> = events
            .iter()
            .filter(|e| e.partition_date.as_deref() == Some(date.as_str()))
            .collect();
        let before = mine.iter().rev().find(|e| e.at_ms <= killed_at);
        let finished = before
            .is_some_and(|e| matches!(e.to_state.as_deref(), Some("succeeded" | "dead_lettered")));
        if before.is_none_or(|e| e.actor != "victim") || finished {
            continue;
        }
        if let Some(next) = mine.iter().find(|e| e.at_ms > killed_at) {
            waits.push((next.at_ms - killed_at) as f64 / 1000.0);
        }
    }
    let stats = fleet.sim.sim.stats();
    assert!(
        stats.runs_per_partition.values().all(|r| *r == 1),
        "a duplicate run"
    );
    fleet.stop().await;
    let count = waits.len();
    if waits.is_empty() {
        return (0.0, 0.0, 0);
    }
    let max = waits.iter().copied().fold(0.0, f64::max);
    (median(waits), max, count)
}

/// Stops and starts the broker mid-backfill; time from the broker being back to the
/// next ledger event, and to every partition done.
async fn broker_restart(n: u32) -> (f64, f64) {
    let node = PrivateBroker::start();
    let mut fleet = ProcFleet::new(
        sim_config(0, 2000, 1000, n as usize),
        support::postgres_url().await,
    )
    .await;
    fleet.set_env("AMQP_URL", &node.url());
    fleet.spawn_worker("w1", 32);
    fleet.produce(n, 20);
    succeeded(&fleet, n / 4, 120).await;
    node.stop_app();
    node.wait_port_closed();
    tokio::time::sleep(Duration::from_secs(5)).await;
    node.start_app();
    let back = Instant::now();
    let back_ms = now_ms();
    let id = fleet.backfill.parse().unwrap();
    let progress = loop {
        let events = fleet.ledger.events(&id).await.unwrap();
        if events.iter().any(|e| e.at_ms > back_ms) {
            break back.elapsed().as_secs_f64();
        }
        assert!(back.elapsed() < Duration::from_secs(120), "no progress");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    succeeded(&fleet, n, 300).await;
    let done = back.elapsed().as_secs_f64();
    fleet.stop().await;
    drop(node);
    (progress, done)
}

pub async fn recovery(sizes: Sizes) -> String {
    let n = sizes.pick(60, 200);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Recovery (production defaults: claim lease 15 s, reconnect backoff up to 5 s)\n"
    );
    let (med, max, count) = kill_9(n).await;
    let _ = writeln!(
        out,
        "- `kill -9` of one of two worker processes ({n} partitions, runs of 3-5 s, cap 40): \
         the {count} partitions it was handling moved again on the survivor after a median \
         of {med:.1} s, at most {max:.1} s; one run per partition."
    );
    let (progress, done) = broker_restart(n).await;
    let _ = writeln!(
        out,
        "- Broker restart (`rabbitmqctl stop_app`, 5 s down, `start_app`; {n} partitions): \
         the ledger moved {progress:.1} s after the broker was back; every partition done \
         {done:.1} s after it."
    );
    out
}

/// Waits until `count` partitions of the fleet's backfill succeeded (at most `timeout_s`).
async fn succeeded(fleet: &ProcFleet, count: u32, timeout_s: u64) {
    let wanted = i64::from(count);
    fleet
        .wait_for(
            &[PartitionState::Succeeded],
            wanted,
            Duration::from_secs(timeout_s),
        )
        .await;
}
