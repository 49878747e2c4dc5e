"""Seeded raw event files with every data trap, under `<raw>/ingest_date=YYYY-MM-DD/`.

The same seed gives the same files byte for byte (JSON; Parquet files hold the same rows):
all randomness comes from `random.Random(seed)`, nothing from the clock. Traps sit on fixed
days of the range (day index modulo its length), so every range of any length has all:

- day 0: a JSON file copied under another name in a subfolder and into the next day's
  folder (exact duplicate files); a normal Parquet file; one event of the day arriving past
  the lookback window (it must not count).
- day 1: a customer whose plan changes at noon, with events on both sides; events arriving
  one and three days late.
- day 2: event ids repeated within a file and across files; a drifted JSON file
  (`customerId`, `units` as a string, an unknown field, a line that is not JSON).
- day 3: a drifted Parquet file (`units` as a string, an extra column).
"""

from __future__ import annotations

import datetime as dt
import json
import random
import shutil
import tempfile
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

UTC = dt.UTC
DEFAULT_LOOKBACK_DAYS = 3
PLANS = ("basic", "pro", "enterprise")
EVENT_TYPES = ("api_call", "export", "query")
# The customer whose plan changes during day 1 (at noon), by index.
PLAN_CHANGER = 1
PLAN_CHANGE_HOUR = 12


def folder_name(day: dt.date) -> str:
    return f"ingest_date={day.isoformat()}"


def iso_ts(moment: dt.datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class RawSpec:
    """What to generate: days start .. start + days - 1, their customers and the seed."""

    start: dt.date
    days: int
    seed: int = 7
    customers: int = 5
    lookback_days: int = DEFAULT_LOOKBACK_DAYS

    @property
    def end(self) -> dt.date:
        return self.start + dt.timedelta(days=self.days - 1)

    def day(self, index: int) -> dt.date:
        """The day of a trap: index modulo the range's length."""
        return self.start + dt.timedelta(days=index % self.days)

    @property
    def customer_ids(self) -> list[str]:
        return [f"c{i + 1}" for i in range(self.customers)]

    @property
    def plan_change_at(self) -> dt.datetime:
        d = self.day(1)
        return dt.datetime(d.year, d.month, d.day, PLAN_CHANGE_HOUR, tzinfo=UTC)


@dataclass
class RawSample:
    """The files written and the traps planted (name to a short description)."""

    root: Path
    files: list[Path] = field(default_factory=list)
    traps: dict[str, str] = field(default_factory=dict)
    base_plans: dict[str, str] = field(default_factory=dict)


def _event(eid: str, customer: str, moment: dt.datetime, kind: str, units: float) -> dict:
    return {
        "event_id": eid,
        "customer_id": customer,
        "event_ts": iso_ts(moment),
        "event_type": kind,
        "units": units,
    }


def _day_events(rng: random.Random, spec: RawSpec, day: dt.date) -> list[dict[str, Any]]:
    """4 to 7 events per customer during the day, sorted by time; the plan changer has
    events just before and after its change on day 1."""
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=UTC)
    moments: list[tuple[dt.datetime, str]] = []
    for customer in spec.customer_ids:
        for _ in range(rng.randint(4, 7)):
            moments.append((midnight + dt.timedelta(seconds=rng.randrange(86_400)), customer))
    if day == spec.day(1) and spec.customers > PLAN_CHANGER:
        changer = spec.customer_ids[PLAN_CHANGER]
        change = spec.plan_change_at
        moments += [(change - dt.timedelta(minutes=30), changer), (change, changer)]
    moments.sort()
    return [
        _event(
            f"ev-{day:%Y%m%d}-{n:03d}",
            customer,
            moment,
            rng.choice(EVENT_TYPES),
            rng.randint(1, 50_000) / 1000,
        )
        for n, (moment, customer) in enumerate(moments)
    ]


class _Writer:
    def __init__(self, spark: SparkSession, sample: RawSample) -> None:
        self.spark = spark
        self.sample = sample

    def path(self, day: dt.date, name: str) -> Path:
        path = self.sample.root / folder_name(day) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self.sample.files.append(path)
        return path

    def json_lines(self, day: dt.date, name: str, rows: list[Any]) -> Path:
        lines = [r if isinstance(r, str) else json.dumps(r) for r in rows]
        path = self.path(day, name)
        path.write_text("\n".join(lines) + "\n")
        return path

    def copy(self, source: Path, day: dt.date, name: str) -> Path:
        path = self.path(day, name)
        shutil.copyfile(source, path)
        return path

    def parquet(self, day: dt.date, name: str, rows: list[dict[str, Any]], drifted: bool) -> Path:
        """One Parquet file; drifted: `units` as a string and an extra `source_system`."""
        fields = [
            StructField("event_id", StringType()),
            StructField("customer_id", StringType()),
            StructField("event_ts", TimestampType()),
            StructField("event_type", StringType()),
            StructField("units", StringType() if drifted else DecimalType(38, 6)),
        ]
        if drifted:
            fields.append(StructField("source_system", StringType()))
        data = []
        for r in rows:
            moment = dt.datetime.fromisoformat(r["event_ts"])
            units = str(r["units"]) if drifted else Decimal(str(r["units"]))
            values = [r["event_id"], r["customer_id"], moment, r["event_type"], units]
            data.append((*values, "legacy-exporter") if drifted else tuple(values))
        path = self.path(day, name)
        with tempfile.TemporaryDirectory(dir=self.sample.root.parent) as scratch:
            out = Path(scratch) / "out"
            frame = self.spark.createDataFrame(data, StructType(fields)).coalesce(1)
            frame.write.parquet(str(out))
            (part,) = out.glob("part-*.parquet")
            shutil.move(part, path)
        return path


