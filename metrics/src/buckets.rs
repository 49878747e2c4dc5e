//! The histograms' buckets and the metric types the families share.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;

/// A gauge holding a float.
pub(crate) type FloatGauge = Gauge<f64, AtomicU64>;
/// Histograms by label, each with the buckets its constructor gives.
pub(crate) type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Durations of Databricks runs: seconds to a working day.
pub(crate) fn run_buckets() -> Histogram {
    Histogram::new([
        1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
        28800.0,
    ])
}

/// Waits of messages and requests: milliseconds to minutes.
pub(crate) fn wait_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ])
}
