"""A stand-in for the live pipeline: a thread appending small batches of gold rows to the
partition it owns (the cutover date) while the fleet promotes and rolls back others.

Each batch is one append commit stamped `{"job": "live_pipeline", "batch": n, ...}`; its
version is found by the commit's write id, as the jobs find theirs.
"""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

from pyspark import InheritableThread
from pyspark.sql import SparkSession

from usage_backfill import commits, gold
from usage_backfill.tables import Tables

ROWS_PER_BATCH = 2


class LivePipeline:
    """Appends a batch every `every_ms` milliseconds until stopped."""

    def __init__(
        self,
        spark: SparkSession,
        tables: Tables,
        table: str,
        date: dt.date,
        every_ms: int,
        rows_per_batch: int = ROWS_PER_BATCH,
    ) -> None:
        self.spark = spark
        self.tables = tables
        self.table = table
        self.date = date
        self.every_s = max(every_ms, 0) / 1000
        self.rows_per_batch = rows_per_batch
        self.commits: list[dict[str, int]] = []
        self.error: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        gold.ensure_table(self.tables, self.table)
        self._thread = InheritableThread(target=self._loop, name="live-pipeline", daemon=True)
        self._thread.start()

    def stop(self) -> list[dict[str, int]]:
        """Stops after the batch in progress; the commits made, in order."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        return list(self.commits)

    def _loop(self) -> None:
        self.spark.sparkContext.setJobGroup("live-pipeline", "live pipeline appends")
        batch = 0
        try:
            while not self._stop.is_set():
                batch += 1
                self.append(batch)
                if self._stop.wait(self.every_s):
                    break
        except Exception as e:  # reported by live_stop
            self.error = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"

    def append(self, batch: int) -> int:
        """One batch in one commit; returns its version."""
        rows: list[tuple[Any, ...]] = [
            (self.date, f"live-{batch}-{i}", "basic", 1, Decimal(batch))
            for i in range(self.rows_per_batch)
        ]
        write_id, metadata = commits.stamp(
            "live_pipeline", batch=batch, partition_date=self.date.isoformat()
        )
        writer = (
            self.spark.createDataFrame(rows, gold.SCHEMA)
            .write.format("delta")
            .mode("append")
            .option("userMetadata", metadata)
        )
        self.tables.save(writer, self.table)
        version = commits.version_of(self.tables, self.table, write_id)
        self.commits.append({"version": version, "batch": batch, "rows": len(rows)})
        return version
