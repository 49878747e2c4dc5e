//! Looking into a namespace's queues without declaring anything, and deleting a retired
//! namespace's topology. Quorum queues are never deleted by the broker on its own (unless
//! declared with an expiry), so a fleet that is done, or a test, removes its own.

use lapin::options::{QueueDeclareOptions, QueueDeleteOptions};
use lapin::types::FieldTable;
use lapin::{Connection, ConnectionProperties};

use crate::timeout::with_timeout;
use crate::{AmqpUrl, BrokerError, Topology};

/// One queue of a namespace as the broker sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueState {
    pub name: String,
    /// `None` when the queue does not exist.
    pub counts: Option<QueueCounts>,
}

/// Ready messages and consumers of a queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueCounts {
    pub messages: u32,
    pub consumers: u32,
}

/// What deleting a namespace did, or why it did not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retirement {
    /// The queues and exchanges are gone; `messages_dropped` were still in them (forced).
    Deleted {
        queues: Vec<String>,
        messages_dropped: u64,
    },
    /// Nothing was deleted: these queues still hold messages or have consumers.
    Refused { busy: Vec<QueueState> },
    /// No queue of the namespace exists.
    NothingThere,
}

/// Opens a plain connection that declares nothing (unlike [`crate::Broker::connect`]).
/// Each node is tried in turn.
async fn open(url: &AmqpUrl, connection_name: &str) -> Result<Connection, BrokerError> {
    url.try_each(|node| {
        let props = ConnectionProperties::default().with_connection_name(connection_name.into());
        let dial = node.dial();
        async move {
            with_timeout("connect", Connection::connect(&dial, props))
                .await?
                .map_err(BrokerError::Connection)
        }
    })
    .await
}

/// The state of every queue of the namespace (a passive declare per queue, each on its
/// own channel, since a missing queue closes the channel it was asked on).
pub async fn inspect(url: &AmqpUrl, topology: &Topology) -> Result<Vec<QueueState>, BrokerError> {
    let connection = open(url, "backfill topology inspect").await?;
    let states = inspect_on(&connection, topology).await;
    let _ = with_timeout("connection.close", connection.close(200, "bye".into())).await;
    states
}

async fn inspect_on(
    connection: &Connection,
    topology: &Topology,
) -> Result<Vec<QueueState>, BrokerError> {
    let mut states = Vec::new();
    for name in topology.all_queues() {
        let channel = with_timeout("channel.open", connection.create_channel())
            .await?
            .map_err(BrokerError::op("channel.open"))?;
        let passive = QueueDeclareOptions {
            passive: true,
            ..Default::default()
        };
        let answer = with_timeout(
            "queue.declare",
            channel.queue_declare(name.as_str().into(), passive, FieldTable::default()),
        )
        .await?;
        let counts = match answer {
            Ok(q) => {
                let _ = with_timeout("channel.close", channel.close(200, "done".into())).await;
                Some(QueueCounts {
                    messages: q.message_count(),
                    consumers: q.consumer_count(),
                })
            }
            // 404 NOT_FOUND closes the channel; the connection stays up.
            Err(_) if connection.status().connected() => None,
            Err(e) => {
                return Err(BrokerError::Operation {
                    op: "queue.declare passive",
                    source: e,
                });
            }
        };
        states.push(QueueState { name, counts });
    }
    Ok(states)
}

/// Deletes every queue and exchange of the namespace. Unless `force`, refuses (deleting
/// nothing) while any queue holds a message or has a consumer: messages would be lost and
/// a live fleet would re-declare what was deleted.
pub async fn retire(
    url: &AmqpUrl,
    topology: &Topology,
    force: bool,
) -> Result<Retirement, BrokerError> {
    let connection = open(url, "backfill topology delete").await?;
    let outcome = retire_on(&connection, topology, force).await;
    let _ = with_timeout("connection.close", connection.close(200, "bye".into())).await;
    outcome
}

async fn retire_on(
    connection: &Connection,
    topology: &Topology,
    force: bool,
) -> Result<Retirement, BrokerError> {
    let states = inspect_on(connection, topology).await?;
    let present: Vec<&QueueState> = states.iter().filter(|s| s.counts.is_some()).collect();
    if present.is_empty() {
        return Ok(Retirement::NothingThere);
    }
    let busy: Vec<QueueState> = present
        .iter()
        .filter(|s| s.counts.is_some_and(|c| c.messages > 0 || c.consumers > 0))
        .map(|s| (*s).clone())
        .collect();
    if !busy.is_empty() && !force {
        return Ok(Retirement::Refused { busy });
    }
    let channel = with_timeout("channel.open", connection.create_channel())
        .await?
        .map_err(BrokerError::op("channel.open"))?;
    let mut deleted = Vec::new();
    let mut messages_dropped = 0u64;
    for state in present {
        let dropped = with_timeout(
            "queue.delete",
            channel.queue_delete(state.name.as_str().into(), QueueDeleteOptions::default()),
        )
        .await?
        .map_err(BrokerError::op("queue.delete"))?;
        messages_dropped += u64::from(dropped);
        deleted.push(state.name.clone());
    }
    for exchange in [topology.work_exchange(), topology.dead_letter_exchange()] {
        with_timeout(
            "exchange.delete",
            channel.exchange_delete(exchange.into(), Default::default()),
        )
        .await?
        .map_err(BrokerError::op("exchange.delete"))?;
    }
    let _ = with_timeout("channel.close", channel.close(200, "done".into())).await;
    Ok(Retirement::Deleted {
        queues: deleted,
        messages_dropped,
    })
}
