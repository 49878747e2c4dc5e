//! One AMQP connection per process, opened with a heartbeat, retried with backoff, and the
//! channels made from it: a confirm-mode publishing channel and per-lane consumers.

use std::fmt;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use lapin::options::{BasicConsumeOptions, BasicGetOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties, Consumer};
use secrecy::{ExposeSecret, SecretString};

use crate::{BrokerError, Lane, Publisher, Topology};

const HEARTBEAT_S: u32 = 15;
const FRAME_MAX: u32 = 16 * 1024;

/// An AMQP URL whose password never reaches logs, errors or `Debug` output.
#[derive(Clone)]
pub struct AmqpUrl(SecretString);

impl AmqpUrl {
    pub fn new(url: impl Into<String>) -> Result<Self, BrokerError> {
        let url: String = url.into();
        if !(url.starts_with("amqp://") || url.starts_with("amqps://")) {
            return Err(BrokerError::Config(
                "AMQP URL must start with amqp:// or amqps://".into(),
            ));
        }
        Ok(Self(SecretString::from(url)))
    }

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
    pub fn redacted(&self) -> String {
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

impl fmt::Debug for AmqpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AmqpUrl({})", self.redacted())
    }
}

/// A connected broker with the fleet's topology declared on it.
pub struct Broker {
    connection: Connection,
    topology: Topology,
    publisher: Publisher,
    /// Kept open for [`Broker::get`]: a delivery can only be acknowledged on its channel.
    getter: Channel,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("namespace", &self.topology.namespace())
            .field("connected", &self.is_connected())
            .finish()
    }
}

/// A consumer with the channel it lives on (dropping the channel would end it).
#[derive(Debug)]
pub struct LaneConsumer {
    pub consumer: Consumer,
    pub channel: Channel,
}

