//! Broker topology and messaging against the real RabbitMQ, each test in its own namespace.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use backfill_broker::{
    AmqpUrl, Broker, BrokerError, Delivery, Destination, Headers, Lane, LaneConsumer,
};
use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use support::chaos_proxy::ChaosProxy;

async fn next_body(consumer: &mut LaneConsumer, limit: Duration) -> Delivery {
    tokio::time::timeout(limit, consumer.next())
        .await
        .expect("a delivery in time")
        .expect("consumer open")
}

#[tokio::test]
async fn publish_is_confirmed_and_consumed_with_manual_ack() {
    let topology = support::test_topology();
    let broker = support::connect(&topology).await;
    let headers = Headers::new().with("x-test", "yes");
    broker
        .publisher()
        .publish(
            Destination::Lane(Lane::Trigger),
            b"{\"n\":1}",
            "m1",
            &headers,
        )
        .await
        .expect("confirmed");
    assert_eq!(
        broker
            .queue_depth(&topology.work_queue(Lane::Trigger))
            .await
            .unwrap(),
        1
    );
    let mut lane = broker.consume(Lane::Trigger, 10, "t").await.unwrap();
    let d = next_body(&mut lane, Duration::from_secs(5)).await;
    assert_eq!(d.body(), b"{\"n\":1}");
    assert_eq!(d.message_id(), Some("m1"));
    assert_eq!(d.headers().get("x-test"), Some("yes"));
    assert!(d.ack().await.unwrap());
    support::teardown(&broker).await;
}

#[tokio::test]
async fn declaring_twice_is_harmless_and_queues_are_quorum() {
    let topology = support::test_topology();
    let broker = support::connect(&topology).await;
    let channel = broker.channel().await.unwrap();
    topology.declare(&channel).await.expect("second declare");
    // Redeclaring as a classic queue must clash: proof the queue is quorum with our args.
    let clash = channel
        .queue_declare(
            topology.work_queue(Lane::Check).into(),
            QueueDeclareOptions::durable(),
            FieldTable::default(),
        )
        .await;
    assert!(
        clash.is_err(),
        "a classic redeclare of a quorum queue must be refused"
    );
    support::teardown(&broker).await;
}

#[tokio::test]
async fn an_unroutable_publish_is_an_error_not_silence() {
    let topology = support::test_topology();
    let broker = support::connect(&topology).await;
    let channel = broker.channel().await.unwrap();
    channel
        .queue_delete(
            topology.work_queue(Lane::Check).into(),
            QueueDeleteOptions::default(),
        )
        .await
        .unwrap();
    let err = broker
        .publisher()
        .publish(Destination::Lane(Lane::Check), b"{}", "m", &Headers::new())
        .await
        .unwrap_err();
    assert!(matches!(err, BrokerError::Returned { .. }), "{err:?}");
    assert!(err.is_refused());
    assert!(err.to_string().contains("NO_ROUTE"), "{err}");
    support::teardown(&broker).await;
}

#[tokio::test]
async fn a_rejected_message_lands_in_the_dlq_with_its_reason() {
    let topology = support::test_topology();
    let broker = support::connect(&topology).await;
    support::publish_bare(&broker, Destination::Lane(Lane::Trigger), b"poison", "p1").await;
    let mut lane = broker.consume(Lane::Trigger, 1, "t").await.unwrap();
    let d = next_body(&mut lane, Duration::from_secs(5)).await;
    d.reject().await.unwrap();
    let dead = support::eventually(
        "the rejected message in the DLQ",
        Duration::from_secs(10),
        || async { broker.get(&topology.dead_letter_queue()).await.unwrap() },
    )
    .await;
    assert_eq!(dead.body(), b"poison");
    assert_eq!(dead.death_count("rejected"), 1);
    dead.ack().await.unwrap();
    support::teardown(&broker).await;
}

#[tokio::test]
async fn an_explicit_dead_letter_keeps_the_original_and_its_headers() {
    let topology = support::test_topology();
    let broker = support::connect(&topology).await;
    let headers = Headers::new()
        .with("x-backfill-reason", "run_failed")
        .with("x-backfill-run-id", 42);
    broker
        .publisher()
        .publish(Destination::DeadLetter, b"original", "d1", &headers)
        .await
        .unwrap();
    let dead = support::eventually("the DLQ message", Duration::from_secs(5), || async {
        broker.get(&topology.dead_letter_queue()).await.unwrap()
    })
    .await;
    let got = dead.headers();
    assert_eq!(dead.body(), b"original");
    assert_eq!(got.get("x-backfill-reason"), Some("run_failed"));
    assert_eq!(got.get("x-backfill-run-id"), Some("42"));
    support::teardown(&broker).await;
}

#[tokio::test]
async fn a_delay_tier_returns_the_message_to_its_lane_after_the_ttl() {
    let topology = support::test_topology();
    let broker = support::connect(&topology).await;
    let mut lane = broker.consume(Lane::Check, 1, "c").await.unwrap();
    let sent = Instant::now();
    support::publish_bare(
        &broker,
        Destination::Delayed(Lane::Check, Duration::from_secs(1)),
        b"later",
        "d",
    )
    .await;
    let d = next_body(&mut lane, Duration::from_secs(10)).await;
    let waited = sent.elapsed();
    assert_eq!(d.body(), b"later");
    assert!(
        waited >= Duration::from_millis(950),
        "came back after {waited:?}, before the 1 s tier"
    );
    assert!(
        waited < Duration::from_secs(5),
        "came back only after {waited:?}"
    );
    d.ack().await.unwrap();
    support::teardown(&broker).await;
}

#[tokio::test]
async fn a_dropped_connection_loses_nothing() {
    let topology = support::test_topology();
    let admin = support::connect(&topology).await;
    let proxy = ChaosProxy::start("127.0.0.1:5672".parse().unwrap()).await;
    let via_proxy = AmqpUrl::new(format!("amqp://guest:guest@{}/%2f", proxy.addr)).unwrap();
    const N: usize = 40;
    for i in 0..N {
        support::publish_bare(
            &admin,
            Destination::Lane(Lane::Trigger),
            i.to_string().as_bytes(),
            &i.to_string(),
        )
        .await;
    }
    let mut seen = BTreeSet::new();
    let mut severed = false;
    let mut cut_while_holding = None;
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen.len() < N {
        assert!(
            Instant::now() < deadline,
            "only {} of {N} messages after reconnecting",
            seen.len()
        );
        let broker = Broker::connect(
            &via_proxy,
            &topology,
            "flaky consumer",
            Duration::from_secs(20),
        )
        .await
        .unwrap();
        let mut lane = broker.consume(Lane::Trigger, 5, "flaky").await.unwrap();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), lane.next()).await;
            let Ok(Ok(d)) = next else { break };
            let body = String::from_utf8(d.body().to_vec()).unwrap();
            if !severed && seen.len() == N / 2 {
                // Cut the connection while this delivery is unacknowledged: it must come
                // back on the next connection.
                severed = true;
                cut_while_holding = Some(body);
                proxy.sever();
                break;
            }
            if d.ack().await.unwrap_or(false) {
                seen.insert(body);
            }
        }
    }
    assert!(severed);
    assert_eq!(seen.len(), N);
    assert!(seen.contains(&cut_while_holding.expect("a delivery was held at the cut")));
    assert_eq!(
        admin
            .queue_depth(&topology.work_queue(Lane::Trigger))
            .await
            .unwrap(),
        0
    );
    support::teardown(&admin).await;
}
