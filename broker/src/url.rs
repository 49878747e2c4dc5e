//! The `AMQP_URL` setting: one RabbitMQ node's URL, or a cluster's nodes separated by
//! commas, tried in turn in an order shuffled per process. Passwords never reach logs,
//! errors or `Debug` output.

use std::fmt;
use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lapin::uri::AMQPUri;
use rand::seq::SliceRandom;
use secrecy::{ExposeSecret, SecretString};

use crate::BrokerError;

const HEARTBEAT_S: u32 = 15;
const FRAME_MAX: u32 = 16 * 1024;

/// Where the fleet's broker is: one node, or several nodes of a cluster.
///
/// Each value shuffles its nodes once (so a fleet whose processes share one setting
/// spreads over the cluster), and every round of connection attempts starts from the
/// node after the one that last connected, so a process that lost its node tries the
/// others first. Clones share that position.
#[derive(Clone)]
pub struct AmqpUrl {
    nodes: Arc<[NodeUrl]>,
    /// Where the next round starts.
    next: Arc<AtomicUsize>,
}

/// One node's URL.
#[derive(Clone)]
pub(crate) struct NodeUrl(SecretString);

impl AmqpUrl {
    /// Parses the setting: URLs separated by commas (spaces around them are ignored). An
    /// empty or malformed entry is refused, naming its position but not its text, which
    /// may hold a password.
    pub fn new(setting: impl Into<String>) -> Result<Self, BrokerError> {
        let mut nodes = parse_nodes(&setting.into())?;
        nodes.shuffle(&mut rand::rng());
        Ok(Self {
            nodes: nodes.into(),
            next: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// How many nodes the setting names.
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Every node's URL with its password replaced, in the order they are tried, joined
    /// by commas: for logs and errors.
    pub fn redacted(&self) -> String {
        self.nodes
            .iter()
            .map(NodeUrl::redacted)
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Runs `attempt` against each node in turn, starting from the node after the one
    /// that last connected, until one succeeds. A failure that reconnecting cannot cure
    /// (the broker refused the topology, say) ends the round at once; otherwise the last
    /// node's error is returned.
    pub(crate) async fn try_each<'a, T, F, Fut>(&'a self, mut attempt: F) -> Result<T, BrokerError>
    where
        F: FnMut(&'a NodeUrl) -> Fut,
        Fut: Future<Output = Result<T, BrokerError>>,
    {
        let count = self.nodes.len();
        let start = self.next.load(Ordering::Relaxed);
        let mut tried = 0;
        loop {
            let index = (start + tried) % count;
            let node = &self.nodes[index];
            tried += 1;
            match attempt(node).await {
                Ok(value) => {
                    self.next.store((index + 1) % count, Ordering::Relaxed);
                    return Ok(value);
                }
                Err(e) if e.is_connection_lost() && tried < count => {
                    tracing::warn!(
                        node = %node.redacted(),
                        error = %e,
                        "broker node unavailable; trying the next"
                    );
                }
                Err(e) => {
                    // The next round starts with the node after this one.
                    self.next.store((index + 1) % count, Ordering::Relaxed);
                    return Err(e);
                }
            }
        }
    }
}

impl fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AmqpUrl({})", self.redacted())
    }
}

impl NodeUrl {
    /// The URL to dial. Unless the URL says otherwise: a 15 s heartbeat, so dead TCP
    /// connections are noticed, and frames of at most 16 KiB. lapin keeps 32 frames of
    /// read and of write buffer per connection, so the broker's default 128 KiB frames
    /// would hold 8 MiB per connection for messages that are a few hundred bytes; a
    /// larger message is still sent, in several frames.
    pub(crate) fn dial(&self) -> String {
        let mut url = self.0.expose_secret().to_owned();
        for (key, value) in [("heartbeat", HEARTBEAT_S), ("frame_max", FRAME_MAX)] {
            if !url.contains(&format!("{key}=")) {
                let sep = if url.contains('?') { '&' } else { '?' };
                url = format!("{url}{sep}{key}={value}");
            }
        }
        url
    }

    /// The URL with any password replaced, for logs.
    pub(crate) fn redacted(&self) -> String {
        let url = self.0.expose_secret();
        let (scheme, rest) = url.split_once("://").unwrap_or(("amqp", url));
        match rest.rsplit_once('@') {
            // The last '@' ends the user info: a password may contain '@'.
            Some((userinfo, host)) => {
                let user = userinfo.split(':').next().unwrap_or("");
                format!("{scheme}://{user}:***@{host}")
            }
            None => format!("{scheme}://{rest}"),
        }
    }
}

/// The nodes of a setting, in the order written.
fn parse_nodes(setting: &str) -> Result<Vec<NodeUrl>, BrokerError> {
    let entries: Vec<&str> = setting.split(',').map(str::trim).collect();
    let count = entries.len();
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            parse_node(entry).map_err(|problem| {
                BrokerError::Url(if count == 1 {
                    problem
                } else {
                    format!(
                        "entry {} of {count} {problem} (URLs are separated by commas; \
                         a comma inside a password or vhost must be written %2C)",
                        i + 1
                    )
                })
            })
        })
        .collect()
}

