//! The reconciler's families: passes by result, gaps by kind, the last good pass.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::families;
use crate::labels;

/// The reconciler's passes.
#[derive(Debug, Default)]
pub struct ReconcileMetrics {
    passes: Family<labels::Result, Counter>,
    gaps: Family<labels::BackfillKind, Gauge>,
    last_success: Gauge,
}

impl ReconcileMetrics {
    pub(crate) fn register(&self, r: &mut Registry) {
        families::register(
            r,
            [
                families::plain(
                    "backfill_reconcile_passes",
                    "Reconciler passes by result (complete, incomplete, error)",
                    self.passes.clone(),
                ),
                families::plain(
                    "backfill_reconcile_gaps",
                    "Gaps found by the last reconciler pass, by kind",
                    self.gaps.clone(),
                ),
                families::seconds(
                    "backfill_reconcile_last_success_timestamp",
                    "Unix time of the last pass that read the ledger and Databricks",
                    self.last_success.clone(),
                ),
            ],
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
