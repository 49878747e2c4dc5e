//! A message taken from a queue, and settling it: acknowledged, returned to its queue or
//! rejected into the dead-letter exchange, each bounded by a timeout (lapin would
//! otherwise await a settlement forever on a half-dead connection).

use std::fmt;

use lapin::options::{BasicAckOptions, BasicNackOptions};

use crate::timeout::with_timeout;
use crate::{BrokerError, Headers, SENT_MS_HEADER};

/// One delivery, unacknowledged until it is settled. Settling consumes it: a delivery is
/// settled once. Dropped unsettled, it returns to its queue when its channel closes.
pub struct Delivery {
    inner: lapin::message::Delivery,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Delivery")
            .field("message_id", &self.message_id())
            .field("bytes", &self.inner.data.len())
            .finish()
    }
}

impl Delivery {
    pub(crate) fn new(inner: lapin::message::Delivery) -> Self {
        Self { inner }
    }

    /// The message body as published.
    pub fn body(&self) -> &[u8] {
        &self.inner.data
    }

    /// The message id the publisher gave it.
    pub fn message_id(&self) -> Option<&str> {
        self.inner
            .properties
            .message_id()
            .as_ref()
            .map(|m| m.as_str())
    }

    /// Its string and integer headers.
    pub fn headers(&self) -> Headers {
        Headers::from_field_table(self.inner.properties.headers().as_ref())
    }

    /// When it was published (the `x-backfill-sent-ms` header), if it says.
    pub fn sent_ms(&self) -> Option<i64> {
        self.headers()
            .get(SENT_MS_HEADER)
            .and_then(|v| v.parse::<i64>().ok())
    }

    /// How many times the broker dead-lettered it for `reason` ("rejected",
    /// "delivery_limit", ...), from its `x-death` header.
    pub fn death_count(&self, reason: &str) -> i64 {
        Headers::death_count(self.inner.properties.headers().as_ref(), reason)
    }

    /// Acknowledges it: the broker forgets the message. `Ok(false)` when its channel is
    /// already gone (the broker will deliver it again).
    pub async fn ack(self) -> Result<bool, BrokerError> {
        with_timeout(
            "basic.ack",
            self.inner.acker.ack(BasicAckOptions::default()),
        )
        .await?
        .map_err(BrokerError::op("basic.ack"))
    }

    /// Returns it to its queue, to be delivered again. `Ok(false)` when its channel is
    /// already gone (which returns it too).
    pub async fn requeue(self) -> Result<bool, BrokerError> {
        self.nack("basic.nack requeue", true).await
    }

    /// Rejects it without requeueing: the queue dead-letters it (into the dead-letter
    /// queue, with an `x-death` reason `rejected`). `Ok(false)` when its channel is
    /// already gone (which returns it to its queue instead).
    pub async fn reject(self) -> Result<bool, BrokerError> {
        self.nack("basic.nack", false).await
    }

    async fn nack(self, op: &'static str, requeue: bool) -> Result<bool, BrokerError> {
        let options = BasicNackOptions {
            requeue,
            ..BasicNackOptions::default()
        };
        with_timeout(op, self.inner.acker.nack(options))
            .await?
            .map_err(BrokerError::op(op))
    }
}
