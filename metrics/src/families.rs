//! The metric families, grouped by the process role that records them.

use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

use crate::Health;
use crate::labels::{self, bounded_token};

type FloatGauge = Gauge<f64, AtomicU64>;
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// Durations of Databricks runs: seconds to a working day.
fn run_buckets() -> Histogram {
    Histogram::new([
        1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0, 3600.0, 7200.0, 14400.0,
        28800.0,
    ])
}

/// Waits of messages and requests: milliseconds to minutes.
fn wait_buckets() -> Histogram {
    Histogram::new([
        0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
    ])
}

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

/// What the worker does with messages and runs.
#[derive(Debug)]
pub struct WorkerMetrics {
    consumed: Family<labels::Lane, Counter>,
    acked: Family<labels::Lane, Counter>,
    requeued: Family<labels::Lane, Counter>,
    delayed: Family<labels::LaneReason, Counter>,
    dead_lettered: Family<labels::LaneReason, Counter>,
    triggered: Family<labels::Backfill, Counter>,
    outcomes: Family<labels::RunOutcome, Counter>,
    run_duration: Histogram,
    run_queue_wait: Histogram,
    message_wait: HistogramFamily<labels::Lane>,
    checks_reissued: Counter,
    triggers_reissued: Counter,
    pub broker_reconnects: Counter,
    pub broker_connected: Gauge,
}

impl WorkerMetrics {
    fn new() -> Self {
        Self {
            consumed: Family::default(),
            acked: Family::default(),
            requeued: Family::default(),
            delayed: Family::default(),
            dead_lettered: Family::default(),
            triggered: Family::default(),
            outcomes: Family::default(),
            run_duration: run_buckets(),
            run_queue_wait: run_buckets(),
            message_wait: Family::new_with_constructor(wait_buckets),
            checks_reissued: Counter::default(),
            triggers_reissued: Counter::default(),
            broker_reconnects: Counter::default(),
            broker_connected: Gauge::default(),
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "backfill_messages_consumed",
            "Messages received from a lane",
            self.consumed.clone(),
        );
        r.register(
            "backfill_messages_acked",
            "Messages acknowledged after their follow-ups were confirmed",
            self.acked.clone(),
        );
        r.register(
            "backfill_messages_requeued",
            "Messages returned to their queue unsettled (publishing failed)",
            self.requeued.clone(),
        );
        r.register(
            "backfill_messages_delayed",
            "Messages sent round the delay tiers, by reason",
            self.delayed.clone(),
        );
        r.register(
            "backfill_messages_dead_lettered",
            "Messages published to the dead-letter queue, by reason",
            self.dead_lettered.clone(),
        );
        r.register(
            "backfill_runs_triggered",
            "Databricks runs started (or found by their idempotency token)",
            self.triggered.clone(),
        );
        r.register(
            "backfill_run_outcomes",
            "Terminal runs by result, failure class and termination type and code",
            self.outcomes.clone(),
        );
        r.register_with_unit(
            "backfill_run_duration",
            "Length of finished runs as Databricks reports it (start to end)",
            Unit::Seconds,
            self.run_duration.clone(),
        );
        r.register_with_unit(
            "backfill_run_queue_wait",
            "Time finished runs spent queued at Databricks before starting",
            Unit::Seconds,
            self.run_queue_wait.clone(),
        );
        r.register_with_unit(
            "backfill_message_queue_wait",
            "Time from a message becoming due to a worker taking it",
            Unit::Seconds,
            self.message_wait.clone(),
        );
        r.register(
            "backfill_checks_reissued",
            "Overdue checks re-issued by the sweep (their message was lost)",
            self.checks_reissued.clone(),
        );
        r.register(
            "backfill_triggers_reissued",
            "Overdue triggers of waiting partitions re-issued by the sweep (the broker lost them)",
            self.triggers_reissued.clone(),
        );
        r.register(
            "backfill_broker_reconnects",
            "Connections to the broker re-established after a loss",
            self.broker_reconnects.clone(),
        );
        r.register(
            "backfill_broker_connected",
            "1 while this process holds a working broker connection",
            self.broker_connected.clone(),
        );
    }

    pub fn consumed(&self, lane: &'static str) {
        self.consumed.get_or_create(&labels::Lane { lane }).inc();
    }

    pub fn acked(&self, lane: &'static str) {
        self.acked.get_or_create(&labels::Lane { lane }).inc();
    }

    pub fn requeued(&self, lane: &'static str) {
        self.requeued.get_or_create(&labels::Lane { lane }).inc();
    }

