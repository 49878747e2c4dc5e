//! A whole backfill survives broker restarts and forced connection closes, on a private
//! RabbitMQ node the test starts and stops.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use backfill_broker::{AmqpUrl, Broker, Destination, Headers, Lane};
use futures_lite::StreamExt;
use support::fleet::{Fleet, fast_sim};
use support::private_broker::PrivateBroker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_restarts_and_forced_closes_lose_nothing_and_duplicate_nothing() {
    let node = tokio::task::spawn_blocking(PrivateBroker::start)
        .await
        .unwrap();
    let url = AmqpUrl::new(node.url()).unwrap();
    let mut fleet = Fleet::new_on(40, 10, fast_sim(), &url).await;
    fleet.publish_all().await;
    fleet.start_worker("w1", Some(url.clone()));
    fleet.start_worker("w2", Some(url.clone()));
    tokio::time::sleep(Duration::from_millis(800)).await;

    let node = tokio::task::spawn_blocking(move || {
        node.stop_app();
        std::thread::sleep(Duration::from_secs(2));
        node.start_app();
        node
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let node = tokio::task::spawn_blocking(move || {
        assert!(
            node.ctl(&["close_all_connections", "test: forced close"])
                .status
                .success()
        );
        node
    })
    .await
    .unwrap();

    fleet.wait_all_succeeded(Duration::from_secs(120)).await;
    fleet.assert_one_run_per_partition();
    fleet.stop().await;
    drop(node);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_longer_than_the_consumer_timeout_close_no_channel_and_start_no_duplicate() {
    let node = tokio::task::spawn_blocking(PrivateBroker::start)
        .await
        .unwrap();
    // The broker checks once a minute by default; the shortest timeout it honours is what
    // matters here: deliveries held longer than it would be requeued and redelivered.
    node.set_consumer_timeout(3_000);
    let url = AmqpUrl::new(node.url()).unwrap();
    let sim = backfill_simulator::SimConfig {
        pending_ms: 500,
        running_ms: 8_000,
        ..fast_sim()
    };
    let mut fleet = Fleet::new_on(6, 6, sim, &url).await;

    // Control: a consumer that holds a delivery past the timeout loses its channel, so
    // this broker really enforces the setting.
    let control = Broker::connect(&url, &fleet.topology, "holder", Duration::from_secs(5))
        .await
        .unwrap();
    control
        .publisher()
        .publish(
            Destination::Lane(Lane::Check),
            b"held",
            "held",
            &Headers::new(),
        )
        .await
        .unwrap();
    let mut held = control.consume(Lane::Check, 1, "holder").await.unwrap();
    let _delivery = tokio::time::timeout(Duration::from_secs(5), held.consumer.next())
        .await
        .unwrap();
    support::eventually(
        "the broker to close the holding channel",
        Duration::from_secs(20),
        || async { (!held.channel.status().connected()).then_some(()) },
    )
    .await;
    control.close().await;

    fleet.publish_all().await;
    fleet.start_worker("w1", Some(url.clone()));
    fleet.wait_all_succeeded(Duration::from_secs(90)).await;
    fleet.assert_one_run_per_partition();
    let log = std::fs::read_to_string(node.log_file()).unwrap_or_default();
    let timeouts = log
        .matches("has timed out waiting for delivery acknowledgement")
        .count();
    assert_eq!(
        timeouts, 1,
        "only the control's channel may time out:\n{log}"
    );
    fleet.stop().await;
}
