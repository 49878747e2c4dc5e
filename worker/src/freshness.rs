//! The freshness guard: no new backfill run starts inside a protected window (UTC) or
//! while the production job has an active run, so the live pipeline keeps its freshness.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backfill_databricks::DatabricksClient;
use backfill_databricks::models::ListRuns;
use backfill_ledger::Guards;
use chrono::Timelike;

use crate::StepError;

/// Minutes of the day a `HH:MM-HH:MM` window covers (it may wrap past midnight).
pub fn parse_window(text: &str) -> Result<(u32, u32), String> {
    let minutes = |t: &str| -> Option<u32> {
        let (h, m) = t.trim().split_once(':')?;
        let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
        (h < 24 && m < 60).then_some(h * 60 + m)
    };
    let (a, b) = text
        .split_once('-')
        .ok_or_else(|| format!("window {text:?} must look like HH:MM-HH:MM"))?;
    match (minutes(a), minutes(b)) {
        (Some(a), Some(b)) if a != b => Ok((a, b)),
        _ => Err(format!(
            "window {text:?} must look like HH:MM-HH:MM (UTC) with two different times"
        )),
    }
}

/// The window open at `minute_of_day` (UTC), if any.
pub fn open_window(windows: &[String], minute_of_day: u32) -> Option<&str> {
    windows
        .iter()
        .map(String::as_str)
        .find(|w| match parse_window(w) {
            Ok((start, end)) if start < end => (start..end).contains(&minute_of_day),
            Ok((start, end)) => minute_of_day >= start || minute_of_day < end,
            Err(_) => false,
        })
}

/// Whether production jobs have active runs, remembered for a few seconds so that a busy
/// worker does not list runs for every trigger.
#[derive(Debug, Default)]
pub struct ProductionWatch {
    seen: Mutex<HashMap<i64, (Instant, bool)>>,
}

impl ProductionWatch {
    const FRESH_FOR: Duration = Duration::from_secs(5);

    async fn active(&self, client: &DatabricksClient, job_id: i64) -> Result<bool, StepError> {
        let cached = self
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&job_id)
            .filter(|(at, _)| at.elapsed() < Self::FRESH_FOR)
            .map(|(_, active)| *active);
        if let Some(active) = cached {
            return Ok(active);
        }
        let filter = ListRuns {
            job_id: Some(job_id),
            active_only: true,
            limit: Some(1),
            ..ListRuns::default()
        };
        let active = !client.list_runs_page(&filter, None).await?.runs.is_empty();
        self.seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(job_id, (Instant::now(), active));
        Ok(active)
    }

    /// Why a new run must wait now, if it must.
    pub async fn hold(
        &self,
        client: &DatabricksClient,
        guards: &Guards,
    ) -> Result<Option<String>, StepError> {
        let now = chrono::Utc::now();
        if let Some(w) = open_window(&guards.protected_windows, now.hour() * 60 + now.minute()) {
            return Ok(Some(format!("freshness: protected window {w} UTC")));
        }
        match guards.production_job_id {
            Some(job) if self.active(client, job).await? => Ok(Some(format!(
                "freshness: production job {job} has an active run"
            ))),
            _ => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_parse_and_wrap_midnight() {
        assert_eq!(parse_window("01:00-02:30"), Ok((60, 150)));
        assert!(parse_window("1-2").is_err());
        assert!(parse_window("25:00-01:00").is_err());
        assert!(parse_window("01:00-01:00").is_err());
        let w = vec!["01:00-02:30".to_owned(), "22:00-00:30".to_owned()];
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
            assert_eq!(open_window(&w, minute), want, "minute {minute}");
        }
    }
}
