"""The promotion job: each partition of the target replaced from the staging version that
was proven for it, one atomic commit per partition (SPEC 5.10)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql import SparkSession

from usage_backfill import commits, gold
from usage_backfill.errors import JobError, PartitionRefused
from usage_backfill.jobs.partition_copy import replace_partition
from usage_backfill.jobs.session import use_utc
from usage_backfill.params import PartitionToPromote, PromotionParams
from usage_backfill.tables import Tables, tables_for


def run_promotion(spark: SparkSession, params: Mapping[str, str]) -> dict[str, Any]:
    p = PromotionParams.parse(params)
    if p.cutover_date is not None:
        owned = [x.partition_date for x in p.partitions if x.partition_date >= p.cutover_date]
        if owned:
            raise PartitionRefused(
                f"partitions {', '.join(map(str, owned))} are on or after the cutover date "
                f"{p.cutover_date}: the live pipeline owns them"
            )
    use_utc(spark)
    tables = tables_for(spark, params)
    if not tables.exists(p.staging_table):
        raise JobError(f"staging table {p.staging_table} does not exist")
    for item in p.partitions:
        check_proven_version(tables, p.staging_table, item)
    gold.ensure_table(tables, p.target_table)

    done = []
    for item in p.partitions:
        write_id, metadata = commits.stamp(
            "promotion",
            backfill_id=p.backfill_id,
            manifest_id=p.manifest_id,
            partition_date=item.partition_date.isoformat(),
            staging_table=p.staging_table,
            staging_version=item.staging_version,
        )
        rows = tables.read(p.staging_table, item.staging_version)
        replaced = replace_partition(
            tables,
            p.target_table,
            item.partition_date,
            rows,
            metadata,
            write_id,
            same_as={
                "job": "promotion",
                "partition_date": item.partition_date.isoformat(),
                "staging_table": p.staging_table,
                "staging_version": item.staging_version,
            },
        )
        done.append(
            {
                "partition_date": item.partition_date.isoformat(),
                "staging_version": item.staging_version,
                "version_before": replaced.version_before,
                "version_after": replaced.version_after,
            }
        )
    return {
        "target_table": p.target_table,
        "version_before": done[0]["version_before"],
        "version_after": max(max(d["version_after"] for d in done), done[0]["version_before"]),
        "partitions": done,
    }


def check_proven_version(tables: Tables, staging: str, item: PartitionToPromote) -> None:
    """The staging version must be the commit the backfill job made for that partition:
    promoting any other version could copy another day's state (or nothing) into it."""
    metadata = commits.metadata_at(tables, staging, item.staging_version)
    if metadata is None or metadata.get("partition_date") != item.partition_date.isoformat():
        raise JobError(
            f"staging {staging} version {item.staging_version} is not a backfill write of "
            f"partition {item.partition_date}"
        )
