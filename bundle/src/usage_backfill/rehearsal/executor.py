"""One long-lived Spark session running the bundle's jobs on request: JSON lines in, JSON
lines out, so a simulator (the fleet's demo) can stand it in for a Databricks workspace.

Requests, one JSON object a line:

- `{"op": "run", "run_id": 1, "job": "backfill-partition", "params": {...}}`: queued for
  one of `slots` worker threads; events `started`, then `finished` (with the job's
  `result`), `failed` (with `error`) or `cancelled`.
- `{"op": "cancel", "run_id": 1}`: a queued run never starts (`cancelled`); a running one
  has its Spark job group `run-<id>` cancelled and reports `cancelled` if it then fails,
  `finished` if it completed anyway. Unknown or ended runs are ignored.
- `{"op": "live_start", "table": ..., "date": ..., "warehouse_dir": ..., "every_ms": 500}`
  starts the live pipeline (`live_started`); `{"op": "live_stop"}` stops it after the batch
  in progress (`live_stopped` with its commits).

A request that cannot be understood gets `{"event": "error", "error": ...}` (with the
`run_id` of a refused run request, unless that id was submitted before). At the end of
the input, queued runs are cancelled, running ones are waited for, the live pipeline stops.
"""

from __future__ import annotations

import datetime as dt
import json
import queue
import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from pyspark import InheritableThread
from pyspark.sql import SparkSession

from usage_backfill.jobs import run_backfill_partition, run_promotion, run_rollback
from usage_backfill.rehearsal.live import LivePipeline
from usage_backfill.tables import WarehouseTables

Job = Callable[[SparkSession, Mapping[str, str]], dict[str, Any]]
Emit = Callable[[dict[str, Any]], None]

JOBS: dict[str, Job] = {
    "backfill-partition": run_backfill_partition,
    "promotion": run_promotion,
    "rollback": run_rollback,
}
ERROR_LIMIT = 2000
ERROR_LINES = 8
CANCEL_REPEAT_S = 0.2
_TABLE = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")


class RequestError(ValueError):
    """A request line the executor cannot act on."""


def describe_error(error: BaseException, limit: int = ERROR_LIMIT) -> str:
    """`<ExceptionClass>: <message>`; for Spark and Py4J errors only the lines before the
    JVM stack trace (at most a few), the whole cut to `limit` characters."""
    lines = []
    for line in str(error).splitlines():
        stripped = line.strip()
        if stripped.startswith("at ") or stripped.startswith("JVM stacktrace"):
            break
        if stripped:
            lines.append(stripped)
        if len(lines) == ERROR_LINES:
            break
    text = f"{type(error).__name__}: {' | '.join(lines)}"
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass
class Run:
    run_id: int
    job: str
    params: dict[str, str]
    state: str = "queued"  # queued, running, cancelled, ended
    cancel_requested: bool = False
    ended: threading.Event = field(default_factory=threading.Event)

    @property
    def group(self) -> str:
        return f"run-{self.run_id}"


