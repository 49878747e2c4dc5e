//! Queue depths and consumers, read from the broker.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::families;
use crate::labels;

/// Queue depths and consumers as the broker reports them.
#[derive(Debug, Default)]
pub struct QueueGauges {
    messages: Family<labels::Queue, Gauge>,
    consumers: Family<labels::Queue, Gauge>,
}

impl QueueGauges {
    pub(crate) fn register(&self, r: &mut Registry) {
        families::register(
            r,
            [
                families::plain(
                    "backfill_queue_messages",
                    "Messages ready in a queue, as the broker reports (trigger, check, dlq)",
                    self.messages.clone(),
                ),
                families::plain(
                    "backfill_queue_consumers",
                    "Consumers attached to a queue, as the broker reports",
                    self.consumers.clone(),
                ),
            ],
        );
    }

    pub fn set(&self, queue: &'static str, messages: u32, consumers: u32) {
        self.messages
            .get_or_create(&labels::Queue { queue })
            .set(i64::from(messages));
        self.consumers
            .get_or_create(&labels::Queue { queue })
            .set(i64::from(consumers));
    }
}
