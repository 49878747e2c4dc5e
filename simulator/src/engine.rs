//! The workspace's rules: creating runs under job concurrency and the workspace limit,
//! queueing, cancelling, repairing, expiring. Time-driven and lazy: state is brought up to
//! date (`advance`) whenever a request looks at it.

use backfill_contract::jobs::backfill;
use backfill_contract::jobs::promotion::{self, item};
use std::collections::BTreeMap;

use crate::Outcome;
use crate::config::SimConfig;
use crate::execution::Execution;
use crate::refusal::ApiRefusal;
use crate::runs::{Dwell, Refusal, Repair, SimRun};
use crate::state::Inner;

impl Inner {
    pub(crate) fn next_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn scripted_outcome(
        &mut self,
        config: &SimConfig,
        job_id: i64,
        partition: Option<&String>,
    ) -> Outcome {
        // Runs without a partition (promotions, rollbacks) are scripted per job: `job:N`.
        let key = partition
            .cloned()
            .unwrap_or_else(|| format!("job:{job_id}"));
        let n = self.executions.entry(key.clone()).or_default();
        let outcome = config
            .outcomes
            .get(&key)
            .and_then(|s| s.get(*n))
            .copied()
            .unwrap_or_default();
        *n += 1;
        outcome
    }

    /// `run-now`: the existing run for a known token, else a new run (started, queued,
    /// or refused by the job's or the workspace's limits).
    pub fn run_now(
        &mut self,
        config: &SimConfig,
        job_id: i64,
        params: BTreeMap<String, String>,
        token: Option<String>,
        now: i64,
    ) -> Result<(i64, i64), ApiRefusal> {
        let Some(job) = self.jobs.get(&job_id).cloned() else {
            return Err(ApiRefusal::invalid(format!("Job {job_id} does not exist.")));
        };
        if let Some(run_id) = token.as_ref().and_then(|t| self.tokens.get(t).copied()) {
            self.stats.idempotent_replays += 1;
            let number = self.runs.get(&run_id).map_or(run_id, |r| r.number_in_job);
            return Ok((run_id, number));
        }
        self.advance(now);
        let partition = params.get(&config.partition_param).cloned();
        let run_id = self.next_id();
        let task_ids: Vec<i64> = (0..config.tasks_per_run.max(1))
            .map(|_| self.next_id())
            .collect();
        let spread = match (&partition, config.running_spread_ms) {
            (Some(p), spread) if spread > 0 => (fnv(p) % (spread + 1)) as i64,
            _ => 0,
        };
        let cap = job.max_concurrent_runs.max(0) as usize;
        let (slot_ms, refused) = if self.active_count(None, now) >= config.workspace_run_limit {
            (None, Some(Refusal::WorkspaceLimit))
        } else if self.active_count(Some(job_id), now) < cap {
            (Some(now), None)
        } else if job.queue && cap > 0 {
            (None, None)
        } else {
            (None, Some(Refusal::Skipped))
        };
        let outcome = self.scripted_outcome(config, job_id, partition.as_ref());
        // With an executing engine, a run the script lets succeed runs the job for real;
        // a scripted failure still ends as scripted, without executing.
        let executed =
            (self.executing && job.task.is_some() && refused.is_none() && outcome.is_success())
                .then(Execution::default);
        // Only a run that succeeds commits (a failed one leaves the tables as they were);
        // an executed run's job commits for itself.
        let writes = refused.is_none() && outcome.is_success() && executed.is_none();
        // A promotion commits once per partition (`partitions`, a JSON array of
        // {partition_date, staging_version}); a rollback once.
        let promoting: Vec<(String, Option<i64>)> = params
            .get(promotion::param::PARTITIONS)
            .and_then(|p| serde_json::from_str::<Vec<serde_json::Value>>(p).ok())
            .unwrap_or_default()
            .iter()
            .map(|p| {
                (
                    p[item::PARTITION_DATE]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    p[item::STAGING_VERSION].as_i64(),
                )
            })
            .collect();
        let mut promoted = Vec::new();
        let table_versions = (job.output == crate::JobOutput::TableVersions && writes).then(|| {
            let first = self.table_version;
            for (date, staging) in &promoting {
                self.table_version += 1;
                promoted.push((
                    date.clone(),
                    *staging,
                    self.table_version - 1,
                    self.table_version,
                ));
            }
            if promoting.is_empty() {
                self.table_version += 1;
            }
            (first, self.table_version)
        });
        let staging_version = (job.output == crate::JobOutput::DqMetrics && writes).then(|| {
            let table = params
                .get(backfill::param::STAGING_TABLE)
                .cloned()
                .unwrap_or_default();
            let v = self.staging_versions.entry(table).or_insert(0);
            *v += 1;
            *v
        });
        let run = SimRun {
            table_versions,
            promoted,
            staging_version,
            run_id,
            job_id,
            number_in_job: run_id,
            unknown_state: partition
                .as_ref()
                .is_some_and(|p| config.unknown_state_partitions.contains(p)),
            partition: partition.clone(),
            params,
            created_ms: now,
            slot_ms,
            refused,
            dwell: Dwell {
                pending: config.pending_ms as i64,
                running: config.running_ms as i64 + spread,
                terminating: config.terminating_ms as i64,
            },
            cancel_ms: None,
            outcome,
            task_ids: task_ids.clone(),
            repairs: Vec::new(),
            executed,
        };
        for t in task_ids {
            self.tasks.insert(t, run_id);
        }
        self.runs.insert(run_id, run);
        if slot_ms.is_some() {
            self.live.insert(run_id);
            self.note_active(job_id, now);
            self.dispatch(run_id);
        } else if refused.is_none() {
            self.queued.insert(run_id);
        }
        self.stats.runs_created += 1;
        if let Some(p) = partition {
            *self.stats.runs_per_partition.entry(p).or_default() += 1;
        }
        if let Some(t) = token {
            self.tokens.insert(t, run_id);
        }
        Ok((run_id, run_id))
    }

