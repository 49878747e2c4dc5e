//! The worker's families: messages by lane, runs triggered and ended, waits, re-issues,
//! the broker connection.

use std::time::Duration;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::buckets::{HistogramFamily, run_buckets, wait_buckets};
use crate::families;
use crate::labels::{self, bounded_token};

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
    triggers_woken: Counter,
    pub broker_reconnects: Counter,
    pub broker_connected: Gauge,
}

impl WorkerMetrics {
    pub(crate) fn new() -> Self {
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
            triggers_woken: Counter::default(),
            broker_reconnects: Counter::default(),
            broker_connected: Gauge::default(),
        }
    }

    pub(crate) fn register(&self, r: &mut Registry) {
        families::register(
            r,
            [
                families::plain(
                    "backfill_messages_consumed",
                    "Messages received from a lane",
                    self.consumed.clone(),
                ),
                families::plain(
                    "backfill_messages_acked",
                    "Messages acknowledged after their follow-ups were confirmed",
                    self.acked.clone(),
                ),
                families::plain(
                    "backfill_messages_requeued",
                    "Messages returned to their queue unsettled (publishing failed)",
                    self.requeued.clone(),
                ),
                families::plain(
                    "backfill_messages_delayed",
                    "Messages sent round the delay tiers, by reason",
                    self.delayed.clone(),
                ),
                families::plain(
                    "backfill_messages_dead_lettered",
                    "Messages published to the dead-letter queue, by reason",
                    self.dead_lettered.clone(),
                ),
                families::plain(
                    "backfill_runs_triggered",
                    "Databricks runs started (or found by their idempotency token)",
                    self.triggered.clone(),
                ),
                families::plain(
                    "backfill_run_outcomes",
                    "Terminal runs by result, failure class and termination type and code",
                    self.outcomes.clone(),
                ),
                families::seconds(
                    "backfill_run_duration",
                    "Length of finished runs as Databricks reports it (start to end)",
                    self.run_duration.clone(),
                ),
                families::seconds(
                    "backfill_run_queue_wait",
                    "Time finished runs spent queued at Databricks before starting",
                    self.run_queue_wait.clone(),
                ),
                families::seconds(
                    "backfill_message_queue_wait",
                    "Time from a message becoming due to a worker taking it",
                    self.message_wait.clone(),
                ),
                families::plain(
                    "backfill_checks_reissued",
                    "Overdue checks re-issued by the sweep (their message was lost)",
                    self.checks_reissued.clone(),
                ),
                families::plain(
                    "backfill_triggers_reissued",
                    "Overdue triggers of waiting partitions re-issued by the sweep (the broker lost them)",
                    self.triggers_reissued.clone(),
                ),
                families::plain(
                    "backfill_triggers_woken",
                    "Triggers waiting at the concurrency cap handed a slot the moment a run freed it",
                    self.triggers_woken.clone(),
                ),
                families::plain(
                    "backfill_broker_reconnects",
                    "Connections to the broker re-established after a loss",
                    self.broker_reconnects.clone(),
                ),
                families::plain(
                    "backfill_broker_connected",
                    "1 while this process holds a working broker connection",
                    self.broker_connected.clone(),
                ),
            ],
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

    pub fn trigger_woken(&self) {
        self.triggers_woken.inc();
    }
}
