"""Session settings every job relies on."""

from pyspark.sql import SparkSession


def use_utc(spark: SparkSession) -> None:
    """Event dates are UTC dates: date functions follow the session time zone."""
    spark.conf.set("spark.sql.session.timeZone", "UTC")
