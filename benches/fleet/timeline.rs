//! Where a makespan goes beyond the runs themselves: from a trigger to its run's start,
//! from a run's end to its success being recorded (detection), and from a slot freed to
//! the next trigger taking it (admission). Read from the ledger's rows after a backfill.

use backfill_ledger::Partition;

/// Means, in seconds, of each kind of wait around the runs of one backfill.
#[derive(Debug, Clone, Copy, Default)]
pub struct Timeline {
    /// Trigger recorded to the run's start at Databricks.
    pub start: f64,
    /// Run ended to its success recorded, runs of the first wave (no history yet).
    pub detect_first: f64,
    /// The same for every later run.
    pub detect_later: f64,
    /// A slot freed (a success recorded) to the trigger that took it.
    pub admit: f64,
    /// The makespan the same runs, in the same order, would take if every next run
    /// started the moment a slot freed (list scheduling, no orchestration at all).
    pub no_overhead: f64,
}

impl Timeline {
    /// The waits of a finished backfill under `cap`; every partition must have run once.
    pub fn of(partitions: &[Partition], cap: usize) -> Self {
        let mut runs: Vec<(i64, i64, i64, i64)> = partitions
            .iter()
            .filter_map(|p| {
                Some((
                    p.triggered_at_ms?,
                    p.run_started_ms?,
                    p.run_ended_ms?,
                    p.updated_at_ms,
                ))
            })
            .collect();
        runs.sort_unstable();
        let secs = |ms: i64| ms.max(0) as f64 / 1000.0;
        let mean = |v: Vec<f64>| {
            let n = v.len().max(1) as f64;
            v.iter().sum::<f64>() / n
        };
        let start = mean(runs.iter().map(|r| secs(r.1 - r.0)).collect());
        let detect =
            |rs: &[(i64, i64, i64, i64)]| mean(rs.iter().map(|r| secs(r.3 - r.2)).collect());
        let first = cap.min(runs.len());
        let mut freed: Vec<i64> = runs.iter().map(|r| r.3).collect();
        freed.sort_unstable();
        // The (cap + i)-th trigger took the slot the i-th recorded success freed.
        let admit = mean(
            runs.iter()
                .skip(first)
                .zip(&freed)
                .map(|(r, f)| secs(r.0 - f))
                .collect(),
        );
        Self {
            start,
            detect_first: detect(&runs[..first]),
            detect_later: detect(&runs[first..]),
            admit,
            no_overhead: secs(list_scheduled(runs.iter().map(|r| (r.2 - r.1).max(0)), cap)),
        }
    }
}

/// How long runs of these lengths take on `cap` slots when each starts, in order, the
/// moment a slot is free.
fn list_scheduled(lengths: impl Iterator<Item = i64>, cap: usize) -> i64 {
    let mut slots = std::collections::BinaryHeap::from(vec![std::cmp::Reverse(0i64); cap.max(1)]);
    let mut end = 0;
    for length in lengths {
        let std::cmp::Reverse(free) = slots.pop().unwrap_or(std::cmp::Reverse(0));
        end = end.max(free + length);
        slots.push(std::cmp::Reverse(free + length));
    }
    end
}
