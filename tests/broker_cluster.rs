//! A fleet on a three-node RabbitMQ cluster loses the node its workers use (SIGKILL) and
//! carries on: quorum queues keep their messages on the surviving majority of replicas,
//! workers move to the other nodes named in their `AMQP_URL` list, and every partition
//! ends succeeded with exactly one Databricks run.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use backfill_broker::{AmqpUrl, Broker};
use backfill_ledger::PartitionState;
use support::cluster::Cluster;
use support::fleet::{Fleet, fast_sim};
use tokio::task::block_in_place;

const NODES: usize = 3;
const WORKERS: usize = 3;
const DAYS: u32 = 120;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_on_a_cluster_keeps_going_when_its_node_is_killed() {
    let started = Instant::now();
    // Declared first, so dropped last: every node is stopped, also when the test fails.
    let mut cluster = block_in_place(|| Cluster::start(NODES));
    let booted = started.elapsed();
    let urls = cluster.urls();
    let url = AmqpUrl::new(&urls).unwrap();
    assert_eq!(url.node_count(), NODES);

    let mut fleet = Fleet::new_on(DAYS, 6, fast_sim(), &url).await;
    fleet.topology.keep_on_drop();
    let namespace = fleet.topology.namespace().to_owned();

    // Every quorum queue of the fleet is replicated on every node, leaders spread.
    let queues = block_in_place(|| cluster.quorum_queues(&namespace));
    assert_eq!(
        queues.len(),
        fleet.topology.all_queues().len(),
        "{queues:?}"
    );
    for (name, queue) in &queues {
        assert_eq!(queue.members.len(), NODES, "{name}: {queue:?}");
    }

    fleet.publish_all().await;
    for i in 0..WORKERS {
        // Each worker parses the setting itself, as each process does: its own order.
        fleet.start_worker(&format!("cw{i}"), Some(AmqpUrl::new(&urls).unwrap()));
    }
    support::eventually(
        "the backfill to be under way",
        Duration::from_secs(60),
        || async { (fleet.count(PartitionState::Succeeded).await >= 3).then_some(()) },
    )
    .await;

    // The victim: the node most workers are on (then the one leading most queues).
    let workers_on = block_in_place(|| worker_connections(&cluster));
    assert_eq!(
        workers_on.values().sum::<usize>(),
        WORKERS,
        "{workers_on:?}"
    );
    let queues = block_in_place(|| cluster.quorum_queues(&namespace));
    let leading = |node: usize| {
        queues
            .values()
            .filter(|q| cluster.node_named(&q.leader) == Some(node))
            .count()
    };
    let victim = (0..NODES)
        .max_by_key(|n| (workers_on.get(n).copied().unwrap_or(0), leading(*n)))
        .unwrap();
    let lost_leaders: Vec<&String> = queues
        .iter()
        .filter(|(_, q)| cluster.node_named(&q.leader) == Some(victim))
        .map(|(name, _)| name)
        .collect();
    assert!(
        !lost_leaders.is_empty(),
        "leaders are balanced, so the victim leads some queues: {queues:?}"
    );

    block_in_place(|| cluster.kill(victim));
    let killed_at = Instant::now();
    let before = fleet.count(PartitionState::Succeeded).await;
    assert!(
        before < i64::from(DAYS) - 20,
        "the backfill ran too fast to kill a node half-way ({before} done)"
    );
    eprintln!(
        "killed node {victim} after {:?} (cluster booted in {booted:?}), with {} of {WORKERS} \
         workers and the leaders of {lost_leaders:?}; {before} of {DAYS} partitions done",
        started.elapsed(),
        workers_on.get(&victim).copied().unwrap_or(0),
    );

    // Progress while the node is down: more partitions succeed, and every worker is
    // connected again, to the surviving nodes.
    support::eventually(
        "partitions to keep succeeding with a node down",
        Duration::from_secs(45),
        || async { (fleet.count(PartitionState::Succeeded).await >= before + 20).then_some(()) },
    )
    .await;
    let progressed = killed_at.elapsed();
    let workers_on = block_in_place(|| worker_connections(&cluster));
    assert!(!workers_on.contains_key(&victim), "{workers_on:?}");

    fleet.wait_all_succeeded(Duration::from_secs(60)).await;
    eprintln!(
        "20 more partitions {progressed:?} after the kill, all {DAYS} after {:?}",
        killed_at.elapsed()
    );
    fleet.assert_one_run_per_partition();
    assert_eq!(fleet.count(PartitionState::DeadLettered).await, 0);
    let survivor = Broker::connect(
        &AmqpUrl::new(&urls).unwrap(),
        &fleet.topology,
        "cluster test",
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    assert_ne!(
        survivor.node(),
        AmqpUrl::new(cluster.nodes[victim].url())
            .unwrap()
            .redacted()
    );
    assert_eq!(
        survivor
            .queue_depth(&fleet.topology.dead_letter_queue())
            .await
            .unwrap(),
        0,
        "nothing dead-lettered"
    );
    survivor.close().await;
    fleet.stop().await;
    eprintln!("cluster test took {:?}", started.elapsed());
}

/// How many worker connections each node (index) holds.
fn worker_connections(cluster: &Cluster) -> BTreeMap<usize, usize> {
    let mut on = BTreeMap::new();
    for (name, node) in cluster.connections() {
        if name.starts_with("backfill worker ") {
            *on.entry(node).or_default() += 1;
        }
    }
    on
}
