//! The report of one backfill: `backfill status` prints it, `--json` serializes it, and
//! the metrics collector copies it into gauges.

use backfill_contract::{BackfillId, PartitionDate};
use backfill_ledger::{Backfill, BackfillState, HoldReason, Ledger, PromotionCounts, now_ms};
use serde::{Serialize, Serializer};

use super::counts::StateCounts;
use super::hold::Hold;
use super::rates::{HOUR_MS, rates, spend_at_completion};
use crate::error::OperationError;
use crate::lookup::load_backfill;

/// Where one backfill stands (the `--json` shape of `backfill status`; the keys keep
/// this order).
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub backfill_id: BackfillId,
    pub state: BackfillState,
    pub job_id: i64,
    pub start: PartitionDate,
    pub end: PartitionDate,
    pub manifest_id: String,
    pub total: i64,
    /// Counts by partition state (every state present).
    pub states: StateCounts,
    /// Succeeded partitions proven against Databricks by the reconciler.
    pub verified: i64,
    /// Attempts beyond the first, summed over partitions.
    pub retries: i64,
    /// Hours of runs over every attempt (Databricks' start and end times; cancelled runs
    /// and runs given up while running up to that moment, an upper bound). Never goes down.
    pub run_hours: f64,
    /// `run_hours` times the price per run-hour.
    pub spend: f64,
    /// Spend once every partition has run, at the average run length so far.
    pub projected_spend: f64,
    /// Partitions finished per hour, over the last hour.
    pub throughput_per_hour: f64,
    /// Seconds until every partition is done at that rate (none without a rate yet).
    pub eta_s: Option<i64>,
    /// Why new runs are held, when they are (or what the guards watch).
    pub guard: Option<String>,
    /// Why new runs are held, as a fixed word (`paused`, `cancelled`, `budget`,
    /// `protected_window`), for metrics and scripts; none while new runs may start.
    #[serde(serialize_with = "hold_word")]
    pub held: Option<HoldReason>,
    /// Where partitions stand towards production (promoted, proven and not yet promoted,
    /// rolled back).
    pub promotion: PromotionCounts,
}

fn hold_word<S: Serializer>(held: &Option<HoldReason>, serializer: S) -> Result<S::Ok, S::Error> {
    held.map(HoldReason::as_str).serialize(serializer)
}

/// The report of the backfill of this id; `price_per_run_hour` counts when the backfill's
/// guards record no price.
pub async fn status_report(
    ledger: &Ledger,
    backfill_id: &BackfillId,
    price_per_run_hour: f64,
) -> Result<StatusReport, OperationError> {
    let backfill = load_backfill(ledger, backfill_id).await?;
    StatusReport::of(ledger, &backfill, price_per_run_hour).await
}

impl StatusReport {
    /// The report of a backfill already read from the ledger.
    pub async fn of(
        ledger: &Ledger,
        backfill: &Backfill,
        price_per_run_hour: f64,
    ) -> Result<StatusReport, OperationError> {
        let backfill_id = &backfill.backfill_id;
        let now = now_ms();
        let summary = ledger.partition_summary(backfill_id, now - HOUR_MS).await?;
        let run_hours = summary.run_ms as f64 / HOUR_MS as f64;
        let (throughput_per_hour, eta_s) = rates(&summary, now);
        let hold = Hold::of(backfill, &summary, chrono::Utc::now());
        let promotion = ledger.promotion_counts(backfill_id).await?;
        let price = backfill
            .guards
            .price_per_run_hour
            .unwrap_or(price_per_run_hour);
        Ok(StatusReport {
            backfill_id: backfill_id.clone(),
            state: backfill.state,
            job_id: backfill.job_id,
            start: backfill.start,
            end: backfill.end,
            manifest_id: backfill.manifest_id.clone(),
            total: summary.total(),
            states: StateCounts::from(summary.states.clone()),
            verified: summary.verified,
            retries: summary.retries,
            run_hours,
            spend: run_hours * price,
            projected_spend: spend_at_completion(&summary, run_hours, price),
            throughput_per_hour,
            eta_s,
            held: hold.as_ref().and_then(|h| h.reason),
            guard: hold.map(|h| h.text),
            promotion,
        })
    }
}
