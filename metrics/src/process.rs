//! One process's metrics: every family, the groups it registers (and so exposes), its
//! registry and its health.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::labels;
use crate::{
    ApiMetrics, FleetGauges, Health, QueueGauges, ReconcileMetrics, SimMetrics, WorkerMetrics,
};

/// Which families a process registers (and so exposes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    /// Consuming, triggering and following runs.
    Worker,
    /// Calls to the Databricks API.
    Api,
    /// Backfill state read from the ledger, queue depths read from the broker.
    Fleet,
    /// Reconciler passes and gaps.
    Reconcile,
    /// The simulator's own view of the calls it served.
    Sim,
}

/// Every family of one process, its registry, and its health.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    pub worker: WorkerMetrics,
    pub api: ApiMetrics,
    pub fleet: FleetGauges,
    pub queues: QueueGauges,
    pub reconcile: ReconcileMetrics,
    pub sim: SimMetrics,
    pub health: Health,
}

impl Metrics {
    /// A process of `role` (`worker`, `reconciler`, `sim`, `demo`) exposing `groups`.
    pub fn new(role: &'static str, groups: &[Group]) -> Self {
        let metrics = Self {
            registry: Registry::default(),
            worker: WorkerMetrics::new(),
            api: ApiMetrics::new(),
            fleet: FleetGauges::default(),
            queues: QueueGauges::default(),
            reconcile: ReconcileMetrics::default(),
            sim: SimMetrics::default(),
            health: Health::default(),
        };
        let mut registry = Registry::default();
        let info: Family<labels::BuildInfo, Gauge> = Family::default();
        info.get_or_create(&labels::BuildInfo {
            version: env!("CARGO_PKG_VERSION"),
            role,
        })
        .set(1);
        registry.register(
            "backfill_build_info",
            "Version and role of this process (always 1)",
            info,
        );
        for group in groups {
            match group {
                Group::Worker => metrics.worker.register(&mut registry),
                Group::Api => metrics.api.register(&mut registry),
                Group::Fleet => {
                    metrics.fleet.register(&mut registry);
                    metrics.queues.register(&mut registry);
                }
                Group::Reconcile => metrics.reconcile.register(&mut registry),
                Group::Sim => metrics.sim.register(&mut registry),
            }
        }
        Self {
            registry,
            ..metrics
        }
    }

    /// Families registered nowhere: for library users and tests that do not serve metrics.
    pub fn unregistered() -> Self {
        Self::new("library", &[])
    }

    /// The exposition (OpenMetrics text, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}
