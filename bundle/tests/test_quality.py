"""The data-quality metrics catch what the gate must stop."""

from __future__ import annotations

from decimal import Decimal

import sample
import target
from conftest import World
from usage_backfill import gold, run_backfill_partition
from usage_backfill.commits import latest_version
from usage_backfill.quality import partition_metrics


def test_metrics_catch_an_injected_duplicate_key_and_a_null_customer(world: World) -> None:
    staging = world.fresh_table("staging")
    result = run_backfill_partition(world.spark, world.backfill_params(sample.D2, staging))
    assert result["duplicate_keys"] == 0
    written = world.tables.read(staging, result["staging_version"])
    one_row = written.where("customer_id = 'c1'").limit(1)
    injected = one_row.unionByName(
        world.spark.createDataFrame([(sample.D2, None, None, 1, Decimal("1"))], gold.SCHEMA)
    )
    injected.write.format("delta").mode("append").save(world.tables.path(staging))
    broken = world.tables.read(staging, latest_version(world.tables, staging))
    metrics = partition_metrics(broken, None, sample.D2)
    assert metrics["duplicate_keys"] == 1
    assert metrics["null_customer_ids"] == 1
    assert metrics["row_count"] == result["row_count"] + 2


def test_production_row_count_is_the_target_partitions_rows(world: World) -> None:
    table = target.seed(world)
    target.live_append(world, table, "another")  # the cutover day, not D1
    staging = world.fresh_table("staging")
    result = run_backfill_partition(
        world.spark, world.backfill_params(sample.D1, staging, target_table=table)
    )
    assert result["production_row_count"] == 1
