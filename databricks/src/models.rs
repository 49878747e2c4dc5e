//! Jobs API shapes. Every struct ignores unknown fields; every enum keeps unknown values
//! (`Other`) instead of failing, because "additional states might be introduced".

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// An enum that round-trips any string: known values as variants, the rest as `Other`.
macro_rules! open_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($variant,)+
            /// A value this build does not know.
            Other(String),
        }

        impl From<String> for $name {
            fn from(s: String) -> Self {
                match s.as_str() {
                    $($text => Self::$variant,)+
                    _ => Self::Other(s),
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                v.as_str().to_owned()
            }
        }

        impl $name {
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(s) => s,
                }
            }
        }
    };
}

open_enum!(
    /// Legacy `state.life_cycle_state`.
    LifeCycleState {
        Queued => "QUEUED",
        Pending => "PENDING",
        Running => "RUNNING",
        Terminating => "TERMINATING",
        Terminated => "TERMINATED",
        Skipped => "SKIPPED",
        InternalError => "INTERNAL_ERROR",
        Blocked => "BLOCKED",
        WaitingForRetry => "WAITING_FOR_RETRY",
    }
);

open_enum!(
    /// Legacy `state.result_state`, set once terminal.
    ResultState {
        Success => "SUCCESS",
        Failed => "FAILED",
        TimedOut => "TIMEDOUT",
        Canceled => "CANCELED",
        MaximumConcurrentRunsReached => "MAXIMUM_CONCURRENT_RUNS_REACHED",
        Excluded => "EXCLUDED",
        SuccessWithFailures => "SUCCESS_WITH_FAILURES",
        UpstreamFailed => "UPSTREAM_FAILED",
        UpstreamCanceled => "UPSTREAM_CANCELED",
        Disabled => "DISABLED",
    }
);

open_enum!(
    /// `status.state`.
    StatusState {
        Queued => "QUEUED",
        Pending => "PENDING",
        Running => "RUNNING",
        Terminating => "TERMINATING",
        Terminated => "TERMINATED",
        Blocked => "BLOCKED",
        Waiting => "WAITING",
    }
);