/// One URL, or what is wrong with it (never quoting it: it may hold a password).
fn parse_node(entry: &str) -> Result<NodeUrl, String> {
    if entry.is_empty() {
        return Err("is empty".into());
    }
    if !(entry.starts_with("amqp://") || entry.starts_with("amqps://")) {
        return Err("must start with amqp:// or amqps://".into());
    }
    if let Err(problem) = AMQPUri::from_str(entry) {
        // The parser quotes the whole URL in some of its messages.
        let problem = if problem.contains(entry) {
            "is not a valid URL".to_owned()
        } else {
            format!("is not a valid URL: {problem}")
        };
        return Err(problem);
    }
    Ok(NodeUrl(SecretString::from(entry.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn in_order(setting: &str) -> Vec<String> {
        parse_nodes(setting)
            .unwrap()
            .iter()
            .map(NodeUrl::redacted)
            .collect()
    }

    fn refusal(setting: &str) -> String {
        AmqpUrl::new(setting).unwrap_err().to_string()
    }

    #[test]
    fn url_password_is_redacted() {
        let url = AmqpUrl::new("amqp://bob:hunter2@rabbit:5672/%2f").unwrap();
        assert_eq!(url.redacted(), "amqp://bob:***@rabbit:5672/%2f");
        let at = AmqpUrl::new("amqp://bob:p@ss@rabbit/%2f").unwrap();
        assert_eq!(at.redacted(), "amqp://bob:***@rabbit/%2f");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(
            url.nodes[0]
                .dial()
                .ends_with("/%2f?heartbeat=15&frame_max=16384")
        );
        let tuned = AmqpUrl::new("amqp://rabbit/%2f?frame_max=131072").unwrap();
        assert!(
            tuned.nodes[0]
                .dial()
                .ends_with("?frame_max=131072&heartbeat=15")
        );
        assert!(AmqpUrl::new("http://x").is_err());
    }

    #[test]
    fn a_single_url_is_one_node_as_written() {
        let url = AmqpUrl::new("amqp://guest:guest@127.0.0.1:5672/%2f").unwrap();
        assert_eq!(url.node_count(), 1);
        assert_eq!(url.redacted(), "amqp://guest:***@127.0.0.1:5672/%2f");
        assert_eq!(
            refusal("http://x"),
            "invalid AMQP URL: must start with amqp:// or amqps://"
        );
    }

    #[test]
    fn a_list_is_split_on_commas_and_trimmed() {
        assert_eq!(
            in_order(" amqp://u:p@a:5672/%2f , amqp://b:5673/%2f,amqps://u:p@c/prod "),
            [
                "amqp://u:***@a:5672/%2f",
                "amqp://b:5673/%2f",
                "amqps://u:***@c/prod"
            ]
        );
        let url = AmqpUrl::new("amqp://a/%2f,amqp://b/%2f,amqp://c/%2f").unwrap();
        assert_eq!(url.node_count(), 3);
        let mut nodes: Vec<String> = url.redacted().split(',').map(str::to_owned).collect();
        nodes.sort();
        assert_eq!(nodes, ["amqp://a/%2f", "amqp://b/%2f", "amqp://c/%2f"]);
    }

    #[test]
    fn a_list_is_never_read_as_one_url_with_a_vhost() {
        // One URL whose vhost would be "/,amqp://b/" if the comma were not a separator.
        let url = AmqpUrl::new("amqp://a/%2f,amqp://b/%2f").unwrap();
        assert!(url.nodes.iter().all(|n| !n.dial().contains(',')));
    }

    #[test]
    fn empty_entries_are_refused_by_position() {
        assert!(refusal("amqp://a/%2f,,amqp://c/%2f").contains("entry 2 of 3 is empty"));
        assert!(refusal("amqp://a/%2f,").contains("entry 2 of 2 is empty"));
        assert!(refusal(" , amqp://a/%2f").contains("entry 1 of 2 is empty"));
        assert_eq!(refusal(""), "invalid AMQP URL: is empty");
    }

    #[test]
    fn a_bad_scheme_or_port_is_refused_by_position() {
        assert!(
            refusal("amqp://a/%2f,http://b/%2f")
                .contains("entry 2 of 2 must start with amqp:// or amqps://")
        );
        assert!(
            refusal("amqp://a:notaport/%2f,amqp://b/%2f")
                .contains("entry 1 of 2 is not a valid URL")
        );
    }

    #[test]
    fn refusals_never_quote_a_password() {
        for setting in [
            "amqp://bob:hunter2@a/%2f,http://bob:hunter2@b/%2f",
            "amqp://bob:hunter2@a:x/%2f",
            "amqp://bob:hunter2@a/%2f,amqp://bob:hunter2@b:99999/%2f",
            // A comma inside a password splits it: neither half may be echoed.
            "amqp://bob:hun,ter2@a/%2f",
            "amqp://bob:hunter2@,amqp://b",
        ] {
            let err = AmqpUrl::new(setting).unwrap_err();
            let text = format!("{err} {err:?}");
            assert!(
                !text.contains("hunter2") && !text.contains("hun") && !text.contains("ter2"),
                "{setting}: {text}"
            );
        }
    }

    #[tokio::test]
    async fn each_round_starts_after_the_node_that_last_connected() {
        let url = AmqpUrl::new("amqp://a/%2f,amqp://b/%2f,amqp://c/%2f").unwrap();
        let order: Vec<String> = url.redacted().split(',').map(str::to_owned).collect();
        let down = order[0].clone();
        let lost = || BrokerError::Timeout {
            op: "connect",
            seconds: 10,
        };
        // The first node is down: the second is connected, after one try of the first.
        let mut tried = Vec::new();
        let got = url
            .try_each(|node| {
                tried.push(node.redacted());
                let ok = node.redacted() != down;
                async move { if ok { Ok(()) } else { Err(lost()) } }
            })
            .await;
        assert!(got.is_ok());
        assert_eq!(tried, order[..2]);
        // Losing it, the next round starts with the third.
        let mut tried = Vec::new();
        let got: Result<(), _> = url
            .try_each(|node| {
                tried.push(node.redacted());
                async { Err(lost()) }
            })
            .await;
        assert!(got.unwrap_err().is_connection_lost());
        assert_eq!(
            tried,
            [order[2].clone(), order[0].clone(), order[1].clone()]
        );
        // A refusal no other node would change ends the round at once.
        let mut tried = 0;
        let got: Result<(), _> = url
            .try_each(|_| {
                tried += 1;
                async { Err(BrokerError::Config("refused".into())) }
            })
            .await;
        assert!(got.is_err());
        assert_eq!(tried, 1);
    }
}
