"""An independent check of the tables a rehearsal leaves, against what the fleet's ledger
says happened (the expectation file the demo writes):

- every promoted date holds, in the target's latest version, exactly the gold computed from
  the raw files in plain Python (`independent`), with the pinned dimension;
- every rolled-back date equals the target at its restore version;
- every never-promoted date equals the target's baseline version (before the rehearsal);
- every live-pipeline commit is in the target's history, stamped `live_pipeline`, and the
  live date holds as many rows as the batches wrote;
- each finished attempt made one staging commit stamped with its backfill id, partition
  date and attempt, at the staging version the run reported (when it reported one).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from usage_backfill import commits
from usage_backfill.rehearsal import independent
from usage_backfill.rehearsal.executor import describe_error
from usage_backfill.tables import Tables, WarehouseTables

SHOWN_DIFFERENCES = 3


class InputError(ValueError):
    """The sample summary or the expectation cannot be read."""


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def load_json(path: Path, what: str) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read the {what} {path}: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"the {what} {path} is not a JSON object")
    return data


def _date(value: Any, what: str) -> dt.date:
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InputError(f"{what}: {value!r} is not a date YYYY-MM-DD") from None


def _require(data: dict[str, Any], key: str, what: str) -> Any:
    if data.get(key) is None:
        raise InputError(f"the {what} has no {key!r}")
    return data[key]


def partition_rows(
    tables: Tables, name: str, days: list[dt.date], version: int
) -> dict[dt.date, list[independent.GoldRow]]:
    """The rows of the days at a version, by day (days without rows included, empty)."""
    frame = tables.read(name, version).where(F.col("usage_date").isin(*days))
    found: dict[dt.date, list[independent.GoldRow]] = {d: [] for d in days}
    for r in frame.collect():
        found.setdefault(r["usage_date"], []).append(
            (r["customer_id"], r["plan"], r["event_count"], r["total_units"])
        )
    return {d: independent.sort_rows(rows) for d, rows in found.items()}


class TargetVersions:
    """The target's partitions read once per version (the dates the checks look at)."""

    def __init__(self, tables: Tables, name: str, days: list[dt.date]) -> None:
        self.tables = tables
        self.name = name
        self.days = sorted(set(days))
        self.latest = commits.latest_version(tables, name)
        self._read: dict[int, dict[dt.date, list[independent.GoldRow]]] = {}

    def rows(self, day: dt.date, version: int | None = None) -> list[independent.GoldRow]:
        """The day's rows at the version (the latest when None)."""
        version = self.latest if version is None else version
        if version not in self._read:
            self._read[version] = partition_rows(self.tables, self.name, self.days, version)
        return self._read[version][day]


def difference(actual: list, expected: list) -> str:
    """Empty when the row lists are equal as multisets; else what is missing and extra."""
    have, want = Counter(actual), Counter(expected)
    missing = list((want - have).elements())
    extra = list((have - want).elements())
    if not missing and not extra:
        return ""

    def show(rows: list) -> str:
        text = "; ".join(
            "(" + ", ".join("null" if v is None else str(v) for v in r) + ")"
            for r in rows[:SHOWN_DIFFERENCES]
        )
        return text + (f"; ... {len(rows) - SHOWN_DIFFERENCES} more" if len(rows) > 3 else "")

    parts = []
    if missing:
        parts.append(f"{len(missing)} rows missing: {show(missing)}")
    if extra:
        parts.append(f"{len(extra)} rows not expected: {show(extra)}")
    return "; ".join(parts)


def stamps(tables: Tables, name: str) -> dict[int, dict[str, Any]]:
    """Every version of the table with its commit's `userMetadata` (parsed, or {})."""
    found = {}
    for row in tables.history(name).select("version", "userMetadata").collect():
        try:
            meta = json.loads(row["userMetadata"] or "null")
        except json.JSONDecodeError:
            meta = None
        found[int(row["version"])] = meta if isinstance(meta, dict) else {}
    return found


