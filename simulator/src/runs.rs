//! One simulated run: its timeline (queued, pending, running, terminating, terminated),
//! and the JSON Databricks would show for it at a given moment.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::Outcome;
use crate::execution::Execution;

/// Why a run ended the moment it was created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Job concurrency reached with queueing off.
    Skipped,
    /// The workspace's active-run limit was reached.
    WorkspaceLimit,
}

/// A repair: the run's failed tasks run again from `at_ms`.
#[derive(Debug, Clone)]
pub struct Repair {
    pub repair_id: i64,
    pub at_ms: i64,
    pub outcome: Outcome,
}

/// Dwell times of one run, in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct Dwell {
    pub pending: i64,
    pub running: i64,
    pub terminating: i64,
}

#[derive(Debug, Clone)]
pub struct SimRun {
    pub run_id: i64,
    pub job_id: i64,
    pub number_in_job: i64,
    pub params: BTreeMap<String, String>,
    pub partition: Option<String>,
    pub created_ms: i64,
    /// When it got a concurrency slot; `None` while queued.
    pub slot_ms: Option<i64>,
    pub refused: Option<Refusal>,
    pub dwell: Dwell,
    pub unknown_state: bool,
    pub cancel_ms: Option<i64>,
    pub outcome: Outcome,
    pub task_ids: Vec<i64>,
    pub repairs: Vec<Repair>,
    /// For promotion and rollback jobs: the target table's versions before and after.
    pub table_versions: Option<(i64, i64)>,
    /// For a promotion: each partition's staging version and the target's versions around
    /// its commit (one commit per partition).
    pub promoted: Vec<(String, Option<i64>, i64, i64)>,
    /// For a backfill run: the staging table's Delta version its write makes.
    pub staging_version: Option<i64>,
    /// Set when an engine executes the run for real: then its states and output follow
    /// the execution, not the dwell times.
    pub executed: Option<Execution>,
}

/// Where a run is at a moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Queued,
    Pending,
    /// A lifecycle state the API has never had (a scripted fault).
    Unknown,
    Running,
    Terminating,
    Terminated,
}

impl SimRun {
    /// When the current (original or repaired) execution starts, its outcome.
    fn execution(&self) -> Option<(i64, Outcome)> {
        match self.repairs.last() {
            Some(r) => Some((r.at_ms, r.outcome)),
            None => self.slot_ms.map(|s| (s, self.outcome)),
        }
    }

    /// When the run ends (and frees its slot), if it is scheduled to.
    pub fn end_ms(&self) -> Option<i64> {
        if self.refused.is_some() {
            return Some(self.created_ms);
        }
        if let Some(x) = &self.executed {
            // Queued: a cancel ends it at once; else it ends when the engine says so.
            return if self.slot_ms.is_none() {
                self.cancel_ms
            } else {
                x.ended_ms
            };
        }
        let Some((base, _)) = self.execution() else {
            // Queued: a cancel ends it at once.
            return self.cancel_ms;
        };
        let natural = base + self.dwell.pending + self.dwell.running + self.dwell.terminating;
        match self.cancel_ms {
            Some(c) if c < natural - self.dwell.terminating => {
                Some(c.max(base) + self.dwell.terminating)
            }
            _ => Some(natural),
        }
    }

    /// True while it holds a concurrency slot at `t`.
    pub fn active_at(&self, t: i64) -> bool {
        self.refused.is_none()
            && self.slot_ms.is_some_and(|s| s <= t)
            && self.end_ms().is_none_or(|e| t < e)
    }

    pub fn phase(&self, now: i64) -> Phase {
        if self.end_ms().is_some_and(|e| now >= e) {
            return Phase::Terminated;
        }
        if let Some(x) = &self.executed {
            return if self.slot_ms.is_none() {
                Phase::Queued
            } else if self.cancel_ms.is_some() {
                Phase::Terminating
            } else if x.started_ms.is_some() {
                Phase::Running
            } else {
                Phase::Pending
            };
        }
        let Some((base, _)) = self.execution() else {
            return Phase::Queued;
        };
        if self.cancel_ms.is_some_and(|c| now >= c) {
            return Phase::Terminating;
        }
        let running_from = base + self.dwell.pending;
        if now < running_from {
            Phase::Pending
        } else if self.unknown_state && now < running_from + self.dwell.running / 2 {
            Phase::Unknown
        } else if now < running_from + self.dwell.running {
            Phase::Running
        } else {
            Phase::Terminating
        }
    }

    /// The outcome it ended (or will end) with.
    pub fn final_outcome(&self) -> Outcome {
        if let Some(outcome) = self.executed.as_ref().and_then(Execution::outcome) {
            return outcome;
        }
        match self.execution() {
            _ if self.cancel_ms.is_some() => Outcome::UserCanceled,
            Some((_, o)) => o,
            None => self.outcome,
        }
    }

