//! Concurrency slots: which runs hold one at a moment, and queued runs given theirs, in
//! order, at the moments slots freed up.

use crate::runs::SimRun;
use crate::state::Inner;

impl Inner {
    /// Runs of `job_id` (or of every job) holding a slot at `t` (`t` at or after the
    /// watermark: runs that ended before it are no longer in `live`).
    pub(crate) fn active_count(&self, job_id: Option<i64>, t: i64) -> usize {
        self.live
            .iter()
            .filter_map(|id| self.runs.get(id))
            .filter(|r| job_id.is_none_or(|j| r.job_id == j) && r.active_at(t))
            .count()
    }

    /// Forgets runs that ended before `now` and before every queued run was created
    /// (no slot computation looks further back than that).
    fn prune_live(&mut self, now: i64) {
        let oldest_queued = self
            .queued
            .first()
            .and_then(|id| self.runs.get(id))
            .map_or(now, |r| r.created_ms);
        let mark = now.min(oldest_queued);
        if mark <= self.watermark {
            return;
        }
        let runs = &self.runs;
        self.live.retain(|id| {
            runs.get(id)
                .is_some_and(|r| r.end_ms().is_none_or(|e| e > mark))
        });
        self.watermark = mark;
    }

    pub(crate) fn note_active(&mut self, job_id: i64, t: i64) {
        let n = self.active_count(Some(job_id), t);
        let max = self.stats.max_active.entry(job_id).or_default();
        *max = (*max).max(n);
    }

    /// Gives queued runs their slots, in order, at the moments slots freed up.
    pub fn advance(&mut self, now: i64) {
        self.prune_live(now);
        if self.queued.is_empty() {
            return;
        }
        let job_ids: Vec<i64> = self.jobs.keys().copied().collect();
        for job_id in job_ids {
            let cap = self.jobs[&job_id].max_concurrent_runs.max(0) as usize;
            let mut floor = i64::MIN;
            let queued: Vec<i64> = self
                .queued
                .iter()
                .filter_map(|id| self.runs.get(id))
                .filter(|r| {
                    r.job_id == job_id
                        && r.slot_ms.is_none()
                        && r.refused.is_none()
                        && r.cancel_ms.is_none()
                })
                .map(|r| r.run_id)
                .collect();
            for run_id in queued {
                let earliest = self.runs[&run_id].created_ms.max(floor);
                let mut candidates: Vec<i64> = self
                    .live
                    .iter()
                    .filter_map(|id| self.runs.get(id))
                    .filter(|r| r.job_id == job_id && r.slot_ms.is_some())
                    .filter_map(SimRun::end_ms)
                    .filter(|e| *e > earliest && *e <= now)
                    .collect();
                candidates.push(earliest);
                candidates.sort_unstable();
                let slot = candidates
                    .into_iter()
                    .filter(|t| *t <= now)
                    .find(|t| self.active_count(Some(job_id), *t) < cap);
                match slot {
                    Some(t) => {
                        if let Some(r) = self.runs.get_mut(&run_id) {
                            r.slot_ms = Some(t);
                        }
                        self.queued.remove(&run_id);
                        self.live.insert(run_id);
                        self.note_active(job_id, t);
                        self.dispatch(run_id);
                        floor = t;
                    }
                    None => break,
                }
            }
        }
    }
}
