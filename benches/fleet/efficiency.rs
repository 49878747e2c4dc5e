//! API calls per run and detection delay (the polling policy against fixed polls), and
//! makespan under a concurrency cap. Minutes are compressed into seconds: the simulator's
//! runs and the worker's polling policy are scaled by the same factor, so the ratios
//! (calls per run, delay as a share of the run, makespan against the ideal) carry over.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use backfill_ledger::PartitionState;
use backfill_worker::policy::{RunHistory, next_check_in};
use backfill_worker::{PollPolicy, Worker, WorkerConfig, run_worker};
use tokio_util::sync::CancellationToken;

use crate::common::sim_config;
use crate::sizes::{Sizes, median};
use crate::support::fleet::Fleet;
use crate::timeline::Timeline;

/// Calls and detection delay of one run of `run` under a policy, walking the chain of
/// checks the way the worker does: the first check at `first`, each next one when the
/// policy says.
fn walk(run: Duration, policy: &PollPolicy, history: RunHistory) -> (u32, Duration) {
    let (mut age, mut calls) = (policy.first, 1);
    while age < run {
        age += next_check_in(age, policy, history, 0.0);
        calls += 1;
    }
    (calls, age - run)
}

/// A fixed poll: calls and delay.
fn fixed(run: Duration, every: Duration) -> (u32, Duration) {
    let calls = run.as_secs_f64() / every.as_secs_f64();
    let calls = calls.ceil().max(1.0);
    (calls as u32, every.mul_f64(calls) - run)
}

fn summarize(samples: &[(u32, Duration, Duration)]) -> (f64, f64, f64) {
    let n = samples.len() as f64;
    let calls = samples.iter().map(|(c, _, _)| f64::from(*c)).sum::<f64>() / n;
    let shares: Vec<f64> = samples
        .iter()
        .map(|(_, late, run)| late.as_secs_f64() / run.as_secs_f64() * 100.0)
        .collect();
    let mean = shares.iter().sum::<f64>() / n;
    let worst = shares.iter().copied().fold(0.0, f64::max);
    (calls, mean, worst)
}

/// Runs `n` partitions of `run_ms` (+ up to `spread_ms`) through one in-process worker
/// whose polling runs `scale` times faster; returns runs/get calls per run and each
/// partition's detection delay as a share of its run, and the makespan figures.
async fn fleet_run(n: u32, cap: i64, run_ms: u64, spread_ms: u64, scale: f64) -> FleetRun {
    let fleet = Fleet::build(
        n,
        cap,
        sim_config(0, run_ms, spread_ms, n as usize),
        &crate::support::amqp_url(),
        &crate::support::sqlite_url(),
    )
    .await;
    let mut config = WorkerConfig::new("bench-poll");
    config.concurrency = 64;
    config.poll = PollPolicy::default().scaled(scale);
    // Every timing of the worker runs on the same compressed clock (5 s between looks
    // at a full cap, for example).
    config.admission_delay = config.admission_delay.div_f64(scale);
    let worker = Arc::new(Worker::new(
        config,
        fleet.ledger.clone(),
        fleet.client.clone(),
    ));
    let stop = CancellationToken::new();
    let task = tokio::spawn(run_worker(
        worker,
        crate::support::amqp_url(),
        fleet.topology.clone(),
        stop.clone(),
    ));
    fleet.publish_all().await;
    fleet.wait_all_succeeded(Duration::from_secs(900)).await;
    stop.cancel();
    let _ = task.await;
    let partitions = fleet.ledger.partitions(&fleet.backfill_id).await.unwrap();
    let stats = fleet.sim.sim.stats();
    let gets = stats.calls.get("jobs/runs/get").copied().unwrap_or(0);
    let mut shares = Vec::new();
    let (mut first, mut last, mut work) = (i64::MAX, 0i64, 0i64);
    for p in &partitions {
        assert_eq!(p.state, PartitionState::Succeeded);
        let (s, e) = (p.run_started_ms.unwrap(), p.run_ended_ms.unwrap());
        shares.push((p.updated_at_ms - e).max(0) as f64 / (e - s).max(1) as f64 * 100.0);
        first = first.min(p.triggered_at_ms.unwrap());
        last = last.max(p.updated_at_ms);
        work += e - s;
    }
    // Runs triggered once five runs had ended were polled with history; each check of a
    // run advanced its check sequence once.
    let mut ends: Vec<i64> = partitions.iter().filter_map(|p| p.run_ended_ms).collect();
    ends.sort_unstable();
    let history_from = ends.get(4).copied().unwrap_or(i64::MAX);
    let with_history: Vec<&backfill_ledger::Partition> = partitions
        .iter()
        .filter(|p| p.triggered_at_ms.is_some_and(|t| t > history_from))
        .collect();
    let share = |p: &backfill_ledger::Partition| {
        let (s, e) = (p.run_started_ms.unwrap(), p.run_ended_ms.unwrap());
        (p.updated_at_ms - e).max(0) as f64 / (e - s).max(1) as f64 * 100.0
    };
    let history_calls = with_history
        .iter()
        .map(|p| p.check_seq.get() as f64)
        .sum::<f64>()
        / with_history.len().max(1) as f64;
    let history_delay =
        with_history.iter().map(|p| share(p)).sum::<f64>() / with_history.len().max(1) as f64;
    let history_worst = with_history.iter().map(|p| share(p)).fold(0.0, f64::max);
    let out = FleetRun {
        history: (
            with_history.len(),
            history_calls,
            history_delay,
            history_worst,
        ),
        calls_per_run: gets as f64 / f64::from(n),
        delay_mean: shares.iter().sum::<f64>() / shares.len() as f64,
        delay_p95: {
            let mut s = shares.clone();
            s.sort_by(f64::total_cmp);
            s[(s.len() * 95 / 100).min(s.len() - 1)]
        },
        makespan_s: (last - first) as f64 / 1000.0,
        work_s: work as f64 / 1000.0,
        timeline: Timeline::of(&partitions, cap as usize),
    };
    fleet.stop().await;
    out
}

