"""The backfill partition job on real Spark and Delta Lake, over the sample with every trap."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from typing import Any

import pytest
from pyspark.sql import functions as F

import sample
from conftest import World
from contract_fields import BACKFILL_RESULT
from gold_rows import as_dict, sorted_rows
from usage_backfill import PartitionRefused, run_backfill_partition
from usage_backfill.gold import SCHEMA, schema_hash


@pytest.mark.parametrize("day", [sample.D1, sample.D2, sample.D3])
def test_gold_equals_a_plain_python_computation_of_the_definition(
    world: World, backfilled: tuple[str, dict], day: Any
) -> None:
    staging, results = backfilled
    result = results[day]
    written = world.tables.read(staging, result["staging_version"])
    assert as_dict(written, day) == sample.expected_gold(world.raw, day)
    assert result["row_count"] == len(sample.expected_gold(world.raw, day))


def test_result_has_exactly_the_contract_fields_and_is_json(
    backfilled: tuple[str, dict],
) -> None:
    staging, results = backfilled
    result = results[sample.D1]
    assert set(result) == BACKFILL_RESULT
    assert json.loads(json.dumps(result)) == result
    assert result["staging_table"] == staging
    assert result["partition_date"] == "2024-03-01"
    assert result["schema_hash"] == schema_hash(SCHEMA)
    assert result["duplicate_keys"] == 0
    assert result["null_customer_ids"] == 0
    assert result["production_row_count"] == 0
    assert result["dim_versions"] == {sample.DIM_TABLE: 0}


def test_each_write_is_one_stamped_commit_replacing_only_its_partition(
    world: World, backfilled: tuple[str, dict]
) -> None:
    staging, results = backfilled
    history = world.tables.history(staging).collect()
    by_version = {h["version"]: h for h in history}
    for day, result in results.items():
        commit = by_version[result["staging_version"]]
        metadata = json.loads(commit["userMetadata"])
        assert metadata["backfill_id"] == "bf-test"
        assert metadata["partition_date"] == day.isoformat()
        assert metadata["attempt"] == 1
        assert commit["operation"] == "WRITE"
        assert "usage_date" in commit["operationParameters"]["predicate"]
    # Later partitions' writes left the earlier ones in place.
    latest = world.tables.read(staging)
    for day in results:
        assert as_dict(latest, day) == sample.expected_gold(world.raw, day)


def test_duplicate_files_are_read_once_and_reported(backfilled: tuple[str, dict]) -> None:
    _, results = backfilled
    d1 = results[sample.D1]
    duplicates = {d["path"].rsplit("/", 1)[-1]: d["duplicate_of"] for d in d1["duplicate_files"]}
    # The earliest copy by (ingest date, path) is kept.
    assert set(duplicates) == {"events-a-copy.json", "events-a-resent.json"}
    kept = duplicates["events-a-resent.json"]
    assert kept.endswith("ingest_date=2024-03-01/events-a.json")
    assert kept in d1["source_files"]
    names = [p.rsplit("/", 1)[-1] for p in d1["source_files"]]
    assert "events-a-copy.json" not in names and "very-late.json" not in names
    assert "late.json" in names


def test_drifted_files_extra_fields_are_counted_not_lost(
    world: World, backfilled: tuple[str, dict]
) -> None:
    staging, results = backfilled
    # D1: the `region` field and the line that is not JSON.
    assert results[sample.D1]["rescued_records"] == 2
    # D2: the drifted Parquet file's `source_system` column, on both of its D2 records
    # (e13, e14); e12 came from a file without drift.
    assert results[sample.D2]["rescued_records"] == 2
    # The drifted records themselves (customerId, units as strings) are in gold.
    d1 = as_dict(world.tables.read(staging, results[sample.D1]["staging_version"]), sample.D1)
    assert d1[(sample.D1, "c3", "basic")] == (2, Decimal("6.625"))  # e6 and drifted e9


def test_rescued_column_keeps_the_unknown_field_values(world: World) -> None:
    from usage_backfill import events, sources

    files = sources.list_window(world.spark, str(world.raw.root), sample.D1, 0)
    records = events.to_contract(events.raw_records(world.spark, tuple(files)))
    rescued = {
        r["event_id"]: r[events.RESCUED]
        for r in records.where(F.col(events.RESCUED).isNotNull()).collect()
    }
    assert json.loads(rescued["e9"]) == {"region": "eu-west-1"}
    assert rescued[None] == "this line is not JSON"


def test_a_late_record_lands_in_its_event_dates_partition(
    world: World, backfilled: tuple[str, dict]
) -> None:
    staging, results = backfilled
    assert results[sample.D1]["late_records"] == 1  # e15, arrived in D3's folder
    assert results[sample.D3]["late_records"] == 0
    d1 = as_dict(world.tables.read(staging, results[sample.D1]["staging_version"]), sample.D1)
    # e1, e2, e8, e10 (drifted) and e15 (late): e15's 100 units are in D1, not in D3.
    assert d1[(sample.D1, "c1", "basic")] == (5, Decimal("111.500002"))
    d3 = as_dict(world.tables.read(staging, results[sample.D3]["staging_version"]), sample.D3)
    assert all(units < 100 for _, units in d3.values())


def test_a_dimension_change_after_the_pin_does_not_change_the_result(
    world: World, backfilled: tuple[str, dict]
) -> None:
    staging, results = backfilled
    pinned = as_dict(world.tables.read(staging, results[sample.D1]["staging_version"]), sample.D1)
    assert (sample.D1, "c1", "basic") in pinned
    assert pinned == sample.expected_gold(world.raw, sample.D1, sample.DIM_V0)
    # The change is real: pinned at the later version, c1 would be on another plan.
    other = world.fresh_table("staging")
    run_backfill_partition(
        world.spark,
        world.backfill_params(sample.D1, other, **{f"pin.{sample.DIM_TABLE}": "1"}),
    )
    repinned = as_dict(world.tables.read(other), sample.D1)
    assert repinned == sample.expected_gold(world.raw, sample.D1, sample.DIM_V1)
    assert repinned != pinned


def test_a_plan_change_during_the_day_splits_the_customer_by_event_time(
    backfilled: tuple[str, dict], world: World
) -> None:
    staging, results = backfilled
    d1 = as_dict(world.tables.read(staging, results[sample.D1]["staging_version"]), sample.D1)
    assert d1[(sample.D1, "c2", "pro")][0] == 1
    assert d1[(sample.D1, "c2", "enterprise")][0] == 2  # e4 at noon, e11
    assert (sample.D1, "c4", None) in d1  # no dimension row: kept, plan unknown


def test_rerunning_a_partition_changes_nothing_but_adds_one_version(world: World) -> None:
    staging = world.fresh_table("staging")
    first = run_backfill_partition(world.spark, world.backfill_params(sample.D1, staging))
    rows = sorted_rows(world.tables.read(staging, first["staging_version"]))
    second = run_backfill_partition(
        world.spark, world.backfill_params(sample.D1, staging, attempt="2")
    )
    assert second["staging_version"] == first["staging_version"] + 1
    assert sorted_rows(world.tables.read(staging, second["staging_version"])) == rows
    ignore = {"staging_version"}
    assert {k: v for k, v in first.items() if k not in ignore} == {
        k: v for k, v in second.items() if k not in ignore
    }
    metadata = json.loads(world.tables.history(staging, 1).first()["userMetadata"])
    assert metadata["attempt"] == 2


def test_dates_on_or_after_the_cutover_are_refused(world: World) -> None:
    staging = world.fresh_table("staging")
    for day in (sample.CUTOVER, sample.CUTOVER.replace(day=11)):
        with pytest.raises(PartitionRefused, match="cutover"):
            run_backfill_partition(world.spark, world.backfill_params(day, staging))
    assert not world.tables.exists(staging)


def test_partitions_run_at_once_write_one_new_staging_table_without_conflict(
    world: World,
) -> None:
    staging = world.fresh_table("staging")
    results: dict[Any, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def run(day: Any) -> None:
        try:
            results[day] = run_backfill_partition(world.spark, world.backfill_params(day, staging))
        except BaseException as e:  # reported by the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(d,)) for d in (sample.D1, sample.D2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    assert results[sample.D1]["staging_version"] != results[sample.D2]["staging_version"]
    latest = world.tables.read(staging)
    for day in (sample.D1, sample.D2):
        assert as_dict(latest, day) == sample.expected_gold(world.raw, day)
