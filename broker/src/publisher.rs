//! Confirmed, mandatory publishing: a message counts as sent only when the broker has
//! stored it; a nack or an unroutable return is an error, never ignored.

use std::time::Duration;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Channel, Confirmation, Connection};

use crate::timeout::with_timeout;
use crate::{BrokerError, Headers, Lane, SENT_MS_HEADER, Topology};

/// Where a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Destination {
    /// Straight onto a lane's work queue.
    Lane(Lane),
    /// Onto a lane after (about) this long: the delay tier [`Topology::tier_for`] picks.
    Delayed(Lane, Duration),
    /// Into the dead-letter queue.
    DeadLetter,
}

/// A confirm-mode channel shared by every task of a process; cheap to clone.
#[derive(Clone)]
pub struct Publisher {
    channel: Channel,
    topology: Topology,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("namespace", &self.topology.namespace())
            .finish()
    }
}

impl Publisher {
    pub(crate) async fn open(
        connection: &Connection,
        topology: Topology,
    ) -> Result<Self, BrokerError> {
        let channel = with_timeout("channel.open", connection.create_channel())
            .await?
            .map_err(BrokerError::op("channel.open"))?;
        with_timeout(
            "confirm.select",
            channel.confirm_select(ConfirmSelectOptions::default()),
        )
        .await?
        .map_err(BrokerError::op("confirm.select"))?;
        Ok(Self { channel, topology })
    }

    /// The namespace this publisher sends into.
    pub fn namespace(&self) -> &str {
        self.topology.namespace()
    }

    /// The shortest delay the broker can keep a message for: a shorter wait is rounded
    /// up to it, so a receiver waits that out itself.
    pub fn shortest_delay(&self) -> Duration {
        self.topology.delay_tiers()[0]
    }

    /// The exchange and routing key a destination maps to.
    pub fn route(&self, destination: Destination) -> (String, String) {
        match destination {
            Destination::Lane(lane) => (self.topology.work_exchange(), lane.key().to_owned()),
            Destination::Delayed(lane, wanted) => (
                String::new(),
                self.topology
                    .delay_queue(lane, self.topology.tier_for(wanted)),
            ),
            Destination::DeadLetter => (self.topology.dead_letter_exchange(), String::new()),
        }
    }

    /// Publishes a fresh trigger: to the trigger lane, stamped with the time it is sent
    /// (so its wait in the queue can be measured), and waits for the broker's confirm.
    pub async fn publish_trigger(&self, body: &[u8], message_id: &str) -> Result<(), BrokerError> {
        let headers = Headers::new().with(SENT_MS_HEADER, unix_ms());
        self.publish(Destination::Lane(Lane::Trigger), body, message_id, &headers)
            .await
    }

    /// Publishes a persistent JSON message and waits for the broker's confirm.
    pub async fn publish(
        &self,
        destination: Destination,
        body: &[u8],
        message_id: &str,
        headers: &Headers,
    ) -> Result<(), BrokerError> {
        let (exchange, routing_key) = self.route(destination);
        let described = if exchange.is_empty() {
            routing_key.clone()
        } else {
            format!("{exchange}/{routing_key}")
        };
        let properties = BasicProperties::default()
            .with_delivery_mode(2)
            .with_content_type("application/json".into())
            .with_message_id(message_id.into())
            .with_headers(headers.to_field_table());
        let confirm = with_timeout(
            "basic.publish",
            self.channel.basic_publish(
                exchange.as_str().into(),
                routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                body,
                properties,
            ),
        )
        .await?
        .map_err(BrokerError::op("basic.publish"))?;
        let confirmation = with_timeout("publisher confirm", confirm)
            .await?
            .map_err(BrokerError::op("publisher confirm"))?;
        match confirmation {
            Confirmation::Ack(None) => Ok(()),
            Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned))
                if returned.reply_code != 0 =>
            {
                Err(BrokerError::Returned {
                    destination: described,
                    reply: format!("{} {}", returned.reply_code, returned.reply_text),
                })
            }
            Confirmation::Ack(Some(_)) => Err(BrokerError::Returned {
                destination: described,
                reply: "returned".into(),
            }),
            Confirmation::Nack(_) => Err(BrokerError::Nacked {
                destination: described,
            }),
            Confirmation::NotRequested => Err(BrokerError::NotConfirmed),
        }
    }
}

/// Milliseconds since the Unix epoch (the clock the fleet's ledger and messages use).
fn unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
