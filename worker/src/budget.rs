//! The fleet-wide Databricks API budget. Every process that calls Databricks heartbeats
//! into the ledger and takes an equal share of each endpoint's budget:
//! `floor(budget / live members)` calls in any sliding second while there are no more
//! members than the budget. With more members than that, a share would be less than one
//! call a second: then each call takes a slot through the ledger, slots 1.1 / budget
//! seconds apart fleet-wide, so no second sees more than the budget however many
//! processes there are (a compare-and-set per call, at most the budget's rate of them).
//! A throttled answer pauses the endpoint for the whole fleet. A new member waits a
//! heartbeat and a half after its first heartbeat before its first budgeted call, so the
//! others have shrunk their shares by then; endpoints without a budget never wait.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backfill_databricks::{CallGate, MAX_RETRY_AFTER};
use backfill_ledger::{Ledger, LedgerError, now_ms};
use tokio::time::Instant;

/// Requests per second allowed for the whole fleet, per endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiBudget(pub BTreeMap<String, u32>);

impl Default for ApiBudget {
    /// Half the limits reported for a workspace (20/s `run-now`, 100/s `runs/get`): the
    /// rest is left to production jobs and people.
    fn default() -> Self {
        Self(BTreeMap::from([
            ("jobs/run-now".to_owned(), 10),
            ("jobs/runs/get".to_owned(), 50),
        ]))
    }
}

impl std::str::FromStr for ApiBudget {
    type Err = String;
    /// `jobs/run-now=10,jobs/runs/get=50`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut budget = BTreeMap::new();
        for part in s.split(',').filter(|p| !p.trim().is_empty()) {
            let (endpoint, rate) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?} must look like ENDPOINT=REQUESTS_PER_SECOND"))?;
            let rate: u32 = rate
                .trim()
                .parse()
                .ok()
                .filter(|r| *r > 0)
                .ok_or_else(|| format!("{part:?}: the rate must be a whole number above 0"))?;
            budget.insert(endpoint.trim().to_owned(), rate);
        }
        Ok(Self(budget))
    }
}

/// One worker's view of the fleet's budget; the client's [`CallGate`].
#[derive(Debug)]
pub struct FleetBudget {
    worker_id: String,
    ledger: Ledger,
    budget: ApiBudget,
    heartbeat: Duration,
    live: AtomicI64,
    /// When this worker may first call: a heartbeat and a half after its own first
    /// heartbeat was written (every other worker has counted it by then, and shrunk its
    /// share); none before that heartbeat.
    ready_at: Mutex<Option<Instant>>,
    windows: Mutex<HashMap<&'static str, VecDeque<Instant>>>,
    /// Per endpoint, until when it is paused and when this worker learnt of it.
    paused_until: Mutex<HashMap<String, (Instant, Instant)>>,
    /// The longest pause honoured (the client's longest `Retry-After`).
    max_pause: Mutex<Duration>,
}

/// What a call must do before it goes.
enum Gate {
    Go,
    /// The fleet's rate: wait this long, then ask again.
    Wait(Duration),
    /// The endpoint is paused after throttling, for this long.
    Paused(Duration),
    /// More workers than the budget: take a slot spaced through the ledger.
    AskLedger,
}

/// The longest a call waits at the gate; a longer pause is returned to the caller.
const HOLD_AT_GATE: Duration = Duration::from_secs(2);

impl FleetBudget {
    pub fn new(
        ledger: Ledger,
        worker_id: &str,
        budget: ApiBudget,
        heartbeat: Duration,
    ) -> Arc<Self> {
        Arc::new(Self {
            worker_id: worker_id.to_owned(),
            ledger,
            budget,
            heartbeat,
            live: AtomicI64::new(1),
            ready_at: Mutex::new(None),
            windows: Mutex::new(HashMap::new()),
            paused_until: Mutex::new(HashMap::new()),
            max_pause: Mutex::new(MAX_RETRY_AFTER),
        })
    }

