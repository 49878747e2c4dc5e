"""The jobs' parameters (SPEC 5.10), parsed from the string map Databricks hands a task."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from usage_backfill.errors import ParameterError

DEFAULT_LOOKBACK_DAYS = 3
_TABLE_NAME = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")


def required(params: Mapping[str, str], name: str) -> str:
    value = (params.get(name) or "").strip()
    if not value:
        raise ParameterError(f"job parameter {name!r} is required")
    return value


def optional(params: Mapping[str, str], name: str) -> str | None:
    value = (params.get(name) or "").strip()
    return value or None


def parse_date(name: str, value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ParameterError(f"job parameter {name!r} must be YYYY-MM-DD, got {value!r}") from None


def parse_int(name: str, value: str, minimum: int = 0) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ParameterError(f"job parameter {name!r} must be an integer, got {value!r}") from None
    if number < minimum:
        raise ParameterError(f"job parameter {name!r} must be at least {minimum}, got {number}")
    return number


def table_name(params: Mapping[str, str], name: str) -> str:
    value = required(params, name)
    if not _TABLE_NAME.match(value):
        raise ParameterError(
            f"job parameter {name!r} must be a three-part name catalog.schema.table, got {value!r}"
        )
    return value


@dataclass(frozen=True)
class BackfillParams:
    partition_date: dt.date
    backfill_id: str
    manifest_id: str
    attempt: int
    staging_table: str
    target_table: str
    dim_table: str
    dim_version: int
    raw_root: str
    lookback_days: int
    cutover_date: dt.date
    code_version: str | None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> BackfillParams:
        dim_table = table_name(params, "dim_table")
        pin = f"pin.{dim_table}"
        return cls(
            partition_date=parse_date("partition_date", required(params, "partition_date")),
            backfill_id=required(params, "backfill_id"),
            manifest_id=required(params, "manifest_id"),
            attempt=parse_int("attempt", required(params, "attempt"), minimum=1),
            staging_table=table_name(params, "staging_table"),
            target_table=table_name(params, "target_table"),
            dim_table=dim_table,
            dim_version=parse_int(pin, required(params, pin)),
            raw_root=required(params, "raw_root").rstrip("/"),
            lookback_days=parse_int(
                "lookback_days", optional(params, "lookback_days") or str(DEFAULT_LOOKBACK_DAYS)
            ),
            cutover_date=parse_date("cutover_date", required(params, "cutover_date")),
            code_version=optional(params, "code_version"),
        )


@dataclass(frozen=True)
class PartitionToPromote:
    partition_date: dt.date
    staging_version: int


@dataclass(frozen=True)
class PromotionParams:
    backfill_id: str
    manifest_id: str
    target_table: str
    staging_table: str
    partitions: tuple[PartitionToPromote, ...]
    cutover_date: dt.date | None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> PromotionParams:
        cutover = optional(params, "cutover_date")
        return cls(
            backfill_id=required(params, "backfill_id"),
            manifest_id=required(params, "manifest_id"),
            target_table=table_name(params, "target_table"),
            staging_table=table_name(params, "staging_table"),
            partitions=parse_partitions(required(params, "partitions")),
            cutover_date=parse_date("cutover_date", cutover) if cutover else None,
        )


def parse_partitions(text: str) -> tuple[PartitionToPromote, ...]:
    """`[{"partition_date": "YYYY-MM-DD", "staging_version": N}, ...]`, in date order."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as e:
        raise ParameterError(f"job parameter 'partitions' is not JSON: {e}") from None
    if not isinstance(items, list) or not items:
        raise ParameterError("job parameter 'partitions' must be a non-empty JSON array")
    parsed: dict[dt.date, PartitionToPromote] = {}
    for item in items:
        if not isinstance(item, dict):
            raise ParameterError("each of 'partitions' must be an object")
        date = parse_date("partitions[].partition_date", str(item.get("partition_date", "")))
        version = item.get("staging_version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 0:
            raise ParameterError(
                f"partitions[{date}].staging_version must be a non-negative integer, "
                f"got {version!r}"
            )
        if date in parsed and parsed[date].staging_version != version:
            raise ParameterError(f"partition {date} is listed twice with different versions")
        parsed[date] = PartitionToPromote(date, version)
    return tuple(parsed[d] for d in sorted(parsed))


@dataclass(frozen=True)
class RollbackParams:
    target_table: str
    partition_date: dt.date
    restore_version: int
    backfill_id: str | None

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> RollbackParams:
        return cls(
            target_table=table_name(params, "target_table"),
            partition_date=parse_date("partition_date", required(params, "partition_date")),
            restore_version=parse_int("restore_version", required(params, "restore_version")),
            backfill_id=optional(params, "backfill_id"),
        )
