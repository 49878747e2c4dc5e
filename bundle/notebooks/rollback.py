# Databricks notebook source
# MAGIC %md
# MAGIC # Rollback job: one partition of the target rewritten from an earlier version
# MAGIC
# MAGIC The job parameters arrive as widgets; the result JSON is the task's
# MAGIC `notebook_output.result`, which the backfill fleet reads. See the bundle's README.

# COMMAND ----------

import json

from usage_backfill import run_rollback
from usage_backfill.platform import job_parameters

result = run_rollback(spark, job_parameters(dbutils))

# COMMAND ----------

dbutils.notebook.exit(json.dumps(result))
