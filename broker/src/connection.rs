//! One AMQP connection per process, opened with a heartbeat on one of the setting's nodes,
//! retried with backoff, and the channels made from it: a confirm-mode publishing channel
//! and per-lane consumers.

use std::fmt;
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use lapin::options::{BasicConsumeOptions, BasicGetOptions, BasicQosOptions, QueueDeclareOptions};
use lapin::types::FieldTable;
use lapin::{Channel, Connection, ConnectionProperties};

use crate::timeout::with_timeout;
use crate::url::NodeUrl;
use crate::{AmqpUrl, BrokerError, Delivery, Lane, LaneConsumer, Publisher, Topology};

/// A connected broker with the fleet's topology declared on it.
pub struct Broker {
    connection: Connection,
    topology: Topology,
    publisher: Publisher,
    /// Kept open for [`Broker::get`]: a delivery can only be acknowledged on its channel.
    getter: Channel,
    /// The node connected to, password redacted.
    node: String,
}

impl fmt::Debug for Broker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Broker")
            .field("namespace", &self.topology.namespace())
            .field("node", &self.node)
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Broker {
    /// Connects, declares the topology and opens the publishing channel, retrying with
    /// exponential backoff and jitter until `give_up_after` has passed. Each attempt is
    /// a round over the setting's nodes ([`Broker::connect_once`]); the backoff comes
    /// between rounds.
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

    /// One round: each node in turn (from the one after the node that last connected)
    /// until one connects, each attempt bounded by a 10 s timeout.
    pub async fn connect_once(
        url: &AmqpUrl,
        topology: &Topology,
        connection_name: &str,
    ) -> Result<Self, BrokerError> {
        url.try_each(|node| Self::connect_node(node, topology, connection_name))
            .await
    }

    async fn connect_node(
        node: &NodeUrl,
        topology: &Topology,
        connection_name: &str,
    ) -> Result<Self, BrokerError> {
        let props = ConnectionProperties::default().with_connection_name(connection_name.into());
        let connection = with_timeout("connect", Connection::connect(&node.dial(), props))
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
            node: node.redacted(),
        })
    }

    /// The node this connection is to (password redacted), for logs.
    pub fn node(&self) -> &str {
        &self.node
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
        Ok(LaneConsumer::new(consumer, channel, lane))
    }

    /// Takes one message from a queue without waiting (manual ack: the caller acks it, or
    /// it returns to the queue when the channel closes). Used by operator tools and tests.
    pub async fn get(&self, queue: &str) -> Result<Option<Delivery>, BrokerError> {
        let got = with_timeout(
            "basic.get",
            self.getter
                .basic_get(queue.into(), BasicGetOptions { no_ack: false }),
        )
        .await?
        .map_err(BrokerError::op("basic.get"))?;
        Ok(got.map(|m| Delivery::new(m.delivery)))
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