    pub fn delayed(&self, lane: &'static str, reason: &'static str) {
        self.delayed
            .get_or_create(&labels::LaneReason { lane, reason })
            .inc();
    }

    pub fn dead_lettered(&self, lane: &'static str, reason: &'static str) {
        self.dead_lettered
            .get_or_create(&labels::LaneReason { lane, reason })
            .inc();
    }

    pub fn triggered(&self, backfill: &str) {
        self.triggered
            .get_or_create(&labels::Backfill {
                backfill: backfill.to_owned(),
            })
            .inc();
    }

    /// A run ended: `result` is `succeeded`, `retried` or `dead_lettered`.
    pub fn run_outcome(
        &self,
        result: &'static str,
        class: &'static str,
        termination_type: &str,
        termination_code: &str,
    ) {
        self.outcomes
            .get_or_create(&labels::RunOutcome {
                result,
                class,
                termination_type: bounded_token(termination_type),
                termination_code: bounded_token(termination_code),
            })
            .inc();
    }

    pub fn run_times(&self, duration: Option<Duration>, queued: Option<Duration>) {
        if let Some(d) = duration {
            self.run_duration.observe(d.as_secs_f64());
        }
        if let Some(q) = queued {
            self.run_queue_wait.observe(q.as_secs_f64());
        }
    }

    pub fn message_wait(&self, lane: &'static str, wait: Duration) {
        self.message_wait
            .get_or_create(&labels::Lane { lane })
            .observe(wait.as_secs_f64());
    }

    pub fn checks_reissued(&self, n: u64) {
        self.checks_reissued.inc_by(n);
    }

    pub fn triggers_reissued(&self, n: u64) {
        self.triggers_reissued.inc_by(n);
    }
}

/// Calls to the Databricks API, per endpoint.
#[derive(Debug)]
pub struct ApiMetrics {
    requests: Family<labels::EndpointCode, Counter>,
    retries: Family<labels::Endpoint, Counter>,
    throttled: Family<labels::Endpoint, Counter>,
    latency: HistogramFamily<labels::Endpoint>,
}

impl ApiMetrics {
    fn new() -> Self {
        Self {
            requests: Family::default(),
            retries: Family::default(),
            throttled: Family::default(),
            latency: Family::new_with_constructor(wait_buckets),
        }
    }

    fn register(&self, r: &mut Registry) {
        r.register(
            "backfill_databricks_requests",
            "HTTP requests to the Jobs API by endpoint and answer (code, timeout, transport)",
            self.requests.clone(),
        );
        r.register(
            "backfill_databricks_request_retries",
            "Requests retried in process after a retryable failure",
            self.retries.clone(),
        );
        r.register(
            "backfill_databricks_throttled",
            "Answers that throttled us (429, or 503 with Retry-After)",
            self.throttled.clone(),
        );
        r.register_with_unit(
            "backfill_databricks_request_duration",
            "Latency of Jobs API requests, answer included",
            Unit::Seconds,
            self.latency.clone(),
        );
    }

    /// One request ended with `code` (an HTTP status label, `timeout` or `transport`).
    pub fn request(&self, endpoint: &'static str, code: &'static str, latency: Duration) {
        self.requests
            .get_or_create(&labels::EndpointCode { endpoint, code })
            .inc();
        self.latency
            .get_or_create(&labels::Endpoint { endpoint })
            .observe(latency.as_secs_f64());
    }

    pub fn retry(&self, endpoint: &'static str) {
        self.retries
            .get_or_create(&labels::Endpoint { endpoint })
            .inc();
    }

    pub fn throttled(&self, endpoint: &'static str) {
        self.throttled
            .get_or_create(&labels::Endpoint { endpoint })
            .inc();
    }
}

