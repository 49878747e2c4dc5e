"""The notebooks the bundle deploys, run as Databricks would run them, with the local
stand-in for `dbutils`: they hand the package's result to `dbutils.notebook.exit`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import sample
import target
from conftest import World
from usage_backfill.platform import LocalDbutils, NotebookExit

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"


def run_notebook(world: World, name: str, params: dict[str, str]) -> dict[str, Any]:
    source = (NOTEBOOKS / f"{name}.py").read_text()
    assert source.startswith("# Databricks notebook source\n")
    code = compile(source, str(NOTEBOOKS / f"{name}.py"), "exec")
    with pytest.raises(NotebookExit) as ended:
        exec(code, {"spark": world.spark, "dbutils": LocalDbutils(params)})
    return json.loads(ended.value.value)


def test_promotion_and_rollback_notebooks_exit_with_the_jobs_result(
    world: World, backfilled: tuple[str, dict]
) -> None:
    staging, results = backfilled
    table = target.seed(world)
    version = results[sample.D3]["staging_version"]
    promoted = run_notebook(
        world,
        "promotion",
        {
            "backfill_id": "bf-nb",
            "manifest_id": "m-1",
            "target_table": table,
            "staging_table": staging,
            "partitions": json.dumps(
                [{"partition_date": "2024-03-03", "staging_version": version}]
            ),
            "warehouse_dir": str(world.warehouse),
        },
    )
    (item,) = promoted["partitions"]
    assert item["version_after"] == item["version_before"] + 1
    rolled_back = run_notebook(
        world,
        "rollback",
        {
            "target_table": table,
            "partition_date": "2024-03-03",
            "restore_version": str(item["version_before"]),
            "backfill_id": "bf-nb",
            "warehouse_dir": str(world.warehouse),
        },
    )
    assert rolled_back["version_before"] == item["version_after"]
    assert rolled_back["version_after"] == item["version_after"] + 1


def test_backfill_notebook_refuses_the_cutover_day_with_a_clear_error(world: World) -> None:
    from usage_backfill import PartitionRefused

    params = world.backfill_params(sample.CUTOVER, world.fresh_table("staging"))
    with pytest.raises(PartitionRefused, match="live pipeline owns it"):
        run_notebook(world, "backfill_partition", params)