class Executor:
    """Runs jobs on a pool of `slots` threads sharing one Spark session; every outcome goes
    to `emit` (called from several threads; it must be thread-safe)."""

    def __init__(
        self,
        spark: SparkSession,
        slots: int,
        emit: Emit,
        jobs: Mapping[str, Job] = JOBS,
    ) -> None:
        if slots < 1:
            raise ValueError("slots must be at least 1")
        self.spark = spark
        self.emit = emit
        self.jobs = dict(jobs)
        self._runs: dict[int, Run] = {}
        self._queue: queue.Queue[Run | None] = queue.Queue()
        self._lock = threading.Lock()
        self._live: LivePipeline | None = None
        self._closed = False
        self._workers = [
            InheritableThread(target=self._work, name=f"slot-{i}", daemon=True)
            for i in range(slots)
        ]
        for worker in self._workers:
            worker.start()

    def submit(self, request: Any) -> None:
        """Acts on one request; a bad one is answered with an `error` event."""
        try:
            if self._closed:
                raise RequestError("the executor is closed")
            if not isinstance(request, dict):
                raise RequestError("a request must be a JSON object")
            op = request.get("op")
            handlers = {
                "run": self._run,
                "cancel": self._cancel,
                "live_start": self._live_start,
                "live_stop": self._live_stop,
            }
            if op not in handlers:
                raise RequestError(f"unknown op {op!r} (one of {', '.join(handlers)})")
            handlers[op](request)
        except Exception as e:
            event: dict[str, Any] = {
                "event": "error",
                "error": str(e) if isinstance(e, RequestError) else describe_error(e),
            }
            # Names a refused run (not one submitted before), so its caller need not wait.
            run_id = request.get("run_id") if isinstance(request, dict) else None
            if type(run_id) is int and run_id not in self._runs:
                event["run_id"] = run_id
            self.emit(event)

    def close(self) -> None:
        """Cancels queued runs, waits for running ones, stops the live pipeline."""
        self._closed = True
        with self._lock:
            queued = [r for r in self._runs.values() if r.state == "queued"]
        for run in queued:
            self._cancel({"run_id": run.run_id})
        for _ in self._workers:
            self._queue.put(None)
        for worker in self._workers:
            worker.join()
        if self._live is not None:
            self._live.stop()
            self._live = None

    def _run(self, request: dict[str, Any]) -> None:
        run_id = _run_id(request)
        job = request.get("job")
        if job not in self.jobs:
            raise RequestError(f"unknown job {job!r} (one of {', '.join(sorted(self.jobs))})")
        params = request.get("params", {})
        if not isinstance(params, dict):
            raise RequestError("params must be an object of strings")
        if any(isinstance(v, dict | list) for v in params.values()):
            raise RequestError("params must be an object of strings")
        run = Run(run_id, job, {str(k): "" if v is None else str(v) for k, v in params.items()})
        with self._lock:
            if run_id in self._runs:
                raise RequestError(f"run {run_id} was submitted before")
            self._runs[run_id] = run
        self._queue.put(run)

    def _cancel(self, request: dict[str, Any]) -> None:
        run_id = _run_id(request)
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.state in ("cancelled", "ended"):
                return
            if run.state == "queued":
                run.state = "cancelled"
                run.ended.set()
                self.emit({"event": "cancelled", "run_id": run_id})
                return
            run.cancel_requested = True
        canceller = threading.Thread(target=self._keep_cancelling, args=(run,), daemon=True)
        canceller.start()

    def _keep_cancelling(self, run: Run) -> None:
        """Cancels the run's job group until the run ends: a cancel only reaches Spark jobs
        already started, and a job may start several."""
        sc = self.spark.sparkContext
        while True:
            sc.cancelJobGroup(run.group)
            if run.ended.wait(CANCEL_REPEAT_S):
                return

    def _work(self) -> None:
        sc = self.spark.sparkContext
        while True:
            run = self._queue.get()
            if run is None:
                return
            with self._lock:
                if run.state != "queued":
                    continue
                run.state = "running"
            self.emit({"event": "started", "run_id": run.run_id})
            sc.setJobGroup(run.group, f"{run.job} run {run.run_id}")
            try:
                result = self.jobs[run.job](self.spark, run.params)
            except Exception as e:
                with self._lock:
                    run.state = "ended"
                    cancelled = run.cancel_requested
                if cancelled:
                    self.emit({"event": "cancelled", "run_id": run.run_id})
                else:
                    self.emit({"event": "failed", "run_id": run.run_id, "error": describe_error(e)})
            else:
                with self._lock:
                    run.state = "ended"
                self.emit({"event": "finished", "run_id": run.run_id, "result": result})
            finally:
                run.ended.set()
                sc.setLocalProperty("spark.jobGroup.id", None)  # type: ignore[arg-type]

    def _live_start(self, request: dict[str, Any]) -> None:
        if self._live is not None:
            raise RequestError("the live pipeline is already running")
        table = request.get("table")
        if not isinstance(table, str) or not _TABLE.match(table):
            raise RequestError("live_start needs table, a three-part name")
        try:
            date = dt.date.fromisoformat(str(request.get("date")))
        except ValueError:
            raise RequestError("live_start needs date, YYYY-MM-DD") from None
        warehouse = request.get("warehouse_dir")
        if not isinstance(warehouse, str) or not warehouse:
            raise RequestError("live_start needs warehouse_dir")
        every_ms = request.get("every_ms", 500)
        if not isinstance(every_ms, int) or isinstance(every_ms, bool) or every_ms < 0:
            raise RequestError("every_ms must be a non-negative integer")
        tables = WarehouseTables(self.spark, warehouse)
        live = LivePipeline(self.spark, tables, table, date, every_ms)
        live.start()
        self._live = live
        self.emit({"event": "live_started"})

    def _live_stop(self, _request: dict[str, Any]) -> None:
        live, self._live = self._live, None
        commits = live.stop() if live is not None else []
        event: dict[str, Any] = {"event": "live_stopped", "commits": commits}
        if live is not None and live.error:
            event["error"] = live.error
        self.emit(event)


def _run_id(request: dict[str, Any]) -> int:
    run_id = request.get("run_id")
    if not isinstance(run_id, int) or isinstance(run_id, bool):
        raise RequestError(f"{request.get('op', 'request')} needs an integer run_id")
    return run_id


def line_writer(out: TextIO) -> Emit:
    """An `emit` writing one JSON line per event, whole lines only, flushed."""
    lock = threading.Lock()

    def emit(event: dict[str, Any]) -> None:
        line = json.dumps(event, default=str, sort_keys=True) + "\n"
        with lock:
            out.write(line)
            out.flush()

    return emit


def serve(spark: SparkSession, instream: Iterable[str], outstream: TextIO, slots: int) -> None:
    """Says `ready`, acts on each request line until the input ends, then closes."""
    emit = line_writer(outstream)
    executor = Executor(spark, slots, emit)
    emit({"event": "ready"})
    try:
        for line in instream:
            if not line.strip():
                continue
            try:
                request = json.loads(line)
            except json.JSONDecodeError as e:
                emit({"event": "error", "error": f"request is not JSON: {e}"})
                continue
            executor.submit(request)
    finally:
        executor.close()
