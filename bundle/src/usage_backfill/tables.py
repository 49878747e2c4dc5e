"""Three-part table names to Delta tables.

On Databricks a name is a Unity Catalog table. Locally (a warehouse directory given) the
name `catalog.schema.table` is the path-based Delta table `<warehouse>/catalog/schema/table`,
so the same parameters work on a laptop.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from delta.tables import DeltaTable
from pyspark.sql import DataFrame, DataFrameWriter, SparkSession
from pyspark.sql.types import StructType

WAREHOUSE_ENV = "USAGE_BACKFILL_WAREHOUSE"


class Tables(Protocol):
    """Where tables live: reading (at a version), writing, history."""

    spark: SparkSession

    def exists(self, name: str) -> bool: ...

    def read(self, name: str, version: int | None = None) -> DataFrame: ...

    def history(self, name: str, limit: int | None = None) -> DataFrame:
        """The table's commits, newest first (`DESCRIBE HISTORY`)."""
        ...

    def save(self, writer: DataFrameWriter, name: str) -> None: ...

    def create_if_missing(
        self,
        name: str,
        schema: StructType,
        partitioned_by: str,
        properties: Mapping[str, str],
    ) -> None: ...


class CatalogTables:
    """Unity Catalog (or any metastore): tables by name."""

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark

    def exists(self, name: str) -> bool:
        return self.spark.catalog.tableExists(name)

    def read(self, name: str, version: int | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.table(name)

    def history(self, name: str, limit: int | None = None) -> DataFrame:
        # SQL, not DeltaTable.forName: open-source Delta's forName takes no catalog part.
        suffix = f" LIMIT {int(limit)}" if limit is not None else ""
        return self.spark.sql(f"DESCRIBE HISTORY {name}{suffix}")

    def save(self, writer: DataFrameWriter, name: str) -> None:
        writer.saveAsTable(name)

    def create_if_missing(
        self,
        name: str,
        schema: StructType,
        partitioned_by: str,
        properties: Mapping[str, str],
    ) -> None:
        columns = ", ".join(
            f"`{f.name}` {f.dataType.simpleString()}{'' if f.nullable else ' NOT NULL'}"
            for f in schema.fields
        )
        props = ", ".join(f"'{k}' = '{v}'" for k, v in properties.items())
        self.spark.sql(
            f"CREATE TABLE IF NOT EXISTS {name} ({columns}) USING DELTA "
            f"PARTITIONED BY (`{partitioned_by}`) TBLPROPERTIES ({props})"
        )


class WarehouseTables:
    """A local warehouse directory: `a.b.c` is the Delta table at `<root>/a/b/c`."""

    def __init__(self, spark: SparkSession, root: str | Path) -> None:
        self.spark = spark
        self.root = Path(root).resolve()

    def path(self, name: str) -> str:
        return str(self.root.joinpath(*name.split(".")))

    def exists(self, name: str) -> bool:
        return (Path(self.path(name)) / "_delta_log").is_dir()

    def read(self, name: str, version: int | None = None) -> DataFrame:
        reader = self.spark.read.format("delta")
        if version is not None:
            reader = reader.option("versionAsOf", version)
        return reader.load(self.path(name))

    def history(self, name: str, limit: int | None = None) -> DataFrame:
        table = DeltaTable.forPath(self.spark, self.path(name))
        return table.history(limit) if limit is not None else table.history()

    def save(self, writer: DataFrameWriter, name: str) -> None:
        writer.save(self.path(name))

    def create_if_missing(
        self,
        name: str,
        schema: StructType,
        partitioned_by: str,
        properties: Mapping[str, str],
    ) -> None:
        builder = DeltaTable.createIfNotExists(self.spark).location(self.path(name))
        builder = builder.addColumns(schema).partitionedBy(partitioned_by)
        for key, value in properties.items():
            builder = builder.property(key, value)
        builder.execute()


def tables_for(spark: SparkSession, params: Mapping[str, str]) -> Tables:
    """The local warehouse when the `warehouse_dir` parameter (or the environment variable
    USAGE_BACKFILL_WAREHOUSE) names one, else the catalog."""
    root = (params.get("warehouse_dir") or "").strip() or os.environ.get(WAREHOUSE_ENV, "")
    if root:
        return WarehouseTables(spark, root)
    return CatalogTables(spark)
