//! How a simulated run ends, emitted in both the legacy `state` and the new `status`
//! shapes exactly as the API notes' table gives them.

use serde::Deserialize;
use serde_json::{Value, json};

/// A terminal outcome a scenario can script for a partition's run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    #[default]
    Success,
    /// A task's code failed in a multi-task job (legacy INTERNAL_ERROR / FAILED).
    TaskFailed,
    /// A platform failure.
    PlatformFailure,
    /// Spot loss or capacity.
    CloudFailure,
    UserCanceled,
    TimedOut,
    /// The concurrency limit was hit with queueing off.
    Skipped,
    /// A permission problem: retrying cannot help.
    Unauthorized,
}

impl Outcome {
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "success" => Self::Success,
            "task_failed" => Self::TaskFailed,
            "platform_failure" => Self::PlatformFailure,
            "cloud_failure" => Self::CloudFailure,
            "user_canceled" => Self::UserCanceled,
            "timed_out" => Self::TimedOut,
            "skipped" => Self::Skipped,
            "unauthorized" => Self::Unauthorized,
            _ => return None,
        })
    }

    pub fn is_success(self) -> bool {
        self == Self::Success
    }

    /// `(state, status)` of a terminated run with this outcome.
    pub fn terminal_shapes(self) -> (Value, Value) {
        let (life, result, message, code, kind) = match self {
            Self::Success => ("TERMINATED", "SUCCESS", "", "SUCCESS", "SUCCESS"),
            Self::TaskFailed => (
                "INTERNAL_ERROR",
                "FAILED",
                "Task backfill failed with message: AnalysisException: column not found",
                "RUN_EXECUTION_ERROR",
                "CLIENT_ERROR",
            ),
            Self::PlatformFailure => (
                "INTERNAL_ERROR",
                "FAILED",
                "Internal error",
                "INTERNAL_ERROR",
                "INTERNAL_ERROR",
            ),
            Self::CloudFailure => (
                "TERMINATED",
                "FAILED",
                "Spot instances lost",
                "CLOUD_FAILURE",
                "CLOUD_FAILURE",
            ),
            Self::UserCanceled => (
                "TERMINATED",
                "CANCELED",
                "Canceled by a user",
                "USER_CANCELED",
                "SUCCESS",
            ),
            Self::TimedOut => (
                "TERMINATED",
                "TIMEDOUT",
                "Run timed out",
                "CANCELED",
                "SUCCESS",
            ),
            Self::Skipped => (
                "SKIPPED",
                "MAXIMUM_CONCURRENT_RUNS_REACHED",
                "Maximum concurrent runs reached",
                "MAX_CONCURRENT_RUNS_EXCEEDED",
                "CLIENT_ERROR",
            ),
            Self::Unauthorized => (
                "INTERNAL_ERROR",
                "FAILED",
                "User is not authorized to read the source",
                "UNAUTHORIZED_ERROR",
                "CLIENT_ERROR",
            ),
        };
        (
            json!({"life_cycle_state": life, "result_state": result, "state_message": message,
                   "user_cancelled_or_timedout": matches!(self, Self::UserCanceled | Self::TimedOut)}),
            json!({"state": "TERMINATED", "termination_details": {"code": code, "type": kind, "message": message}}),
        )
    }
}