struct FleetRun {
    /// Runs polled with history: how many, checks per run, mean and worst delay (%).
    history: (usize, f64, f64, f64),
    calls_per_run: f64,
    delay_mean: f64,
    delay_p95: f64,
    makespan_s: f64,
    work_s: f64,
    timeline: Timeline,
}

pub async fn api(sizes: Sizes) -> String {
    let mut out = String::new();
    // The model: runs of 20 minutes +-20%, evenly spread, the worker's own policy
    // function against fixed polls.
    let runs: Vec<Duration> = (0..=400)
        .map(|i| Duration::from_secs_f64(960.0 + 480.0 * f64::from(i) / 400.0))
        .collect();
    let policy = PollPolicy::default();
    let history = RunHistory {
        finished: 50,
        shortest: Duration::from_secs(960),
        mean: Duration::from_secs(1200),
    };
    let _ = writeln!(
        out,
        "## API efficiency: runs of 20 min +-20% (960 s to 1440 s)\n\n\
         The worker's policy function walked over 401 evenly spread run lengths:\n"
    );
    let _ = writeln!(
        out,
        "| polling | runs/get calls per run | detection delay, mean | worst |\n| --- | --- | --- | --- |"
    );
    let mut row = |name: &str, f: &dyn Fn(Duration) -> (u32, Duration)| {
        let samples: Vec<_> = runs
            .iter()
            .map(|r| {
                let (c, late) = f(*r);
                (c, late, *r)
            })
            .collect();
        let (calls, mean, worst) = summarize(&samples);
        let _ = writeln!(
            out,
            "| {name} | {calls:.1} | {mean:.1}% of the run | {worst:.1}% |"
        );
    };
    row("fixed 30 s (Airflow's default)", &|r| {
        fixed(r, Duration::from_secs(30))
    });
    row("fixed 10 s (the SDK's waiter)", &|r| {
        fixed(r, Duration::from_secs(10))
    });
    row("adaptive, no history yet (first runs)", &|r| {
        walk(r, &policy, RunHistory::default())
    });
    row("adaptive, with the backfill's run lengths", &|r| {
        walk(r, &policy, history)
    });

    // The real fleet on a clock 60 times faster: runs of 16 to 24 s stand for 16 to
    // 24 minutes.
    // One run: its figures are already over every partition of it.
    let (n, cap) = sizes.pick((4, 4), (40, 10));
    let runs = [fleet_run(n, cap, 16_000, 8_000, 60.0).await];
    let calls = median(runs.iter().map(|r| r.calls_per_run).collect());
    let mean = median(runs.iter().map(|r| r.delay_mean).collect());
    let p95 = median(runs.iter().map(|r| r.delay_p95).collect());
    let _ = writeln!(
        out,
        "\nThe real fleet (one worker, simulator over HTTP), clock x60: {n} runs of 16-24 s \
         (standing for 16-24 min) under a cap of {cap}; the first {cap} run without history:\n\n\
         | measured | runs/get calls per run | detection delay, mean | tail |\n| --- | --- | --- | --- |\n\
         | adaptive, every run | {calls:.1} | {mean:.1}% of the run | p95 {p95:.1}% |"
    );
    let (count, h_calls, h_mean, h_worst) = runs[0].history;
    let _ = writeln!(
        out,
        "| adaptive, the {count} runs started with history | {h_calls:.1} | {h_mean:.1}% of the run | worst {h_worst:.1}% |"
    );
    out
}

