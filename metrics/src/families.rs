//! Registering a group's families from one table: each row names a family, gives its help
//! text and, for times, its unit. The groups (`api`, `worker`, `fleet`, ...) list their
//! rows instead of spelling out one `register` call a family.

use prometheus_client::encoding::{EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Metric, Registry, Unit};

/// One row of a group's table.
pub(crate) struct Row {
    name: &'static str,
    help: &'static str,
    unit: Option<Unit>,
    metric: AnyMetric,
}

/// A family without a unit.
pub(crate) fn plain(name: &'static str, help: &'static str, metric: impl Metric) -> Row {
    Row {
        name,
        help,
        unit: None,
        metric: AnyMetric(Box::new(metric)),
    }
}

/// A family counted in seconds.
pub(crate) fn seconds(name: &'static str, help: &'static str, metric: impl Metric) -> Row {
    Row {
        unit: Some(Unit::Seconds),
        ..plain(name, help, metric)
    }
}

/// Registers every row, in order.
pub(crate) fn register(r: &mut Registry, rows: impl IntoIterator<Item = Row>) {
    for row in rows {
        match row.unit {
            Some(unit) => r.register_with_unit(row.name, row.help, unit, row.metric),
            None => r.register(row.name, row.help, row.metric),
        }
    }
}

/// Any family or metric, encoded as itself: lets rows of different types share a table.
#[derive(Debug)]
struct AnyMetric(Box<dyn Metric>);

impl EncodeMetric for AnyMetric {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}
