"""Raw records mapped onto the event contract.

Every record, JSON line or Parquet row, becomes one JSON object and is parsed the same way:
`customerId` is read as `customer_id`, `units` as a number or a string becomes
decimal(38,6), and any field the contract does not know is kept, as JSON, in
`_rescued_data` (as Auto Loader names it) so it is counted, never silently lost. A line
that is not a JSON object, or has no `event_id` or no readable `event_ts`, is kept whole in
`_rescued_data` and marked malformed.
"""

from __future__ import annotations

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

from usage_backfill.gold import UNITS
from usage_backfill.sources import SourceFile

RESCUED = "_rescued_data"
# Names the contract knows, drifted spellings included.
ALIASES = {"customerId": "customer_id"}
_RAW = StructType(
    [
        StructField("event_id", StringType()),
        StructField("customer_id", StringType()),
        StructField("customerId", StringType()),
        StructField("event_ts", StringType()),
        StructField("event_type", StringType()),
        StructField("units", UNITS),
    ]
)
KNOWN_FIELDS = tuple(f.name for f in _RAW.fields)


def _file_path() -> Column:
    return F.regexp_replace(F.col("_metadata.file_path"), "^file:/+", "file:/")


def _json_lines(spark: SparkSession, paths: list[str]) -> DataFrame:
    return (
        spark.read.text(paths)
        .select(F.col("value"), _file_path().alias("source_file"))
        .where(F.trim("value") != "")
    )


def _parquet_rows(spark: SparkSession, paths: list[str]) -> DataFrame:
    def as_json(df: DataFrame) -> DataFrame:
        columns = [F.col(f"`{c}`") for c in df.columns]
        return df.select(
            F.to_json(F.struct(*columns)).alias("value"), _file_path().alias("source_file")
        )

    try:
        return as_json(spark.read.option("mergeSchema", "true").parquet(*paths))
    except Exception:
        # Schemas that cannot merge (a drifted type): read file by file; any other error
        # comes back from the per-file reads.
        frames = [as_json(spark.read.parquet(p)) for p in paths]
        result = frames[0]
        for frame in frames[1:]:
            result = result.unionByName(frame)
        return result


def raw_records(spark: SparkSession, files: tuple[SourceFile, ...]) -> DataFrame | None:
    """(value, source_file) for every record of the files, or None when there are none."""
    json_paths = [f.path for f in files if f.is_json]
    parquet_paths = [f.path for f in files if not f.is_json]
    parts = []
    if json_paths:
        parts.append(_json_lines(spark, json_paths))
    if parquet_paths:
        parts.append(_parquet_rows(spark, parquet_paths))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])


def to_contract(records: DataFrame) -> DataFrame:
    """Contract columns plus `source_file`, `ingest_date`, `_rescued_data`, `malformed`."""
    parsed = F.from_json("value", _RAW)
    keys = F.json_object_keys("value")
    unknown = F.filter(keys, lambda k: ~k.isin(*KNOWN_FIELDS))
    as_map = F.from_json("value", "map<string,string>")
    rescued_fields = F.map_filter(as_map, lambda k, _v: F.array_contains(unknown, k))
    event_ts = parsed["event_ts"].cast("timestamp")
    # Without an id or a time a record cannot be placed or deduplicated: kept whole.
    malformed = keys.isNull() | parsed["event_id"].isNull() | event_ts.isNull()
    return records.select(
        parsed["event_id"].alias("event_id"),
        F.coalesce(parsed["customer_id"], parsed["customerId"]).alias("customer_id"),
        event_ts.alias("event_ts"),
        parsed["event_type"].alias("event_type"),
        parsed["units"].alias("units"),
        F.col("source_file"),
        F.regexp_extract("source_file", r"ingest_date=(\d{4}-\d{2}-\d{2})", 1)
        .cast("date")
        .alias("ingest_date"),
        F.when(malformed, F.col("value"))
        .when(F.size(unknown) > 0, F.to_json(rescued_fields))
        .alias(RESCUED),
        malformed.alias("malformed"),
    )
