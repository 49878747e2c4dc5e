use super::*;

use chrono::NaiveDate;

/// Walks a run of `run` the way a chain of checks does (the first check at `first`, each
/// next when the policy says); returns the checks made and how late the end was seen.
fn walk(run: Duration, p: &PollPolicy, h: RunHistory, phase: f64) -> (u32, Duration) {
    let (mut age, mut calls) = (p.first, 1u32);
    while age < run {
        age += next_check_in(age, p, h, phase);
        calls += 1;
    }
    (calls, age - run)
}

fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s)
}

#[test]
fn without_history_polling_starts_soon_and_slows_with_age() {
    let p = PollPolicy::default();
    let none = RunHistory::default();
    let at = |s: u64| next_check_in(Duration::from_secs(s), &p, none, 0.0);
    assert_eq!(at(0), Duration::from_secs(1));
    assert_eq!(at(2), Duration::from_secs(1));
    // On the grid 2 s x 1.5^k: the point after 60 s is 2 x 1.5^9 = 76.88 s.
    let step = at(60).as_secs_f64();
    assert!((step - 16.88).abs() < 0.01, "{step}");
    assert_eq!(at(10 * 3600), Duration::from_secs(600));
    // Too little history is no history.
    let few = RunHistory {
        finished: 4,
        shortest: Duration::from_secs(900),
        mean: Duration::from_secs(1200),
    };
    for age in [5, 60, 1000] {
        let age = Duration::from_secs(age);
        assert_eq!(
            next_check_in(age, &p, few, 0.3),
            next_check_in(age, &p, none, 0.3)
        );
    }
}

#[test]
fn without_history_every_phase_sees_an_end_within_half_the_run() {
    let p = PollPolicy::default();
    for run in [3.0, 20.0, 30.0, 95.0, 1200.0, 5000.0] {
        for i in 0..20 {
            let phase = f64::from(i) / 20.0;
            let (_, late) = walk(secs(run), &p, RunHistory::default(), phase);
            assert!(
                late <= secs(run * 0.5 + 1.0),
                "{run} s, phase {phase}: seen {late:?} late"
            );
            // Never two looks closer than `first`.
            for age in [5.0, 40.0, run] {
                let step = next_check_in(secs(age), &p, RunHistory::default(), phase);
                assert!(step >= p.first, "{age} s, phase {phase}: {step:?}");
            }
        }
    }
}

#[test]
fn the_runs_of_one_wave_are_looked_at_on_different_ages() {
    // Ten consecutive dates start together: the first end among them is seen early,
    // though each alone may be seen up to half the run late.
    let p = PollPolicy::default();
    let day = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap_or_default();
    let phases: Vec<f64> = (0..10)
        .map(|i| check_phase(day + chrono::Days::new(i)))
        .collect();
    assert!(phases.iter().all(|f| (0.0..1.0).contains(f)));
    for run in [20.0, 30.0, 45.0, 90.0, 1200.0] {
        let first_seen = phases
            .iter()
            .map(|f| walk(secs(run), &p, RunHistory::default(), *f).1)
            .min()
            .unwrap_or_default();
        assert!(
            first_seen <= secs(run * 0.08),
            "{run} s: the first end of the wave seen {first_seen:?} late"
        );
    }
}

#[test]
fn with_history_polling_is_sparse_until_runs_end_then_close() {
    let p = PollPolicy::default();
    let h = RunHistory {
        finished: 20,
        shortest: Duration::from_secs(1000),
        mean: Duration::from_secs(1200),
    };
    let at = |s: u64| next_check_in(Duration::from_secs(s), &p, h, 0.0);
    // Early: each check at eight times the age of the last...
    assert_eq!(at(1), Duration::from_secs(7));
    assert_eq!(at(64), Duration::from_secs(448));
    // ...landing exactly on the window's start: 0.8 x mean = 960 s < shortest.
    assert_eq!(at(512), Duration::from_secs(448));
    // In the window: every 4% of the age, wherever the runs may end.
    assert_eq!(at(960), Duration::from_millis(38_400));
    assert_eq!(at(1200), Duration::from_secs(48));
    // Runs alike (the mean within a tenth of the shortest) predict their ends: the
    // shortest's (1100 s + 0.5%) and the mean's (1200 s + 0.5%) are never stepped over.
    let alike = RunHistory {
        shortest: Duration::from_secs(1100),
        ..h
    };
    let at = |s: u64| next_check_in(Duration::from_secs(s), &p, alike, 0.0);
    assert_eq!(at(1090), Duration::from_millis(15_500));
    assert_eq!(at(1200), Duration::from_secs(6));
    assert_eq!(at(1300), Duration::from_secs(52));
    // A shortest run sooner than 0.8 x mean opens the window there.
    let spread = RunHistory {
        shortest: Duration::from_secs(600),
        ..h
    };
    assert_eq!(
        next_check_in(Duration::from_secs(512), &p, spread, 0.0),
        Duration::from_secs(88)
    );
}

#[test]
fn runs_as_long_as_the_last_ones_are_seen_just_after_they_end() {
    let p = PollPolicy::default();
    for run in [5.0, 20.0, 60.0, 600.0] {
        let h = RunHistory {
            finished: 10,
            shortest: secs(run),
            mean: secs(run),
        };
        let (calls, late) = walk(secs(run), &p, h, 0.0);
        let margin = (run * 0.005).max(0.05);
        assert!(late <= secs(margin + 1e-3), "{run} s: seen {late:?} late");
        assert!(calls <= 10, "{run} s: {calls} calls");
    }
}

/// The calls a 20-minute run costs and how late its end is seen, with and without
/// history, by walking the policy the way a chain of checks does.
#[test]
fn twenty_minute_runs_cost_a_third_of_a_30s_poll_and_are_seen_within_5_percent() {
    let p = PollPolicy::default();
    let h = RunHistory {
        finished: 50,
        shortest: Duration::from_secs(960),
        mean: Duration::from_secs(1200),
    };
    // Runs of 20 minutes +-20%, every 12 s of length.
    let mut total = 0;
    for secs in (960u64..=1440).step_by(12) {
        let run = Duration::from_secs(secs);
        let (calls, late) = walk(run, &p, h, 0.0);
        assert!(calls <= 16, "{secs} s: {calls} calls");
        assert!(late <= run.mul_f64(0.05), "{secs} s: seen {late:?} late");
        total += calls;
    }
    assert!(total * 3 <= 41 * 40, "{total} calls for 41 runs");
    let (calls, _) = walk(Duration::from_secs(1200), &p, h, 0.0);
    assert!(calls * 3 <= 40, "{calls} calls against 40 for a 30 s poll");
}

#[test]
fn a_run_is_first_looked_at_when_the_shortest_finished_run_had_ended() {
    let p = PollPolicy::default();
    let history = |finished, shortest: f64| RunHistory {
        finished,
        shortest: secs(shortest),
        mean: secs(shortest * 1.5),
    };
    // Without enough history: `first`, however short the runs so far.
    assert_eq!(first_check_in(&p, history(0, 0.0)), p.first);
    assert_eq!(first_check_in(&p, history(4, 0.01)), p.first);
    // Runs shorter than `first`: at the shortest one's end and a margin (50 ms at least).
    assert_eq!(first_check_in(&p, history(5, 0.0)), secs(0.05));
    assert_eq!(first_check_in(&p, history(5, 0.4)), secs(0.45));
    // Runs longer than `first`: `first`, as before (an early failure is still caught).
    assert_eq!(first_check_in(&p, history(5, 60.0)), p.first);
}