    /// Caps every pause, stored ones included, at `max` (the client's longest
    /// `Retry-After`).
    pub fn set_max_pause(&self, max: Duration) {
        *self.max_pause.lock().unwrap_or_else(|p| p.into_inner()) = max;
    }

    fn max_pause(&self) -> Duration {
        *self.max_pause.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn heartbeat_interval(&self) -> Duration {
        self.heartbeat
    }

    /// This worker's calls allowed in any second on `endpoint` (None: unlimited; 0: fewer
    /// than one a second, spaced through the ledger).
    pub fn share(&self, endpoint: &str) -> Option<usize> {
        let live = self.live.load(Ordering::Relaxed).max(1) as u32;
        self.budget.0.get(endpoint).map(|b| (b / live) as usize)
    }

    /// Heartbeats, learns how many workers share the budget and which endpoints the
    /// fleet has paused.
    pub async fn refresh(&self) -> Result<(), LedgerError> {
        let ttl = (self.heartbeat * 3).as_millis() as i64;
        let live = self.ledger.heartbeat(&self.worker_id, ttl).await?;
        self.live.store(live, Ordering::Relaxed);
        self.ready_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| Instant::now() + self.heartbeat + self.heartbeat / 2);
        let now_wall = now_ms();
        let paused = self.ledger.paused_endpoints().await?;
        // The ledger's pauses replace this worker's own, so an operator's `backfill
        // throttle clear` reaches every worker within a heartbeat or two; a pause this
        // worker learnt of just now is kept while its write to the ledger may be on its way.
        let max = self.max_pause();
        let now = Instant::now();
        let mut local = self.lock_paused();
        local.retain(|endpoint, (_, learnt)| {
            !paused.contains_key(endpoint) && now.duration_since(*learnt) < self.heartbeat * 2
        });
        for (endpoint, until) in paused {
            // A pause stored by an older or misbehaving process is never longer than the
            // longest Retry-After honoured.
            let left = Duration::from_millis((until - now_wall).max(0) as u64).min(max);
            let entry = local.entry(endpoint).or_insert((now + left, now));
            entry.0 = entry.0.max(now + left);
        }
        Ok(())
    }

    /// Leaves the fleet (a clean stop): the others take the share at their next heartbeat.
    pub async fn leave(&self) {
        let _ = self.ledger.leave(&self.worker_id).await;
    }

