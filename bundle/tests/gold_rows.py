"""Reading gold rows back in the shape `sample.expected_gold` computes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from pyspark.sql import DataFrame
from pyspark.sql import functions as F


def as_dict(df: DataFrame, day: dt.date) -> dict[tuple, tuple[int, Decimal]]:
    rows = df.where(F.col("usage_date") == F.lit(day)).collect()
    return {
        (r["usage_date"], r["customer_id"], r["plan"]): (r["event_count"], r["total_units"])
        for r in rows
    }


def sorted_rows(df: DataFrame, day: dt.date | None = None) -> list[tuple]:
    if day is not None:
        df = df.where(F.col("usage_date") == F.lit(day))
    return sorted(
        (tuple(r) for r in df.collect()),
        key=lambda t: tuple("" if v is None else str(v) for v in t),
    )
