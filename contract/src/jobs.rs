//! The job contract (SPEC 5.10), written once: the parameters the fleet sends to each of the
//! three Databricks jobs it drives and the fields it reads back from their results (the
//! task's `notebook_output.result`, a JSON object). The worker, the reconciler, promotion
//! and the simulator all take these names from here; `bundle/README.md` documents the same
//! names for the job code.

/// The backfill partition job: recomputes one day into staging.
pub mod backfill {
    /// Parameters in (besides the backfill's own, such as `code_version` and `pin.TABLE`).
    pub mod param {
        pub const PARTITION_DATE: &str = "partition_date";
        pub const BACKFILL_ID: &str = "backfill_id";
        pub const MANIFEST_ID: &str = "manifest_id";
        pub const ATTEMPT: &str = "attempt";
        pub const STAGING_TABLE: &str = "staging_table";
        pub const CODE_VERSION: &str = "code_version";
        /// `pin.<table>`: a dimension table's pinned Delta version.
        pub const PIN_PREFIX: &str = "pin.";
    }

    /// Parameters the fleet sets itself; a backfill request may not set them.
    pub const FLEET_PARAMS: [&str; 5] = [
        param::PARTITION_DATE,
        param::BACKFILL_ID,
        param::MANIFEST_ID,
        param::ATTEMPT,
        param::STAGING_TABLE,
    ];

    /// Fields of the result.
    pub mod result {
        pub const PARTITION_DATE: &str = "partition_date";
        pub const STAGING_TABLE: &str = "staging_table";
        /// The Delta version of the staging table the run's write made.
        pub const STAGING_VERSION: &str = "staging_version";
        pub const ROW_COUNT: &str = "row_count";
        pub const PRODUCTION_ROW_COUNT: &str = "production_row_count";
        pub const DUPLICATE_KEYS: &str = "duplicate_keys";
        pub const NULL_CUSTOMER_IDS: &str = "null_customer_ids";
        pub const SCHEMA_HASH: &str = "schema_hash";
        pub const SOURCE_FILES: &str = "source_files";
        pub const DUPLICATE_FILES: &str = "duplicate_files";
        pub const RESCUED_RECORDS: &str = "rescued_records";
        pub const LATE_RECORDS: &str = "late_records";
        pub const DIM_VERSIONS: &str = "dim_versions";
    }

    /// What every result must carry: the staging snapshot to promote and the data-quality
    /// metrics a gate reads. A result without one of them fails the gate, naming it.
    pub const REQUIRED_RESULT: [&str; 7] = [
        result::STAGING_TABLE,
        result::STAGING_VERSION,
        result::ROW_COUNT,
        result::PRODUCTION_ROW_COUNT,
        result::DUPLICATE_KEYS,
        result::NULL_CUSTOMER_IDS,
        result::SCHEMA_HASH,
    ];

    /// The required fields `result` lacks (absent or null), in contract order.
    pub fn missing_fields(
        result: &serde_json::Map<String, serde_json::Value>,
    ) -> Vec<&'static str> {
        REQUIRED_RESULT
            .into_iter()
            .filter(|f| result.get(*f).is_none_or(serde_json::Value::is_null))
            .collect()
    }
}

/// The promotion job: replaces partitions of the target from their proven staging versions.
pub mod promotion {
    pub mod param {
        pub const BACKFILL_ID: &str = "backfill_id";
        pub const MANIFEST_ID: &str = "manifest_id";
        pub const TARGET_TABLE: &str = "target_table";
        pub const STAGING_TABLE: &str = "staging_table";
        /// A JSON array of objects with `partition_date` and `staging_version`.
        pub const PARTITIONS: &str = "partitions";
    }

    /// Fields of one element of `partitions`, in the parameter and in the result.
    pub mod item {
        pub const PARTITION_DATE: &str = "partition_date";
        pub const STAGING_VERSION: &str = "staging_version";
        pub const VERSION_BEFORE: &str = "version_before";
        pub const VERSION_AFTER: &str = "version_after";
    }

    /// Fields of the result (`partitions` holds one item per partition).
    pub mod result {
        pub const TARGET_TABLE: &str = "target_table";
        pub const VERSION_BEFORE: &str = "version_before";
        pub const VERSION_AFTER: &str = "version_after";
        pub const PARTITIONS: &str = "partitions";
    }
}

/// The rollback job: rewrites one partition of the target from an earlier version.
pub mod rollback {
    pub mod param {
        pub const BACKFILL_ID: &str = "backfill_id";
        pub const TARGET_TABLE: &str = "target_table";
        pub const PARTITION_DATE: &str = "partition_date";
        pub const RESTORE_VERSION: &str = "restore_version";
    }

    pub mod result {
        pub const TARGET_TABLE: &str = "target_table";
        pub const PARTITION_DATE: &str = "partition_date";
        pub const RESTORE_VERSION: &str = "restore_version";
        pub const VERSION_BEFORE: &str = "version_before";
        pub const VERSION_AFTER: &str = "version_after";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_missing_required_fields_names_them() {
        let mut result = serde_json::Map::new();
        for f in backfill::REQUIRED_RESULT {
            result.insert(f.to_owned(), serde_json::json!(1));
        }
        assert!(backfill::missing_fields(&result).is_empty());
        result.remove(backfill::result::STAGING_VERSION);
        result.insert(
            backfill::result::SCHEMA_HASH.to_owned(),
            serde_json::Value::Null,
        );
        assert_eq!(
            backfill::missing_fields(&result),
            ["staging_version", "schema_hash"]
        );
    }
}
