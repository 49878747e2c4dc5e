"""The gold table `daily_customer_usage` (staging has the same shape): schema, grain,
properties, and the predicate that names one partition."""

from __future__ import annotations

import datetime as dt
import hashlib

from pyspark.sql.types import (
    DateType,
    DecimalType,
    LongType,
    StringType,
    StructField,
    StructType,
)

from usage_backfill.tables import Tables

PARTITION_COLUMN = "usage_date"
# One row per day, customer and plan (a plan change during the day splits the customer).
GRAIN = ("usage_date", "customer_id", "plan")
UNITS = DecimalType(38, 6)

SCHEMA = StructType(
    [
        StructField("usage_date", DateType(), False),
        StructField("customer_id", StringType(), True),
        StructField("plan", StringType(), True),
        StructField("event_count", LongType(), False),
        StructField("total_units", UNITS, True),
    ]
)

# History kept for rollbacks: a partition can be restored from any version younger than
# these (the backfill's promotion window plus the time to notice a problem).
PROPERTIES = {
    "delta.logRetentionDuration": "interval 60 days",
    "delta.deletedFileRetentionDuration": "interval 60 days",
}


def partition_predicate(date: dt.date) -> str:
    return f"{PARTITION_COLUMN} = DATE'{date.isoformat()}'"


def schema_hash(schema: StructType) -> str:
    """A short fingerprint of column names and types (nullability aside)."""
    text = ",".join(f"{f.name}:{f.dataType.simpleString()}" for f in schema.fields)
    return "usage_" + hashlib.sha256(text.encode()).hexdigest()[:12]


def ensure_table(tables: Tables, name: str) -> None:
    """Creates the table with the gold schema when it does not exist (never alters one).
    Partition runs starting together may race to create it: losing that race is fine."""
    if tables.exists(name):
        return
    try:
        tables.create_if_missing(name, SCHEMA, PARTITION_COLUMN, PROPERTIES)
    except Exception:
        if not tables.exists(name):
            raise
