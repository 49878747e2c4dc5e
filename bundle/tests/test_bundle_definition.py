"""The bundle's YAML: three jobs with concurrency and queueing set, the parameters the fleet
sends, notebook tasks whose notebooks call the package and exit with its result."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

import contract_fields

BUNDLE = Path(__file__).resolve().parent.parent

# What the fleet passes to each job (worker and reconciler), besides `pin.<table>`.
FLEET_SENDS = {
    "backfill_partition": {
        "partition_date",
        "backfill_id",
        "manifest_id",
        "attempt",
        "staging_table",
        "code_version",
    },
    "promotion": {"backfill_id", "manifest_id", "target_table", "staging_table", "partitions"},
    "rollback": {"backfill_id", "target_table", "partition_date", "restore_version"},
}
ENTRY_POINTS = {
    "backfill_partition": "run_backfill_partition",
    "promotion": "run_promotion",
    "rollback": "run_rollback",
}


def jobs() -> dict[str, tuple[Path, dict[str, Any]]]:
    found = {}
    for path in sorted((BUNDLE / "resources").glob("*.yml")):
        for key, job in yaml.safe_load(path.read_text())["resources"]["jobs"].items():
            found[key] = (path, job)
    return found


def test_the_bundle_has_dev_and_prod_targets_and_table_variables() -> None:
    config = yaml.safe_load((BUNDLE / "databricks.yml").read_text())
    assert set(config["targets"]) == {"dev", "prod"}
    assert {"catalog", "schema", "raw_root", "cutover_date"} <= set(config["variables"])
    assert config["include"] == ["resources/*.yml"]


def test_the_bundle_defines_exactly_the_three_jobs() -> None:
    assert set(jobs()) == set(FLEET_SENDS)


@pytest.mark.parametrize("key", sorted(FLEET_SENDS))
def test_each_job_queues_caps_concurrency_and_takes_the_fleets_parameters(key: str) -> None:
    _, job = jobs()[key]
    assert job["queue"] == {"enabled": True}
    assert job["max_concurrent_runs"]
    names = {p["name"] for p in job["parameters"]}
    assert FLEET_SENDS[key] <= names
    assert all("default" in p for p in job["parameters"])


@pytest.mark.parametrize("key", sorted(FLEET_SENDS))
def test_each_task_is_a_notebook_that_calls_the_package_and_exits_with_its_result(
    key: str,
) -> None:
    path, job = jobs()[key]
    (task,) = job["tasks"]
    assert task["max_retries"] == 0
    notebook = (path.parent / task["notebook_task"]["notebook_path"]).resolve()
    source = notebook.read_text()
    assert source.startswith("# Databricks notebook source\n")
    assert f"{ENTRY_POINTS[key]}(spark, job_parameters(dbutils))" in source
    assert source.rstrip().endswith("dbutils.notebook.exit(json.dumps(result))")
    assert task["libraries"] == [{"whl": "../dist/*.whl"}]


# The fleet's side of the contract (Rust), when the repository has it.
FLEET_CONTRACT = BUNDLE.parent / "contract" / "src" / "jobs.rs"
RESULTS = {
    "backfill": contract_fields.BACKFILL_RESULT,
    "promotion": contract_fields.PROMOTION_RESULT | contract_fields.PROMOTION_ITEM,
    "rollback": contract_fields.ROLLBACK_RESULT,
}
JOB_OF_MODULE = {"backfill": "backfill_partition", "promotion": "promotion", "rollback": "rollback"}


def fleet_names(module: str, kind: str) -> set[str]:
    """String constants of `pub mod <module> { pub mod <kind> { ... } }` in jobs.rs."""
    text = FLEET_CONTRACT.read_text()
    body = re.split(r"\npub mod ", text.split(f"\npub mod {module} ", 1)[1])[0]
    block = body.split(f"pub mod {kind} ", 1)[1].split("\n    }", 1)[0]
    return set(re.findall(r'pub const \w+: &str = "([^"]+)";', block))


@pytest.mark.skipif(not FLEET_CONTRACT.exists(), reason="the fleet's contract module is absent")
@pytest.mark.parametrize("module", sorted(JOB_OF_MODULE))
def test_the_fleets_names_are_the_bundles(module: str) -> None:
    _, job = jobs()[JOB_OF_MODULE[module]]
    params = {p["name"] for p in job["parameters"]}
    sent = fleet_names(module, "param") - {"pin."}
    assert sent <= params, f"{module}: the fleet sends {sorted(sent - params)} the job lacks"
    read = fleet_names(module, "result") | (
        fleet_names(module, "item") if module == "promotion" else set()
    )
    assert read <= RESULTS[module], f"{module}: the fleet reads {sorted(read - RESULTS[module])}"
