"""Gold for one day computed from the raw files in plain Python, apart from the bundle's
Spark code, by the README's definition: the files of folders D .. D + lookback, exact copies
(same SHA-256) read once (the first by ingest date, then path); every record mapped onto
the contract (`customerId` is `customer_id`, `units` a number or a string); records without
`event_id` or a readable `event_ts`, and lines that are not JSON, left out; each event id
once (the earliest-arriving copy); events whose UTC date is D; the plan valid at the
event's time (from inclusive, to exclusive; the row valid from latest wins); per customer
and plan, the events counted and their units summed as decimal(38,6).

Only reading a Parquet file's rows goes through Spark (`spark_parquet_reader`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession

from usage_backfill.tables import Tables

UTC = dt.UTC
JSON_SUFFIXES = (".json", ".jsonl", ".ndjson")
PARQUET_SUFFIX = ".parquet"
MICRO = Decimal("0.000001")

ParquetReader = Callable[[Path], list[dict[str, Any]]]
# (customer_id, plan, event_count, total_units)
GoldRow = tuple[str | None, str | None, int, Decimal | None]


@dataclass(frozen=True)
class DimRow:
    customer_id: str
    plan: str | None
    valid_from: dt.datetime
    valid_to: dt.datetime | None


@dataclass(frozen=True)
class Event:
    event_id: str
    customer_id: str | None
    event_ts: dt.datetime
    units: Decimal | None


@dataclass(frozen=True)
class IndependentDay:
    """The day's gold rows, and how many files were read and skipped as copies."""

    day: dt.date
    rows: list[GoldRow]
    files_read: int
    duplicate_files: int


def spark_parquet_reader(spark: SparkSession) -> ParquetReader:
    """Reads one Parquet file's rows with Spark (each file once per reader)."""
    read_before: dict[Path, list[dict[str, Any]]] = {}

    def read(path: Path) -> list[dict[str, Any]]:
        if path not in read_before:
            rows = spark.read.parquet(str(path)).collect()
            read_before[path] = [row.asDict() for row in rows]
        return read_before[path]

    return read


def as_utc(moment: dt.datetime) -> dt.datetime:
    """Aware datetimes to UTC; naive ones are what PySpark returns for timestamps (local
    time of this process), converted the same way."""
    return moment.astimezone(UTC)


def window_files(raw_root: Path, day: dt.date, lookback_days: int) -> list[tuple[dt.date, Path]]:
    """Data files of the window's ingest folders (subfolders included), by ingest date then
    path."""
    found = []
    for i in range(lookback_days + 1):
        ingest = day + dt.timedelta(days=i)
        folder = Path(raw_root) / f"ingest_date={ingest.isoformat()}"
        if not folder.is_dir():
            continue
        for path in folder.rglob("*"):
            if path.is_file() and path.name.endswith((*JSON_SUFFIXES, PARQUET_SUFFIX)):
                found.append((ingest, path))
    return sorted(found, key=lambda f: (f[0], str(f[1])))


def distinct_files(
    files: list[tuple[dt.date, Path]],
) -> tuple[list[tuple[dt.date, Path]], int]:
    """The files with copies (equal bytes) left out, and how many were left out."""
    seen: set[str] = set()
    kept = []
    for ingest, path in files:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest not in seen:
            seen.add(digest)
            kept.append((ingest, path))
    return kept, len(files) - len(kept)


def file_records(path: Path, read_parquet: ParquetReader) -> list[Any]:
    """Each record as parsed: a dict, or None for a line that is not JSON."""
    if path.name.endswith(PARQUET_SUFFIX):
        return list(read_parquet(path))
    records: list[Any] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line, parse_float=Decimal))
        except json.JSONDecodeError:
            records.append(None)
    return records


def parse_time(value: Any) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return as_utc(value)
    if not isinstance(value, str):
        return None
    try:
        moment = dt.datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else as_utc(moment)


def parse_units(value: Any) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value)).quantize(MICRO, rounding=ROUND_HALF_UP)
    except (InvalidOperation, ValueError):
        return None


def to_event(record: Any) -> Event | None:
    """The record on the contract, or None when it cannot be placed (no id or time)."""
    if not isinstance(record, dict):
        return None
    event_id = record.get("event_id")
    moment = parse_time(record.get("event_ts"))
    if event_id is None or moment is None:
        return None
    customer = record.get("customer_id")
    if customer is None:
        customer = record.get("customerId")
    return Event(
        str(event_id),
        None if customer is None else str(customer),
        moment,
        parse_units(record.get("units")),
    )


def plan_at(customer: str | None, moment: dt.datetime, dim: Iterable[DimRow]) -> str | None:
    valid = [
        r
        for r in dim
        if r.customer_id == customer
        and r.valid_from <= moment
        and (r.valid_to is None or moment < r.valid_to)
    ]
    if not valid:
        return None
    valid.sort(key=lambda r: (-r.valid_from.timestamp(), r.plan is None, r.plan or ""))
    return valid[0].plan


def compute_day(
    raw_root: Path,
    day: dt.date,
    lookback_days: int,
    dim: list[DimRow],
    read_parquet: ParquetReader,
) -> IndependentDay:
    listed = window_files(raw_root, day, lookback_days)
    kept, copies = distinct_files(listed)
    events: dict[str, Event] = {}
    for _ingest, path in kept:
        for record in file_records(path, read_parquet):
            event = to_event(record)
            if event is not None:
                events.setdefault(event.event_id, event)
    groups: dict[tuple[str | None, str | None], list[Event]] = {}
    for event in events.values():
        if event.event_ts.date() == day:
            key = (event.customer_id, plan_at(event.customer_id, event.event_ts, dim))
            groups.setdefault(key, []).append(event)
    rows: list[GoldRow] = []
    for (customer, plan), group in groups.items():
        units = [e.units for e in group if e.units is not None]
        rows.append((customer, plan, len(group), sum(units, Decimal(0)) if units else None))
    return IndependentDay(day, sort_rows(rows), len(kept), copies)


def sort_rows(rows: Iterable[GoldRow]) -> list[GoldRow]:
    return sorted(rows, key=lambda r: tuple("" if v is None else str(v) for v in r))


def dimension_rows(tables: Tables, name: str, version: int) -> list[DimRow]:
    """The SCD2 dimension's rows at a Delta version."""
    rows = tables.read(name, version).collect()
    return [
        DimRow(
            r["customer_id"],
            r["plan"],
            as_utc(r["valid_from"]),
            None if r["valid_to"] is None else as_utc(r["valid_to"]),
        )
        for r in rows
    ]
