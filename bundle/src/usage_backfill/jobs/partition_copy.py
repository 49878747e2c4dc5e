"""Replacing one partition of a table with rows read elsewhere, in one atomic commit, and
skipping the commit when the partition already holds exactly those rows."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
    tables: Tables,
    target: str,
    day: dt.date,
    rows: DataFrame,
    metadata: str,
    write_id: str,
    same_as: Mapping[str, Any] | None = None,
) -> Replaced:
    """`INSERT INTO target REPLACE WHERE usage_date = day SELECT rows`: one commit, readers
    see the old partition or the new one, never a gap; other partitions' writers (the live
    pipeline) do not conflict. No commit when the partition already equals `rows`; then,
    when an earlier commit stamped with `same_as` wrote them (a retried promotion), its
    versions are reported, so that the restore point stays the version before it."""
    rows = rows.where(F.col(gold.PARTITION_COLUMN) == F.lit(day)).select(*gold.SCHEMA.fieldNames())
    before = commits.latest_version(tables, target)
    current = tables.read(target, before).where(F.col(gold.PARTITION_COLUMN) == F.lit(day))
    if same_rows(rows, current):
        earlier = commits.latest_stamped(tables, target, same_as) if same_as else None
        if earlier is not None:
            return Replaced(earlier - 1, earlier)
        return Replaced(before, before)
    writer = (
        rows.write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", gold.partition_predicate(day))
        .option("userMetadata", metadata)
    )
    tables.save(writer, target)
    return Replaced(before, commits.version_of(tables, target, write_id))
