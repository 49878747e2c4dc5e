"""The SCD type 2 customer dimension (`customer_id, plan, valid_from, valid_to`), read at its
pinned Delta version and joined as of each event's time."""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from usage_backfill.errors import JobError
from usage_backfill.tables import Tables


def pinned(tables: Tables, name: str, version: int) -> DataFrame:
    """The dimension `VERSION AS OF version`; a version that does not exist is an error."""
    if not tables.exists(name):
        raise JobError(f"dimension table {name} does not exist")
    latest = tables.history(name, 1).select("version").first()
    if latest is None or version > latest["version"]:
        raise JobError(f"dimension {name} has no version {version} (pinned)")
    return tables.read(name, version).select("customer_id", "plan", "valid_from", "valid_to")


def plan_as_of(events: DataFrame, dimension: DataFrame) -> DataFrame:
    """Adds `plan`: the dimension row valid at `event_ts` (from inclusive, to exclusive; an
    open `valid_to` is current). An event with no such row keeps a null plan; should
    overlapping rows match, the one valid from latest wins, so an event is never counted
    twice."""
    d = dimension.alias("d")
    e = events.alias("e")
    joined = e.join(
        d,
        (F.col("e.customer_id") == F.col("d.customer_id"))
        & (F.col("d.valid_from") <= F.col("e.event_ts"))
        & (F.col("d.valid_to").isNull() | (F.col("e.event_ts") < F.col("d.valid_to"))),
        "left",
    )
    latest_first = Window.partitionBy("e.event_id").orderBy(
        F.col("d.valid_from").desc_nulls_last(), F.col("d.plan").asc_nulls_last()
    )
    return (
        joined.withColumn("_match", F.row_number().over(latest_first))
        .where("_match = 1")
        .select("e.*", F.col("d.plan").alias("plan"))
    )
