//! Prometheus metrics, liveness and readiness for every long-running process (worker,
//! reconciler service, simulator, demo), served on `--metrics-addr`.
//!
//! One [`Metrics`] per process, shared as `Arc<Metrics>`. Every family is always present
//! in memory so code records without checking; only the groups a process declares are
//! registered, so a worker's `/metrics` carries no simulator families and the other way
//! round. Labels are bounded by construction: lanes, endpoints, states, reasons and codes
//! from fixed lists, backfill ids and DQ rule names (a handful per deployment); never
//! partition dates or run ids.

mod api;
mod buckets;
mod exposition;
mod families;
mod fleet;
mod health;
mod labels;
mod process;
mod queues;
mod reconcile;
mod server;
mod sim;
mod worker;

pub use api::ApiMetrics;
pub use fleet::{BackfillSnapshot, FleetGauges, HOLD_REASONS};
pub use health::Health;
pub use labels::status_code_label;
pub use process::{Group, Metrics};
pub use queues::QueueGauges;
pub use reconcile::ReconcileMetrics;
pub use server::{MetricsServer, serve};
pub use sim::{SimMetrics, SimSnapshot};
pub use worker::WorkerMetrics;
