//! Worker processes under fire: `kill -9` at random moments, several processes sharing a
//! concurrency cap, against PostgreSQL, the real broker and the simulator over HTTP.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use backfill_simulator::{FaultKind, FaultRule, SimConfig};
use rand::{Rng, SeedableRng};
use support::private_broker::PrivateBroker;
use support::process_fleet::{ProcessFleet, timed_sim};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_workers_at_random_moments_loses_nothing_and_duplicates_nothing() {
    let mut fleet = ProcessFleet::new(
        &support::amqp_url_string(),
        SimConfig {
            running_spread_ms: 400,
            ..timed_sim(100, 300)
        },
    )
    .await;
    fleet.produce(200, 40);
    for _ in 0..3 {
        fleet.spawn_worker();
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let mut kills = 0;
    for _ in 0..10 {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..900))).await;
        let victim = rng.random_range(0..fleet.workers.len());
        let mut dead = fleet.workers.swap_remove(victim);
        dead.kill().unwrap(); // SIGKILL
        dead.wait().unwrap();
        kills += 1;
        fleet.spawn_worker();
    }
    assert_eq!(kills, 10);
    fleet.wait_succeeded(200, Duration::from_secs(180)).await;
    fleet.assert_one_run_per_partition(200);
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cap_of_5_holds_across_3_worker_processes() {
    let mut fleet = ProcessFleet::timed(100, 400).await;
    fleet.produce(30, 5);
    for _ in 0..3 {
        fleet.spawn_worker();
    }
    fleet.wait_succeeded(30, Duration::from_secs(120)).await;
    let max = fleet.sim.sim.stats().max_active[&1];
    assert!(max <= 5, "{max} runs active at once with a cap of 5");
    assert!(max >= 4, "the cap should be nearly used ({max})");
    fleet.assert_one_run_per_partition(30);
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarts_and_forced_closes_lose_nothing_and_duplicate_nothing() {
    let node = tokio::task::spawn_blocking(PrivateBroker::start)
        .await
        .unwrap();
    let mut fleet = ProcessFleet::new(
        &node.url(),
        SimConfig {
            ..timed_sim(100, 400)
        },
    )
    .await;
    fleet.produce(60, 20);
    for _ in 0..3 {
        fleet.spawn_worker();
    }
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let node = tokio::task::spawn_blocking(move || {
        node.stop_app();
        std::thread::sleep(Duration::from_secs(2));
        node.start_app();
        std::thread::sleep(Duration::from_millis(1_500));
        assert!(
            node.ctl(&["close_all_connections", "test: forced close"])
                .status
                .success()
        );
        node
    })
    .await
    .unwrap();
    fleet.wait_succeeded(60, Duration::from_secs(120)).await;
    fleet.assert_one_run_per_partition(60);
    fleet.teardown().await;
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_longer_than_the_consumer_timeout_close_no_channel_and_start_no_duplicate() {
    use backfill_broker::{AmqpUrl, Broker, Destination, Lane, Topology};
    let node = tokio::task::spawn_blocking(PrivateBroker::start)
        .await
        .unwrap();
    node.set_consumer_timeout(3_000);
    let url = AmqpUrl::new(node.url()).unwrap();

    // Control: a consumer that holds a delivery past the timeout loses its channel, so
    // this broker really enforces the setting.
    let control = Broker::connect(
        &url,
        &Topology::new("control").unwrap(),
        "holder",
        Duration::from_secs(10),
    )
    .await
    .unwrap();
    support::publish_bare(&control, Destination::Lane(Lane::Check), b"held", "held").await;
    let mut held = control.consume(Lane::Check, 1, "holder").await.unwrap();
    let _delivery = tokio::time::timeout(Duration::from_secs(5), held.next())
        .await
        .unwrap();
    support::eventually(
        "the broker to close the holding channel",
        Duration::from_secs(20),
        || async { (!held.is_open()).then_some(()) },
    )
    .await;
    control.close().await;

    let mut fleet = ProcessFleet::new(
        &node.url(),
        SimConfig {
            ..timed_sim(500, 8_000)
        },
    )
    .await;
    fleet.produce(6, 6);
    fleet.spawn_worker();
    fleet.spawn_worker();
    fleet.wait_succeeded(6, Duration::from_secs(90)).await;
    fleet.assert_one_run_per_partition(6);
    let log = std::fs::read_to_string(node.log_file()).unwrap_or_default();
    let timeouts = log
        .matches("has timed out waiting for delivery acknowledgement")
        .count();
    assert_eq!(
        timeouts, 1,
        "only the control's channel may time out:\n{log}"
    );
    fleet.teardown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_429_storms_503s_and_lost_responses_the_fleet_stays_in_budget_with_one_run_per_attempt()
 {
    let random = |endpoint: &str, kind, p| FaultRule {
        endpoint: endpoint.into(),
        kind,
        partition: None,
        times: None,
        probability: Some(p),
        retry_after_s: 1,
        delay_ms: 0,
    };
    let sim = SimConfig {
        pending_ms: 200,
        running_ms: 1_500,
        faults: vec![
            random("jobs/run-now", FaultKind::LostResponse, 0.3),
            random("jobs/run-now", FaultKind::ThrottleNoRetryAfter, 0.1),
            random("jobs/runs/get", FaultKind::Throttle, 0.1),
            random("jobs/runs/get", FaultKind::ThrottleNoRetryAfter, 0.05),
            random("jobs/runs/get", FaultKind::Unavailable, 0.05),
        ],
        ..SimConfig::default()
    };
    let mut fleet = ProcessFleet::new(&support::amqp_url_string(), sim).await;
    fleet.set_env("WORKER_API_BUDGET", "jobs/run-now=6,jobs/runs/get=9");
    fleet.produce(40, 40);
    for _ in 0..3 {
        fleet.spawn_worker();
    }
    fleet.wait_succeeded(40, Duration::from_secs(150)).await;
    fleet.assert_one_run_per_partition(40);
    let stats = fleet.sim.sim.stats();
    eprintln!(
        "api: peak per second {:?}, calls {:?}, throttled {:?}, faults {:?}",
        stats.peak_per_second, stats.calls, stats.throttled, stats.faults
    );
    assert!(
        stats.faults.get("LostResponse").copied().unwrap_or(0) > 0,
        "{stats:?}"
    );
    assert!(stats.throttled.values().sum::<u64>() > 0, "{stats:?}");
    let peak = &stats.peak_per_second;
    assert!(
        peak["jobs/run-now"] <= 6,
        "run-now peaked at {} calls in a second: {peak:?}",
        peak["jobs/run-now"]
    );
    assert!(
        peak["jobs/runs/get"] <= 9,
        "runs/get peaked at {} calls in a second: {peak:?}",
        peak["jobs/runs/get"]
    );
    fleet.teardown().await;
}
