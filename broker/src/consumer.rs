//! A lane's consumer: the deliveries of one work queue, received with manual acks.

use futures_lite::StreamExt;
use lapin::options::BasicCancelOptions;
use lapin::{Channel, Consumer};

use crate::timeout::with_timeout;
use crate::{BrokerError, Delivery, Lane};

/// A consumer with the channel it lives on (dropping the channel would end it).
#[derive(Debug)]
pub struct LaneConsumer {
    consumer: Consumer,
    channel: Channel,
    lane: Lane,
}

impl LaneConsumer {
    pub(crate) fn new(consumer: Consumer, channel: Channel, lane: Lane) -> Self {
        Self {
            consumer,
            channel,
            lane,
        }
    }

    /// The next delivery. `Err` when the consumer failed or the broker cancelled it: the
    /// connection must be opened again.
    pub async fn next(&mut self) -> Result<Delivery, BrokerError> {
        match self.consumer.next().await {
            Some(Ok(delivery)) => Ok(Delivery::new(delivery)),
            Some(Err(source)) => Err(BrokerError::Operation {
                op: "consume",
                source,
            }),
            None => Err(BrokerError::ConsumerCancelled {
                lane: self.lane.key(),
            }),
        }
    }

    /// Stops receiving: deliveries prefetched but not yet taken return to the queue, and
    /// those taken can still be settled (their channel stays open). Best effort, bounded
    /// by a timeout.
    pub async fn cancel(&self) {
        let tag = self.consumer.tag();
        let cancel = self
            .channel
            .basic_cancel(tag, BasicCancelOptions::default());
        let _ = with_timeout("basic.cancel", cancel).await;
    }

    /// Whether its channel is still open (the broker closes it, for example, when a
    /// delivery stays unacknowledged past `consumer_timeout`).
    pub fn is_open(&self) -> bool {
        self.channel.status().connected()
    }
}
