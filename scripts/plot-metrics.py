"""Renders the on-call dashboard's panels from a Prometheus server as one PNG.

Usage: plot-metrics.py PROMETHEUS_URL START_UNIX_SECONDS OUT.png
The panels and queries mirror deploy/grafana/dashboards/backfill.json.
"""

import json
import sys
import time
import urllib.parse
import urllib.request

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BASE, START, OUT = sys.argv[1], float(sys.argv[2]), sys.argv[3]
END = time.time()


def query(expr):
    params = urllib.parse.urlencode(
        {"query": expr, "start": START, "end": END, "step": "2"}
    )
    with urllib.request.urlopen(f"{BASE}/api/v1/query_range?{params}") as r:
        result = json.load(r)["data"]["result"]
    series = []
    for s in result:
        xs = [(float(t) - START) / 60 for t, _ in s["values"]]
        ys = [float(v) for _, v in s["values"]]
        series.append((s["metric"], xs, ys))
    return series


def lines(ax, expr, label, **kw):
    for metric, xs, ys in query(expr):
        ax.plot(xs, ys, label=label.format(**metric), **kw)


PANELS = [
    ("Partitions by state", "stack", 'max by (state) (backfill_partitions{state!~"cancelled|triggering"})', "{state}"),
    ("Throughput (partitions / min)", "lines", 'sum(rate(backfill_run_outcomes_total{result="succeeded"}[20s])) * 60', "succeeded"),
    ("Active runs against the cap", "lines",
     ['max(backfill_active_runs)', 'max(backfill_concurrency_cap)'], ["active", "cap"]),
    ("Failed runs by result and class (cumulative)", "lines",
     'sum by (result, class) (backfill_run_outcomes_total{result!="succeeded"})', "{result} {class}"),
    ("Dead-letter queue (broker) and dead letters", "lines",
     ['max(backfill_queue_messages{queue="dlq"})', 'sum by (reason) (backfill_messages_dead_lettered_total)'],
     ["DLQ depth", "dead-lettered: {reason}"]),
    ("Databricks API calls / s", "lines",
     ['sum by (endpoint) (rate(backfill_databricks_requests_total[10s]))',
      'sum(rate(backfill_databricks_throttled_total[10s]))'],
     ["{endpoint}", "throttled (429)"]),
    ("Spend against budget", "lines",
     ['max(backfill_spend)', 'max(backfill_projected_spend)', 'max(backfill_budget)'],
     ["spent", "projected", "budget"]),
    ("Guard: new runs held (1 = held)", "lines", 'max by (reason) (backfill_guard_held)', "{reason}"),
    ("Data quality and reconciler gaps", "lines",
     ['sum(max by (rule) (backfill_dq_failing_partitions))', 'max by (kind) (backfill_reconcile_gaps) > 0'],
     ["partitions failing DQ", "gap: {kind}"]),
]

fig, axes = plt.subplots(3, 3, figsize=(18, 12))
for ax, (title, kind, exprs, labels) in zip(axes.flat, PANELS):
    if kind == "stack":
        data = query(exprs)
        if data:
            xs = data[0][1]
            ys = [s[2] if len(s[2]) == len(xs) else [0] * len(xs) for s in data]
            ax.stackplot(xs, ys, labels=[labels.format(**m) for m, _, _ in data], alpha=0.8)
    else:
        if isinstance(exprs, str):
            exprs, labels = [exprs], [labels]
        for e, l in zip(exprs, labels):
            lines(ax, e, l, drawstyle="steps-post")
    ax.set_title(title)
    ax.set_xlabel("minutes since the backfill started")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")

firing = query('count by (alertname) (ALERTS{alertstate="firing"})')
names = sorted({m["alertname"] for m, _, _ in firing})
fig.suptitle(
    "Backfill fleet, rehearsal scenario: 2 worker processes, cap 30, Prometheus scrape every 2 s"
    + (f"\nalerts that fired: {', '.join(names)}" if names else ""),
    fontsize=13,
)
fig.tight_layout()
fig.savefig(OUT, dpi=80)
print(f"wrote {OUT}")
