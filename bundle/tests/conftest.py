"""One local Spark session with Delta Lake for the whole run, and the sample world: raw
files with every trap, the customer dimension, and a warehouse directory for tables; and a
rehearsal sample (`usage_backfill.rehearsal`) for the rehearsal's tests."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from pyspark.sql import SparkSession

import sample
from usage_backfill import run_backfill_partition
from usage_backfill.local import local_spark
from usage_backfill.rehearsal.raw_sample import RawSpec
from usage_backfill.rehearsal.sample import generate
from usage_backfill.tables import WarehouseTables

_names = itertools.count()


@pytest.fixture(scope="session")
def spark(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SparkSession]:
    session = local_spark(tmp_path_factory.mktemp("spark"), app_name="usage-backfill-tests")
    yield session
    session.stop()


@dataclass
class World:
    spark: SparkSession
    warehouse: Path
    raw: sample.RawData

    @property
    def tables(self) -> WarehouseTables:
        return WarehouseTables(self.spark, self.warehouse)

    def fresh_table(self, stem: str) -> str:
        """A table name no other test uses."""
        return f"main.t{next(_names)}.{stem}"

    def backfill_params(self, day: dt.date, staging: str, **overrides: str) -> dict[str, str]:
        params = {
            "partition_date": day.isoformat(),
            "backfill_id": "bf-test",
            "manifest_id": "m-1",
            "attempt": "1",
            "staging_table": staging,
            "target_table": "main.usage.daily_customer_usage",
            "dim_table": sample.DIM_TABLE,
            f"pin.{sample.DIM_TABLE}": str(sample.PINNED_DIM_VERSION),
            "raw_root": str(self.raw.root),
            "lookback_days": str(sample.LOOKBACK),
            "cutover_date": sample.CUTOVER.isoformat(),
            "code_version": "test",
            "warehouse_dir": str(self.warehouse),
        }
        params.update(overrides)
        return params


@pytest.fixture(scope="session")
def world(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> World:
    base = tmp_path_factory.mktemp("world")
    raw = sample.build_raw(spark, base / "raw")
    warehouse = base / "warehouse"
    w = World(spark, warehouse, raw)
    sample.write_dimension(spark, w.tables.path(sample.DIM_TABLE))
    return w


@pytest.fixture(scope="session")
def backfilled(world: World) -> tuple[str, dict[dt.date, dict[str, Any]]]:
    """D1..D3 backfilled once into one staging table (read-only for the tests using it)."""
    staging = world.fresh_table("staging")
    results = {
        day: run_backfill_partition(world.spark, world.backfill_params(day, staging))
        for day in (sample.D1, sample.D2, sample.D3)
    }
    return staging, results


@dataclass
class Rehearsal:
    """A rehearsal sample (`usage_backfill.rehearsal.sample`) in its own directory."""

    spark: SparkSession
    base: Path
    spec: RawSpec
    gate_failing_day: dt.date
    summary: dict[str, Any]

    @property
    def tables(self) -> WarehouseTables:
        return WarehouseTables(self.spark, self.summary["warehouse_dir"])

    def day(self, index: int) -> dt.date:
        return self.spec.start + dt.timedelta(days=index)

    def backfill_params(
        self, day: dt.date, backfill_id: str, attempt: int = 1, **overrides: str
    ) -> dict[str, str]:
        s = self.summary
        params = {
            **s["job_parameters"],
            "partition_date": day.isoformat(),
            "backfill_id": backfill_id,
            "manifest_id": "m-1",
            "attempt": str(attempt),
            "staging_table": s["staging_table"],
            f"pin.{s['dim_table']}": str(s["pins"][s["dim_table"]]),
            "code_version": "test",
        }
        params.update(overrides)
        return params


@pytest.fixture(scope="session")
def rehearsal(spark: SparkSession, tmp_path_factory: pytest.TempPathFactory) -> Rehearsal:
    """Four days (every trap on its own day), the last day's gate failing."""
    base = tmp_path_factory.mktemp("rehearsal")
    spec = RawSpec(dt.date(2026, 11, 23), days=4, seed=11)
    gate_day = spec.start + dt.timedelta(days=3)
    summary = generate(spark, base / "raw", base / "warehouse", spec, gate_day)
    return Rehearsal(spark, base, spec, gate_day, summary)


@pytest.fixture(scope="session")
def rehearsal_staged(rehearsal: Rehearsal) -> dict[dt.date, dict[str, Any]]:
    """Days 0..2 of the rehearsal backfilled once into its staging table (`bf-rehearsal`)."""
    return {
        day: run_backfill_partition(rehearsal.spark, rehearsal.backfill_params(day, "bf-rehearsal"))
        for day in (rehearsal.day(0), rehearsal.day(1), rehearsal.day(2))
    }
