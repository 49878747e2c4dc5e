//! The simulator's families: the calls it answered, the faults it injected, its runs.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::families;
use crate::labels;

/// The simulator's totals, handed to [`SimMetrics::record`].
#[derive(Debug, Clone, Default)]
pub struct SimSnapshot {
    /// Calls per endpoint (`jobs/run-now`, ...).
    pub calls: Vec<(String, u64)>,
    pub throttled: u64,
    pub faults: u64,
    pub runs_started: u64,
    pub runs_active: i64,
}

/// The simulator's view: what it served and injected.
#[derive(Debug, Default)]
pub struct SimMetrics {
    calls: Family<labels::EndpointName, Counter>,
    throttled: Counter,
    faults: Counter,
    runs_started: Counter,
    runs_active: Gauge,
}

/// Raises a counter to a total kept elsewhere (counters only go up).
fn raise_to(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}

impl SimMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        families::register(
            r,
            [
                families::plain(
                    "backfill_sim_calls",
                    "Calls the simulator answered, by endpoint",
                    self.calls.clone(),
                ),
                families::plain(
                    "backfill_sim_throttled",
                    "Calls the simulator answered 429 (rate limits and throttle faults)",
                    self.throttled.clone(),
                ),
                families::plain(
                    "backfill_sim_faults_injected",
                    "Faults the simulator injected (errors, lost answers, delays)",
                    self.faults.clone(),
                ),
                families::plain(
                    "backfill_sim_runs_started",
                    "Runs the simulator created",
                    self.runs_started.clone(),
                ),
                families::plain(
                    "backfill_sim_runs_active",
                    "Runs pending, queued or running in the simulator",
                    self.runs_active.clone(),
                ),
            ],
        );
    }

    pub fn record(&self, s: &SimSnapshot) {
        for (endpoint, total) in &s.calls {
            // Only the API's own paths: a stray client cannot add label values.
            if endpoint.starts_with("jobs/") && endpoint.len() <= 40 {
                let c = self.calls.get_or_create(&labels::EndpointName {
                    endpoint: endpoint.clone(),
                });
                raise_to(&c, *total);
            }
        }
        raise_to(&self.throttled, s.throttled);
        raise_to(&self.faults, s.faults);
        raise_to(&self.runs_started, s.runs_started);
        self.runs_active.set(s.runs_active);
    }
}
