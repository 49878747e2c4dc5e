//! Backfill state as the ledger records it: partitions by state, runs, spend, guards,
//! data quality, promotion.

use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::buckets::FloatGauge;
use crate::families;
use crate::labels;

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
    /// Why new runs are held: one of [`HOLD_REASONS`].
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

/// Hold reasons, the label values of `backfill_guard_held`: the words of the ledger's
/// `HoldReason` (a test of the ledger holds them equal; this crate depends on no role or
/// ledger).
pub const HOLD_REASONS: [&str; 5] = [
    "paused",
    "cancelled",
    "budget",
    "protected_window",
    "production_running",
];

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
    pub(crate) fn register(&self, r: &mut Registry) {
        families::register(
            r,
            [
                families::plain(
                    "backfill_partitions",
                    "Partitions per backfill by ledger state",
                    self.partitions.clone(),
                ),
                families::plain(
                    "backfill_partitions_verified",
                    "Succeeded partitions proven against Databricks by the reconciler",
                    self.verified.clone(),
                ),
                families::plain(
                    "backfill_partition_retries",
                    "Attempts beyond the first, summed over a backfill's partitions",
                    self.retries.clone(),
                ),
                families::plain(
                    "backfill_active_runs",
                    "Runs triggering or running, to compare with the concurrency cap",
                    self.active_runs.clone(),
                ),
                families::plain(
                    "backfill_concurrency_cap",
                    "A backfill's concurrency cap",
                    self.cap.clone(),
                ),
                families::plain(
                    "backfill_paused",
                    "1 while an operator has paused the backfill",
                    self.paused.clone(),
                ),
                families::plain(
                    "backfill_guard_held",
                    "1 while new runs are held back, by reason (paused, cancelled, budget, protected_window, production_running)",
                    self.held.clone(),
                ),
                families::plain(
                    "backfill_spend",
                    "Spend so far (finished run-hours times the price per run-hour)",
                    self.spend.clone(),
                ),
                families::plain(
                    "backfill_projected_spend",
                    "Spend once every partition has run, at the average run length so far",
                    self.projected_spend.clone(),
                ),
                families::plain(
                    "backfill_budget",
                    "The spend budget set with `backfill guards --budget` (absent when none)",
                    self.budget.clone(),
                ),
                families::seconds(
                    "backfill_eta",
                    "Time until every partition is done at the last hour's rate (absent without a rate)",
                    self.eta.clone(),
                ),
                families::plain(
                    "backfill_dq_failing_partitions",
                    "Partitions whose latest data-quality verdict fails a rule",
                    self.dq_failing.clone(),
                ),
                families::plain(
                    "backfill_actions",
                    "Promotion waves and rollbacks by state",
                    self.actions.clone(),
                ),
                families::plain(
                    "backfill_partitions_promotion",
                    "Partitions by where their current attempt stands towards production (promoted, proven_not_promoted, rolled_back)",
                    self.promotion.clone(),
                ),
                families::plain(
                    "backfill_ledger_up",
                    "1 when the last read of the ledger succeeded",
                    self.ledger_up.clone(),
                ),
            ],
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
