"""The peer of the fleet: what a team would write in an afternoon with Celery.

One task per partition: trigger the Databricks job with an idempotency token, poll the
run every 50 ms until it ends, record the outcome in SQLite. Late acknowledgement and a
prefetch of one, so a worker that dies mid-task leaves its message to another; transient
API errors (429, 5xx, connection errors) are retried with Celery's backoff, and the
token makes a retried trigger return the same run.

Settings come from the environment:

    AMQP_URL          the broker (the fleet's RabbitMQ)
    PEER_QUEUE        the queue of this run (the worker takes it with -Q)
    PEER_DB           the SQLite file of outcomes (the team's ledger)
    DATABRICKS_HOST   the workspace (here the simulator), e.g. http://127.0.0.1:8080
    DATABRICKS_TOKEN  a bearer token

Run: celery -A tasks worker -c 8 --prefetch-multiplier 1 -Q "$PEER_QUEUE"
"""

import hashlib
import os
import sqlite3
import time

import requests
from celery import Celery
from celery.signals import worker_process_init

POLL_SECONDS = 0.05
JOB_ID = 1
TERMINAL = {"TERMINATED", "SKIPPED", "INTERNAL_ERROR"}

app = Celery("peer", broker=os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//"))
app.conf.update(
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    task_ignore_result=True,
    task_default_queue=os.environ.get("PEER_QUEUE", "peer"),
    task_serializer="json",
    accept_content=["json"],
    broker_connection_retry_on_startup=True,
)


class Transient(Exception):
    """A call worth retrying: throttled, a server error, or no answer."""


# One HTTP session and one SQLite connection per worker process (prefork children are
# forked from the main process, so both are opened after the fork).
_session = None
_db = None


def open_db(path):
    db = sqlite3.connect(path, timeout=15)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    db.execute(
        "CREATE TABLE IF NOT EXISTS done ("
        " backfill_id TEXT NOT NULL, date TEXT NOT NULL,"
        " run_id INTEGER NOT NULL, result_state TEXT,"
        " PRIMARY KEY (backfill_id, date))"
    )
    return db


@worker_process_init.connect
def _per_process(**_):
    global _session, _db
    _session = requests.Session()
    _session.headers["Authorization"] = "Bearer " + os.environ.get("DATABRICKS_TOKEN", "t")
    _db = open_db(os.environ["PEER_DB"])


def api(method, path, **kwargs):
    url = os.environ["DATABRICKS_HOST"].rstrip("/") + "/api/2.1/jobs/" + path
    try:
        r = _session.request(method, url, timeout=30, **kwargs)
    except (requests.ConnectionError, requests.Timeout) as e:
        raise Transient(str(e)) from e
    if r.status_code == 429 or r.status_code >= 500:
        raise Transient(f"{method} {path}: {r.status_code}")
    r.raise_for_status()
    return r.json()


def idempotency_token(backfill_id, date, attempt):
    # At most 64 characters; the same partition and attempt always give the same token.
    return hashlib.sha256(f"{backfill_id}/{date}/{attempt}".encode()).hexdigest()


@app.task(
    autoretry_for=(Transient,),
    retry_backoff=True,
    retry_backoff_max=30,
    retry_jitter=True,
    max_retries=10,
)
def backfill_partition(backfill_id, date, attempt):
    run_id = api(
        "POST",
        "run-now",
        json={
            "job_id": JOB_ID,
            "job_parameters": {"partition_date": date, "backfill_id": backfill_id},
            "idempotency_token": idempotency_token(backfill_id, date, attempt),
        },
    )["run_id"]
    while True:
        state = api("GET", "runs/get", params={"run_id": run_id})["state"]
        if state.get("life_cycle_state") in TERMINAL:
            break
        time.sleep(POLL_SECONDS)
    with _db:  # one short transaction
        _db.execute(
            "INSERT OR REPLACE INTO done (backfill_id, date, run_id, result_state)"
            " VALUES (?, ?, ?, ?)",
            (backfill_id, date, run_id, state.get("result_state")),
        )
    return state.get("result_state")
