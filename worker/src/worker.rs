//! Building a worker: its connections to the ledger and Databricks, its share of the
//! fleet's API budget, its metrics, and what it remembers between messages.

use std::sync::Arc;
use std::time::Duration;

use backfill_databricks::DatabricksClient;
use backfill_ledger::Ledger;
use backfill_metrics::Metrics;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use crate::cached_reads::CachedReads;
use crate::freshness::ProductionWatch;
use crate::{ApiBudget, FleetBudget, StepError, WorkerConfig};

/// A worker's shared state: its connections to the ledger and Databricks, and caches it
/// can lose at any time.
#[derive(Debug)]
pub struct Worker {
    pub(crate) config: WorkerConfig,
    pub(crate) ledger: Ledger,
    pub(crate) client: DatabricksClient,
    /// Ledger reads remembered for a while (immutable backfill fields, guards, run
    /// lengths, backlogs).
    pub(crate) cached: CachedReads,
    /// This worker's share of the fleet's API budget (also the client's gate).
    budget: Option<Arc<FleetBudget>>,
    /// Whether production jobs have active runs, remembered for a few seconds.
    pub(crate) production: ProductionWatch,
    pub(crate) metrics: Arc<Metrics>,
    /// This worker's ledger id (read once): messages stamped with another are not ours.
    ledger_id: OnceCell<String>,
    /// Cancelled when a message shows this worker belongs to another fleet: it stops
    /// taking work and reports itself not ready until restarted with other settings.
    pub(crate) misconfigured: CancellationToken,
}

impl Worker {
    pub fn new(config: WorkerConfig, ledger: Ledger, client: DatabricksClient) -> Self {
        Self {
            config,
            ledger,
            client,
            cached: CachedReads::default(),
            budget: None,
            production: ProductionWatch::default(),
            metrics: Arc::new(Metrics::unregistered()),
            ledger_id: OnceCell::new(),
            misconfigured: CancellationToken::new(),
        }
    }

    /// Shares the fleet's API budget: the client's calls pass through it, and the worker
    /// loop keeps it informed (heartbeats, fleet-wide pauses).
    pub fn with_budget(mut self, budget: ApiBudget) -> Self {
        let gate = FleetBudget::new(
            self.ledger.clone(),
            &self.config.worker_id,
            budget,
            Duration::from_secs(1),
        );
        gate.set_max_pause(self.client.max_retry_after());
        self.client = self.client.clone().with_gate(gate.clone());
        self.budget = Some(gate);
        self
    }

    /// Records into `metrics` (the client's requests too).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.client = self.client.clone().with_metrics(metrics.api.clone());
        self.metrics = metrics;
        self
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    pub fn budget(&self) -> Option<&Arc<FleetBudget>> {
        self.budget.as_ref()
    }

    pub fn id(&self) -> &str {
        &self.config.worker_id
    }

    /// The id of this worker's ledger, stamped into what it sends.
    pub async fn ledger_id(&self) -> Result<String, StepError> {
        let id = self
            .ledger_id
            .get_or_try_init(|| self.ledger.ledger_id())
            .await?;
        Ok(id.clone())
    }
}
