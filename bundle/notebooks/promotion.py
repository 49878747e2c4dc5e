# Databricks notebook source
# MAGIC %md
# MAGIC # Promotion job: each proven staging version into its partition of the target
# MAGIC
# MAGIC The job parameters arrive as widgets; the result JSON is the task's
# MAGIC `notebook_output.result`, which the backfill fleet reads. See the bundle's README.

# COMMAND ----------

import json

from usage_backfill import run_promotion
from usage_backfill.platform import job_parameters

result = run_promotion(spark, job_parameters(dbutils))

# COMMAND ----------

dbutils.notebook.exit(json.dumps(result))
