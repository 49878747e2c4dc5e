//! `backfill cancel` finishes the job (issue 14 point 5): runs whose id was never
//! recorded (lost `run-now` answers) are found by their job parameters and cancelled, an
//! error on one run does not stop the others, and the command can be repeated.

#![allow(clippy::unwrap_used)] // integration tests: a panic is a failed assertion

mod support;

use std::time::Duration;

use backfill_simulator::{FaultKind, FaultRule, SimConfig};
use support::fleet::fast_sim;
use support::process::{run, text};
use support::process_fleet::ProcessFleet;

fn fault(endpoint: &str, kind: FaultKind, times: Option<u64>) -> FaultRule {
    FaultRule {
        endpoint: endpoint.into(),
        kind,
        partition: None,
        times,
        probability: None,
        retry_after_s: 1,
        delay_ms: 0,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_runs_whose_id_was_never_recorded_past_single_errors() {
    let sim = SimConfig {
        running_ms: 120_000,
        faults: vec![
            // Every run-now acts, and its answer is lost: the runs exist, unrecorded.
            fault("jobs/run-now", FaultKind::LostResponse, None),
            // The first cancel of a run is refused.
            fault("jobs/runs/cancel", FaultKind::Forbidden, Some(1)),
        ],
        ..fast_sim()
    };
    let mut fleet = ProcessFleet::new(&support::amqp_url_string(), sim).await;
    fleet.produce(4, 4);
    fleet.spawn_worker();
    support::eventually("four unrecorded runs", Duration::from_secs(60), || async {
        (fleet.sim.sim.active_runs() == 4).then_some(())
    })
    .await;
    let s = fleet.status();
    assert_eq!(s["states"]["triggering"], 4, "no run id recorded: {s}");

    let first = run(&fleet.env, &["cancel", "--backfill-id", "fleet", "--yes"]);
    assert_eq!(first.status.code(), Some(1), "{}", text(&first.stdout));
    assert!(
        text(&first.stderr).contains("PERMISSION_DENIED"),
        "{}",
        text(&first.stderr)
    );
    assert_eq!(
        fleet.sim.sim.active_runs(),
        1,
        "the other three were cancelled"
    );

    let again = run(&fleet.env, &["cancel", "--backfill-id", "fleet", "--yes"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(fleet.sim.sim.active_runs(), 0, "no run left running");
    assert_eq!(fleet.status()["states"]["cancelled"], 4);
    fleet.teardown().await;
}
