//! One simulated run and the JSON Databricks would show for it at a given moment.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Outcome;

/// A run as created by `run-now`; its state is derived from the clock when read.
#[derive(Debug, Clone)]
pub struct SimRun {
    pub run_id: i64,
    pub job_id: i64,
    pub number_in_job: i64,
    pub params: BTreeMap<String, String>,
    pub created_ms: i64,
    pub running_from_ms: i64,
    pub ends_ms: i64,
    pub outcome: Outcome,
}

/// The run's phase at `now_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Running,
    Terminated,
}

impl SimRun {
    pub fn phase(&self, now_ms: i64) -> Phase {
        if now_ms < self.running_from_ms {
            Phase::Pending
        } else if now_ms < self.ends_ms {
            Phase::Running
        } else {
            Phase::Terminated
        }
    }

    /// The `runs/get` body, with both the legacy `state` and the new `status`.
    pub fn to_json(&self, now_ms: i64, workspace_url: &str) -> Value {
        let phase = self.phase(now_ms);
        let (state, status, end_time) = match phase {
            Phase::Pending => (
                json!({"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"}),
                json!({"state": "PENDING"}),
                0,
            ),
            Phase::Running => (
                json!({"life_cycle_state": "RUNNING", "state_message": ""}),
                json!({"state": "RUNNING"}),
                0,
            ),
            Phase::Terminated => {
                let (state, status) = self.outcome.terminal_shapes();
                (state, status, self.ends_ms)
            }
        };
        let setup = (self.running_from_ms - self.created_ms).max(0);
        let execution = match phase {
            Phase::Pending => 0,
            Phase::Running => now_ms - self.running_from_ms,
            Phase::Terminated => self.ends_ms - self.running_from_ms,
        };
        let params: Vec<Value> = self
            .params
            .iter()
            .map(|(k, v)| json!({"name": k, "default": "", "value": v}))
            .collect();
        json!({
            "job_id": self.job_id,
            "run_id": self.run_id,
            "number_in_job": self.number_in_job,
            "original_attempt_run_id": self.run_id,
            "attempt_number": 0,
            "run_page_url": format!("{workspace_url}/#job/{}/run/{}", self.job_id, self.run_id),
            "run_type": "JOB_RUN",
            "trigger": "ONE_TIME",
            "start_time": self.created_ms,
            "end_time": end_time,
            "setup_duration": if phase == Phase::Pending { 0 } else { setup },
            "execution_duration": execution,
            "cleanup_duration": 0,
            "run_duration": if end_time > 0 { end_time - self.created_ms } else { 0 },
            "queue_duration": 0,
            "job_parameters": params,
            "state": state,
            "status": status,
        })
    }
}
