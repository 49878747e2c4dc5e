"""The rehearsal's executor, driven in-process: runs on a pool of slots sharing the test
session, failures and cancellations reported, the live pipeline's commits recorded."""

from __future__ import annotations

import io
import json
import queue
import time
from typing import Any

from conftest import Rehearsal
from usage_backfill.rehearsal.executor import Executor, describe_error, serve
from usage_backfill.tables import WarehouseTables

TERMINAL = ("finished", "failed", "cancelled")
STAGING = "main.rehearsal_executor.daily_customer_usage_staging"
LIVE_TABLE = "main.rehearsal_executor.daily_customer_usage"


class Events:
    """Collects what the executor emits, from any thread."""

    def __init__(self) -> None:
        self.all: list[dict[str, Any]] = []
        self._queue: queue.Queue[dict[str, Any]] = queue.Queue()

    def emit(self, event: dict[str, Any]) -> None:
        json.dumps(event)  # every event must be JSON-ready
        self._queue.put(event)

    def until(self, done: Any, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.all.append(self._queue.get(timeout=max(deadline - time.monotonic(), 0.1)))

    def of(self, run_id: int) -> list[dict[str, Any]]:
        return [e for e in self.all if e.get("run_id") == run_id]

    def ended(self, run_id: int) -> bool:
        return any(e["event"] in TERMINAL for e in self.of(run_id))

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.all if e["event"] == name]


def test_runs_failures_cancellation_and_the_live_pipeline(rehearsal: Rehearsal) -> None:
    events = Events()
    executor = Executor(rehearsal.spark, 2, events.emit)
    warehouse = rehearsal.summary["warehouse_dir"]
    try:
        executor.submit(
            {
                "op": "live_start",
                "table": LIVE_TABLE,
                "date": rehearsal.summary["cutover_date"],
                "warehouse_dir": warehouse,
                "every_ms": 1000,
            }
        )
        for run_id, index in ((1, 0), (2, 1), (3, 2)):
            params = rehearsal.backfill_params(
                rehearsal.day(index), "bf-executor", staging_table=STAGING
            )
            executor.submit(
                {"op": "run", "run_id": run_id, "job": "backfill-partition", "params": params}
            )
        executor.submit({"op": "cancel", "run_id": 3})  # queued behind runs 1 and 2
        bad = rehearsal.backfill_params(rehearsal.day(0), "bf-executor", partition_date="soon")
        executor.submit({"op": "run", "run_id": 4, "job": "backfill-partition", "params": bad})
        executor.submit({"op": "run", "run_id": 4, "job": "rollback", "params": {}})
        executor.submit({"op": "cancel", "run_id": 99})
        events.until(lambda: all(events.ended(r) for r in (1, 2, 3, 4)))
        params = rehearsal.backfill_params(rehearsal.day(2), "bf-executor", staging_table=STAGING)
        executor.submit({"op": "run", "run_id": 5, "job": "backfill-partition", "params": params})
        events.until(lambda: bool(events.of(5)))
        executor.submit({"op": "cancel", "run_id": 5})  # running: its job group is cancelled
        events.until(lambda: events.ended(5))
        executor.submit({"op": "live_stop"})
        events.until(lambda: bool(events.named("live_stopped")))
    finally:
        executor.close()

    assert events.named("live_started")
    for run_id, index in ((1, 0), (2, 1)):
        kinds = [e["event"] for e in events.of(run_id)]
        assert kinds == ["started", "finished"], kinds
        result = events.of(run_id)[-1]["result"]
        assert result["partition_date"] == rehearsal.day(index).isoformat()
        assert isinstance(result["staging_version"], int)
        assert result["staging_table"] == STAGING
    assert [e["event"] for e in events.of(3)] == ["cancelled"]
    assert [e["event"] for e in events.of(5)] == ["started", "cancelled"]
    failed = events.of(4)[-1]
    assert failed["event"] == "failed"
    assert failed["error"].startswith("ParameterError: job parameter 'partition_date'")
    # The second run 4 was refused as a repeat, before anything ran.
    (repeated,) = [e for e in events.named("error") if "run 4 was submitted before" in e["error"]]
    assert "run_id" not in repeated

    commits = events.named("live_stopped")[0]["commits"]
    assert commits and [c["batch"] for c in commits] == list(range(1, len(commits) + 1))
    tables = WarehouseTables(rehearsal.spark, warehouse)
    history = {
        r["version"]: json.loads(r["userMetadata"] or "{}")
        for r in tables.history(LIVE_TABLE).collect()
    }
    for c in commits:
        assert history[c["version"]]["job"] == "live_pipeline"
        assert history[c["version"]]["batch"] == c["batch"]
    assert tables.read(LIVE_TABLE).count() == sum(c["rows"] for c in commits)


def test_serve_answers_bad_lines_and_says_ready_first(rehearsal: Rehearsal) -> None:
    requests = "\n".join(
        [
            "not json",
            json.dumps({"op": "explode"}),
            json.dumps({"op": "run", "run_id": "one", "job": "rollback", "params": {}}),
            json.dumps({"op": "run", "run_id": 1, "job": "vacuum", "params": {}}),
            json.dumps({"op": "cancel", "run_id": 7}),
            "",
        ]
    )
    out = io.StringIO()
    serve(rehearsal.spark, io.StringIO(requests), out, slots=1)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0] == {"event": "ready"}
    assert [e["event"] for e in lines[1:]] == ["error"] * 4
    assert "unknown op 'explode'" in lines[2]["error"]
    assert "integer run_id" in lines[3]["error"]
    assert "unknown job 'vacuum'" in lines[4]["error"] and lines[4]["run_id"] == 1


def test_errors_keep_the_lines_before_the_stack_trace() -> None:
    error = RuntimeError("An error occurred\n: java.lang.IllegalStateException: boom\n\tat x.y(Z)")
    assert describe_error(error) == (
        "RuntimeError: An error occurred | : java.lang.IllegalStateException: boom"
    )
    assert len(describe_error(ValueError("x" * 5000))) == 2000
