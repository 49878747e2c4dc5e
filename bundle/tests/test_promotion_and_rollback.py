"""Promotion and rollback on real Delta tables, with the live pipeline writing meanwhile."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
from pyspark.sql import functions as F

import sample
import target
from conftest import World
from contract_fields import PROMOTION_ITEM, PROMOTION_RESULT, ROLLBACK_RESULT
from gold_rows import sorted_rows
from usage_backfill import JobError, PartitionRefused, run_promotion, run_rollback
from usage_backfill.commits import latest_version


def promotion_params(
    world: World, staging: str, target_table: str, versions: dict[Any, int]
) -> dict[str, str]:
    return {
        "backfill_id": "bf-test",
        "manifest_id": "m-1",
        "target_table": target_table,
        "staging_table": staging,
        "partitions": json.dumps(
            [{"partition_date": d.isoformat(), "staging_version": v} for d, v in versions.items()]
        ),
        "cutover_date": sample.CUTOVER.isoformat(),
        "warehouse_dir": str(world.warehouse),
    }


@pytest.fixture(scope="module")
def promoted(world: World, backfilled: tuple[str, dict]) -> dict[str, Any]:
    """D1 and D2 promoted into a seeded target while the live pipeline appends three times
    to the cutover day's partition."""
    staging, results = backfilled
    table = target.seed(world)
    seeded_version = latest_version(world.tables, table)
    versions = {d: results[d]["staging_version"] for d in (sample.D1, sample.D2)}
    params = promotion_params(world, staging, table, versions)
    errors: list[BaseException] = []
    appended: list[str] = []
    promoting = threading.Event()
    done = threading.Event()

    def live() -> None:
        # Appends for as long as the promotion runs (and at least three times).
        try:
            promoting.wait()
            while not done.is_set() or len(appended) < 3:
                customer = f"live-{len(appended)}"
                target.live_append(world, table, customer)
                appended.append(customer)
        except BaseException as e:  # reported by the test
            errors.append(e)

    writer = threading.Thread(target=live)
    writer.start()
    promoting.set()
    try:
        result = run_promotion(world.spark, params)
    finally:
        done.set()
        writer.join()
    assert not errors, errors
    return {
        "table": table,
        "staging": staging,
        "seeded_version": seeded_version,
        "params": params,
        "result": result,
        "versions": versions,
        "appended": appended,
    }


def test_promotion_copies_each_proven_staging_version_into_its_partition(
    world: World, promoted: dict[str, Any]
) -> None:
    current = world.tables.read(promoted["table"])
    for day, version in promoted["versions"].items():
        proven = world.tables.read(promoted["staging"], version)
        assert sorted_rows(current, day) == sorted_rows(proven, day)


def test_promotion_reports_versions_around_each_partitions_commit(
    world: World, promoted: dict[str, Any]
) -> None:
    result = promoted["result"]
    assert set(result) == PROMOTION_RESULT
    assert result["target_table"] == promoted["table"]
    assert [p["partition_date"] for p in result["partitions"]] == ["2024-03-01", "2024-03-02"]
    seeded = world.tables.read(promoted["table"], promoted["seeded_version"])
    for item in result["partitions"]:
        assert set(item) == PROMOTION_ITEM
        day = sample.dt.date.fromisoformat(item["partition_date"])
        before = world.tables.read(promoted["table"], item["version_before"])
        after = world.tables.read(promoted["table"], item["version_after"])
        staged = world.tables.read(promoted["staging"], item["staging_version"])
        assert sorted_rows(before, day) == sorted_rows(seeded, day)
        assert sorted_rows(after, day) == sorted_rows(staged, day)
        commit = (
            world.tables.history(promoted["table"])
            .where(F.col("version") == item["version_after"])
            .first()
        )
        metadata = json.loads(commit["userMetadata"])
        assert metadata["job"] == "promotion"
        assert metadata["partition_date"] == item["partition_date"]
        assert metadata["staging_version"] == item["staging_version"]
    assert result["version_after"] == result["partitions"][-1]["version_after"]


