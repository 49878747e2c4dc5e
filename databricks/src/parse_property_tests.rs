//! Property: no JSON at all (random, or a real run with fields swapped for anything)
//! makes the run parser or the classifier panic; what parses classifies.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use crate::classify;
use crate::models::{Run, RunOutput, RunsPage};

const STATES: [&str; 12] = [
    "QUEUED",
    "PENDING",
    "RUNNING",
    "TERMINATING",
    "TERMINATED",
    "SKIPPED",
    "INTERNAL_ERROR",
    "BLOCKED",
    "WAITING",
    "SUCCESS",
    "FAILED",
    "NEVER_HEARD_OF_IT",
];

fn random_value(rng: &mut StdRng, depth: u32) -> Value {
    match rng.random_range(0..if depth > 3 { 6 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.random::<bool>()),
        2 => json!(rng.random::<i64>()),
        3 => json!(rng.random::<f64>()),
        4 => json!(STATES[rng.random_range(0..STATES.len())]),
        5 => json!(rng.random_range(0..3).to_string()),
        6 => Value::Array(
            (0..rng.random_range(0..4))
                .map(|_| random_value(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "run_id",
                "state",
                "status",
                "tasks",
                "life_cycle_state",
                "result_state",
                "termination_details",
                "code",
                "type",
                "end_time",
                "job_parameters",
                "name",
                "value",
            ];
            Value::Object(
                (0..rng.random_range(0..5))
                    .map(|_| {
                        (
                            keys[rng.random_range(0..keys.len())].to_owned(),
                            random_value(rng, depth + 1),
                        )
                    })
                    .collect(),
            )
        }
    }
}

fn real_run() -> Value {
    json!({
        "run_id": 1, "job_id": 2, "end_time": 0, "start_time": 5,
        "job_parameters": [{"name": "partition_date", "value": "2026-01-01"}],
        "state": {"life_cycle_state": "TERMINATED", "result_state": "FAILED", "state_message": "x"},
        "status": {"state": "TERMINATED", "termination_details": {"code": "CLOUD_FAILURE", "type": "CLOUD_FAILURE"}},
        "tasks": [{"run_id": 3, "task_key": "t", "state": {"life_cycle_state": "RUNNING"}}]
    })
}

/// Replaces one randomly chosen leaf or member (at any depth) with a random value.
fn mutate(value: &mut Value, rng: &mut StdRng) {
    match value {
        Value::Object(map) if !map.is_empty() && rng.random_bool(0.7) => {
            let key = map
                .keys()
                .nth(rng.random_range(0..map.len()))
                .cloned()
                .unwrap_or_default();
            if let Some(child) = map.get_mut(&key) {
                mutate(child, rng);
            }
        }
        Value::Array(items) if !items.is_empty() && rng.random_bool(0.7) => {
            let i = rng.random_range(0..items.len());
            mutate(&mut items[i], rng);
        }
        other => *other = random_value(rng, 0),
    }
}

#[test]
fn random_and_mutated_json_never_panics_the_parser_or_classifier() {
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let mut parsed = 0;
    for i in 0..20_000 {
        let value = if i % 2 == 0 {
            random_value(&mut rng, 0)
        } else {
            let mut run = real_run();
            for _ in 0..rng.random_range(1..4) {
                mutate(&mut run, &mut rng);
            }
            run
        };
        let text = value.to_string();
        if let Ok(run) = serde_json::from_str::<Run>(&text) {
            parsed += 1;
            let _ = classify(&run);
            let _ = run.parameter("partition_date");
            let _ = run.ended_at();
        }
        let _ = serde_json::from_str::<RunOutput>(&text);
        let _ = serde_json::from_str::<RunsPage>(&text);
        // Truncated bodies (a connection cut mid-answer) are errors, not panics.
        let cut = &text[..text.len() / 2];
        assert!(serde_json::from_str::<Run>(cut).is_err() || cut.is_empty());
    }
    assert!(
        parsed > 500,
        "the generator should produce many parseable runs, got {parsed}"
    );
}
