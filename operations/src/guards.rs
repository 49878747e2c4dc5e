//! Changing a backfill's budget and freshness guards (raising the budget releases held
//! runs).

use backfill_contract::BackfillId;
use backfill_ledger::{Guards, Ledger, ProtectedWindow};

use crate::error::OperationError;
use crate::lookup::load_backfill;

/// Guard values to set; those left out keep their current value, windows are added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GuardChange {
    pub price_per_run_hour: Option<f64>,
    pub budget: Option<f64>,
    pub protected_windows: Vec<ProtectedWindow>,
    pub production_job_id: Option<i64>,
    /// Remove every protected window first.
    pub clear_windows: bool,
}

impl GuardChange {
    /// Whether it changes anything at all.
    pub fn any(&self) -> bool {
        self.price_per_run_hour.is_some()
            || self.budget.is_some()
            || !self.protected_windows.is_empty()
            || self.production_job_id.is_some()
            || self.clear_windows
    }
}

/// Applies `change` over `current`, refusing a negative or not finite budget or price.
pub fn merge_guards(current: Guards, change: &GuardChange) -> Result<Guards, OperationError> {
    let bad = |v: Option<f64>| v.is_some_and(|v| !v.is_finite() || v < 0.0);
    if bad(change.budget) || bad(change.price_per_run_hour) {
        return Err(OperationError::Refused(
            "a budget and a price per run-hour must be finite and not negative".into(),
        ));
    }
    let mut windows = current.protected_windows;
    if change.clear_windows {
        windows.clear();
    }
    windows.extend(change.protected_windows.iter().copied());
    windows.dedup();
    Ok(Guards {
        price_per_run_hour: change.price_per_run_hour.or(current.price_per_run_hour),
        budget: change.budget.or(current.budget),
        protected_windows: windows,
        production_job_id: change.production_job_id.or(current.production_job_id),
    })
}

/// Changes the backfill's guards (recorded with who), returning the guards now in force.
pub async fn change_guards(
    ledger: &Ledger,
    backfill_id: &BackfillId,
    change: &GuardChange,
    by: &str,
) -> Result<Guards, OperationError> {
    let backfill = load_backfill(ledger, backfill_id).await?;
    let guards = merge_guards(backfill.guards, change)?;
    ledger.set_guards(backfill_id, &guards, by).await?;
    Ok(guards)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(text: &str) -> ProtectedWindow {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name_and_adds_windows_once() {
        let current = Guards {
            price_per_run_hour: Some(3.0),
            budget: Some(10.0),
            protected_windows: vec![window("01:00-02:00")],
            production_job_id: Some(9),
        };
        let change = GuardChange {
            budget: Some(20.0),
            protected_windows: vec![window("01:00-02:00"), window("05:00-06:00")],
            ..GuardChange::default()
        };
        let merged = merge_guards(current.clone(), &change).ok();
        assert_eq!(
            merged,
            Some(Guards {
                budget: Some(20.0),
                protected_windows: vec![window("01:00-02:00"), window("05:00-06:00")],
                ..current.clone()
            })
        );
        let cleared = GuardChange {
            clear_windows: true,
            ..GuardChange::default()
        };
        assert_eq!(
            merge_guards(current.clone(), &cleared)
                .ok()
                .map(|g| g.protected_windows),
            Some(Vec::new())
        );
        for bad in [f64::NAN, f64::INFINITY, -1.0] {
            let change = GuardChange {
                price_per_run_hour: Some(bad),
                ..GuardChange::default()
            };
            assert!(matches!(
                merge_guards(current.clone(), &change),
                Err(OperationError::Refused(_))
            ));
        }
    }
}
