//! A run executed for real (`backfill sim --engine spark`): its states follow what the
//! engine reports (PENDING until it starts, RUNNING while it runs, TERMINATED when the job
//! returns or raises), and its output is the job's own JSON or its own error message.

use serde_json::{Value, json};

use crate::Outcome;
use crate::spark_engine::run_request;
use crate::state::Inner;

/// How an executed run ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ending {
    /// The job returned this result (what `dbutils.notebook.exit` would hand back).
    Finished(Value),
    /// The job raised; the message is the job's own.
    Failed(String),
    Cancelled,
}

/// What the engine reported about one run's execution (a repair is a new execution), and
/// when.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Execution {
    /// The key the engine knows this execution by, once handed to it (the run had its
    /// concurrency slot).
    pub key: Option<i64>,
    pub started_ms: Option<i64>,
    pub ended_ms: Option<i64>,
    pub ending: Option<Ending>,
}

impl Execution {
    pub fn outcome(&self) -> Option<Outcome> {
        self.ending.as_ref().map(|e| match e {
            Ending::Finished(_) => Outcome::Success,
            Ending::Failed(_) => Outcome::TaskFailed,
            Ending::Cancelled => Outcome::UserCanceled,
        })
    }

    /// `(state, status)` once terminated: the outcome's shapes, a failure carrying the
    /// job's own message.
    pub fn terminal_shapes(&self) -> (Value, Value) {
        let outcome = self.outcome().unwrap_or(Outcome::TaskFailed);
        let (mut state, mut status) = outcome.terminal_shapes();
        if let Some(Ending::Failed(message)) = &self.ending {
            let text = format!("Task task_1 failed with message: {message}");
            state["state_message"] = json!(text);
            status["termination_details"]["message"] = json!(text);
        }
        (state, status)
    }

    /// The `get-output` fields of a terminated run: the job's result, or its error.
    pub fn output_fields(&self) -> Vec<(&'static str, Value)> {
        match &self.ending {
            Some(Ending::Finished(result)) => vec![(
                "notebook_output",
                json!({"result": result.to_string(), "truncated": false}),
            )],
            Some(Ending::Failed(message)) => vec![
                ("error", json!(first_line(message))),
                ("error_trace", json!(message)),
                ("notebook_output", json!({})),
            ],
            Some(Ending::Cancelled) | None => vec![("notebook_output", json!({}))],
        }
    }
}

impl Inner {
    /// Hands an executed run that has its slot to the engine, once per execution, under a
    /// key of its own (so a stale execution's events cannot touch a repaired run). With
    /// the engine gone, the run fails at once, saying so: it never falls back to invented
    /// numbers.
    pub(crate) fn dispatch(&mut self, run_id: i64) {
        let waiting = self.runs.get(&run_id).is_some_and(|r| {
            r.slot_ms.is_some() && r.executed.as_ref().is_some_and(|x| x.key.is_none())
        });
        if !waiting {
            return;
        }
        let key = self.next_id();
        let now = crate::state::now_ms();
        let Some(run) = self.runs.get_mut(&run_id) else {
            return;
        };
        let Some(x) = run.executed.as_mut() else {
            return;
        };
        let (Some(engine), Some(task)) = (
            self.engine.as_ref(),
            self.jobs.get(&run.job_id).and_then(|j| j.task),
        ) else {
            x.key = Some(key);
            x.started_ms = Some(now);
            x.ended_ms = Some(now);
            x.ending = Some(Ending::Failed("the Spark executor is not running".into()));
            return;
        };
        let mut params = self.jobs[&run.job_id].parameters.clone();
        params.extend(run.params.clone());
        x.key = Some(key);
        self.exec_keys.insert(key, run_id);
        engine.send(&run_request(key, task.name(), &params));
    }

    /// The engine reports the execution `key` started (`ending` None) or ended.
    pub(crate) fn on_execution(&mut self, key: i64, ending: Option<Ending>, now: i64) {
        let Some(run_id) = self.exec_keys.get(&key).copied() else {
            return;
        };
        let Some(x) = self.runs.get_mut(&run_id).and_then(|r| r.executed.as_mut()) else {
            return;
        };
        if x.ended_ms.is_some() {
            return;
        }
        match ending {
            None => x.started_ms = Some(now),
            Some(ending) => {
                x.started_ms.get_or_insert(now);
                x.ended_ms = Some(now);
                x.ending = Some(ending);
                self.exec_keys.remove(&key);
                // Its slot is free: queued runs take it now.
                self.advance(now);
            }
        }
    }

    /// The engine exited: what it left unfinished fails, saying so (and so do runs created
    /// later, see `dispatch`).
    pub(crate) fn engine_gone(&mut self, now: i64) {
        self.engine = None;
        let keys: Vec<i64> = self.exec_keys.keys().copied().collect();
        for key in keys {
            let gone = Ending::Failed("the Spark executor exited before the run ended".into());
            self.on_execution(key, Some(gone), now);
        }
    }
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_run_carries_the_jobs_own_message() {
        let x = Execution {
            ending: Some(Ending::Failed(
                "PartitionRefused: the live pipeline owns it".into(),
            )),
            ..Default::default()
        };
        let (state, status) = x.terminal_shapes();
        assert_eq!(state["result_state"], "FAILED");
        assert!(
            state["state_message"]
                .as_str()
                .unwrap()
                .ends_with("PartitionRefused: the live pipeline owns it")
        );
        assert_eq!(status["termination_details"]["code"], "RUN_EXECUTION_ERROR");
        let fields = x.output_fields();
        assert_eq!(fields[0].1, "PartitionRefused: the live pipeline owns it");
    }

    #[test]
    fn a_finished_run_outputs_the_jobs_result() {
        let x = Execution {
            ending: Some(Ending::Finished(json!({"staging_version": 4}))),
            ..Default::default()
        };
        assert_eq!(x.outcome(), Some(Outcome::Success));
        let fields = x.output_fields();
        assert_eq!(fields[0].1["result"], "{\"staging_version\":4}");
    }
}
