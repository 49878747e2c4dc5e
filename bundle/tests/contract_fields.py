"""The fields each job's result carries (SPEC 5.10), as the tests assert them."""

BACKFILL_RESULT = frozenset(
    {
        "partition_date",
        "staging_table",
        "staging_version",
        "row_count",
        "production_row_count",
        "duplicate_keys",
        "null_customer_ids",
        "schema_hash",
        "source_files",
        "duplicate_files",
        "rescued_records",
        "late_records",
        "dim_versions",
    }
)
PROMOTION_RESULT = frozenset({"target_table", "version_before", "version_after", "partitions"})
PROMOTION_ITEM = frozenset({"partition_date", "staging_version", "version_before", "version_after"})
ROLLBACK_RESULT = frozenset(
    {"target_table", "partition_date", "restore_version", "version_before", "version_after"}
)
