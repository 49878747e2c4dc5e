//! One backfill's state as the gauges take it.

use std::collections::BTreeMap;

use backfill_contract::BackfillId;
use backfill_ledger::{ActionKind, ActionState, BackfillState, HoldReason, Ledger};
use backfill_metrics::BackfillSnapshot;

use crate::error::OperationError;
use crate::lookup::load_backfill;
use crate::status::StatusReport;

/// The backfill's state for the gauges, its row read once.
pub async fn snapshot(
    ledger: &Ledger,
    id: &BackfillId,
    price_per_run_hour: f64,
) -> Result<BackfillSnapshot, OperationError> {
    let backfill = load_backfill(ledger, id).await?;
    let report = StatusReport::of(ledger, &backfill, price_per_run_hour).await?;
    let failing = ledger.dq_failing(id).await?;
    // Every (kind, state) pair is reported, zero included, so that series do not vanish.
    let mut actions: BTreeMap<(&'static str, &'static str), i64> = BTreeMap::new();
    for kind in ActionKind::ALL {
        for state in ActionState::ALL {
            actions.insert((kind.as_str(), state.as_str()), 0);
        }
    }
    for (kind, state, n) in ledger.action_counts(id).await? {
        *actions.entry((kind.as_str(), state.as_str())).or_default() += n;
    }
    Ok(BackfillSnapshot {
        backfill: id.to_string(),
        states: report.states.by_word().into_iter().collect(),
        verified: report.verified,
        retries: report.retries,
        active_runs: report.states.active(),
        cap: backfill.concurrency_cap,
        paused: report.state == BackfillState::Paused,
        held: report.held.map(HoldReason::as_str),
        spend: report.spend,
        projected_spend: report.projected_spend,
        budget: backfill.guards.budget,
        eta_s: report.eta_s,
        dq_failing: failing,
        actions: actions.into_iter().map(|((k, s), n)| (k, s, n)).collect(),
        promotion: report.promotion.as_pairs().to_vec(),
    })
}
