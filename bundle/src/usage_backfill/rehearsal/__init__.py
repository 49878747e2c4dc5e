"""A rehearsal of the backfill on real data: local Spark and Delta tables standing in for a
Databricks workspace, driven by the fleet's demo.

- `raw_sample`: seeded raw event files with every data trap, reproducible byte for byte.
- `sample`: the warehouse around them (the pinned dimension, a production table holding
  wrong numbers, the staging table) and the summary the demo reads (`sample` subcommand).
- `independent`: gold computed from the raw files in plain Python, apart from the jobs.
- `executor`: one long-lived Spark session running jobs on request, JSON lines over
  stdin/stdout (`executor` subcommand); `live` is the live pipeline it can simulate.
- `check`: the resulting Delta tables checked against what the fleet's ledger expects
  (`check` subcommand).

Run as `python -m usage_backfill.rehearsal SUBCOMMAND ...`.
"""
