"""The Unity Catalog code path (tables by three-part name, not by path), exercised against
Spark's own catalog: `spark_catalog.<schema>.<table>` stands in for `main.usage.<table>`."""

from __future__ import annotations

import json

import sample
from conftest import World
from gold_rows import as_dict, sorted_rows
from usage_backfill import run_backfill_partition, run_promotion, run_rollback


def test_the_three_jobs_by_table_name_in_a_catalog(world: World) -> None:
    spark = world.spark
    spark.sql("CREATE DATABASE IF NOT EXISTS usage_catalog_test")
    staging = "spark_catalog.usage_catalog_test.daily_customer_usage_staging"
    target = "spark_catalog.usage_catalog_test.daily_customer_usage"
    dim = "spark_catalog.usage_catalog_test.customer_dim"
    for rows in (sample.DIM_V0, sample.DIM_V1):
        spark.createDataFrame(rows, sample.DIM_SCHEMA).write.format("delta").mode(
            "overwrite"
        ).saveAsTable(dim)

    params = world.backfill_params(
        sample.D1, staging, target_table=target, dim_table=dim, **{f"pin.{dim}": "0"}
    )
    del params["warehouse_dir"]
    backfilled = run_backfill_partition(spark, params)
    staged = spark.read.option("versionAsOf", backfilled["staging_version"]).table(staging)
    assert as_dict(staged, sample.D1) == sample.expected_gold(world.raw, sample.D1)

    promoted = run_promotion(
        spark,
        {
            "backfill_id": "bf-catalog",
            "manifest_id": "m-1",
            "target_table": target,
            "staging_table": staging,
            "partitions": json.dumps(
                [{"partition_date": "2024-03-01", "staging_version": backfilled["staging_version"]}]
            ),
        },
    )
    (item,) = promoted["partitions"]
    assert sorted_rows(spark.table(target), sample.D1) == sorted_rows(staged, sample.D1)

    rolled_back = run_rollback(
        spark,
        {
            "target_table": target,
            "partition_date": "2024-03-01",
            "restore_version": str(item["version_before"]),
        },
    )
    assert rolled_back["version_after"] == item["version_after"] + 1
    assert spark.table(target).where("usage_date = DATE'2024-03-01'").count() == 0