    /// The run (or, for a task run id, its parent and the task's index), unless it has
    /// expired.
    pub fn find(
        &self,
        config: &SimConfig,
        id: i64,
        now: i64,
    ) -> Result<(&SimRun, Option<usize>), ApiRefusal> {
        let (run_id, task) = match self.tasks.get(&id) {
            Some(parent) => (
                *parent,
                self.runs
                    .get(parent)
                    .and_then(|r| r.task_ids.iter().position(|t| *t == id)),
            ),
            None => (id, None),
        };
        let run = self
            .runs
            .get(&run_id)
            .ok_or_else(|| ApiRefusal::run_not_found(id))?;
        if now - run.created_ms > config.run_expiry_s as i64 * 1000 {
            return Err(ApiRefusal::run_not_found(id));
        }
        Ok((run, task))
    }

    /// `runs/cancel`: asynchronous; a terminal run is left as it is.
    pub fn cancel(&mut self, config: &SimConfig, run_id: i64, now: i64) -> Result<(), ApiRefusal> {
        self.advance(now);
        self.find(config, run_id, now)?;
        let run_id = self.tasks.get(&run_id).copied().unwrap_or(run_id);
        if let Some(run) = self
            .runs
            .get_mut(&run_id)
            .filter(|r| r.end_ms().is_none_or(|e| now < e) && r.cancel_ms.is_none())
        {
            run.cancel_ms = Some(now);
            if run.slot_ms.is_none() {
                self.queued.remove(&run_id);
            } else if let (Some(engine), Some(key)) = (
                self.engine.as_ref(),
                run.executed.as_ref().and_then(|x| x.key),
            ) {
                engine.send(&serde_json::json!({"op": "cancel", "run_id": key}));
            }
            self.stats.cancels += 1;
        }
        Ok(())
    }

    /// `runs/repair`: re-runs a terminal run's failed tasks under the same run id.
    pub fn repair(
        &mut self,
        config: &SimConfig,
        run_id: i64,
        latest_repair_id: Option<i64>,
        now: i64,
    ) -> Result<i64, ApiRefusal> {
        self.advance(now);
        let (run, _) = self.find(config, run_id, now)?;
        if run.end_ms().is_none_or(|e| now < e) {
            return Err(ApiRefusal {
                status: 400,
                code: "INVALID_STATE",
                message: format!("Run {run_id} is not in a terminal state."),
            });
        }
        let last = run.repairs.last().map(|r| r.repair_id);
        if last.is_some() && latest_repair_id != last {
            return Err(ApiRefusal::invalid(format!(
                "latest_repair_id must be {} (the run's latest repair)",
                last.unwrap_or_default()
            )));
        }
        let partition = run.partition.clone();
        let job_id = run.job_id;
        let outcome = self.scripted_outcome(config, job_id, partition.as_ref());
        let repair_id = self.next_id();
        // With an executing engine, a repair the script lets succeed runs the job again
        // for real (a new execution); a scripted failure fails as scripted.
        let executes = self.executing
            && outcome.is_success()
            && self.jobs.get(&job_id).is_some_and(|j| j.task.is_some());
        if let Some(run) = self.runs.get_mut(&run_id) {
            run.cancel_ms = None;
            self.live.insert(run_id);
            run.repairs.push(Repair {
                repair_id,
                at_ms: now,
                outcome,
            });
            if let Some(key) = run.executed.as_ref().and_then(|x| x.key) {
                self.exec_keys.remove(&key);
            }
            run.executed = executes.then(Execution::default);
            if executes {
                // A run cancelled while queued is repaired at once.
                run.slot_ms.get_or_insert(now);
            }
        }
        if executes {
            self.dispatch(run_id);
        }
        self.stats.repairs += 1;
        Ok(repair_id)
    }
}

/// A stable hash for spreading run durations by partition.
pub(crate) fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
