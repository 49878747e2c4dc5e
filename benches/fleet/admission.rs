//! Admission at the concurrency cap: what partitions waiting for a slot cost the fleet
//! while the cap is full (claim attempts, messages, worker CPU), on the production delay
//! tiers.

use std::fmt::Write as _;
use std::time::Duration;

use backfill_ledger::PartitionState;

use crate::common::{ProcFleet, sim_config};
use crate::sizes::Sizes;
use crate::support;
use crate::support::scrape::Scrape;

/// The default fleet's delay tiers (what a deployment runs with).
const PRODUCTION_TIERS: &str = "1s,5s,30s,2m,10m,1h";
/// How long the full cap is watched.
const WINDOW: Duration = Duration::from_secs(20);

pub async fn admission(sizes: Sizes) -> String {
    let (n, cap) = sizes.pick((1000, 20), (10_000, 50));
    let mut fleet = ProcFleet::new(
        sim_config(0, 30 * 60 * 1000, 0, cap as usize),
        support::postgres_url().await,
    )
    .await;
    fleet.set_env("BACKFILL_DELAY_TIERS", PRODUCTION_TIERS);
    let addr = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().to_string()
    };
    fleet.set_env("METRICS_ADDR", &addr);
    let pid = fleet.spawn_worker("bench-admission", 64);
    fleet.produce(n, cap);
    fleet
        .wait_for(
            &[PartitionState::Running],
            i64::from(cap),
            Duration::from_secs(120),
        )
        .await;
    // Let the first admission polls settle into their rhythm.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let before = (Scrape::take(&addr).await.0, cpu_seconds(pid));
    tokio::time::sleep(WINDOW).await;
    let after = (Scrape::take(&addr).await.0, cpu_seconds(pid));
    let running = fleet.count(&[PartitionState::Running]).await;
    fleet.stop().await;
    let secs = WINDOW.as_secs_f64();
    let rate = |name: &str, labels: &[(&str, &str)]| {
        (after.0.sum(name, labels) - before.0.sum(name, labels)) / secs
    };
    let at_cap = rate("backfill_messages_delayed_total", &[("reason", "at_cap")]);
    let hops = rate("backfill_messages_delayed_total", &[("reason", "not_due")]);
    let consumed = rate("backfill_messages_consumed_total", &[]);
    let cpu = (after.1 - before.1) / secs * 100.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "## Admission at the cap: {n} partitions, cap {cap}, runs of 30 minutes, production delay tiers ({PRODUCTION_TIERS})\n"
    );
    let _ = writeln!(
        out,
        "Watched for {:.0} s while the cap was full ({running} running, {} waiting):\n",
        secs,
        i64::from(n) - running
    );
    let _ = writeln!(
        out,
        "| claim attempts at the cap | messages consumed | of which re-delayed on the way (not due) | worker CPU |\n| --- | --- | --- | --- |"
    );
    let _ = writeln!(
        out,
        "| {at_cap:.1}/s | {consumed:.1}/s | {hops:.1}/s | {cpu:.0}% of a core |"
    );
    out
}

/// User plus system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at the state, field 3.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15, so 11 and 12 after the state.
    (ticks(11) + ticks(12)) / 100.0
}
