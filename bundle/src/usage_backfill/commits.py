"""Delta commits stamped with who wrote them (`userMetadata`), and finding the version a
stamped commit made even while other writers commit to the same table."""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from pyspark.sql import functions as F

from usage_backfill.errors import JobError
from usage_backfill.tables import Tables

# How far back in a table's history to look for the commit just made; concurrent writers
# (other partitions, the live pipeline) may have committed after it.
HISTORY_DEPTH = 200


def stamp(job: str, **fields: Any) -> tuple[str, str]:
    """A unique write id and the commit's `userMetadata` JSON carrying it."""
    write_id = uuid.uuid4().hex
    metadata = {"job": job, **fields, "write_id": write_id}
    return write_id, json.dumps(metadata, sort_keys=True, default=str)


def latest_version(tables: Tables, name: str) -> int:
    row = tables.history(name, 1).select("version").first()
    if row is None:
        raise JobError(f"{name} has no history")
    return int(row["version"])


def version_of(tables: Tables, name: str, write_id: str) -> int:
    """The version whose commit carries `write_id`."""
    rows = (
        tables.history(name, HISTORY_DEPTH)
        .where(F.col("userMetadata").contains(write_id))
        .select("version")
        .collect()
    )
    if len(rows) != 1:
        raise JobError(f"cannot find the commit of write {write_id} in {name}'s history")
    return int(rows[0]["version"])


def metadata_at(tables: Tables, name: str, version: int) -> dict[str, Any] | None:
    """The `userMetadata` of the commit that made `version`, or None when the version does
    not exist (or carries none)."""
    row = tables.history(name).where(F.col("version") == version).select("userMetadata").first()
    if row is None or not row["userMetadata"]:
        return None
    try:
        parsed = json.loads(row["userMetadata"])
    except json.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


def latest_stamped(tables: Tables, name: str, fields: Mapping[str, Any]) -> int | None:
    """The newest version whose commit's stamp carries every one of `fields`, unless a
    rollback of the same partition was committed after it (then None)."""
    rows = (
        tables.history(name, HISTORY_DEPTH)
        .select("version", "userMetadata")
        .orderBy(F.col("version").desc())
        .collect()
    )
    wanted = {k: str(v) for k, v in fields.items()}
    for row in rows:
        try:
            stamp = json.loads(row["userMetadata"] or "null")
        except json.JSONDecodeError:
            continue
        if not isinstance(stamp, dict):
            continue
        if stamp.get("job") == "rollback" and str(stamp.get("partition_date")) == wanted.get(
            "partition_date"
        ):
            return None
        if all(str(stamp.get(k)) == v for k, v in wanted.items()):
            return int(row["version"])
    return None


def version_exists(tables: Tables, name: str, version: int) -> bool:
    return tables.history(name).where(F.col("version") == version).first() is not None