pub async fn makespan(sizes: Sizes) -> String {
    let (n, cap) = sizes.pick((20u32, 10i64), (180, 20));
    // Runs of 2 to 4 s (a clock x60 on 2-4 minute runs).
    let compressed = makespan_table(sizes, n, cap, (2_000, 2_000), 60.0).await;
    // The same fleet on a real clock: runs of exactly `run_ms`, every timing as shipped.
    let (n, cap, run_ms) = sizes.pick((10u32, 5i64, 3_000u64), (60, 10, 20_000));
    let real = makespan_table(sizes, n, cap, (run_ms, 0), 1.0).await;
    format!("{compressed}\n{real}")
}

/// Makespan of `n` runs of `run_ms` (+ up to `spread_ms`) under `cap`, with the worker's
/// clock `scale` times faster, against the ideal and the lower bound, as a table.
async fn makespan_table(sizes: Sizes, n: u32, cap: i64, run: (u64, u64), scale: f64) -> String {
    let mut results = Vec::new();
    for _ in 0..sizes.repeats {
        results.push(fleet_run(n, cap, run.0, run.1, scale).await);
    }
    let makespan = median(results.iter().map(|r| r.makespan_s).collect());
    let work = median(results.iter().map(|r| r.work_s).collect());
    let waits = |f: fn(&Timeline) -> f64| median(results.iter().map(|r| f(&r.timeline)).collect());
    let mean = work / f64::from(n);
    let waves = f64::from(n).div_euclid(cap as f64) + f64::from(n % cap as u32 != 0);
    let ideal = waves * mean;
    let bound = work / cap as f64;
    let clock = if scale == 1.0 {
        "a real clock".to_owned()
    } else {
        format!("a clock x{scale:.0}")
    };
    let (low, high) = (run.0 as f64 / 1000.0, (run.0 + run.1) as f64 / 1000.0);
    let lengths = if run.1 == 0 {
        format!("{low} s")
    } else {
        format!("{low}-{high} s")
    };
    format!(
        "## Makespan: {n} partitions, runs of {lengths} (mean {mean:.2} s) on {clock}, cap {cap}\n\n\
         | measure | seconds |\n| --- | --- |\n\
         | measured makespan (first trigger to last success recorded), median of {} | {makespan:.1} |\n\
         | ideal `ceil(N / cap) x mean duration` = {waves:.0} x {mean:.2} | {ideal:.1} |\n\
         | lower bound: total work / cap | {bound:.1} |\n\
         | the same runs in the same order with no orchestration delay (list scheduling) | {:.1} |\n\
         | mean wait, trigger to run start | {:.2} |\n\
         | mean wait, run end to success recorded: first wave / later runs | {:.2} / {:.2} |\n\
         | mean wait, slot freed to the next trigger | {:.2} |\n\n\
         Makespan is {:.1}% of the ideal, {:.1}% of the lower bound and {:.1}% of the same runs \
         without orchestration delay; of the ideal, run by run: {}.\n",
        sizes.repeats,
        waits(|t| t.no_overhead),
        waits(|t| t.start),
        waits(|t| t.detect_first),
        waits(|t| t.detect_later),
        waits(|t| t.admit),
        makespan / ideal * 100.0,
        makespan / bound * 100.0,
        makespan / waits(|t| t.no_overhead) * 100.0,
        results
            .iter()
            .map(|r| format!("{:.1}%", r.makespan_s / ideal * 100.0))
            .collect::<Vec<_>>()
            .join(", ")
    )
}
