"""A production table seeded with yesterday's wrong numbers, and the live pipeline's writes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import DataFrame

import sample
from conftest import World
from usage_backfill import gold

SEEDED_DAYS = (sample.D1, sample.D2, sample.D3, sample.CUTOVER)


def rows(world: World, day: dt.date, customer: str, units: str) -> DataFrame:
    return world.spark.createDataFrame([(day, customer, "basic", 1, Decimal(units))], gold.SCHEMA)


def seed(world: World) -> str:
    """A target holding one wrong row per seeded day, in one commit."""
    name = world.fresh_table("daily_customer_usage")
    gold.ensure_table(world.tables, name)
    frame = rows(world, SEEDED_DAYS[0], "old", "1")
    for day in SEEDED_DAYS[1:]:
        frame = frame.unionByName(rows(world, day, "old", "1"))
    frame.write.format("delta").mode("append").save(world.tables.path(name))
    return name


def live_append(world: World, name: str, customer: str) -> None:
    """What the live pipeline does: appends to the partition it owns."""
    rows(world, sample.CUTOVER, customer, "2").write.format("delta").mode("append").save(
        world.tables.path(name)
    )
