"""The bundle's YAML: three jobs with concurrency and queueing set, the parameters the fleet
sends, notebook tasks whose notebooks call the package and exit with its result."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

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
