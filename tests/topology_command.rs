//! `backfill topology show | delete`: an operator removes a retired fleet's queues, and
//! is stopped from dropping messages by mistake.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use backfill_broker::{Destination, Lane, inspect};
use support::process::{run, text};

fn env(namespace: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AMQP_URL", support::amqp_url_string()),
        ("BACKFILL_NAMESPACE", namespace.to_owned()),
        ("BACKFILL_DELAY_TIERS", support::TEST_TIERS.to_owned()),
    ]
}

#[tokio::test]
async fn delete_refuses_while_messages_remain_and_force_removes_everything() {
    let topology = support::test_topology();
    let broker = support::connect(&topology).await;
    support::publish_bare(&broker, Destination::Lane(Lane::Trigger), b"{}", "m1").await;
    broker.close().await;
    let env = env(topology.namespace());

    let shown = run(&env, &["topology", "show", "--json"]);
    assert!(shown.status.success(), "{}", text(&shown.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let trigger = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["queue"] == topology.work_queue(Lane::Trigger).as_str())
        .unwrap();
    assert_eq!(trigger["messages"], 1, "{rows}");

    let unconfirmed = run(&env, &["topology", "delete"]);
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(text(&unconfirmed.stderr).contains("--yes"));

    let refused = run(&env, &["topology", "delete", "--yes"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused.stdout));
    let why = text(&refused.stderr);
    assert!(
        why.contains("refused") && why.contains(&topology.work_queue(Lane::Trigger)),
        "{why}"
    );
    let url = support::amqp_url();
    let still = inspect(&url, &topology).await.unwrap();
    assert!(still.iter().all(|q| q.counts.is_some()), "nothing deleted");

    let forced = run(&env, &["topology", "delete", "--yes", "--force"]);
    assert!(forced.status.success(), "{}", text(&forced.stderr));
    assert!(
        text(&forced.stdout).contains("1 messages dropped"),
        "{}",
        text(&forced.stdout)
    );
    let gone = inspect(&url, &topology).await.unwrap();
    assert!(gone.iter().all(|q| q.counts.is_none()), "{gone:?}");

    let again = run(&env, &["topology", "delete", "--yes"]);
    assert!(again.status.success());
    assert!(text(&again.stdout).contains("nothing to delete"));
}

#[tokio::test]
async fn delete_of_an_idle_namespace_needs_no_force() {
    let topology = support::test_topology();
    support::connect(&topology).await.close().await;
    let out = run(
        &env(topology.namespace()),
        &["topology", "delete", "--yes", "--json"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc["deleted"].as_array().unwrap().len(),
        topology.all_queues().len()
    );
    assert_eq!(doc["messages_dropped"], 0);
    let gone = inspect(&support::amqp_url(), &topology).await.unwrap();
    assert!(gone.iter().all(|q| q.counts.is_none()));
}

#[test]
fn a_failing_test_still_deletes_its_namespace() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let declared = std::sync::Mutex::new(None);
    let failed = std::panic::catch_unwind(|| {
        let topology = support::test_topology();
        runtime.block_on(async { support::connect(&topology).await.close().await });
        *declared.lock().unwrap() = Some(topology.topology().clone());
        panic!("the test fails while its namespace exists");
    });
    assert!(failed.is_err());
    let topology = declared.lock().unwrap().take().unwrap();
    let left = runtime
        .block_on(inspect(&support::amqp_url(), &topology))
        .unwrap();
    assert!(left.iter().all(|q| q.counts.is_none()), "{left:?}");
}
