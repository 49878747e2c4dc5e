//! Test harness: real services, isolated per test (a broker namespace of its own, a fresh
//! SQLite file or PostgreSQL database), and every wait bounded.
#![allow(dead_code)]

pub mod chaos_proxy;
pub mod cluster;
pub mod fleet;
pub mod namespace;
pub mod private_broker;
pub mod process;
pub mod process_fleet;
pub mod promotion;
pub mod scrape;

use std::future::Future;
use std::time::Duration;

use backfill_broker::{AmqpUrl, Broker, Destination, Headers, Topology};
use backfill_ledger::Ledger;
use namespace::TestNamespace;
use sqlx::Connection;

/// The broker the tests use (`AMQP_URL`, default the local RabbitMQ).
pub fn amqp_url_string() -> String {
    std::env::var("AMQP_URL").unwrap_or_else(|_| "amqp://guest:guest@127.0.0.1:5672/%2f".into())
}

pub fn amqp_url() -> AmqpUrl {
    AmqpUrl::new(amqp_url_string()).expect("valid AMQP_URL")
}

/// A short random suffix.
pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..10].to_owned()
}

/// A namespace of its own on the test broker with short delay tiers, deleted when dropped
/// (also when the test fails).
pub fn test_topology() -> TestNamespace {
    test_topology_on(&amqp_url())
}

/// The same on another broker (a private node).
pub fn test_topology_on(url: &AmqpUrl) -> TestNamespace {
    let topology = Topology::new(format!("bftest-{}", unique()))
        .expect("namespace")
        .with_delay_tiers(vec![
            Duration::from_millis(200),
            Duration::from_millis(500),
            Duration::from_secs(1),
            Duration::from_secs(5),
        ])
        .expect("tiers")
        // A backstop for a namespace re-declared after its guard deleted it.
        .with_queue_expiry(Duration::from_secs(15 * 60));
    TestNamespace::new(url.clone(), topology)
}

/// A fresh namespace name for `backfill` processes, deleted when the guard drops.
pub fn process_namespace(url: &str) -> (String, TestNamespace) {
    let name = format!("bftest-{}", unique());
    let guard = TestNamespace::named(url, &name, TEST_TIERS);
    (name, guard)
}

/// The tiers of [`test_topology`] as the CLI's `--delay-tiers` value.
pub const TEST_TIERS: &str = "200ms,500ms,1s,5s";

pub async fn connect(topology: &Topology) -> Broker {
    Broker::connect(
        &amqp_url(),
        topology,
        "backfill test",
        Duration::from_secs(30),
    )
    .await
    .expect("RabbitMQ must be running for the integration tests")
}

/// Publishes `body` to `to` without headers; the broker must confirm it.
pub async fn publish_bare(broker: &Broker, to: Destination, body: &[u8], id: &str) {
    broker
        .publisher()
        .publish(to, body, id, &Headers::new())
        .await
        .expect("publish confirmed");
}

/// Closes a test's broker connection; its namespace is deleted when its
/// [`TestNamespace`] drops.
pub async fn teardown(broker: &Broker) {
    broker.close().await;
}

/// A fresh SQLite ledger file URL.
pub fn sqlite_url() -> String {
    let path = std::env::temp_dir().join(format!("bftest-{}.db", unique()));
    format!("sqlite://{}", path.display())
}

/// The PostgreSQL server the tests create databases on.
pub fn postgres_admin_url() -> String {
    std::env::var("TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A fresh, empty PostgreSQL database URL.
pub async fn postgres_url() -> String {
    let admin = postgres_admin_url();
    let name = format!("bftest_{}", unique());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("PostgreSQL must be running for the integration tests");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let base = admin.rsplit_once('/').map(|(b, _)| b).unwrap_or(&admin);
    format!("{base}/{name}")
}

/// Both ledger backends, freshly created: the same suite runs against each.
pub async fn ledger_urls() -> Vec<(&'static str, String)> {
    vec![("sqlite", sqlite_url()), ("postgres", postgres_url().await)]
}

pub async fn ledger(url: &str) -> Ledger {
    Ledger::connect(url).await.expect("ledger")
}

/// Polls `check` every 50 ms until it returns `Some`, or panics after `limit`.
pub async fn eventually<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