    /// `(state, status)` at `now`.
    fn shapes(&self, now: i64) -> (Value, Value) {
        match self.phase(now) {
            Phase::Queued => (
                json!({"life_cycle_state": "QUEUED", "state_message": "Queued: maximum concurrent runs reached",
                       "queue_reason": "Maximum concurrent runs reached"}),
                json!({"state": "QUEUED", "queue_details": {"code": "MAX_CONCURRENT_RUNS_REACHED",
                       "message": "Maximum concurrent runs reached"}}),
            ),
            Phase::Pending => (
                json!({"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"}),
                json!({"state": "PENDING"}),
            ),
            Phase::Unknown => (
                json!({"life_cycle_state": "WAITING_FOR_COMPUTE_CAPSULE", "state_message": ""}),
                json!({"state": "WAITING_FOR_COMPUTE_CAPSULE"}),
            ),
            Phase::Running => (
                json!({"life_cycle_state": "RUNNING", "state_message": ""}),
                json!({"state": "RUNNING"}),
            ),
            Phase::Terminating => (
                json!({"life_cycle_state": "TERMINATING", "state_message": ""}),
                json!({"state": "TERMINATING"}),
            ),
            Phase::Terminated => match self.refused {
                Some(Refusal::Skipped) => Outcome::Skipped.terminal_shapes(),
                Some(Refusal::WorkspaceLimit) => (
                    json!({"life_cycle_state": "INTERNAL_ERROR", "result_state": "FAILED",
                           "state_message": "Workspace run limit exceeded"}),
                    json!({"state": "TERMINATED", "termination_details": {
                        "code": "WORKSPACE_RUN_LIMIT_EXCEEDED", "type": "CLIENT_ERROR",
                        "message": "Workspace run limit exceeded"}}),
                ),
                None => match &self.executed {
                    Some(x) if x.ending.is_some() => x.terminal_shapes(),
                    _ => self.final_outcome().terminal_shapes(),
                },
            },
        }
    }

    fn timings(&self, now: i64) -> Value {
        let end = self.end_ms().filter(|e| now >= *e).unwrap_or(0);
        let queue = self.slot_ms.unwrap_or(now.min(end.max(now))) - self.created_ms;
        let (setup, execution) = match self.execution() {
            Some((base, _)) if self.executed.is_some() => {
                let x = self.executed.as_ref().map(|x| (x.started_ms, x.ended_ms));
                let (started, ended) = x.unwrap_or_default();
                let started = started.unwrap_or(now);
                let until = ended.unwrap_or(now);
                ((started - base).max(0), (until - started).max(0))
            }
            Some((base, _)) => {
                let setup = (now.min(base + self.dwell.pending) - base).max(0);
                let exec_until = if end > 0 {
                    end - self.dwell.terminating
                } else {
                    now
                };
                (setup, (exec_until - base - self.dwell.pending).max(0))
            }
            None => (0, 0),
        };
        let multi = self.task_ids.len() > 1;
        json!({
            "start_time": self.created_ms,
            "end_time": end,
            "queue_duration": queue.max(0),
            "setup_duration": if multi { 0 } else { setup },
            "execution_duration": if multi { 0 } else { execution },
            "cleanup_duration": 0,
            "run_duration": if end > 0 { end - self.created_ms } else { 0 },
        })
    }

    /// The `runs/get` body. `tasks` selects the tasks to include (2.2 pages them).
    pub fn to_json(&self, now: i64, workspace_url: &str, tasks: std::ops::Range<usize>) -> Value {
        let (state, status) = self.shapes(now);
        let timings = self.timings(now);
        let params: Vec<Value> = self
            .params
            .iter()
            .map(|(k, v)| json!({"name": k, "default": "", "value": v}))
            .collect();
        let task_list: Vec<Value> = self.task_ids
            [tasks.start.min(self.task_ids.len())..tasks.end.min(self.task_ids.len())]
            .iter()
            .enumerate()
            .map(|(i, id)| self.task_json(*id, tasks.start + i, now, workspace_url))
            .collect();
        let mut run = json!({
            "job_id": self.job_id,
            "run_id": self.run_id,
            "number_in_job": self.number_in_job,
            "original_attempt_run_id": self.run_id,
            "attempt_number": 0,
            "creator_user_name": "backfill@example.com",
            "run_name": "usage-aggregates-backfill",
            "run_page_url": format!("{workspace_url}/#job/{}/run/{}", self.job_id, self.run_id),
            "run_type": "JOB_RUN",
            "trigger": "ONE_TIME",
            "format": "MULTI_TASK",
            "job_parameters": params,
            "state": state,
            "status": status,
            "tasks": task_list,
        });
        merge(&mut run, timings);
        run
    }

    pub fn task_json(&self, task_id: i64, index: usize, now: i64, workspace_url: &str) -> Value {
        let (mut state, mut status) = self.shapes(now);
        let last = index + 1 == self.task_ids.len();
        // Only the last task carries a failure; earlier tasks succeeded.
        if !last && self.phase(now) == Phase::Terminated && self.refused.is_none() {
            (state, status) = Outcome::Success.terminal_shapes();
        }
        let mut task = json!({
            "run_id": task_id,
            "task_key": format!("task_{}", index + 1),
            "run_page_url": format!("{workspace_url}/#job/{}/run/{}", self.job_id, task_id),
            "attempt_number": 0,
            "state": state,
            "status": status,
        });
        merge(&mut task, self.timings(now));
        task
    }
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(into), Value::Object(from)) = (into.as_object_mut(), from) {
        into.extend(from);
    }
}
