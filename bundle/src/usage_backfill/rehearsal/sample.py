"""The rehearsal's world: raw files with every trap (`raw_sample`), and in a warehouse
directory the SCD2 dimension (version 0 pinned, version 1 a correction after the pin), the
production table holding wrong numbers for every day of the range, and the empty staging
table. The summary it returns is what the fleet's demo reads.

Production holds the rows a recomputation will produce (same days, customers and plans) but
with a transformation bug (units doubled, one event too many), so a "row count within 5% of
production" gate passes; the gate-failing day holds about 50% more rows (customers that do
not exist), so that day's gate fails.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import StringType, StructField, StructType, TimestampType

from usage_backfill import commits, gold
from usage_backfill.rehearsal import independent
from usage_backfill.rehearsal.independent import DimRow
from usage_backfill.rehearsal.raw_sample import (
    PLAN_CHANGER,
    PLANS,
    RawSample,
    RawSpec,
    write_raw,
)
from usage_backfill.tables import WarehouseTables

DIM_TABLE = "main.ref.customer_dim"
TARGET_TABLE = "main.usage.daily_customer_usage"
STAGING_TABLE = "main.usage.daily_customer_usage_staging"
PINNED_DIM_VERSION = 0
SUMMARY_NAME = "rehearsal-sample.json"
DIM_EPOCH = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
CORRECTED_PLAN = "premium"
DIM_SCHEMA = StructType(
    [
        StructField("customer_id", StringType()),
        StructField("plan", StringType()),
        StructField("valid_from", TimestampType()),
        StructField("valid_to", TimestampType()),
    ]
)


def dimension_v0(spec: RawSpec, raw: RawSample) -> list[DimRow]:
    """Every customer on its plan since 2020; the plan changer switches at noon of day 1."""
    rows = []
    changer = spec.customer_ids[PLAN_CHANGER]
    for customer, plan in raw.base_plans.items():
        if customer != changer:
            rows.append(DimRow(customer, plan, DIM_EPOCH, None))
            continue
        after = PLANS[(PLANS.index(plan) + 1) % len(PLANS)]
        rows.append(DimRow(customer, plan, DIM_EPOCH, spec.plan_change_at))
        rows.append(DimRow(customer, after, spec.plan_change_at, None))
    return rows


def dimension_v1(v0: list[DimRow], customer: str) -> list[DimRow]:
    """A correction committed after the pin: the customer retroactively on another plan."""
    return [replace(r, plan=CORRECTED_PLAN) if r.customer_id == customer else r for r in v0]


def write_dimension(spark: SparkSession, path: str, versions: list[list[DimRow]]) -> None:
    for rows in versions:
        data = [(r.customer_id, r.plan, r.valid_from, r.valid_to) for r in rows]
        frame = spark.createDataFrame(data, DIM_SCHEMA)
        frame.write.format("delta").mode("overwrite").save(path)


def production_rows(
    day: dt.date, true_rows: list[independent.GoldRow], inflated: bool
) -> list[tuple[Any, ...]]:
    """Yesterday's wrong numbers for the day; `inflated` adds half as many rows again."""
    rows = [
        (day, customer, plan, count + 1, None if units is None else units * 2)
        for customer, plan, count, units in true_rows
    ]
    if inflated:
        extra = max(1, math.ceil(len(true_rows) / 2))
        rows += [(day, f"legacy-{i:02d}", "basic", 1, Decimal("1")) for i in range(extra)]
    return rows


def generate(
    spark: SparkSession,
    raw_dir: Path,
    warehouse_dir: Path,
    spec: RawSpec,
    gate_failing_day: dt.date | None = None,
) -> dict[str, Any]:
    """Writes the raw files and the warehouse's tables into empty (or new) directories;
    returns the summary."""
    if gate_failing_day is not None and not spec.start <= gate_failing_day <= spec.end:
        raise ValueError(f"the gate-failing day {gate_failing_day} is outside the range")
    for directory in (Path(raw_dir), Path(warehouse_dir)):
        if directory.exists() and any(directory.iterdir()):
            raise ValueError(f"{directory} is not empty: a sample starts from nothing")
    raw = write_raw(spark, Path(raw_dir), spec)
    tables = WarehouseTables(spark, warehouse_dir)
    v0 = dimension_v0(spec, raw)
    write_dimension(spark, tables.path(DIM_TABLE), [v0, dimension_v1(v0, spec.customer_ids[0])])

    reader = independent.spark_parquet_reader(spark)
    wrong: list[tuple[Any, ...]] = []
    for i in range(spec.days):
        day = spec.start + dt.timedelta(days=i)
        truth = independent.compute_day(raw.root, day, spec.lookback_days, v0, reader)
        wrong += production_rows(day, truth.rows, inflated=day == gate_failing_day)
    gold.ensure_table(tables, TARGET_TABLE)
    stamp = json.dumps({"job": "rehearsal_sample", "seed": spec.seed})
    (
        spark.createDataFrame(wrong, gold.SCHEMA)
        .write.format("delta")
        .mode("append")
        .option("userMetadata", stamp)
        .save(tables.path(TARGET_TABLE))
    )
    gold.ensure_table(tables, STAGING_TABLE)

    traps = dict(raw.traps)
    traps["dimension_correction"] = (
        f"{DIM_TABLE} version 1 puts {spec.customer_ids[0]} on {CORRECTED_PLAN} "
        f"retroactively; the pin is version {PINNED_DIM_VERSION}"
    )
    traps["transformation_bug"] = (
        f"{TARGET_TABLE} holds every day of the range with units doubled and one event "
        "too many per row"
    )
    if gate_failing_day is not None:
        traps["gate_failing_day"] = (
            f"{gate_failing_day}: production holds ~50% more rows than a recomputation"
        )
    summary: dict[str, Any] = {
        "raw_root": str(raw.root),
        "warehouse_dir": str(tables.root),
        "start": spec.start.isoformat(),
        "end": spec.end.isoformat(),
        "cutover_date": (spec.end + dt.timedelta(days=1)).isoformat(),
        "dim_table": DIM_TABLE,
        "pins": {DIM_TABLE: PINNED_DIM_VERSION},
        "target_table": TARGET_TABLE,
        "staging_table": STAGING_TABLE,
        "lookback_days": spec.lookback_days,
        "baseline_target_version": commits.latest_version(tables, TARGET_TABLE),
        "seed": spec.seed,
        "customers": spec.customers,
        "gate_failing_day": None if gate_failing_day is None else gate_failing_day.isoformat(),
        "files": len(raw.files),
        "traps": traps,
    }
    summary["job_parameters"] = job_parameters(summary)
    return summary


def job_parameters(summary: dict[str, Any]) -> dict[str, str]:
    """The job-level defaults a Databricks job would carry for this sample; the fleet sends
    the rest (partition_date, backfill_id, attempt, staging_table, pin.<table>, ...)."""
    return {
        "raw_root": str(summary["raw_root"]),
        "warehouse_dir": str(summary["warehouse_dir"]),
        "dim_table": str(summary["dim_table"]),
        "lookback_days": str(summary["lookback_days"]),
        "cutover_date": str(summary["cutover_date"]),
        "target_table": str(summary["target_table"]),
    }


def summary_path(raw_dir: Path) -> Path:
    """Where the summary is written: next to the raw directory."""
    return Path(raw_dir).resolve().parent / SUMMARY_NAME


def write_summary(raw_dir: Path, summary: dict[str, Any]) -> Path:
    path = summary_path(raw_dir)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return path
