//! Why new runs of a backfill are held, as far as the ledger can tell (the worker also
//! watches the production job's runs at Databricks).

use backfill_ledger::{Backfill, BackfillState, HoldReason, PartitionState, PartitionSummary};
use chrono::{DateTime, Timelike, Utc};

/// What the guards say about new runs: the line `status` prints, and the reason when new
/// runs are held (none when the guards only watch, as for the production job).
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    pub reason: Option<HoldReason>,
    pub text: String,
}

impl Hold {
    /// The guards' word on `backfill` at `now`, if they have one.
    pub fn of(backfill: &Backfill, summary: &PartitionSummary, now: DateTime<Utc>) -> Option<Hold> {
        let held = |reason, text| {
            Some(Hold {
                reason: Some(reason),
                text,
            })
        };
        match backfill.state {
            BackfillState::Active => {}
            BackfillState::Paused => {
                return held(HoldReason::Paused, "new runs held: backfill paused".into());
            }
            BackfillState::Cancelled => {
                return held(
                    HoldReason::Cancelled,
                    "new runs held: backfill cancelled".into(),
                );
            }
        }
        let g = &backfill.guards;
        if let (Some(price), Some(budget)) = (g.price_per_run_hour, g.budget) {
            let projected = backfill_ledger::spend_with_next_run(
                summary.run_ms,
                summary.finished_runs,
                summary.active(),
                price,
            );
            let pending =
                summary.count(PartitionState::Pending) + summary.count(PartitionState::Failed) > 0;
            if pending && projected > budget {
                return held(
                    HoldReason::Budget,
                    format!(
                        "new runs held: budget: projected spend {projected:.2} would exceed {budget:.2}"
                    ),
                );
            }
        }
        if let Some(w) = g.open_window(now.hour() * 60 + now.minute()) {
            return held(
                HoldReason::ProtectedWindow,
                format!("new runs held: protected window {w} UTC"),
            );
        }
        g.production_job_id.map(|job| Hold {
            reason: None,
            text: format!("watching production job {job}: new runs wait while it runs"),
        })
    }
}