/// One backfill as the ledger shows it, handed to [`FleetGauges::record`].
#[derive(Debug, Clone, Default)]
pub struct BackfillSnapshot {
    pub backfill: String,
    /// Count per partition state, every state present.
    pub states: Vec<(&'static str, i64)>,
    pub verified: i64,
    pub retries: i64,
    pub active_runs: i64,
    pub cap: i64,
    pub paused: bool,
    /// Why new runs are held: `paused`, `cancelled`, `budget`, `protected_window`.
    pub held: Option<&'static str>,
    pub spend: f64,
    pub projected_spend: f64,
    pub budget: Option<f64>,
    pub eta_s: Option<i64>,
    /// Partitions failing each DQ rule (latest verdict).
    pub dq_failing: Vec<(String, i64)>,
    /// Actions by (`promotion` | `rollback`, state).
    pub actions: Vec<(&'static str, &'static str, i64)>,
    /// Partitions by where their current attempt stands towards production:
    /// `promoted`, `proven_not_promoted`, `rolled_back`.
    pub promotion: Vec<(&'static str, i64)>,
}

/// Hold reasons, the label values of `backfill_guard_held`.
pub const HOLD_REASONS: [&str; 4] = ["paused", "cancelled", "budget", "protected_window"];

/// Backfill state as the ledger records it, refreshed every few seconds. Gauges, so every
/// process that reads the ledger reports the same value (dashboards take `max`).
#[derive(Debug, Default)]
pub struct FleetGauges {
    partitions: Family<labels::BackfillState, Gauge>,
    verified: Family<labels::Backfill, Gauge>,
    retries: Family<labels::Backfill, Gauge>,
    active_runs: Family<labels::Backfill, Gauge>,
    cap: Family<labels::Backfill, Gauge>,
    paused: Family<labels::Backfill, Gauge>,
    held: Family<labels::BackfillReason, Gauge>,
    spend: Family<labels::Backfill, FloatGauge>,
    projected_spend: Family<labels::Backfill, FloatGauge>,
    budget: Family<labels::Backfill, FloatGauge>,
    eta: Family<labels::Backfill, Gauge>,
    dq_failing: Family<labels::BackfillRule, Gauge>,
    actions: Family<labels::BackfillKindState, Gauge>,
    promotion: Family<labels::BackfillState, Gauge>,
    ledger_up: Gauge,
}

impl FleetGauges {
    fn register(&self, r: &mut Registry) {
        r.register(
            "backfill_partitions",
            "Partitions per backfill by ledger state",
            self.partitions.clone(),
        );
        r.register(
            "backfill_partitions_verified",
            "Succeeded partitions proven against Databricks by the reconciler",
            self.verified.clone(),
        );
        r.register(
            "backfill_partition_retries",
            "Attempts beyond the first, summed over a backfill's partitions",
            self.retries.clone(),
        );
        r.register(
            "backfill_active_runs",
            "Runs triggering or running, to compare with the concurrency cap",
            self.active_runs.clone(),
        );
        r.register(
            "backfill_concurrency_cap",
            "A backfill's concurrency cap",
            self.cap.clone(),
        );
        r.register(
            "backfill_paused",
            "1 while an operator has paused the backfill",
            self.paused.clone(),
        );
        r.register(
            "backfill_guard_held",
            "1 while new runs are held back, by reason (paused, cancelled, budget, protected_window)",
            self.held.clone(),
        );
        r.register(
            "backfill_spend",
            "Spend so far (finished run-hours times the price per run-hour)",
            self.spend.clone(),
        );
        r.register(
            "backfill_projected_spend",
            "Spend once every partition has run, at the average run length so far",
            self.projected_spend.clone(),
        );
        r.register(
            "backfill_budget",
            "The spend budget set with `backfill guards --budget` (absent when none)",
            self.budget.clone(),
        );
        r.register_with_unit(
            "backfill_eta",
            "Time until every partition is done at the last hour's rate (absent without a rate)",
            Unit::Seconds,
            self.eta.clone(),
        );
        r.register(
            "backfill_dq_failing_partitions",
            "Partitions whose latest data-quality verdict fails a rule",
            self.dq_failing.clone(),
        );
        r.register(
            "backfill_actions",
            "Promotion waves and rollbacks by state",
            self.actions.clone(),
        );
        r.register(
            "backfill_partitions_promotion",
            "Partitions by where their current attempt stands towards production (promoted, proven_not_promoted, rolled_back)",
            self.promotion.clone(),
        );
        r.register(
            "backfill_ledger_up",
            "1 when the last read of the ledger succeeded",
            self.ledger_up.clone(),
        );
    }

    pub fn ledger_up(&self, up: bool) {
        self.ledger_up.set(i64::from(up));
    }

    /// Replaces everything known about one backfill.
    pub fn record(&self, s: &BackfillSnapshot) {
        let b = || labels::Backfill {
            backfill: s.backfill.clone(),
        };
        for (state, n) in &s.states {
            self.partitions
                .get_or_create(&labels::BackfillState {
                    backfill: s.backfill.clone(),
                    state,
                })
                .set(*n);
        }
        self.verified.get_or_create(&b()).set(s.verified);
        self.retries.get_or_create(&b()).set(s.retries);
        self.active_runs.get_or_create(&b()).set(s.active_runs);
        self.cap.get_or_create(&b()).set(s.cap);
        self.paused.get_or_create(&b()).set(i64::from(s.paused));
        for reason in HOLD_REASONS {
            self.held
                .get_or_create(&labels::BackfillReason {
                    backfill: s.backfill.clone(),
                    reason,
                })
                .set(i64::from(s.held == Some(reason)));
        }
        self.spend.get_or_create(&b()).set(s.spend);
        self.projected_spend
            .get_or_create(&b())
            .set(s.projected_spend);
        match s.budget {
            Some(v) => {
                self.budget.get_or_create(&b()).set(v);
            }
            None => {
                self.budget.remove(&b());
            }
        }
        match s.eta_s {
            Some(v) => {
                self.eta.get_or_create(&b()).set(v);
            }
            None => {
                self.eta.remove(&b());
            }
        }
        for (rule, n) in &s.dq_failing {
            self.dq_failing
                .get_or_create(&labels::BackfillRule {
                    backfill: s.backfill.clone(),
                    rule: rule.clone(),
                })
                .set(*n);
        }
        for (state, n) in &s.promotion {
            self.promotion
                .get_or_create(&labels::BackfillState {
                    backfill: s.backfill.clone(),
                    state,
                })
                .set(*n);
        }
        for (kind, state, n) in &s.actions {
            self.actions
                .get_or_create(&labels::BackfillKindState {
                    backfill: s.backfill.clone(),
                    kind,
                    state,
                })
                .set(*n);
        }
    }
}

/// Queue depths and consumers as the broker reports them.
#[derive(Debug, Default)]
pub struct QueueGauges {
    messages: Family<labels::Queue, Gauge>,
    consumers: Family<labels::Queue, Gauge>,
}

impl QueueGauges {
    fn register(&self, r: &mut Registry) {
        r.register(
            "backfill_queue_messages",
            "Messages ready in a queue, as the broker reports (trigger, check, dlq)",
            self.messages.clone(),
        );
        r.register(
            "backfill_queue_consumers",
            "Consumers attached to a queue, as the broker reports",
            self.consumers.clone(),
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

/// The reconciler's passes.
#[derive(Debug, Default)]
pub struct ReconcileMetrics {
    passes: Family<labels::Result, Counter>,
    gaps: Family<labels::BackfillKind, Gauge>,
    last_success: Gauge,
}

impl ReconcileMetrics {
    fn register(&self, r: &mut Registry) {
        r.register(
            "backfill_reconcile_passes",
            "Reconciler passes by result (complete, incomplete, error)",
            self.passes.clone(),
        );
        r.register(
            "backfill_reconcile_gaps",
            "Gaps found by the last reconciler pass, by kind",
            self.gaps.clone(),
        );
        r.register_with_unit(
            "backfill_reconcile_last_success_timestamp",
            "Unix time of the last pass that read the ledger and Databricks",
            Unit::Seconds,
            self.last_success.clone(),
        );
    }

    pub fn pass(&self, result: &'static str, now_s: i64) {
        self.passes.get_or_create(&labels::Result { result }).inc();
        if result != "error" {
            self.last_success.set(now_s);
        }
    }

    /// Replaces the gap counts of `backfill` (kinds absent from `counts` become 0).
    pub fn set_gaps(&self, backfill: &str, kinds: &[&'static str], counts: &[(&'static str, i64)]) {
        for kind in kinds {
            let n = counts
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, n)| *n)
                .sum();
            self.gaps
                .get_or_create(&labels::BackfillKind {
                    backfill: backfill.to_owned(),
                    kind,
                })
                .set(n);
        }
    }
}

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
    fn register(&self, r: &mut Registry) {
        r.register(
            "backfill_sim_calls",
            "Calls the simulator answered, by endpoint",
            self.calls.clone(),
        );
        r.register(
            "backfill_sim_throttled",
            "Calls the simulator answered 429 (rate limits and throttle faults)",
            self.throttled.clone(),
        );
        r.register(
            "backfill_sim_faults_injected",
            "Faults the simulator injected (errors, lost answers, delays)",
            self.faults.clone(),
        );
        r.register(
            "backfill_sim_runs_started",
            "Runs the simulator created",
            self.runs_started.clone(),
        );
        r.register(
            "backfill_sim_runs_active",
            "Runs pending, queued or running in the simulator",
            self.runs_active.clone(),
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