impl Broker {
    /// Connects, declares the topology and opens the publishing channel, retrying with
    /// exponential backoff and jitter until `give_up_after` has passed.
    pub async fn connect(
        url: &AmqpUrl,
        topology: &Topology,
        connection_name: &str,
        give_up_after: Duration,
    ) -> Result<Self, BrokerError> {
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(200))
            .with_max_delay(Duration::from_secs(5))
            .with_jitter()
            .without_max_times()
            .with_total_delay(Some(give_up_after));
        (|| Self::connect_once(url, topology, connection_name))
            .retry(backoff)
            .when(BrokerError::is_connection_lost)
            .notify(|err, wait| {
                tracing::warn!(
                    broker = %url.redacted(),
                    error = %err,
                    retry_in_ms = wait.as_millis() as u64,
                    "broker unavailable, retrying"
                );
            })
            .await
    }

    /// One connection attempt, bounded by a 10 s timeout.
    pub async fn connect_once(
        url: &AmqpUrl,
        topology: &Topology,
        connection_name: &str,
    ) -> Result<Self, BrokerError> {
        let props = ConnectionProperties::default().with_connection_name(connection_name.into());
        let connection = with_timeout("connect", Connection::connect(&url.dial(), props))
            .await?
            .map_err(BrokerError::Connection)?;
        let setup = open_channel(&connection).await?;
        if let Err(e) = with_timeout("declare", topology.declare(&setup)).await? {
            // The connection is fine and the broker said no (for example 406: a queue
            // exists with other arguments): retrying cannot help.
            if connection.status().connected() {
                return Err(BrokerError::Config(format!(
                    "the broker refused the topology of namespace {}: {e}",
                    topology.namespace()
                )));
            }
            return Err(e);
        }
        let _ = with_timeout("channel.close", setup.close(200, "declared".into())).await;
        let publisher = Publisher::open(&connection, topology.clone()).await?;
        let getter = open_channel(&connection).await?;
        Ok(Self {
            connection,
            topology: topology.clone(),
            publisher,
            getter,
        })
    }

    pub fn topology(&self) -> &Topology {
        &self.topology
    }

    /// The shared confirm-mode publisher; cheap to clone.
    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    pub fn is_connected(&self) -> bool {
        self.connection.status().connected()
    }

    /// Starts a manual-ack consumer on a lane's work queue with a per-consumer prefetch
    /// (global QoS would close the connection on a quorum queue).
    pub async fn consume(
        &self,
        lane: Lane,
        prefetch: u16,
        consumer_tag: &str,
    ) -> Result<LaneConsumer, BrokerError> {
        let channel = self.channel().await?;
        with_timeout(
            "basic.qos",
            channel.basic_qos(prefetch, BasicQosOptions { global: false }),
        )
        .await?
        .map_err(BrokerError::op("basic.qos"))?;
        let consumer = with_timeout(
            "basic.consume",
            channel.basic_consume(
                self.topology.work_queue(lane).into(),
                consumer_tag.into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            ),
        )
        .await?
        .map_err(BrokerError::op("basic.consume"))?;
        Ok(LaneConsumer { consumer, channel })
    }

    /// Takes one message from a queue without waiting (manual ack: the caller acks it, or
    /// it returns to the queue when the channel closes). Used by operator tools and tests.
    pub async fn get(&self, queue: &str) -> Result<Option<lapin::message::Delivery>, BrokerError> {
        let got = with_timeout(
            "basic.get",
            self.getter
                .basic_get(queue.into(), BasicGetOptions { no_ack: false }),
        )
        .await?
        .map_err(BrokerError::op("basic.get"))?;
        Ok(got.map(|m| m.delivery))
    }

    /// The exact number of ready messages in a queue (a passive declare on a throwaway
    /// channel, since a missing queue closes the channel).
    pub async fn queue_depth(&self, queue: &str) -> Result<u32, BrokerError> {
        Ok(self.queue_stats(queue).await?.0)
    }

    /// Ready messages and consumers of a queue, as the broker counts them.
    pub async fn queue_stats(&self, queue: &str) -> Result<(u32, u32), BrokerError> {
        let channel = self.channel().await?;
        let q = with_timeout(
            "queue.declare",
            channel.queue_declare(
                queue.into(),
                QueueDeclareOptions {
                    passive: true,
                    ..Default::default()
                },
                FieldTable::default(),
            ),
        )
        .await?
        .map_err(BrokerError::op("queue.declare passive"))?;
        let _ = with_timeout("channel.close", channel.close(200, "done".into())).await;
        Ok((q.message_count(), q.consumer_count()))
    }

    /// A fresh channel for ad-hoc operations (deleting a test namespace, for example).
    pub async fn channel(&self) -> Result<Channel, BrokerError> {
        open_channel(&self.connection).await
    }

    /// Closes the connection politely; unacknowledged deliveries return to their queues.
    pub async fn close(&self) {
        let _ = with_timeout("connection.close", self.connection.close(200, "bye".into())).await;
    }
}

async fn open_channel(connection: &Connection) -> Result<Channel, BrokerError> {
    with_timeout("channel.open", connection.create_channel())
        .await?
        .map_err(BrokerError::op("channel.open"))
}

pub(crate) async fn with_timeout<T>(
    op: &'static str,
    fut: impl std::future::Future<Output = T>,
) -> Result<T, BrokerError> {
    const LIMIT: Duration = Duration::from_secs(10);
    tokio::time::timeout(LIMIT, fut)
        .await
        .map_err(|_| BrokerError::Timeout {
            op,
            seconds: LIMIT.as_secs(),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_password_is_redacted() {
        let url = AmqpUrl::new("amqp://bob:hunter2@rabbit:5672/%2f").unwrap();
        assert_eq!(url.redacted(), "amqp://bob:***@rabbit:5672/%2f");
        let at = AmqpUrl::new("amqp://bob:p@ss@rabbit/%2f").unwrap();
        assert_eq!(at.redacted(), "amqp://bob:***@rabbit/%2f");
        assert!(!format!("{url:?}").contains("hunter2"));
        assert!(url.dial().ends_with("/%2f?heartbeat=15&frame_max=16384"));
        let tuned = AmqpUrl::new("amqp://rabbit/%2f?frame_max=131072").unwrap();
        assert!(tuned.dial().ends_with("?frame_max=131072&heartbeat=15"));
        assert!(AmqpUrl::new("http://x").is_err());
    }
}
