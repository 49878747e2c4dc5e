"""The rehearsal's sample: reproducible for a seed, every trap present, the independent
computation agreeing with the backfill job, production wrong in the planned ways."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

from pyspark.sql import functions as F

from conftest import Rehearsal
from usage_backfill.rehearsal import independent
from usage_backfill.rehearsal.raw_sample import write_raw
from usage_backfill.rehearsal.sample import (
    DIM_TABLE,
    STAGING_TABLE,
    TARGET_TABLE,
    job_parameters,
    summary_path,
    write_summary,
)

TRAPS = {
    "duplicate_files",
    "duplicate_events",
    "drifted_json",
    "drifted_parquet",
    "parquet",
    "late_records",
    "past_lookback",
    "plan_change",
    "dimension_correction",
    "transformation_bug",
    "gate_failing_day",
}


def files_by_name(root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parquet_rows(rehearsal: Rehearsal, path: Path) -> list[tuple]:
    return sorted(tuple(r) for r in rehearsal.spark.read.parquet(str(path)).collect())


def dim_v0(rehearsal: Rehearsal) -> list[independent.DimRow]:
    return independent.dimension_rows(rehearsal.tables, DIM_TABLE, 0)


def test_the_same_seed_writes_the_same_files(rehearsal: Rehearsal, tmp_path: Path) -> None:
    again = write_raw(rehearsal.spark, tmp_path / "raw", rehearsal.spec)
    first = files_by_name(Path(rehearsal.summary["raw_root"]))
    second = files_by_name(again.root)
    assert sorted(first) == sorted(second)
    assert len(first) == rehearsal.summary["files"]
    for name, path in first.items():
        if name.endswith(".parquet"):
            assert parquet_rows(rehearsal, path) == parquet_rows(rehearsal, second[name]), name
        else:
            assert sha256(path) == sha256(second[name]), name


def test_every_trap_is_present(rehearsal: Rehearsal) -> None:
    s = rehearsal.summary
    assert set(s["traps"]) == TRAPS
    raw = Path(s["raw_root"])
    d0, d1, d2, d3 = (rehearsal.day(i) for i in range(4))

    def folder(day: dt.date) -> Path:
        return raw / f"ingest_date={day.isoformat()}"

    original = sha256(folder(d0) / "events-a.json")
    assert sha256(folder(d0) / "resent" / "events-a-copy.json") == original
    assert sha256(folder(d1) / "events-a-resent.json") == original

    lines = (folder(d2) / "drifted.json").read_text().splitlines()
    drifted = [json.loads(line) for line in lines if line.startswith("{")]
    assert "this line is not JSON" in lines
    assert all("customerId" in r and isinstance(r["units"], str) for r in drifted)
    assert any("region" in r for r in drifted)
    main_ids = [json.loads(line)["event_id"] for line in (folder(d2) / "events-a.json").open()]
    repeats = [json.loads(line)["event_id"] for line in (folder(d2) / "repeats.json").open()]
    assert len(set(repeats)) < len(repeats) and set(repeats) <= set(main_ids)

    legacy = rehearsal.spark.read.parquet(str(folder(d3) / "legacy.parquet")).schema
    assert legacy["units"].dataType.simpleString() == "string" and "source_system" in legacy.names
    normal = rehearsal.spark.read.parquet(str(folder(d0) / "events-b.parquet")).schema
    assert normal["units"].dataType.simpleString() == "decimal(38,6)"

    late = [json.loads(line) for line in (folder(d1 + dt.timedelta(days=1)) / "late.json").open()]
    assert late and all(r["event_ts"].startswith(d1.isoformat()) for r in late)
    assert (folder(d1 + dt.timedelta(days=3)) / "late.json").exists()
    (past,) = [
        json.loads(line) for line in (folder(d0 + dt.timedelta(days=4)) / "very-late.json").open()
    ]
    assert past["event_ts"].startswith(d0.isoformat())

    dim = dim_v0(rehearsal)
    changer = [r for r in dim if r.customer_id == "c2"]
    assert len(changer) == 2 and changer[0].plan != changer[1].plan
    corrected = independent.dimension_rows(rehearsal.tables, DIM_TABLE, 1)
    assert corrected != dim

    assert rehearsal.tables.exists(STAGING_TABLE)
    assert rehearsal.tables.read(STAGING_TABLE, 0).count() == 0  # created empty


def test_the_summary_names_the_tables_and_the_job_parameters(rehearsal: Rehearsal) -> None:
    s = rehearsal.summary
    assert (s["start"], s["end"], s["cutover_date"]) == ("2026-11-23", "2026-11-26", "2026-11-27")
    assert s["pins"] == {DIM_TABLE: 0}
    assert (s["target_table"], s["staging_table"]) == (TARGET_TABLE, STAGING_TABLE)
    assert s["baseline_target_version"] == 1
    assert s["job_parameters"] == job_parameters(s)
    assert set(s["job_parameters"]) == {
        "raw_root",
        "warehouse_dir",
        "dim_table",
        "lookback_days",
        "cutover_date",
        "target_table",
    }
    written = write_summary(Path(s["raw_root"]), s)
    assert written == summary_path(Path(s["raw_root"])) == rehearsal.base / "rehearsal-sample.json"
    assert json.loads(written.read_text()) == s


def staged_rows(rehearsal: Rehearsal, day: dt.date, result: dict[str, Any]) -> list:
    rows = (
        rehearsal.tables.read(STAGING_TABLE, result["staging_version"])
        .where(F.col("usage_date") == F.lit(day))
        .collect()
    )
    return independent.sort_rows(
        (r["customer_id"], r["plan"], r["event_count"], r["total_units"]) for r in rows
    )


def test_the_independent_computation_equals_the_job(
    rehearsal: Rehearsal, rehearsal_staged: dict[dt.date, dict[str, Any]]
) -> None:
    reader = independent.spark_parquet_reader(rehearsal.spark)
    raw = Path(rehearsal.summary["raw_root"])
    dim = dim_v0(rehearsal)
    for day, result in rehearsal_staged.items():
        truth = independent.compute_day(raw, day, 3, dim, reader)
        assert truth.rows == staged_rows(rehearsal, day, result), day
        assert truth.files_read == len(result["source_files"]), day
        assert truth.duplicate_files == len(result["duplicate_files"]), day
    d0, d1 = rehearsal.day(0), rehearsal.day(1)
    assert len(rehearsal_staged[d0]["duplicate_files"]) == 2
    assert rehearsal_staged[d1]["late_records"] == 3
    assert rehearsal_staged[rehearsal.day(2)]["rescued_records"] == 2
    plans = {r[1] for r in staged_rows(rehearsal, d1, rehearsal_staged[d1]) if r[0] == "c2"}
    assert len(plans) == 2  # the plan change splits the customer


def test_production_is_wrong_and_the_gate_day_has_half_as_many_rows_again(
    rehearsal: Rehearsal, rehearsal_staged: dict[dt.date, dict[str, Any]]
) -> None:
    reader = independent.spark_parquet_reader(rehearsal.spark)
    raw = Path(rehearsal.summary["raw_root"])
    dim = dim_v0(rehearsal)
    for i in range(rehearsal.spec.days):
        day = rehearsal.day(i)
        truth = independent.compute_day(raw, day, 3, dim, reader)
        baseline = rehearsal.tables.read(TARGET_TABLE, rehearsal.summary["baseline_target_version"])
        production = baseline.where(F.col("usage_date") == F.lit(day))
        count = production.count()
        if day == rehearsal.gate_failing_day:
            assert abs(count - len(truth.rows)) > 0.05 * len(truth.rows), day
        else:
            assert count == len(truth.rows), day
            wrong = {(r["customer_id"], r["plan"]): r["total_units"] for r in production.collect()}
            assert all(wrong[(c, p)] == 2 * units for c, p, _n, units in truth.rows), day
    for day, result in rehearsal_staged.items():
        assert result["row_count"] == result["production_row_count"], day
