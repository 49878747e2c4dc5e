//! The queues and exchanges of one fleet, all named from one namespace, and their
//! idempotent declaration.
//!
//! ```text
//!  producer ─► {ns}.work (direct) ──"trigger"──► {ns}.trigger  (quorum) ─► workers
//!                                 └─"check"────► {ns}.check    (quorum) ─► workers
//!  worker ─► {ns}.delay.{lane}.{tier} (quorum, TTL) ──expires──► {ns}.work, key = lane
//!  worker ─► {ns}.dead (fanout) ◄── delivery-limit / rejects of work queues
//!                 └──► {ns}.dlq (quorum)
//! ```
//!
//! Two lanes keep checks of running runs from queueing behind a backlog of untriggered
//! partitions. Every queue is quorum with at-least-once dead-lettering, which RabbitMQ
//! only honours together with `x-overflow=reject-publish`.

use std::time::Duration;

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::{
    Channel, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions},
};

use crate::BrokerError;

/// The fixed delay tiers of a default fleet. A wait longer than a tier is made of several.
pub const DEFAULT_DELAY_TIERS: [Duration; 6] = [
    Duration::from_secs(1),
    Duration::from_secs(5),
    Duration::from_secs(30),
    Duration::from_secs(120),
    Duration::from_secs(600),
    Duration::from_secs(3600),
];

/// A work queue. Triggers start runs; checks follow them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Trigger,
    Check,
}

impl Lane {
    pub const ALL: [Lane; 2] = [Lane::Trigger, Lane::Check];

    /// The routing key on the work exchange, and the lane's name inside queue names.
    pub fn key(self) -> &'static str {
        match self {
            Lane::Trigger => "trigger",
            Lane::Check => "check",
        }
    }
}

/// The broker layout of one fleet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topology {
    namespace: String,
    delay_tiers: Vec<Duration>,
    delivery_limit: u32,
    queue_expiry: Option<Duration>,
}

impl Topology {
    /// Crash-loop backstop: a message delivered this many times without an ack is
    /// dead-lettered by the broker. The fleet's own attempt counter does the real work.
    pub const DEFAULT_DELIVERY_LIMIT: u32 = 20;

    pub fn new(namespace: impl Into<String>) -> Result<Self, BrokerError> {
        let namespace = namespace.into();
        if namespace.is_empty()
            || namespace.len() > 100
            || !namespace
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(BrokerError::Config(format!(
                "namespace {namespace:?} must be 1 to 100 of letters, digits, '-', '_' and '.'"
            )));
        }
        Ok(Self {
            namespace,
            delay_tiers: DEFAULT_DELAY_TIERS.to_vec(),
            delivery_limit: Self::DEFAULT_DELIVERY_LIMIT,
            queue_expiry: None,
        })
    }

    /// Replaces the delay tiers (ascending, distinct, at least one, each at least 10 ms).
    pub fn with_delay_tiers(mut self, mut tiers: Vec<Duration>) -> Result<Self, BrokerError> {
        tiers.sort();
        tiers.dedup();
        if tiers.is_empty() || tiers[0] < Duration::from_millis(10) {
            return Err(BrokerError::Config(
                "delay tiers need at least one tier of 10 ms or more".into(),
            ));
        }
        self.delay_tiers = tiers;
        Ok(self)
    }

    pub fn with_delivery_limit(mut self, limit: u32) -> Self {
        self.delivery_limit = limit.max(1);
        self
    }

    /// Lets the broker delete every queue of the namespace after it has been unused this
    /// long (`x-expires`); for test and rehearsal namespaces.
    pub fn with_queue_expiry(mut self, expiry: Duration) -> Self {
        self.queue_expiry = Some(expiry);
        self
    }

    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    pub fn delay_tiers(&self) -> &[Duration] {
        &self.delay_tiers
    }

    pub fn work_exchange(&self) -> String {
        format!("{}.work", self.namespace)
    }

    pub fn dead_letter_exchange(&self) -> String {
        format!("{}.dead", self.namespace)
    }

    pub fn work_queue(&self, lane: Lane) -> String {
        format!("{}.{}", self.namespace, lane.key())
    }

    pub fn dead_letter_queue(&self) -> String {
        format!("{}.dlq", self.namespace)
    }

    pub fn delay_queue(&self, lane: Lane, tier: Duration) -> String {
        format!(
            "{}.delay.{}.{}",
            self.namespace,
            lane.key(),
            tier_label(tier)
        )
    }

    /// The tier to use for a wanted delay: the longest tier not above it (or the shortest
    /// tier). A wait longer than the longest tier is finished by the receiver re-delaying.
    pub fn tier_for(&self, wanted: Duration) -> Duration {
        self.delay_tiers
            .iter()
            .rev()
            .find(|t| **t <= wanted)
            .copied()
            .unwrap_or(self.delay_tiers[0])
    }

    /// Every queue name of the namespace.
    pub fn all_queues(&self) -> Vec<String> {
        let mut names: Vec<String> = Lane::ALL.iter().map(|l| self.work_queue(*l)).collect();
        names.push(self.dead_letter_queue());
        for lane in Lane::ALL {
            for tier in &self.delay_tiers {
                names.push(self.delay_queue(lane, *tier));
            }
        }
        names
    }

    /// Declares every exchange, queue and binding. Declaring again with the same settings
    /// changes nothing; declaring with different queue arguments is refused by the broker.
    pub async fn declare(&self, channel: &Channel) -> Result<(), BrokerError> {
        let durable = ExchangeDeclareOptions {
            durable: true,
            ..Default::default()
        };
        channel
            .exchange_declare(
                self.work_exchange().into(),
                ExchangeKind::Direct,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(BrokerError::op("exchange.declare"))?;
        channel
            .exchange_declare(
                self.dead_letter_exchange().into(),
                ExchangeKind::Fanout,
                durable,
                FieldTable::default(),
            )
            .await
            .map_err(BrokerError::op("exchange.declare"))?;

        let dlq = self.dead_letter_queue();
        self.declare_queue(channel, &dlq, self.quorum_args())
            .await?;
        self.bind(channel, &dlq, &self.dead_letter_exchange(), "")
            .await?;

        for lane in Lane::ALL {
            let queue = self.work_queue(lane);
            let mut args = self.quorum_args();
            put_str(
                &mut args,
                "x-dead-letter-exchange",
                &self.dead_letter_exchange(),
            );
            put_str(&mut args, "x-dead-letter-strategy", "at-least-once");
            put_int(
                &mut args,
                "x-delivery-limit",
                i64::from(self.delivery_limit),
            );
            self.declare_queue(channel, &queue, args).await?;
            self.bind(channel, &queue, &self.work_exchange(), lane.key())
                .await?;

            for tier in &self.delay_tiers {
                let mut args = self.quorum_args();
                put_int(&mut args, "x-message-ttl", millis(*tier));
                put_str(&mut args, "x-dead-letter-exchange", &self.work_exchange());
                put_str(&mut args, "x-dead-letter-routing-key", lane.key());
                put_str(&mut args, "x-dead-letter-strategy", "at-least-once");
                self.declare_queue(channel, &self.delay_queue(lane, *tier), args)
                    .await?;
            }
        }
        Ok(())
    }

    /// Deletes every queue and exchange of the namespace (tests and rehearsals).
    pub async fn delete(&self, channel: &Channel) -> Result<(), BrokerError> {
        for queue in self.all_queues() {
            channel
                .queue_delete(queue.into(), QueueDeleteOptions::default())
                .await
                .map_err(BrokerError::op("queue.delete"))?;
        }
        for exchange in [self.work_exchange(), self.dead_letter_exchange()] {
            channel
                .exchange_delete(exchange.into(), Default::default())
                .await
                .map_err(BrokerError::op("exchange.delete"))?;
        }
        Ok(())
    }

    fn quorum_args(&self) -> FieldTable {
        let mut args = FieldTable::default();
        put_str(&mut args, "x-queue-type", "quorum");
        put_str(&mut args, "x-overflow", "reject-publish");
        if let Some(expiry) = self.queue_expiry {
            put_int(&mut args, "x-expires", millis(expiry));
        }
        args
    }

    async fn declare_queue(
        &self,
        channel: &Channel,
        name: &str,
        args: FieldTable,
    ) -> Result<(), BrokerError> {
        channel
            .queue_declare(name.into(), QueueDeclareOptions::durable(), args)
            .await
            .map_err(BrokerError::op("queue.declare"))?;
        Ok(())
    }

    async fn bind(
        &self,
        channel: &Channel,
        queue: &str,
        exchange: &str,
        key: &str,
    ) -> Result<(), BrokerError> {
        channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                key.into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .map_err(BrokerError::op("queue.bind"))
    }
}

