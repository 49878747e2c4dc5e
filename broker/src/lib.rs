//! Everything the fleet asks of RabbitMQ, and nothing about Databricks.
//!
//! - [`Topology`]: the namespace-derived names and the quorum queues, delay tiers and
//!   dead-letter queue, declared idempotently.
//! - [`AmqpUrl`]: the broker setting, one node or a cluster's nodes tried in turn.
//! - [`Broker`]: one connection per process (with heartbeat), reconnected with backoff by
//!   [`Broker::connect`]; publishing with confirms and `mandatory` ([`Publisher`]);
//!   consuming with manual acks ([`Broker::consume`], [`LaneConsumer`]).
//! - [`Delivery`]: a received message and settling it (ack, requeue, reject), each
//!   bounded by a timeout.
//! - [`Headers`]: typed access to the string headers the fleet puts on messages;
//!   [`DeadLetterHeaders`], the schema of a dead-lettered message's headers.
//! - [`retire`] and [`inspect`]: a namespace's queues as the broker sees them, and the
//!   deletion of a retired namespace (refused while messages remain, unless forced).

mod connection;
mod consumer;
mod dead_letter;
mod delivery;
mod error;
mod headers;
mod publisher;
mod retire;
mod timeout;
mod topology;
mod url;

pub use connection::Broker;
pub use consumer::LaneConsumer;
pub use dead_letter::DeadLetterHeaders;
pub use delivery::Delivery;
pub use error::BrokerError;
pub use headers::{DELAY_REASON_HEADER, Headers, SENT_MS_HEADER};
pub use publisher::{Destination, Publisher};
pub use retire::{QueueCounts, QueueState, Retirement, inspect, retire};
pub use topology::{DEFAULT_DELAY_TIERS, Lane, Topology, parse_duration};
pub use url::AmqpUrl;
