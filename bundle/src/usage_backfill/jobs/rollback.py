"""The rollback job: one partition of the target rewritten from an earlier version of the
target, never a table-wide RESTORE (SPEC 5.10)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql import SparkSession

from usage_backfill import commits
from usage_backfill.errors import JobError
from usage_backfill.jobs.partition_copy import replace_partition
from usage_backfill.jobs.session import use_utc
from usage_backfill.params import RollbackParams
from usage_backfill.tables import tables_for


def run_rollback(spark: SparkSession, params: Mapping[str, str]) -> dict[str, Any]:
    p = RollbackParams.parse(params)
    use_utc(spark)
    tables = tables_for(spark, params)
    if not tables.exists(p.target_table):
        raise JobError(f"target table {p.target_table} does not exist")
    if not commits.version_exists(tables, p.target_table, p.restore_version):
        raise JobError(f"{p.target_table} has no version {p.restore_version} to restore from")
    write_id, metadata = commits.stamp(
        "rollback",
        backfill_id=p.backfill_id,
        partition_date=p.partition_date.isoformat(),
        restore_version=p.restore_version,
    )
    rows = tables.read(p.target_table, p.restore_version)
    replaced = replace_partition(tables, p.target_table, p.partition_date, rows, metadata, write_id)
    return {
        "target_table": p.target_table,
        "partition_date": p.partition_date.isoformat(),
        "restore_version": p.restore_version,
        "version_before": replaced.version_before,
        "version_after": replaced.version_after,
    }
