"""The Databricks side of the backfill fleet: the jobs that recompute, promote and roll back
partitions of the daily customer-usage table.

Each job is a plain function taking a SparkSession and a dict of string job parameters and
returning its JSON-ready result; the notebooks in `notebooks/` call them and hand the result
to `dbutils.notebook.exit`.

- `params`: the job parameters, parsed and validated.
- `tables`: table names to Delta tables (Unity Catalog, or a local warehouse directory).
- `gold`: the gold schema, its grain and its table properties.
- `sources`: raw files in the lookback window, duplicate files dropped by content hash.
- `events`: raw records mapped onto the event contract (drift rescued, not lost).
- `dimension`: the SCD2 customer dimension read at its pinned version, joined as of event time.
- `aggregate`: deduplicated events of one day to gold rows.
- `quality`: the data-quality metrics of a written partition.
- `commits`: stamping Delta commits and finding the version a commit made.
- `platform`: what only exists on Databricks (`dbutils`), with local stand-ins.
- `local`: a local Spark session with Delta Lake, for tests and the local commands.
- `jobs`: the three entry points.
"""

from usage_backfill.errors import JobError, ParameterError, PartitionRefused
from usage_backfill.jobs import run_backfill_partition, run_promotion, run_rollback

__all__ = [
    "JobError",
    "ParameterError",
    "PartitionRefused",
    "run_backfill_partition",
    "run_promotion",
    "run_rollback",
]
