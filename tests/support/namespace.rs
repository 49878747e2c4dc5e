//! A broker namespace that deletes its queues and exchanges when dropped, also when the
//! test fails: quorum queues are never deleted by the broker on its own, and leftovers of
//! many runs exhaust a broker's file handles.

use std::ops::Deref;
use std::time::Duration;

use backfill_broker::{AmqpUrl, Topology, parse_duration, retire};

/// The topology of a test namespace on one broker; dropping it deletes the namespace.
#[derive(Debug)]
pub struct TestNamespace {
    url: AmqpUrl,
    topology: Topology,
    /// False on a throwaway broker that goes with the test.
    delete_on_drop: bool,
}

impl TestNamespace {
    pub fn new(url: AmqpUrl, topology: Topology) -> Self {
        Self {
            url,
            topology,
            delete_on_drop: true,
        }
    }

    /// Leaves the namespace in place when dropped: its broker (private nodes) is
    /// discarded with the test, and deleting quorum queues with a replica down waits
    /// for a timeout.
    pub fn keep_on_drop(&mut self) {
        self.delete_on_drop = false;
    }

    /// The namespace `name` with delay tiers written as `--delay-tiers` takes them.
    pub fn named(url: &str, name: &str, tiers: &str) -> Self {
        let tiers = tiers
            .split(',')
            .map(|t| parse_duration(t).expect("delay tier"))
            .collect();
        let topology = Topology::new(name)
            .expect("namespace")
            .with_delay_tiers(tiers)
            .expect("tiers");
        Self::new(AmqpUrl::new(url).expect("AMQP URL"), topology)
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }
}

impl Deref for TestNamespace {
    type Target = Topology;

    fn deref(&self) -> &Topology {
        &self.topology
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        if !self.delete_on_drop {
            return;
        }
        // Drop cannot await, and may run inside a runtime: delete from a thread of its own.
        let url = self.url.clone();
        let topology = self.topology.clone();
        let deleted = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(30), retire(&url, &topology, true))
                    .await
                    .ok()?
                    .ok()
            })
        })
        .join();
        if !matches!(deleted, Ok(Some(_))) {
            eprintln!(
                "warning: could not delete test namespace {} (broker gone?)",
                self.topology.namespace()
            );
        }
    }
}
