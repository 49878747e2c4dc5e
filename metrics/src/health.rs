//! Liveness and readiness. `/healthz` answers while the process runs; `/readyz` only while
//! it holds what it needs (broker, ledger), is counted in the fleet's API budget, and is
//! not draining.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

#[derive(Debug, Default)]
pub struct Health {
    needs_broker: AtomicBool,
    needs_ledger: AtomicBool,
    broker: AtomicBool,
    ledger: AtomicBool,
    draining: AtomicBool,
    /// A member of the fleet's API budget not yet counted by the others (a new worker,
    /// for a heartbeat and a half).
    settling_api_share: AtomicBool,
    /// Why this process must not take work (a setting that points at another fleet).
    misconfigured: Mutex<Option<String>>,
}

impl Health {
    /// Declares what readiness depends on (a worker needs both, the reconciler the ledger).
    pub fn require(&self, broker: bool, ledger: bool) {
        self.needs_broker.store(broker, Ordering::Relaxed);
        self.needs_ledger.store(ledger, Ordering::Relaxed);
    }

    pub fn set_broker(&self, up: bool) {
        self.broker.store(up, Ordering::Relaxed);
    }

    pub fn set_ledger(&self, up: bool) {
        self.ledger.store(up, Ordering::Relaxed);
    }

    /// Whether this process is still waiting for the fleet to count it in the API budget.
    pub fn set_settling_api_share(&self, settling: bool) {
        self.settling_api_share.store(settling, Ordering::Relaxed);
    }

    /// Shutting down: stop taking work, stop being ready.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    /// Not ready for good (until restarted with other settings), saying why.
    pub fn set_misconfigured(&self, why: impl Into<String>) {
        *self.misconfigured.lock().unwrap_or_else(|p| p.into_inner()) = Some(why.into());
    }

    /// `Ok` when ready, or what is missing.
    pub fn ready(&self) -> Result<(), String> {
        if let Some(why) = self
            .misconfigured
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
        {
            return Err(format!("misconfigured: {why}"));
        }
        let mut missing = Vec::new();
        if self.draining.load(Ordering::Relaxed) {
            missing.push("draining");
        }
        if self.settling_api_share.load(Ordering::Relaxed) {
            missing.push("API budget share not settled yet");
        }
        if self.needs_broker.load(Ordering::Relaxed) && !self.broker.load(Ordering::Relaxed) {
            missing.push("broker not connected");
        }
        if self.needs_ledger.load(Ordering::Relaxed) && !self.ledger.load(Ordering::Relaxed) {
            missing.push("ledger not reachable");
        }
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_with_what_is_required_and_not_draining() {
        let h = Health::default();
        assert!(h.ready().is_ok(), "nothing required");
        h.require(true, true);
        assert_eq!(
            h.ready().unwrap_err(),
            "broker not connected, ledger not reachable"
        );
        h.set_broker(true);
        h.set_ledger(true);
        assert!(h.ready().is_ok());
        h.set_settling_api_share(true);
        assert_eq!(h.ready().unwrap_err(), "API budget share not settled yet");
        h.set_settling_api_share(false);
        assert!(h.ready().is_ok());
        h.start_draining();
        assert_eq!(h.ready().unwrap_err(), "draining");
    }
}