class Checker:
    def __init__(self, spark: SparkSession, sample: dict[str, Any], expect: dict[str, Any]):
        self.spark = spark
        self.sample = sample
        self.expect = expect
        self.tables = WarehouseTables(spark, _require(sample, "warehouse_dir", "sample"))
        self.target = str(expect.get("target_table") or _require(sample, "target_table", "sample"))
        self.staging = str(
            expect.get("staging_table") or _require(sample, "staging_table", "sample")
        )
        self.checks: list[Check] = []
        self._versions: TargetVersions | None = None

    @property
    def versions(self) -> TargetVersions:
        if self._versions is None:
            self._versions = TargetVersions(self.tables, self.target, self.dates())
        return self._versions

    def dates(self) -> list[dt.date]:
        e = self.expect
        values = [
            *(e.get("promoted") or []),
            *(item.get("partition_date") for item in e.get("rolled_back") or []),
            *(e.get("never_promoted") or []),
        ]
        if e.get("live"):
            values.append(e["live"].get("date"))
        return [_date(v, "a date of the expectation") for v in values]

    def add(self, name: str, check: Callable[[], tuple[bool, str]]) -> None:
        try:
            ok, detail = check()
        except Exception as e:
            ok, detail = False, describe_error(e)
        self.checks.append(Check(name, ok, detail))

    def run(self) -> list[Check]:
        e = self.expect
        baseline = int(_require(e, "baseline_target_version", "expectation"))
        promoted = [_date(d, "promoted") for d in e.get("promoted") or []]
        if promoted:
            self.check_promoted(promoted)
        for item in e.get("rolled_back") or []:
            day = _date(item.get("partition_date"), "rolled_back")
            version = int(_require(item, "restore_version", "rolled_back item"))
            promoted_at = item.get("promoted_version")
            self.add(
                f"{day} rolled back",
                lambda d=day, v=version, p=promoted_at: self.rolled_back(d, v, p),
            )
        for value in e.get("never_promoted") or []:
            day = _date(value, "never_promoted")
            self.add(f"{day} never promoted", lambda d=day: self.same_as(d, baseline, "baseline"))
        if e.get("live"):
            self.check_live(e["live"])
        if e.get("attempts"):
            self.check_attempts(e["attempts"])
        return self.checks

    def check_promoted(self, days: list[dt.date]) -> None:
        pins = _require(self.sample, "pins", "sample")
        dim_table = str(_require(self.sample, "dim_table", "sample"))
        dim = independent.dimension_rows(self.tables, dim_table, int(pins[dim_table]))
        raw_root = Path(_require(self.sample, "raw_root", "sample"))
        lookback = int(self.sample.get("lookback_days", 3))
        reader = independent.spark_parquet_reader(self.spark)

        def promoted(day: dt.date) -> tuple[bool, str]:
            truth = independent.compute_day(raw_root, day, lookback, dim, reader)
            actual = self.versions.rows(day)
            diff = difference(actual, truth.rows)
            source = f"the independent computation from {truth.files_read} raw files"
            if diff:
                return False, f"differs from {source}: {diff}"
            return True, f"{len(actual)} rows equal {source}"

        for day in days:
            self.add(f"{day} promoted", lambda d=day: promoted(d))

    def rolled_back(self, day: dt.date, restore: int, promoted_at: Any) -> tuple[bool, str]:
        """The day equals the version it was restored from, and the promotion it undid had
        changed it (else the rollback proves nothing)."""
        ok, detail = self.same_as(day, restore)
        if not ok or promoted_at is None:
            return ok, detail
        promoted_rows = self.versions.rows(day, int(promoted_at))
        if not difference(promoted_rows, self.versions.rows(day, restore)):
            return False, f"the promotion at version {promoted_at} changed nothing to roll back"
        return True, f"{detail}; the promotion at version {promoted_at} had other numbers"

    def same_as(self, day: dt.date, version: int, label: str = "") -> tuple[bool, str]:
        actual = self.versions.rows(day)
        then = self.versions.rows(day, version)
        what = f"the {label} version {version}" if label else f"the target at version {version}"
        diff = difference(actual, then)
        if diff:
            return False, f"differs from {what}: {diff}"
        return True, f"{len(actual)} rows equal {what}"

    def check_live(self, live: dict[str, Any]) -> None:
        day = _date(live.get("date"), "live.date")
        batches = live.get("commits") or []
        if not batches:
            self.add("live commits", lambda: (False, "the live pipeline made no commit"))
            return
        history = stamps(self.tables, self.target)

        def stamped() -> tuple[bool, str]:
            wrong = []
            for c in batches:
                version, batch = int(c["version"]), c.get("batch")
                meta = history.get(version)
                if meta is None:
                    wrong.append(f"version {version} is not in the target's history")
                elif meta.get("job") != "live_pipeline" or str(meta.get("batch")) != str(batch):
                    wrong.append(f"version {version} is stamped {meta}, not batch {batch}")
            if wrong:
                return False, "; ".join(wrong)
            versions = ", ".join(str(c["version"]) for c in batches)
            return True, f"in the target's history, stamped live_pipeline (versions {versions})"

        self.add(f"{len(batches)} live commits", stamped)
        wanted = sum(int(c.get("rows", 0)) for c in batches)

        def rows() -> tuple[bool, str]:
            count = len(self.versions.rows(day))
            detail = f"{count} rows; the {len(batches)} batches wrote {wanted}"
            return count == wanted, detail

        self.add(f"{day} live rows", rows)

    def check_attempts(self, attempts: list[dict[str, Any]]) -> None:
        # Each item may name its backfill (several backfills share a staging table).
        default_id = self.expect.get("backfill_id")
        history = stamps(self.tables, self.staging)
        by_attempt: dict[tuple[str, str, str], list[int]] = {}
        for version, meta in sorted(history.items()):
            if meta.get("job") == "backfill_partition":
                key = (
                    str(meta.get("backfill_id")),
                    str(meta.get("partition_date")),
                    str(meta.get("attempt")),
                )
                by_attempt.setdefault(key, []).append(version)
        for item in attempts:
            backfill_id = str(item.get("backfill_id") or default_id or "")
            if not backfill_id:
                raise InputError(
                    "an attempts item names no backfill_id and neither does the expectation"
                )
            day = _date(item.get("partition_date"), "attempts")
            attempt = str(_require(item, "attempt", "attempts item"))
            reported = item.get("staging_version")
            found = by_attempt.get((backfill_id, day.isoformat(), attempt), [])

            def one_commit(found: list[int] = found, reported: Any = reported) -> tuple[bool, str]:
                if reported is None:
                    # A failed run reports no version; it may have committed before failing.
                    ok = len(found) <= 1
                    return ok, f"no version reported; {len(found)} commits {found}"
                if len(found) != 1:
                    return False, f"{len(found)} staging commits {found}, expected one"
                if found[0] != int(reported):
                    return False, f"the commit is version {found[0]}, the run reported {reported}"
                return True, f"one staging commit, version {found[0]} as reported"

            self.add(f"{day} attempt {attempt} staging commit", one_commit)

        known = {
            (
                str(item.get("backfill_id") or default_id),
                str(item.get("partition_date")),
                str(item.get("attempt")),
            )
            for item in attempts
        }
        backfills = {key[0] for key in known}
        unaccounted = sorted(
            (key, versions)
            for key, versions in by_attempt.items()
            if key[0] in backfills and key not in known
        )

        def accounted() -> tuple[bool, str]:
            if unaccounted:
                shown = "; ".join(f"{k[1]} attempt {k[2]} at {v}" for k, v in unaccounted[:5])
                return False, f"staging commits of attempts the ledger does not know: {shown}"
            return True, f"each of the {len(known)} attempts' commits is the ledger's"

        self.add("no staging commit outside the ledger's attempts", accounted)


def run_checks(spark: SparkSession, sample: dict[str, Any], expect: dict[str, Any]) -> list[Check]:
    """The checks, in order; raises InputError for an unusable sample or expectation."""
    return Checker(spark, sample, expect).run()


def report(checks: list[Check], as_json: bool) -> str:
    failed = sum(not c.ok for c in checks)
    if as_json:
        return json.dumps({"checks": [asdict(c) for c in checks], "failed": failed}, indent=2)
    lines = [c.line() for c in checks]
    lines.append(f"rehearsal check: {len(checks)} checks, {failed} failed")
    return "\n".join(lines)


def exit_code(checks: list[Check]) -> int:
    """0 when every check passed (and there was one), 1 otherwise (2, unreadable inputs,
    is the caller's)."""
    return 0 if checks and all(c.ok for c in checks) else 1