open_enum!(
    /// `status.termination_details.type`.
    TerminationType {
        Success => "SUCCESS",
        InternalError => "INTERNAL_ERROR",
        ClientError => "CLIENT_ERROR",
        CloudFailure => "CLOUD_FAILURE",
    }
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RunState {
    #[serde(default)]
    pub life_cycle_state: Option<LifeCycleState>,
    #[serde(default)]
    pub result_state: Option<ResultState>,
    #[serde(default)]
    pub state_message: Option<String>,
    #[serde(default)]
    pub user_cancelled_or_timedout: Option<bool>,
    #[serde(default)]
    pub queue_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct TerminationDetails {
    /// Kept as text: the list of codes grows; [`crate::classify`] knows the current ones.
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<TerminationType>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct QueueDetails {
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RunStatus {
    #[serde(default)]
    pub state: Option<StatusState>,
    #[serde(default)]
    pub termination_details: Option<TerminationDetails>,
    #[serde(default)]
    pub queue_details: Option<QueueDetails>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobParameter {
    pub name: String,
    #[serde(default)]
    pub default: Option<String>,
    #[serde(default)]
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RunTask {
    #[serde(default)]
    pub run_id: Option<i64>,
    #[serde(default)]
    pub task_key: Option<String>,
    #[serde(default)]
    pub state: Option<RunState>,
    #[serde(default)]
    pub status: Option<RunStatus>,
}

/// `GET /jobs/runs/get`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct Run {
    pub run_id: i64,
    #[serde(default)]
    pub job_id: Option<i64>,
    #[serde(default)]
    pub run_page_url: Option<String>,
    #[serde(default)]
    pub attempt_number: Option<i64>,
    #[serde(default)]
    pub original_attempt_run_id: Option<i64>,
    #[serde(default)]
    pub job_parameters: Vec<JobParameter>,
    /// When the cluster was requested (ms since the epoch).
    #[serde(default)]
    pub start_time: Option<i64>,
    /// 0 while the run is not terminal.
    #[serde(default)]
    pub end_time: Option<i64>,
    #[serde(default)]
    pub run_duration: Option<i64>,
    #[serde(default)]
    pub queue_duration: Option<i64>,
    #[serde(default)]
    pub setup_duration: Option<i64>,
    #[serde(default)]
    pub execution_duration: Option<i64>,
    #[serde(default)]
    pub cleanup_duration: Option<i64>,
    #[serde(default)]
    pub state: Option<RunState>,
    #[serde(default)]
    pub status: Option<RunStatus>,
    #[serde(default)]
    pub tasks: Vec<RunTask>,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub repair_history: Vec<RepairHistoryItem>,
}

impl Run {
    /// The value a job parameter was run with (`value`, else its `default`).
    pub fn parameter(&self, name: &str) -> Option<&str> {
        self.job_parameters
            .iter()
            .find(|p| p.name == name)
            .and_then(|p| p.value.as_deref().or(p.default.as_deref()))
    }

    /// The latest repair's id, which the next repair must name.
    pub fn latest_repair_id(&self) -> Option<i64> {
        self.repair_history
            .iter()
            .filter(|r| r.kind.as_deref() == Some("REPAIR"))
            .filter_map(|r| r.id)
            .next_back()
    }

    /// `end_time` when the run has ended (Databricks sends 0 while it runs).
    pub fn ended_at(&self) -> Option<i64> {
        self.end_time.filter(|t| *t > 0)
    }
}

/// `POST /jobs/run-now`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunNowRequest {
    pub job_id: i64,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub job_parameters: BTreeMap<String, String>,
    /// At most 64 characters; the same token always returns the same run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idempotency_token: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunNowResponse {
    pub run_id: i64,
    #[serde(default)]
    pub number_in_job: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct QueueSettings {
    #[serde(default)]
    pub enabled: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct JobSettings {
    #[serde(default)]
    pub name: Option<String>,
    /// Databricks' default is 1.
    #[serde(default)]
    pub max_concurrent_runs: Option<i64>,
    #[serde(default)]
    pub queue: Option<QueueSettings>,
    /// Everything else, kept so that the settings hash covers the whole definition.
    #[serde(flatten)]
    pub rest: serde_json::Map<String, serde_json::Value>,
}

/// `GET /jobs/get`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub job_id: i64,
    #[serde(default)]
    pub settings: JobSettings,
}

impl Job {
    /// SHA-256 of the job's settings in canonical (sorted-key) JSON: what a manifest or a
    /// promotion contract pins, so a changed job definition is noticed.
    pub fn settings_hash(&self) -> String {
        use sha2::Digest;
        let value = serde_json::to_value(&self.settings).unwrap_or_default();
        // serde_json's Map is ordered by key, so this serialization is canonical.
        hex::encode(sha2::Sha256::digest(value.to_string().as_bytes()))
    }
}

/// `notebook_output` of `runs/get-output`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct NotebookOutput {
    /// What the notebook passed to `dbutils.notebook.exit()` (first 5 MB).
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub truncated: Option<bool>,
}

/// `GET /jobs/runs/get-output` (on a task's run id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RunOutput {
    #[serde(default)]
    pub metadata: Option<Run>,
    #[serde(default)]
    pub notebook_output: Option<NotebookOutput>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub error_trace: Option<String>,
}

/// Filters of `GET /jobs/runs/list`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ListRuns {
    pub job_id: Option<i64>,
    pub active_only: bool,
    pub completed_only: bool,
    pub start_time_from: Option<i64>,
    pub start_time_to: Option<i64>,
    /// 1 to 25 per page (Databricks' default 20).
    pub limit: Option<u32>,
    pub expand_tasks: bool,
}

/// One page of `GET /jobs/runs/list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct RunsPage {
    /// Newest first; Databricks omits the field when there are none.
    #[serde(default)]
    pub runs: Vec<Run>,
    #[serde(default)]
    pub has_more: bool,
    #[serde(default)]
    pub next_page_token: Option<String>,
    #[serde(default)]
    pub prev_page_token: Option<String>,
}

/// `POST /jobs/runs/repair`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RepairRequest {
    pub run_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rerun_all_failed_tasks: Option<bool>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rerun_tasks: Vec<String>,
    /// Required for every repair after the first (from `repair_history`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_repair_id: Option<i64>,
    /// Pass the job parameters again: a repair runs with the job's current settings.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub job_parameters: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairResponse {
    pub repair_id: i64,
}

/// An entry of `repair_history` (`runs/get?include_history=true`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepairHistoryItem {
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub id: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_enum_values_are_kept_not_refused() {
        let run: Run = serde_json::from_str(
            r#"{"run_id": 7, "brand_new_field": {"x": 1},
                "state": {"life_cycle_state": "HIBERNATING"},
                "status": {"state": "DREAMING", "termination_details": {"type": "NEW_TYPE", "code": "NEW_CODE"}},
                "job_parameters": [{"name": "partition_date", "value": "2026-01-01"}],
                "end_time": 0}"#,
        )
        .unwrap();
        let state = run.state.as_ref().unwrap();
        assert_eq!(
            state.life_cycle_state,
            Some(LifeCycleState::Other("HIBERNATING".into()))
        );
        assert_eq!(
            run.status.as_ref().unwrap().state,
            Some(StatusState::Other("DREAMING".into()))
        );
        assert_eq!(run.parameter("partition_date"), Some("2026-01-01"));
        assert_eq!(run.ended_at(), None);
        assert_eq!(
            LifeCycleState::from("RUNNING".to_owned()),
            LifeCycleState::Running
        );
    }
}
