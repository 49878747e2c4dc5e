"""A local Spark session with Delta Lake, for the tests, the local commands and the
simulator's rehearsals. Not used on Databricks, whose runtime provides the session."""

from __future__ import annotations

import os
from pathlib import Path

from pyspark.sql import SparkSession

# Comma-separated local jar paths to use instead of fetching Delta's jars from Maven.
JARS_ENV = "USAGE_BACKFILL_SPARK_JARS"


def local_spark(
    scratch: str | Path, app_name: str = "usage-backfill", small_data: bool = True
) -> SparkSession:
    """`local[2]` with Delta Lake, UTC, few shuffle partitions; scratch holds Spark's
    temporary files. With `small_data` (samples of a few thousand rows) Spark interprets
    expressions instead of compiling them and the JVM stays on its quick JIT: on such data
    compiling costs more than it saves."""
    scratch = Path(scratch).resolve()
    scratch.mkdir(parents=True, exist_ok=True)
    java_options = [f"-Dderby.system.home={scratch / 'derby'}"]
    if small_data:
        java_options += ["-XX:TieredStopAtLevel=1", "-XX:+UseParallelGC"]
    builder = (
        SparkSession.builder.master("local[2]")
        .appName(app_name)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config(
            "spark.sql.catalog.spark_catalog",
            "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        )
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.default.parallelism", "2")
        .config("spark.databricks.delta.snapshotPartitions", "2")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.local.dir", str(scratch / "tmp"))
        .config("spark.sql.warehouse.dir", str(scratch / "spark-warehouse"))
        .config("spark.driver.extraJavaOptions", " ".join(java_options))
    )
    if small_data:
        builder = builder.config("spark.sql.codegen.wholeStage", "false").config(
            "spark.sql.codegen.factoryMode", "NO_CODEGEN"
        )
    jars = os.environ.get(JARS_ENV, "").strip()
    if jars:
        spark = builder.config("spark.jars", jars).getOrCreate()
    else:
        from delta import configure_spark_with_delta_pip

        spark = configure_spark_with_delta_pip(builder).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark
