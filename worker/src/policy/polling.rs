//! When to look at a running run next: the chain of checks as a pure function of the
//! run's age, what the backfill's finished runs lasted, and the partition's phase.

use std::time::Duration;

use chrono::{Datelike, NaiveDate};

use crate::PollPolicy;

/// What is known of a backfill's finished runs (Databricks start to end).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RunHistory {
    pub finished: u32,
    pub shortest: Duration,
    pub mean: Duration,
}

/// Where a partition's checks sit on the grid of checks of runs without history, in
/// [0, 1): consecutive dates (the runs of one wave) spread evenly over it, so that the
/// runs of a wave, started together, are not all looked at at the same ages and the
/// first end among them is seen early.
pub fn check_phase(date: NaiveDate) -> f64 {
    const GOLDEN: f64 = 0.618_033_988_749_895;
    (f64::from(date.num_days_from_ce()) * GOLDEN).fract()
}

/// When to look at a run next, given its age (from its start at Databricks, or its
/// trigger while it has none), what this backfill's finished runs lasted, and the
/// partition's [`check_phase`] (see [`PollPolicy`]). The answer can be shorter than the
/// shortest delay tier: the worker waits that out itself.
pub fn next_check_in(
    run_age: Duration,
    policy: &PollPolicy,
    history: RunHistory,
    phase: f64,
) -> Duration {
    let ceiling = policy.max.max(policy.first);
    if history.finished < policy.min_history.max(1) {
        return without_history(run_age, policy, phase).min(ceiling);
    }
    let window = history
        .shortest
        .min(history.mean.mul_f64(policy.window_start));
    if run_age < window {
        // Sparse: catch early failures cheaply, and land on the window's start.
        let next_age = run_age
            .mul_f64(policy.early_growth)
            .max(run_age + policy.first)
            .min(window);
        return (next_age - run_age).clamp(policy.first, ceiling);
    }
    let step = run_age
        .mul_f64(policy.close_fraction)
        .clamp(policy.first, ceiling);
    // Runs alike predict their ends: the shortest run's and the mean one's. Never step
    // over them. (Runs of spread lengths end anywhere in the window; the steps bound
    // how late each is seen.)
    if history.mean > history.shortest.mul_f64(1.0 + ALIKE) {
        return step;
    }
    let predicted = [history.shortest, history.mean]
        .into_iter()
        .map(|d| d + end_margin(d))
        .filter(|end| *end > run_age)
        .min();
    match predicted {
        Some(end) if end < run_age + step => end - run_age,
        _ => step,
    }
}

/// When to look at a run first, right after it was triggered: `first`, or sooner when
/// this backfill's finished runs say it may be over sooner: at the shortest one's
/// length and a margin (runs shorter than `first` are seen ending, not a `first` later).
pub fn first_check_in(policy: &PollPolicy, history: RunHistory) -> Duration {
    if history.finished < policy.min_history.max(1) {
        return policy.first;
    }
    policy
        .first
        .min(history.shortest + end_margin(history.shortest))
}

/// Runs are alike when the mean one is within this fraction of the shortest.
const ALIKE: f64 = 0.1;

/// How long after a predicted end a check looks: long enough for the end to be
/// recorded at Databricks, short next to the run.
fn end_margin(length: Duration) -> Duration {
    length.mul_f64(0.005).max(Duration::from_millis(50))
}

/// Without history: every `first` while that is more than `age_fraction` of the age,
/// then on a geometric grid (each point `1 + age_fraction` times the last) shifted by
/// `phase`, so a check is never later than that fraction of the run's length.
fn without_history(run_age: Duration, policy: &PollPolicy, phase: f64) -> Duration {
    let fraction = policy.age_fraction;
    if fraction <= 0.0 || run_age.mul_f64(fraction) <= policy.first {
        return policy.first;
    }
    let ratio = 1.0 + fraction;
    let base = policy.first.as_secs_f64() / fraction;
    let age = run_age.as_secs_f64();
    let phase = phase.clamp(0.0, 1.0);
    let k = ((age / base).ln() / ratio.ln() - phase).floor() + 1.0;
    let mut next = base * ratio.powf(k + phase);
    if next - age < policy.first.as_secs_f64() {
        next *= ratio;
    }
    Duration::from_secs_f64(next - age)
}

#[cfg(test)]
mod tests;
