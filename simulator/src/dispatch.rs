//! Executed runs and the engine: a run that has its slot is handed to the engine once per
//! execution, and what the engine reports moves the run's state.

use serde_json::{Value, json};

use crate::execution::Ending;
use crate::spark_engine::EngineEvents;
use crate::state::{Inner, Simulator, now_ms};

impl Simulator {
    /// Applies the executor's events to the runs until it exits; then fails whatever it
    /// left unfinished, with a message saying so.
    pub(crate) async fn follow_engine(self, mut events: EngineEvents) {
        while let Some((key, ending)) = events.next_run_event().await {
            self.lock().on_execution(key, ending, now_ms());
        }
        self.lock().engine_gone(now_ms());
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
        let now = now_ms();
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

/// The `run` request for an executed run: the job's parameters are its defaults overridden
/// by the run's own.
fn run_request(
    run_id: i64,
    job: &str,
    params: &std::collections::BTreeMap<String, String>,
) -> Value {
    json!({"op": "run", "run_id": run_id, "job": job, "params": params})
}
