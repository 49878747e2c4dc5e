"""The backfill partition job: recomputes one day of gold into staging (SPEC 5.10)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from usage_backfill import aggregate, commits, dimension, events, gold, quality, sources
from usage_backfill.errors import PartitionRefused
from usage_backfill.jobs.session import use_utc
from usage_backfill.params import BackfillParams
from usage_backfill.tables import tables_for

_NO_RECORDS = StructType(
    [StructField("value", StringType()), StructField("source_file", StringType())]
)


def run_backfill_partition(spark: SparkSession, params: Mapping[str, str]) -> dict[str, Any]:
    p = BackfillParams.parse(params)
    if p.partition_date >= p.cutover_date:
        raise PartitionRefused(
            f"partition {p.partition_date} is on or after the cutover date {p.cutover_date}: "
            "the live pipeline owns it"
        )
    use_utc(spark)
    tables = tables_for(spark, params)
    day = p.partition_date

    listed = sources.list_window(spark, p.raw_root, day, p.lookback_days)
    selection = sources.select_sources(spark, listed)
    records = sources_records(spark, selection)
    contract = events.to_contract(records).persist()
    try:
        unique = aggregate.deduplicate(contract)
        of_day = aggregate.of_day(unique, day)
        dim = dimension.pinned(tables, p.dim_table, p.dim_version)
        rows = aggregate.to_gold(dimension.plan_as_of(of_day, dim))
        evidence = of_day.agg(
            F.count(F.when(F.col(events.RESCUED).isNotNull(), 1)).alias("rescued"),
            F.count(F.when(F.col("ingest_date") > F.lit(day), 1)).alias("late"),
        ).first()
        malformed_here = contract.where(
            F.col("malformed") & (F.col("ingest_date") == F.lit(day))
        ).count()

        gold.ensure_table(tables, p.staging_table)
        write_id, metadata = commits.stamp(
            "backfill_partition",
            backfill_id=p.backfill_id,
            partition_date=day.isoformat(),
            attempt=p.attempt,
            manifest_id=p.manifest_id,
            code_version=p.code_version,
        )
        writer = (
            rows.write.format("delta")
            .mode("overwrite")
            .option("replaceWhere", gold.partition_predicate(day))
            .option("userMetadata", metadata)
        )
        tables.save(writer, p.staging_table)
    finally:
        contract.unpersist()
    version = commits.version_of(tables, p.staging_table, write_id)

    production = tables.read(p.target_table) if tables.exists(p.target_table) else None
    metrics = quality.partition_metrics(tables.read(p.staging_table, version), production, day)
    return {
        "partition_date": day.isoformat(),
        "staging_table": p.staging_table,
        "staging_version": version,
        **metrics,
        "source_files": [f.path for f in selection.kept],
        "duplicate_files": [
            {"path": d.path, "duplicate_of": d.duplicate_of} for d in selection.duplicates
        ],
        "rescued_records": int(evidence["rescued"] if evidence else 0) + malformed_here,
        "late_records": int(evidence["late"] if evidence else 0),
        "dim_versions": {p.dim_table: p.dim_version},
    }


def sources_records(spark: SparkSession, selection: sources.SourceSelection) -> DataFrame:
    """The kept files' records, or an empty frame of the same shape."""
    records = events.raw_records(spark, selection.kept)
    if records is None:
        return spark.createDataFrame([], _NO_RECORDS)
    return records
