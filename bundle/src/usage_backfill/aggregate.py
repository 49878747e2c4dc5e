"""One day's events to gold rows: duplicate events dropped deterministically, events of the
day kept by their UTC event date, the plan joined, counts and sums per grain."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from usage_backfill import gold


def deduplicate(events: DataFrame) -> DataFrame:
    """One row per `event_id`: the earliest-arriving copy (then by file and content)."""
    first = Window.partitionBy("event_id").orderBy(
        "ingest_date", "source_file", "event_ts", "customer_id", "units", "event_type"
    )
    return (
        events.where(~F.col("malformed"))
        .withColumn("_copy", F.row_number().over(first))
        .where("_copy = 1")
        .drop("_copy")
    )


def of_day(events: DataFrame, day: dt.date) -> DataFrame:
    """Events whose UTC date of `event_ts` is the day (the session time zone is UTC)."""
    return events.where(F.to_date("event_ts") == F.lit(day))


def to_gold(events_with_plan: DataFrame) -> DataFrame:
    """`usage_date, customer_id, plan, event_count, total_units` in the gold schema."""
    rows = events_with_plan.groupBy(
        F.to_date("event_ts").alias("usage_date"), "customer_id", "plan"
    ).agg(
        F.countDistinct("event_id").cast("long").alias("event_count"),
        F.sum("units").cast(gold.UNITS).alias("total_units"),
    )
    return rows.select(*gold.SCHEMA.fieldNames())
