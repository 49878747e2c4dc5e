"""Conformance of the simulator with the official Databricks Python SDK.

Drives a simulator (its URL in DATABRICKS_HOST) through the SDK's own typed calls and
parsers: create a job, run-now with an idempotency token twice, get the run, wait for
termination, list runs, cancel, get a run's output, and a not-found. Exits non-zero with
the failing step named on the first mismatch.
"""

import os
import sys
from datetime import timedelta

from databricks.sdk import WorkspaceClient
from databricks.sdk.errors import NotFound, InvalidParameterValue
from databricks.sdk.service import jobs


def check(step, condition, detail=""):
    if not condition:
        print(f"FAILED: {step} {detail}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {step}")


def main():
    w = WorkspaceClient(host=os.environ["DATABRICKS_HOST"], token=os.environ["DATABRICKS_TOKEN"])

    created = w.jobs.create(
        name="conformance",
        max_concurrent_runs=5,
        queue=jobs.QueueSettings(enabled=True),
        tasks=[jobs.Task(task_key="t", notebook_task=jobs.NotebookTask(notebook_path="/x"))],
    )
    check("jobs/create returns a job id", isinstance(created.job_id, int) and created.job_id > 0)
    job = w.jobs.get(job_id=created.job_id)
    check("jobs/get parses settings", job.settings.max_concurrent_runs == 5, repr(job.settings))

    params = {"partition_date": "2026-01-01", "backfill_id": "conformance"}
    first = w.jobs.run_now(job_id=created.job_id, job_parameters=params, idempotency_token="conf-tok-1").response
    again = w.jobs.run_now(job_id=created.job_id, job_parameters=params, idempotency_token="conf-tok-1").response
    check("run-now with the same token returns the same run", first.run_id == again.run_id, f"{first.run_id} != {again.run_id}")

    run = w.jobs.get_run(run_id=first.run_id)
    check("runs/get parses state and status", run.state is not None and run.status is not None, repr(run))
    check("runs/get carries job parameters", {p.name: p.value for p in run.job_parameters or []} == params)

    done = w.jobs.wait_get_run_job_terminated_or_skipped(run_id=first.run_id, timeout=timedelta(seconds=60))
    check("waiter ends TERMINATED", done.state.life_cycle_state == jobs.RunLifeCycleState.TERMINATED, repr(done.state))
    check("result SUCCESS", done.state.result_state == jobs.RunResultState.SUCCESS, repr(done.state))
    check("status termination SUCCESS", done.status.termination_details.code == jobs.TerminationCodeCode.SUCCESS, repr(done.status))
    check("end_time set once terminal", (done.end_time or 0) > 0)

    task_run = done.tasks[0].run_id
    output = w.jobs.get_run_output(run_id=task_run)
    check("get-output on the task run has a notebook result", output.notebook_output and output.notebook_output.result, repr(output))

    second = w.jobs.run_now(job_id=created.job_id, job_parameters={"partition_date": "2026-01-02"}, idempotency_token="conf-tok-2").response
    w.jobs.cancel_run(run_id=second.run_id)
    cancelled = w.jobs.wait_get_run_job_terminated_or_skipped(run_id=second.run_id, timeout=timedelta(seconds=60))
    check("cancel ends CANCELED", cancelled.state.result_state == jobs.RunResultState.CANCELED, repr(cancelled.state))

    listed = list(w.jobs.list_runs(job_id=created.job_id, limit=1))
    check("runs/list pages through every run, newest first", [r.run_id for r in listed] == [second.run_id, first.run_id], repr([r.run_id for r in listed]))

    try:
        w.jobs.get_run(run_id=987654321)
        check("not-found raises", False)
    except (NotFound, InvalidParameterValue) as e:
        check("not-found raises a typed error", "does not exist" in str(e), str(e))

    print("conformance: all steps passed")


if __name__ == "__main__":
    main()
