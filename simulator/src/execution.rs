//! A run executed for real (`backfill sim --engine spark`): its states follow what the
//! engine reports (PENDING until it starts, RUNNING while it runs, TERMINATED when the job
//! returns or raises), and its output is the job's own JSON or its own error message.

use serde_json::{Value, json};

use crate::Outcome;

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