fn put_str(args: &mut FieldTable, key: &str, value: &str) {
    args.insert(
        ShortString::from(key),
        AMQPValue::LongString(LongString::from(value)),
    );
}

fn put_int(args: &mut FieldTable, key: &str, value: i64) {
    args.insert(ShortString::from(key), AMQPValue::LongLongInt(value));
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

/// `1s`, `30s`, `2m`, `1h`, or `250ms` for tiers that are not whole seconds.
fn tier_label(d: Duration) -> String {
    let ms = d.as_millis();
    if ms.is_multiple_of(3_600_000) {
        format!("{}h", ms / 3_600_000)
    } else if ms.is_multiple_of(60_000) {
        format!("{}m", ms / 60_000)
    } else if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        format!("{ms}ms")
    }
}

/// Parses `250ms`, `5s`, `2m`, `1h` (the forms tier labels use).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{text:?} has no unit (use ms, s, m or h)"))?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a whole number"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        "h" => Ok(Duration::from_secs(n * 3600)),
        _ => Err(format!(
            "{text:?} has unknown unit {unit:?} (use ms, s, m or h)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_derive_from_the_namespace() {
        let t = Topology::new("bf-test").unwrap();
        assert_eq!(t.work_queue(Lane::Trigger), "bf-test.trigger");
        assert_eq!(t.work_queue(Lane::Check), "bf-test.check");
        assert_eq!(t.dead_letter_queue(), "bf-test.dlq");
        assert_eq!(
            t.delay_queue(Lane::Check, Duration::from_secs(120)),
            "bf-test.delay.check.2m"
        );
        assert_eq!(
            t.delay_queue(Lane::Trigger, Duration::from_millis(250)),
            "bf-test.delay.trigger.250ms"
        );
        assert!(t.all_queues().iter().all(|q| q.starts_with("bf-test.")));
        assert!(Topology::new("bad name").is_err());
    }

    #[test]
    fn tier_for_picks_the_longest_tier_not_above_the_wish() {
        let t = Topology::new("x").unwrap();
        assert_eq!(t.tier_for(Duration::ZERO), Duration::from_secs(1));
        assert_eq!(t.tier_for(Duration::from_secs(29)), Duration::from_secs(5));
        assert_eq!(t.tier_for(Duration::from_secs(30)), Duration::from_secs(30));
        assert_eq!(
            t.tier_for(Duration::from_secs(86_400)),
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn durations_parse_in_tier_units() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5d").is_err());
        assert!(parse_duration("xs").is_err());
    }
}