def test_promotion_leaves_other_partitions_and_the_live_pipelines_commits(
    world: World, promoted: dict[str, Any]
) -> None:
    current = world.tables.read(promoted["table"])
    seeded = world.tables.read(promoted["table"], promoted["seeded_version"])
    assert sorted_rows(current, sample.D3) == sorted_rows(seeded, sample.D3)
    live = {
        r["customer_id"] for r in current.where(F.col("usage_date") == sample.CUTOVER).collect()
    }
    assert live == {"old", *promoted["appended"]}
    appends = [
        h["version"]
        for h in world.tables.history(promoted["table"]).collect()
        if h["userMetadata"] is None and h["operation"] == "WRITE"
    ]
    assert len(appends) == 1 + len(promoted["appended"])  # the seed and every live append
    # The live pipeline committed while the promotion was running.
    result = promoted["result"]
    assert any(result["version_before"] < v < result["version_after"] for v in appends)


def test_promoting_again_at_the_same_versions_changes_nothing(
    world: World, promoted: dict[str, Any]
) -> None:
    before = latest_version(world.tables, promoted["table"])
    again = run_promotion(world.spark, promoted["params"])
    assert latest_version(world.tables, promoted["table"]) == before, "no new commit"
    # A retry (say after the run died between partitions) reports the commit that did
    # promote each partition, so a rollback restores the version before the promotion,
    # not the promoted one.
    first = {p["partition_date"]: p for p in promoted["result"]["partitions"]}
    table = promoted["table"]

    def partition_at(version: int, day: str) -> list:
        rows = world.tables.read(table, version).where(F.col("usage_date") == F.lit(day))
        return sorted_rows(rows)

    for item in again["partitions"]:
        day, earlier = item["partition_date"], first[item["partition_date"]]
        assert item["version_after"] == earlier["version_after"], "the promoting commit"
        # The version just before that commit: the partition as it was before promotion
        # (live appends to other partitions may lie in between).
        assert item["version_before"] == earlier["version_after"] - 1
        assert partition_at(item["version_before"], day) == partition_at(
            earlier["version_before"], day
        )


def test_promotion_refuses_a_version_that_is_not_the_partitions_write(
    world: World, promoted: dict[str, Any], backfilled: tuple[str, dict]
) -> None:
    _, results = backfilled
    wrong = {sample.D1: results[sample.D2]["staging_version"]}
    params = promotion_params(world, promoted["staging"], promoted["table"], wrong)
    before = latest_version(world.tables, promoted["table"])
    with pytest.raises(JobError, match="not a backfill write of partition 2024-03-01"):
        run_promotion(world.spark, params)
    assert latest_version(world.tables, promoted["table"]) == before


def test_promotion_refuses_partitions_the_live_pipeline_owns(
    world: World, promoted: dict[str, Any]
) -> None:
    params = promotion_params(world, promoted["staging"], promoted["table"], {sample.CUTOVER: 1})
    with pytest.raises(PartitionRefused, match="cutover"):
        run_promotion(world.spark, params)


def test_rollback_restores_one_partition_exactly_and_nothing_else(
    world: World, promoted: dict[str, Any]
) -> None:
    table = promoted["table"]
    d1 = promoted["result"]["partitions"][0]
    before_rollback = world.tables.read(table, latest_version(world.tables, table))
    params = {
        "target_table": table,
        "partition_date": d1["partition_date"],
        "restore_version": str(d1["version_before"]),
        "backfill_id": "bf-test",
        "warehouse_dir": str(world.warehouse),
    }
    result = run_rollback(world.spark, params)
    assert set(result) == ROLLBACK_RESULT
    assert result["restore_version"] == d1["version_before"]
    assert result["version_after"] == latest_version(world.tables, table)
    assert result["version_after"] > result["version_before"]
    current = world.tables.read(table)
    restored_from = world.tables.read(table, d1["version_before"])
    assert sorted_rows(current, sample.D1) == sorted_rows(restored_from, sample.D1)
    for day in (sample.D2, sample.D3, sample.CUTOVER):
        assert sorted_rows(current, day) == sorted_rows(before_rollback, day)
    operations = {r["operation"] for r in world.tables.history(table).collect()}
    assert "RESTORE" not in operations

    again = run_rollback(world.spark, params)
    assert again["version_before"] == again["version_after"] == result["version_after"]


def test_rollback_refuses_a_version_the_table_does_not_have(
    world: World, promoted: dict[str, Any]
) -> None:
    params = {
        "target_table": promoted["table"],
        "partition_date": "2024-03-01",
        "restore_version": "999",
        "warehouse_dir": str(world.warehouse),
    }
    with pytest.raises(JobError, match="no version 999"):
        run_rollback(world.spark, params)