def write_raw(spark: SparkSession, root: Path, spec: RawSpec) -> RawSample:
    """Writes the raw files of the range (and its late arrivals) under `root`."""
    if spec.days < 1 or spec.customers < 3:
        raise ValueError("a sample needs at least one day and three customers")
    rng = random.Random(spec.seed)
    sample = RawSample(Path(root).resolve())
    sample.root.mkdir(parents=True, exist_ok=True)
    sample.base_plans = {c: rng.choice(PLANS) for c in spec.customer_ids}
    w = _Writer(spark, sample)
    traps = sample.traps
    for day in (spec.start + dt.timedelta(days=i) for i in range(spec.days)):
        events = _day_events(rng, spec, day)
        on_time = list(events)
        if day == spec.day(0):
            parquet_rows, on_time = on_time[-3:], on_time[:-3]
            w.parquet(day, "events-b.parquet", parquet_rows, drifted=False)
            traps["parquet"] = f"{day}: events-b.parquet, a normal Parquet file"
            past = day + dt.timedelta(days=spec.lookback_days + 1)
            moment = dt.datetime(day.year, day.month, day.day, 23, tzinfo=UTC)
            very_late = _event(
                f"ev-{day:%Y%m%d}-past", spec.customer_ids[0], moment, "api_call", 1000.0
            )
            w.json_lines(past, "very-late.json", [very_late])
            traps["past_lookback"] = (
                f"{day}: an event of the day in {folder_name(past)}/very-late.json, "
                f"past the {spec.lookback_days}-day lookback (must not count)"
            )
        if day == spec.day(1):
            late, on_time = on_time[:3], on_time[3:]
            w.json_lines(day + dt.timedelta(days=1), "late.json", late[:2])
            w.json_lines(day + dt.timedelta(days=3), "late.json", late[2:])
            traps["late_records"] = (
                f"{day}: 2 events in {folder_name(day + dt.timedelta(days=1))}/late.json, "
                f"1 in {folder_name(day + dt.timedelta(days=3))}/late.json"
            )
            traps["plan_change"] = (
                f"{day}: customer {spec.customer_ids[PLAN_CHANGER]} changes plan at "
                f"{iso_ts(spec.plan_change_at)}, events on both sides"
            )
        if day == spec.day(2):
            drifted, on_time = on_time[:2], on_time[2:]
            w.json_lines(day, "drifted.json", _drift(drifted))
            traps["drifted_json"] = (
                f"{day}: drifted.json with customerId, units as a string, an unknown "
                "field 'region' and a line that is not JSON"
            )
        if day == spec.day(3):
            legacy, on_time = on_time[:3], on_time[3:]
            w.parquet(day, "legacy.parquet", legacy, drifted=True)
            traps["drifted_parquet"] = (
                f"{day}: legacy.parquet with units as a string and an extra column source_system"
            )
        main = w.json_lines(day, "events-a.json", on_time)
        if day == spec.day(0):
            w.copy(main, day, "resent/events-a-copy.json")
            w.copy(main, day + dt.timedelta(days=1), "events-a-resent.json")
            traps["duplicate_files"] = (
                f"{day}: events-a.json copied as resent/events-a-copy.json and into "
                f"{folder_name(day + dt.timedelta(days=1))}/events-a-resent.json"
            )
        if day == spec.day(2):
            repeats = [on_time[0], on_time[1], on_time[1]]
            w.json_lines(day, "repeats.json", repeats)
            traps["duplicate_events"] = (
                f"{day}: repeats.json repeats 2 event ids of events-a.json, one of them "
                "twice within the file"
            )
    sample.files.sort()
    return sample


def _drift(events: list[dict[str, Any]]) -> list[Any]:
    """The events as an older producer wrote them, and a line that is not JSON."""
    rows: list[Any] = []
    for n, e in enumerate(events):
        drifted = {
            "event_id": e["event_id"],
            "customerId": e["customer_id"],
            "event_ts": e["event_ts"],
            "event_type": e["event_type"],
            "units": f"{Decimal(str(e['units'])):.6f}",
        }
        if n == 0:
            drifted["region"] = "eu-west-1"
        rows.append(drifted)
    rows.append("this line is not JSON")
    return rows
