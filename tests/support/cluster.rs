//! A RabbitMQ cluster of private nodes on loopback (each with its own ports, data and
//! node name, all sharing one Erlang cookie), stopped when dropped, also on failure.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::private_broker::{NodeOptions, PrivateBroker};

#[derive(Debug)]
pub struct Cluster {
    pub nodes: Vec<PrivateBroker>,
    /// Nodes killed by the test: not asked anything any more.
    killed: Vec<usize>,
}

/// One quorum queue as the cluster reports it.
#[derive(Debug, Clone)]
pub struct QueueReplicas {
    pub leader: String,
    pub members: Vec<String>,
}

impl Cluster {
    /// Boots `size` nodes side by side and joins the others to the first
    /// (`rabbitmqctl join_cluster`). Queue leaders are spread over the nodes
    /// (`queue_leader_locator = balanced`), as docs/design/failures.md advises. Blocking.
    pub fn start(size: usize) -> Self {
        let options = NodeOptions {
            cookie: Some(format!("BFCOOKIE{}", super::unique()).to_uppercase()),
            config: "queue_leader_locator = balanced\n".into(),
        };
        let mut cluster = Self {
            nodes: Vec::new(),
            killed: Vec::new(),
        };
        // Pushed one by one, so that a failure part-way still stops the booted ones.
        for _ in 0..size {
            cluster.nodes.push(PrivateBroker::spawn(&options));
        }
        for node in &cluster.nodes {
            node.await_startup();
        }
        let seed = cluster.nodes[0].node.clone();
        for node in &cluster.nodes[1..] {
            for args in [&["stop_app"][..], &["join_cluster", &seed], &["start_app"]] {
                let out = node.ctl(args);
                assert!(
                    out.status.success(),
                    "{} {args:?}: {}",
                    node.node,
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            node.await_startup();
        }
        cluster.await_members(size);
        cluster
    }

    /// Every node's URL, separated by commas: the fleet's `AMQP_URL`.
    pub fn urls(&self) -> String {
        self.nodes
            .iter()
            .map(PrivateBroker::url)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// A node that is still running, to ask the cluster questions through.
    fn live(&self) -> &PrivateBroker {
        self.nodes
            .iter()
            .enumerate()
            .find(|(i, _)| !self.killed.contains(i))
            .map(|(_, n)| n)
            .expect("a live node")
    }

    /// `rabbitmqctl` on a live node, quiet and without headers; the lines of its answer.
    fn ask(&self, args: &[&str]) -> Vec<String> {
        let mut all = vec!["-q", "--no-table-headers"];
        all.extend_from_slice(args);
        let out = self.live().ctl(&all);
        assert!(
            out.status.success(),
            "rabbitmqctl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .filter(|l| !l.trim().is_empty())
            .collect()
    }

    /// Waits (up to 30 s) until `count` nodes run in the cluster.
    fn await_members(&self, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = self.live().ctl(&["cluster_status", "--formatter", "json"]);
            let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
            let running = status["running_nodes"].as_array().map_or(0, Vec::len);
            if running == count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "cluster has {running} of {count} nodes running: {status}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The index of the node whose AMQP port is `port`.
    pub fn node_with_port(&self, port: u16) -> Option<usize> {
        self.nodes.iter().position(|n| n.port == port)
    }

    /// The index of the node called `name` (`bf…@localhost`).
    pub fn node_named(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.node == name)
    }

    /// Open client connections: the name the client gave (`connection_name`, empty if
    /// none) and the node (index) each is on.
    pub fn connections(&self) -> Vec<(String, usize)> {
        let out = self.live().ctl(&[
            "-q",
            "list_connections",
            "port",
            "client_properties",
            "--formatter",
            "json",
        ]);
        assert!(
            out.status.success(),
            "list_connections: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
                panic!(
                    "list_connections: {e}: {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            });
        rows.iter()
            .filter_map(|row| {
                let port = u16::try_from(row["port"].as_u64()?).ok()?;
                Some((
                    connection_name(&row["client_properties"]),
                    self.node_with_port(port)?,
                ))
            })
            .collect()
    }

    /// The quorum queues whose names start with `prefix`: leader and members.
    pub fn quorum_queues(&self, prefix: &str) -> BTreeMap<String, QueueReplicas> {
        self.ask(&["list_queues", "name", "leader", "members"])
            .iter()
            .filter_map(|line| {
                let mut cells = line.split('\t');
                let name = cells.next()?.to_owned();
                let leader = cells.next()?.trim().to_owned();
                let members = cells
                    .next()?
                    .trim_matches(|c| c == '[' || c == ']' || c == ' ')
                    .split(',')
                    .map(|m| m.trim().trim_matches('\'').to_owned())
                    .filter(|m| !m.is_empty())
                    .collect();
                name.starts_with(prefix)
                    .then_some((name, QueueReplicas { leader, members }))
            })
            .collect()
    }

    /// Kills node `index` with SIGKILL; the others carry on (and are asked from now on).
    pub fn kill(&mut self, index: usize) {
        self.killed.push(index);
        self.nodes[index].kill();
    }
}

/// The `connection_name` client property, however the JSON formatter renders the table
/// (an object, or a list of `[key, type, value]` triples).
fn connection_name(properties: &serde_json::Value) -> String {
    if let Some(name) = properties["connection_name"].as_str() {
        return name.to_owned();
    }
    properties
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|entry| {
            let entry = entry.as_array()?;
            (entry.first()?.as_str()? == "connection_name")
                .then(|| entry.last()?.as_str().map(str::to_owned))?
        })
        .next()
        .unwrap_or_default()
}