    fn lock_paused(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, Instant)>> {
        self.paused_until.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// What a call to `endpoint` must do first; records the call when it may go.
    fn try_take(&self, endpoint: &'static str) -> Gate {
        let now = Instant::now();
        if let Some((until, _)) = self.lock_paused().get(endpoint).filter(|(u, _)| *u > now) {
            return Gate::Paused(*until - now);
        }
        // An endpoint without a budget is shared by nobody: it never waits for a share.
        let Some(share) = self.share(endpoint) else {
            return Gate::Go;
        };
        if let Some(wait) = self.until_ready(now) {
            return Gate::Wait(wait);
        }
        if share == 0 {
            return Gate::AskLedger;
        }
        match self.window_wait(endpoint, share, now) {
            wait if wait.is_zero() => Gate::Go,
            wait => Gate::Wait(wait),
        }
    }

    /// How long until this member may make budgeted calls (None: it may now). Before its
    /// first heartbeat, a quarter heartbeat at a time.
    fn until_ready(&self, now: Instant) -> Option<Duration> {
        match *self.ready_at.lock().unwrap_or_else(|p| p.into_inner()) {
            None => Some(self.heartbeat / 4),
            Some(at) if now < at => Some(at - now),
            Some(_) => None,
        }
    }

    /// Returns once this member may make budgeted calls: every other member has counted
    /// it and shrunk its share (a worker is not ready before).
    pub async fn wait_ready(&self) {
        while let Some(wait) = self.until_ready(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }

    /// With fewer than one call a second for this worker: the fleet's calls to `endpoint`
    /// spaced through the ledger, a little more than `1 / budget` seconds apart (the
    /// margin absorbs the network's jitter between here and the workspace).
    async fn ledger_wait(&self, endpoint: &'static str) -> Result<Duration, LedgerError> {
        let budget = self.budget.0.get(endpoint).copied().unwrap_or(1).max(1);
        let interval_ms = i64::from(1_100 / budget).max(1);
        let wait = self.ledger.take_rate_slot(endpoint, interval_ms).await?;
        Ok(Duration::from_millis(wait.max(0) as u64))
    }

    /// This worker's own sliding second: zero when the call may go (and records it).
    fn window_wait(&self, endpoint: &'static str, share: usize, now: Instant) -> Duration {
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        let window = windows.entry(endpoint).or_default();
        while window
            .front()
            .is_some_and(|t| now.duration_since(*t) >= Duration::from_secs(1))
        {
            window.pop_front();
        }
        if window.len() < share {
            window.push_back(now);
            Duration::ZERO
        } else {
            let oldest = window.front().copied().unwrap_or(now);
            (oldest + Duration::from_secs(1)).saturating_duration_since(now)
                + Duration::from_millis(1)
        }
    }
}

impl CallGate for FleetBudget {
    fn acquire<'a>(
        &'a self,
        endpoint: &'static str,
    ) -> Pin<Box<dyn Future<Output = Result<(), Duration>> + Send + 'a>> {
        Box::pin(async move {
            loop {
                let wait = match self.try_take(endpoint) {
                    Gate::Go => return Ok(()),
                    // A throttling pause is never waited out here (the caller's message
                    // goes round the delay tiers); the fleet's rate is, being short.
                    Gate::Paused(wait) if wait > HOLD_AT_GATE => return Err(wait),
                    Gate::Paused(wait) | Gate::Wait(wait) => wait,
                    Gate::AskLedger => match self.ledger_wait(endpoint).await {
                        Ok(wait) if wait.is_zero() => return Ok(()),
                        Ok(wait) => wait,
                        Err(e) => {
                            // The ledger is the fleet's clock here: without it, wait a
                            // whole second per call (at most one a second per worker).
                            tracing::debug!(error = %e, "rate slot unavailable");
                            Duration::from_secs(1)
                        }
                    },
                };
                tokio::time::sleep(wait).await;
            }
        })
    }

    fn throttled(&self, endpoint: &'static str, retry_after: Option<Duration>) {
        let pause = retry_after
            .unwrap_or(Duration::from_secs(1))
            .min(self.max_pause());
        let now = Instant::now();
        let until = now + pause;
        {
            let mut local = self.lock_paused();
            let entry = local.entry(endpoint.to_owned()).or_insert((until, now));
            entry.0 = entry.0.max(until);
            entry.1 = now;
        }
        let ledger = self.ledger.clone();
        let wall_until = now_ms() + pause.as_millis() as i64;
        tokio::spawn(async move {
            if let Err(e) = ledger.pause_endpoint(endpoint, wall_until).await {
                tracing::warn!(endpoint, error = %e, "could not share a throttling pause with the fleet");
            }
        });
        tracing::info!(
            endpoint,
            pause_ms = pause.as_millis() as u64,
            "Databricks throttled us; pausing the endpoint fleet-wide"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_parse_and_name_the_problem() {
        let b: ApiBudget = "jobs/run-now=10, jobs/runs/get=50".parse().unwrap();
        assert_eq!(b.0["jobs/runs/get"], 50);
        assert!(
            "jobs/run-now"
                .parse::<ApiBudget>()
                .unwrap_err()
                .contains("ENDPOINT=")
        );
        assert!(
            "jobs/run-now=0"
                .parse::<ApiBudget>()
                .unwrap_err()
                .contains("above 0")
        );
    }
}
