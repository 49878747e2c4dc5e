"""Replacing one partition of a table with rows read elsewhere, in one atomic commit, and
skipping the commit when the partition already holds exactly those rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from usage_backfill import commits, gold
from usage_backfill.tables import Tables


@dataclass(frozen=True)
class Replaced:
    version_before: int
    version_after: int


def same_rows(a: DataFrame, b: DataFrame) -> bool:
    columns = gold.SCHEMA.fieldNames()
    left, right = a.select(*columns), b.select(*columns)
    return left.exceptAll(right).isEmpty() and right.exceptAll(left).isEmpty()


def replace_partition(
    tables: Tables, target: str, day: dt.date, rows: DataFrame, metadata: str, write_id: str
) -> Replaced:
    """`INSERT INTO target REPLACE WHERE usage_date = day SELECT rows`: one commit, readers
    see the old partition or the new one, never a gap; other partitions' writers (the live
    pipeline) do not conflict. No commit when the partition already equals `rows`."""
    rows = rows.where(F.col(gold.PARTITION_COLUMN) == F.lit(day)).select(*gold.SCHEMA.fieldNames())
    before = commits.latest_version(tables, target)
    current = tables.read(target, before).where(F.col(gold.PARTITION_COLUMN) == F.lit(day))
    if same_rows(rows, current):
        return Replaced(before, before)
    writer = (
        rows.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", gold.partition_predicate(day))
        .option("userMetadata", metadata)
    )
    tables.save(writer, target)
    return Replaced(before, commits.version_of(tables, target, write_id))
