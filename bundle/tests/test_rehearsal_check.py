"""The rehearsal's check: passes after promotions, a rollback and live appends, and names the
date of a promoted partition that was tampered with."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from typing import Any

from pyspark.sql import functions as F

from conftest import Rehearsal
from usage_backfill import gold, run_promotion, run_rollback
from usage_backfill.rehearsal.check import exit_code, report, run_checks
from usage_backfill.rehearsal.live import LivePipeline


def promote(rehearsal: Rehearsal, staged: dict[dt.date, dict[str, Any]]) -> dict[str, Any]:
    s = rehearsal.summary
    partitions = [
        {"partition_date": d.isoformat(), "staging_version": r["staging_version"]}
        for d, r in sorted(staged.items())
    ]
    return run_promotion(
        rehearsal.spark,
        {
            "backfill_id": "bf-rehearsal",
            "manifest_id": "m-1",
            "target_table": s["target_table"],
            "staging_table": s["staging_table"],
            "partitions": json.dumps(partitions),
            "cutover_date": s["cutover_date"],
            "warehouse_dir": s["warehouse_dir"],
        },
    )


def tamper(rehearsal: Rehearsal, day: dt.date) -> None:
    """Someone else's write: the partition overwritten with other numbers."""
    s = rehearsal.summary
    rows = [(day, "c1", "basic", 1, Decimal("1.5"))]
    (
        rehearsal.spark.createDataFrame(rows, gold.SCHEMA)
        .write.format("delta")
        .mode("overwrite")
        .option("replaceWhere", gold.partition_predicate(day))
        .save(rehearsal.tables.path(s["target_table"]))
    )


def test_the_check_passes_then_catches_a_tampered_partition(
    rehearsal: Rehearsal, rehearsal_staged: dict[dt.date, dict[str, Any]]
) -> None:
    s = rehearsal.summary
    d0, d1, d2, d3 = (rehearsal.day(i) for i in range(4))
    promoted = promote(rehearsal, {d: rehearsal_staged[d] for d in (d0, d1)})
    restore = next(p for p in promoted["partitions"] if p["partition_date"] == d1.isoformat())
    run_rollback(
        rehearsal.spark,
        {
            "target_table": s["target_table"],
            "partition_date": d1.isoformat(),
            "restore_version": str(restore["version_before"]),
            "backfill_id": "bf-rehearsal",
            "warehouse_dir": s["warehouse_dir"],
        },
    )
    cutover = dt.date.fromisoformat(s["cutover_date"])
    live = LivePipeline(rehearsal.spark, rehearsal.tables, s["target_table"], cutover, 0)
    batches = [{"version": live.append(b), "batch": b, "rows": 2} for b in (1, 2)]
    made = [(d, r["staging_version"]) for d, r in rehearsal_staged.items()]
    expect = {
        "target_table": s["target_table"],
        "staging_table": s["staging_table"],
        "backfill_id": "bf-rehearsal",
        "baseline_target_version": s["baseline_target_version"],
        "promoted": [d0.isoformat()],
        "rolled_back": [
            {
                "partition_date": d1.isoformat(),
                "restore_version": restore["version_before"],
                "promoted_version": restore["version_after"],
            }
        ],
        "never_promoted": [d2.isoformat(), d3.isoformat()],
        "live": {"date": cutover.isoformat(), "commits": batches},
        "attempts": [
            *(
                {"partition_date": d.isoformat(), "attempt": 1, "staging_version": v}
                for d, v in made
            ),
            # A failed attempt reports no version (and made no commit here).
            {"partition_date": d0.isoformat(), "attempt": 2, "staging_version": None},
        ],
    }

    checks = run_checks(rehearsal.spark, s, expect)
    assert [c for c in checks if not c.ok] == []
    assert len(checks) == 1 + 1 + 2 + 2 + 4 + 1
    assert exit_code(checks) == 0
    # A staging commit of an attempt the ledger does not list is named.
    keys = ("target_table", "staging_table", "backfill_id", "baseline_target_version")
    unlisted = {**{k: expect[k] for k in keys}, "attempts": expect["attempts"][1:]}
    unaccounted = [c for c in run_checks(rehearsal.spark, s, unlisted) if not c.ok]
    assert [c.name for c in unaccounted] == ["no staging commit outside the ledger's attempts"]
    assert f"{made[0][0]} attempt 1 at [{made[0][1]}]" in unaccounted[0].detail
    text = report(checks, as_json=False)
    assert f"ok    {d0} promoted: " in text
    assert text.endswith(f"rehearsal check: {len(checks)} checks, 0 failed")
    # The promoted days now hold the recomputation, not production's doubled units.
    baseline = rehearsal.tables.read(s["target_table"], s["baseline_target_version"])
    now = rehearsal.tables.read(s["target_table"])
    day0 = F.col("usage_date") == F.lit(d0)
    assert now.where(day0).exceptAll(baseline.where(day0)).count() > 0

    tamper(rehearsal, d0)
    only_promoted = {k: expect[k] for k in ("target_table", "baseline_target_version", "promoted")}
    checks = run_checks(rehearsal.spark, s, only_promoted)
    failed = [c for c in checks if not c.ok]
    assert [c.name for c in failed] == [f"{d0} promoted"]
    assert "rows missing" in failed[0].detail
    assert exit_code(checks) == 1
    assert f"FAIL  {d0} promoted: differs from the independent computation" in report(
        checks, as_json=False
    )
    as_json = json.loads(report(checks, as_json=True))
    assert as_json["failed"] == 1 and len(as_json["checks"]) == len(checks)
