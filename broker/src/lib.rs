//! Everything the fleet asks of RabbitMQ, and nothing about Databricks.
//!
//! - [`Topology`]: the namespace-derived names and the quorum queues, delay tiers and
//!   dead-letter queue, declared idempotently.
//! - [`AmqpUrl`]: the broker setting, one node or a cluster's nodes tried in turn.
//! - [`Broker`]: one connection per process (with heartbeat), reconnected with backoff by
//!   [`Broker::connect`]; publishing with confirms and `mandatory` ([`Publisher`]);
//!   consuming with manual acks ([`Broker::consume`]).
//! - [`Headers`]: typed access to the string headers the fleet puts on messages.
//! - [`retire`] and [`inspect`]: a namespace's queues as the broker sees them, and the
//!   deletion of a retired namespace (refused while messages remain, unless forced).

mod connection;
mod error;
mod headers;
mod publisher;
mod retire;
mod topology;
mod url;

pub use connection::{Broker, LaneConsumer};
pub use error::BrokerError;
pub use headers::{Headers, SENT_MS_HEADER};
pub use lapin::message::Delivery;
pub use lapin::{
    Consumer,
    options::{BasicAckOptions, BasicCancelOptions, BasicNackOptions},
};
pub use publisher::{Destination, Publisher};
pub use retire::{QueueCounts, QueueState, Retirement, inspect, retire};
pub use topology::{DEFAULT_DELAY_TIERS, Lane, Topology, parse_duration};
pub use url::AmqpUrl;
