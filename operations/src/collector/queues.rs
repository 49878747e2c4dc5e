//! Queue depths and consumers, read from the broker by passive declares.

use backfill_broker::{Broker, Lane};
use backfill_metrics::Metrics;

use crate::broker_source::BrokerSource;

/// Reads the trigger, check and dead-letter queues into `metrics`, connecting (or
/// reconnecting) `connection` as needed; a failure leaves the gauges as they were.
pub async fn collect_queues(
    metrics: &Metrics,
    source: &BrokerSource,
    connection: &mut Option<Broker>,
) {
    if connection.as_ref().is_none_or(|b| !b.is_connected()) {
        *connection =
            match Broker::connect_once(&source.url, &source.topology, "backfill metrics").await {
                Ok(b) => Some(b),
                Err(e) => {
                    tracing::debug!(error = %e, "metrics: broker unavailable for queue depths");
                    return;
                }
            };
    }
    let Some(broker) = connection.as_ref() else {
        return;
    };
    let queues = [
        ("trigger", source.topology.work_queue(Lane::Trigger)),
        ("check", source.topology.work_queue(Lane::Check)),
        ("dlq", source.topology.dead_letter_queue()),
    ];
    for (label, name) in queues {
        match broker.queue_stats(&name).await {
            Ok((messages, consumers)) => metrics.queues.set(label, messages, consumers),
            Err(e) => {
                tracing::debug!(queue = name, error = %e, "metrics: cannot read a queue depth");
                *connection = None;
                return;
            }
        }
    }
}
