//! Broker failures, classified so callers can tell a refused message from a lost connection.

/// What went wrong talking to RabbitMQ.
#[derive(Debug, thiserror::Error)]
pub enum BrokerError {
    #[error("broker connection failed: {0}")]
    Connection(#[source] lapin::Error),
    #[error("broker operation {op} failed: {source}")]
    Operation {
        op: &'static str,
        #[source]
        source: lapin::Error,
    },
    #[error("broker refused the message (nack) on {destination}; the queue may be full")]
    Nacked { destination: String },
    #[error("message to {destination} was unroutable and returned: {reply}")]
    Returned { destination: String, reply: String },
    #[error("publisher confirms are not enabled on this channel")]
    NotConfirmed,
    #[error("broker did not answer {op} within {seconds} s")]
    Timeout { op: &'static str, seconds: u64 },
    #[error("invalid topology setting: {0}")]
    Config(String),
    /// A lane's consumer ended: the broker cancelled it (its queue was deleted, or its
    /// node went down).
    #[error("consumer of the {lane} lane was cancelled by the broker")]
    ConsumerCancelled { lane: &'static str },
    /// The broker setting is malformed (the message never quotes it: it may hold a
    /// password).
    #[error("invalid AMQP URL: {0}")]
    Url(String),
}

impl BrokerError {
    /// True when the connection or channel is gone and reconnecting may help.
    pub fn is_connection_lost(&self) -> bool {
        matches!(
            self,
            Self::Connection(_) | Self::Operation { .. } | Self::Timeout { .. }
        )
    }

    /// True when the broker received the message and refused it (queue full, unroutable).
    pub fn is_refused(&self) -> bool {
        matches!(self, Self::Nacked { .. } | Self::Returned { .. })
    }

    pub(crate) fn op(op: &'static str) -> impl FnOnce(lapin::Error) -> Self {
        move |source| Self::Operation { op, source }
    }
}
