"""A small raw data set with every trap, written to disk, and the plain-Python computation of
gold from it that the Spark jobs must agree with.

Days D1..D3 (March 2024). Traps: a JSON file copied under another name in another folder
and again in the next day's folder; a file repeating event ids; a drifted JSON file
(`customerId`, `units` as a string, an extra `region` field, a line that is not JSON); a
drifted Parquet file (`units` as a string, an extra column); events of D1 arriving two days
late, and one arriving past the lookback window; a customer whose plan changes during D1;
a dimension correction committed after the pinned version.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql.types import (
    DecimalType,
    StringType,
    StructField,
    StructType,
    TimestampType,
)

D1, D2, D3 = dt.date(2024, 3, 1), dt.date(2024, 3, 2), dt.date(2024, 3, 3)
CUTOVER = dt.date(2024, 3, 10)
LOOKBACK = 3
DIM_TABLE = "main.ref.customer_dim"
PINNED_DIM_VERSION = 0
UTC = dt.UTC

DIM_V0 = [
    ("c1", "basic", dt.datetime(2024, 1, 1, tzinfo=UTC), None),
    ("c2", "pro", dt.datetime(2024, 1, 1, tzinfo=UTC), dt.datetime(2024, 3, 1, 12, tzinfo=UTC)),
    ("c2", "enterprise", dt.datetime(2024, 3, 1, 12, tzinfo=UTC), None),
    ("c3", "basic", dt.datetime(2024, 1, 1, tzinfo=UTC), None),
]
# Committed after the pin: c1 retroactively on "premium". A backfill pinned at v0 ignores it.
DIM_V1 = [
    ("c1", "premium", dt.datetime(2024, 1, 1, tzinfo=UTC), None),
    *DIM_V0[1:],
]
DIM_SCHEMA = StructType(
    [
        StructField("customer_id", StringType()),
        StructField("plan", StringType()),
        StructField("valid_from", TimestampType()),
        StructField("valid_to", TimestampType()),
    ]
)


def ts(day: dt.date, hour: int, minute: int = 0, second: int = 0) -> str:
    moment = dt.datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def event(eid: str, cust: str, when: str, units: str, kind: str = "api_call") -> dict[str, Any]:
    return {
        "event_id": eid,
        "customer_id": cust,
        "event_ts": when,
        "event_type": kind,
        "units": float(units),
    }


@dataclass
class RawData:
    root: Path
    # What each file holds, as written (copies point at the same records).
    records: dict[Path, list[Any]] = field(default_factory=dict)

    def folder(self, day: dt.date) -> Path:
        path = self.root / f"ingest_date={day.isoformat()}"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def json_lines(self, day: dt.date, name: str, rows: list[Any]) -> Path:
        path = self.folder(day) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
        path.write_text("\n".join(lines) + "\n")
        self.records[path] = rows
        return path

    def copy(self, source: Path, day: dt.date, name: str) -> Path:
        path = self.folder(day) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, path)
        self.records[path] = self.records[source]
        return path

    def parquet(
        self,
        spark: SparkSession,
        day: dt.date,
        name: str,
        rows: list[dict[str, Any]],
        drifted: bool,
    ) -> Path:
        units_type = StringType() if drifted else DecimalType(38, 6)
        fields = [
            StructField("event_id", StringType()),
            StructField("customerId" if drifted else "customer_id", StringType()),
            StructField("event_ts", TimestampType()),
            StructField("event_type", StringType()),
            StructField("units", units_type),
        ]
        if drifted:
            fields.append(StructField("source_system", StringType()))
        data = []
        for r in rows:
            when = dt.datetime.fromisoformat(r["event_ts"].replace("Z", "+00:00"))
            units = str(r["units"]) if drifted else Decimal(str(r["units"]))
            values = [r["event_id"], r["customer_id"], when, r["event_type"], units]
            if drifted:
                values.append("legacy-exporter")
            data.append(tuple(values))
        scratch = self.root.parent / f"_parquet_{name}"
        spark.createDataFrame(data, StructType(fields)).coalesce(1).write.mode("overwrite").parquet(
            str(scratch)
        )
        (part,) = scratch.glob("part-*.parquet")
        path = self.folder(day) / name
        shutil.move(part, path)
        shutil.rmtree(scratch)
        self.records[path] = rows
        return path


def build_raw(spark: SparkSession, root: Path) -> RawData:
    raw = RawData(root)
    a = raw.json_lines(
        D1,
        "events-a.json",
        [
            event("e1", "c1", ts(D1, 0, 0, 0), "1.5"),
            event("e2", "c1", ts(D1, 9, 30), "2.25"),
            event("e3", "c2", ts(D1, 11, 59, 59), "10"),  # pro (before noon)
            event("e4", "c2", ts(D1, 12), "0.000001"),  # enterprise (from noon)
            event("e5", "c4", ts(D1, 13), "3"),  # no dimension row: null plan
            event("e6", "c3", ts(D1, 23, 59, 59), "4.125"),
            event("e7", "c3", ts(D2, 0, 0, 0), "5"),  # already D2 by event time
        ],
    )
    raw.copy(a, D1, "resent/events-a-copy.json")  # same bytes, another name and folder
    raw.copy(a, D2, "events-a-resent.json")  # same bytes, the next day's folder
    raw.json_lines(
        D1,
        "events-c.json",
        [
            event("e2", "c1", ts(D1, 9, 30), "2.25"),  # repeats an event of events-a
            event("e8", "c1", ts(D1, 15), "7.000002"),
            event("e8", "c1", ts(D1, 15), "7.000002"),  # repeated within the file
        ],
    )
    raw.json_lines(
        D1,
        "drifted.json",
        [
            {
                "event_id": "e9",
                "customerId": "c3",
                "event_ts": ts(D1, 16),
                "event_type": "export",
                "units": "2.500000",
                "region": "eu-west-1",
            },
            {
                "event_id": "e10",
                "customerId": "c1",
                "event_ts": ts(D1, 17),
                "event_type": "export",
                "units": "0.75",
            },
            "this line is not JSON",
        ],
    )
    raw.parquet(
        spark,
        D1,
        "events-b.parquet",
        [
            event("e11", "c2", ts(D1, 18), "6.5"),
            event("e12", "c3", ts(D2, 1), "1.000001"),
        ],
        drifted=False,
    )
    raw.parquet(
        spark,
        D2,
        "legacy.parquet",
        [
            event("e13", "c1", ts(D2, 8), "3.333333"),
            event("e14", "c2", ts(D2, 9), "12.000000"),
        ],
        drifted=True,
    )
    raw.json_lines(
        D3,
        "late.json",
        [
            event("e15", "c1", ts(D1, 22), "100"),  # D1's, arriving two days late
            event("e16", "c3", ts(D3, 10), "8.8"),
        ],
    )
    raw.json_lines(
        D1 + dt.timedelta(days=LOOKBACK + 2),
        "very-late.json",
        [event("e17", "c1", ts(D1, 23), "1000")],  # past the lookback window: not read
    )
    raw.json_lines(D3, "empty-lines.json", ["", event("e18", "c4", ts(D3, 11), "1.1"), ""])
    return raw


def write_dimension(spark: SparkSession, path: str) -> None:
    """Version 0 (pinned) and version 1 (a correction after the pin)."""
    for rows in (DIM_V0, DIM_V1):
        spark.createDataFrame(rows, DIM_SCHEMA).write.format("delta").mode("overwrite").save(path)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def parse_record(r: Any) -> dict[str, Any] | None:
    if not isinstance(r, dict) or not r.get("event_id") or not r.get("event_ts"):
        return None
    return {
        "event_id": r["event_id"],
        "customer_id": r.get("customer_id") or r.get("customerId"),
        "event_ts": dt.datetime.fromisoformat(r["event_ts"].replace("Z", "+00:00")),
        "units": Decimal(str(r["units"])),
    }


def plan_at(customer: str | None, moment: dt.datetime, dim: list[tuple]) -> str | None:
    for cust, plan, start, end in dim:
        if cust == customer and start <= moment and (end is None or moment < end):
            return plan
    return None


def expected_gold(raw: RawData, day: dt.date, dim: list[tuple] = DIM_V0) -> dict[tuple, tuple]:
    """{(usage_date, customer_id, plan): (event_count, total_units)} by the definition: files
    of folders day..day+lookback, exact copies once, each event id once, UTC event date ==
    day, the plan valid at the event's time."""
    window = {(day + dt.timedelta(days=i)).isoformat() for i in range(LOOKBACK + 1)}
    files = sorted(
        (
            p
            for p in raw.records
            if p.parent.name.split("=")[-1] in window
            or p.parent.parent.name.split("=")[-1] in window
        ),
        key=lambda p: (str(p).split("ingest_date=")[1][:10], str(p)),
    )
    seen_hashes: set[str] = set()
    events: dict[str, dict[str, Any]] = {}
    for path in files:
        digest = sha256(path)
        if digest in seen_hashes:
            continue
        seen_hashes.add(digest)
        for r in raw.records[path]:
            parsed = parse_record(r)
            if parsed is not None:
                events.setdefault(parsed["event_id"], parsed)
    groups: dict[tuple, tuple[set[str], Decimal]] = defaultdict(lambda: (set(), Decimal(0)))
    for e in events.values():
        if e["event_ts"].astimezone(UTC).date() != day:
            continue
        key = (day, e["customer_id"], plan_at(e["customer_id"], e["event_ts"], dim))
        ids, total = groups[key]
        groups[key] = (ids | {e["event_id"]}, total + e["units"])
    return {k: (len(ids), total) for k, (ids, total) in groups.items()}
