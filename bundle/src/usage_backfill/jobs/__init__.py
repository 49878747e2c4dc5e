"""The three jobs the fleet drives; each takes a SparkSession and the job's parameters (a
dict of strings, as Databricks passes them) and returns its JSON-ready result."""

from usage_backfill.jobs.backfill_partition import run_backfill_partition
from usage_backfill.jobs.promotion import run_promotion
from usage_backfill.jobs.rollback import run_rollback

__all__ = ["run_backfill_partition", "run_promotion", "run_rollback"]
