"""Data-quality metrics of one written partition, read back from the version written, so
they describe exactly what promotion would copy."""

from __future__ import annotations

import datetime as dt

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from usage_backfill import gold


def duplicate_keys(rows: DataFrame) -> int:
    """How many grain keys (`usage_date, customer_id, plan`) occur more than once."""
    return rows.groupBy(*gold.GRAIN).count().where(F.col("count") > 1).count()


def partition_metrics(
    written: DataFrame, production: DataFrame | None, day: dt.date
) -> dict[str, int | str]:
    """`row_count`, `production_row_count`, `duplicate_keys`, `null_customer_ids`,
    `schema_hash` of the day's rows."""
    rows = written.where(F.col(gold.PARTITION_COLUMN) == F.lit(day))
    counts = rows.agg(
        F.count(F.lit(1)).alias("rows"),
        F.sum(F.when(F.col("customer_id").isNull(), 1).otherwise(0)).alias("nulls"),
    ).first()
    production_rows = (
        0
        if production is None
        else production.where(F.col(gold.PARTITION_COLUMN) == F.lit(day)).count()
    )
    return {
        "row_count": int(counts["rows"]) if counts else 0,
        "production_row_count": production_rows,
        "duplicate_keys": duplicate_keys(rows),
        "null_customer_ids": int(counts["nulls"] or 0) if counts else 0,
        "schema_hash": gold.schema_hash(written.schema),
    }
