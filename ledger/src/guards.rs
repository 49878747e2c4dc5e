//! What holds a backfill's new runs back, and the one vocabulary every part of the fleet
//! uses to say so (the claim, the worker's delays, `status` and the metrics).

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// What holds a backfill's new runs back (none by default). Changeable at any time;
/// raising the budget releases held triggers.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Guards {
    /// Cluster price per run-hour (for spend).
    pub price_per_run_hour: Option<f64>,
    /// New runs are held when the projected spend would exceed this.
    pub budget: Option<f64>,
    /// UTC windows in which no new run starts.
    pub protected_windows: Vec<ProtectedWindow>,
    /// While this job has an active run, no new run starts.
    pub production_job_id: Option<i64>,
}

impl Guards {
    /// The protected window open at `minute_of_day` (UTC), if any.
    pub fn open_window(&self, minute_of_day: u32) -> Option<ProtectedWindow> {
        self.protected_windows
            .iter()
            .copied()
            .find(|w| w.contains(minute_of_day))
    }
}

/// A `HH:MM-HH:MM` UTC window of the day in which no new run starts; it may wrap past
/// midnight. Parsed once, where it enters (a flag or the ledger), and typed from there on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProtectedWindow {
    /// Minute of the day it opens.
    start: u32,
    /// Minute of the day it closes (exclusive).
    end: u32,
}

impl ProtectedWindow {
    /// Whether the window is open at `minute_of_day` (UTC).
    pub fn contains(self, minute_of_day: u32) -> bool {
        if self.start < self.end {
            (self.start..self.end).contains(&minute_of_day)
        } else {
            minute_of_day >= self.start || minute_of_day < self.end
        }
    }
}

impl FromStr for ProtectedWindow {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let minutes = |t: &str| -> Option<u32> {
            let (h, m) = t.trim().split_once(':')?;
            let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
            (h < 24 && m < 60).then_some(h * 60 + m)
        };
        let (a, b) = text
            .split_once('-')
            .ok_or_else(|| format!("window {text:?} must look like HH:MM-HH:MM"))?;
        match (minutes(a), minutes(b)) {
            (Some(start), Some(end)) if start != end => Ok(Self { start, end }),
            _ => Err(format!(
                "window {text:?} must look like HH:MM-HH:MM (UTC) with two different times"
            )),
        }
    }
}

impl fmt::Display for ProtectedWindow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:02}:{:02}-{:02}:{:02}",
            self.start / 60,
            self.start % 60,
            self.end / 60,
            self.end % 60
        )
    }
}

impl Serialize for ProtectedWindow {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Why a backfill's new runs are held back: one word per cause, shared by the claim,
/// the worker's delays, `backfill status` and the `backfill_guard_held` metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HoldReason {
    /// An operator paused the backfill.
    Paused,
    /// An operator cancelled the backfill.
    Cancelled,
    /// The projected spend would exceed the budget.
    Budget,
    /// A protected window is open.
    ProtectedWindow,
    /// The production job has an active run.
    ProductionRunning,
}

impl HoldReason {
    /// Every reason, in a fixed order (metrics report each one, zero included).
    pub const ALL: [HoldReason; 5] = [
        HoldReason::Paused,
        HoldReason::Cancelled,
        HoldReason::Budget,
        HoldReason::ProtectedWindow,
        HoldReason::ProductionRunning,
    ];

    /// The reason as a metric label and a word in `status --json`.
    pub fn as_str(self) -> &'static str {
        match self {
            HoldReason::Paused => "paused",
            HoldReason::Cancelled => "cancelled",
            HoldReason::Budget => "budget",
            HoldReason::ProtectedWindow => "protected_window",
            HoldReason::ProductionRunning => "production_running",
        }
    }
}

impl fmt::Display for HoldReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(text: &str) -> ProtectedWindow {
        text.parse().unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn windows_parse_print_and_wrap_midnight() {
        assert_eq!(w("1:00-02:30").to_string(), "01:00-02:30");
        assert!("1-2".parse::<ProtectedWindow>().is_err());
        assert!("25:00-01:00".parse::<ProtectedWindow>().is_err());
        assert!("01:00-01:00".parse::<ProtectedWindow>().is_err());
        let guards = Guards {
            protected_windows: vec![w("01:00-02:30"), w("22:00-00:30")],
            ..Guards::default()
        };
        let cases = [
            (59, None),
            (60, Some("01:00-02:30")),
            (149, Some("01:00-02:30")),
            (150, None),
            (1319, None),
            (1320, Some("22:00-00:30")),
            (10, Some("22:00-00:30")),
            (30, None),
        ];
        for (minute, want) in cases {
            let open = guards.open_window(minute).map(|w| w.to_string());
            assert_eq!(open.as_deref(), want, "minute {minute}");
        }
    }

    #[test]
    fn metrics_label_each_hold_reason_by_its_word() {
        // The metrics crate is a leaf (the Databricks client records into it), so it keeps
        // its own copy of the words; this holds the copy to the vocabulary.
        assert_eq!(
            HoldReason::ALL.map(HoldReason::as_str),
            backfill_metrics::HOLD_REASONS
        );
    }

    #[test]
    fn hold_reasons_have_distinct_words() {
        let words: std::collections::BTreeSet<_> =
            HoldReason::ALL.iter().map(|r| r.as_str()).collect();
        assert_eq!(words.len(), HoldReason::ALL.len());
    }
}
