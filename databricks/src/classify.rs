//! The one place a Databricks run becomes a decision-ready outcome.
//!
//! Classification reads `status.termination_details` (type, code) and falls back to the
//! legacy `state` only when `status` is absent, because legacy `INTERNAL_ERROR` usually
//! means an ordinary user-code failure. Unknown lifecycle states are "still in progress".

use crate::models::{
    LifeCycleState, ResultState, Run, RunState, RunStatus, StatusState, TerminationType,
};

/// What a run's failure calls for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureClass {
    /// Platform, cloud, capacity or throttling trouble: retry after a backoff.
    Transient,
    /// The job's own code failed (or timed out): a small retry budget.
    UserCode,
    /// Configuration or permission problems: retrying cannot help; dead-letter at once.
    Configuration,
    /// Cancelled by someone: never retried automatically.
    Cancelled,
    /// A terminal shape this build does not recognise: dead-letter for a human to look.
    Unknown,
}

impl FailureClass {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Transient => "transient",
            Self::UserCode => "user_code",
            Self::Configuration => "configuration",
            Self::Cancelled => "cancelled",
            Self::Unknown => "unknown",
        }
    }
}

/// A failed run, with what Databricks said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub class: FailureClass,
    /// The termination code (or legacy result state) it was classified by.
    pub code: String,
    pub message: String,
}

/// Where a run stands, for the worker's purposes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// Not terminal. `known` is false for a state this build has never heard of.
    InProgress {
        state: String,
        known: bool,
    },
    Succeeded,
    Failed(Failure),
}

/// Classifies a run.
pub fn classify(run: &Run) -> RunOutcome {
    match (&run.status, &run.state) {
        (Some(status), _) if status.state.is_some() => classify_status(status),
        (_, Some(state)) => classify_legacy(state),
        _ => RunOutcome::InProgress {
            state: "UNREPORTED".into(),
            known: false,
        },
    }
}

fn classify_status(status: &RunStatus) -> RunOutcome {
    let state = status
        .state
        .clone()
        .unwrap_or(StatusState::Other(String::new()));
    match state {
        StatusState::Terminated => {}
        StatusState::Other(s) => return in_progress(s, false),
        other => return in_progress(other.as_str().to_owned(), true),
    }
    let details = status.termination_details.clone().unwrap_or_default();
    let code = details.code.unwrap_or_default();
    let message = details.message.unwrap_or_default();
    let failed = |class| {
        RunOutcome::Failed(Failure {
            class,
            code: code.clone(),
            message: message.clone(),
        })
    };
    match code.as_str() {
        "SUCCESS" => RunOutcome::Succeeded,
        "SUCCESS_WITH_FAILURES" | "RUN_EXECUTION_ERROR" | "LIBRARY_INSTALLATION_ERROR" => {
            failed(FailureClass::UserCode)
        }
        "USER_CANCELED" | "CANCELED" => failed(FailureClass::Cancelled),
        "INTERNAL_ERROR"
        | "DRIVER_ERROR"
        | "CLUSTER_ERROR"
        | "CLOUD_FAILURE"
        | "SKIPPED"
        | "MAX_CONCURRENT_RUNS_EXCEEDED"
        | "MAX_JOB_QUEUE_SIZE_EXCEEDED"
        | "WORKSPACE_RUN_LIMIT_EXCEEDED"
        | "CLUSTER_REQUEST_LIMIT_EXCEEDED"
        | "MAX_SPARK_CONTEXTS_EXCEEDED" => failed(FailureClass::Transient),
        "REPOSITORY_CHECKOUT_FAILED"
        | "INVALID_CLUSTER_REQUEST"
        | "FEATURE_DISABLED"
        | "STORAGE_ACCESS_ERROR"
        | "UNAUTHORIZED_ERROR"
        | "RESOURCE_NOT_FOUND"
        | "INVALID_RUN_CONFIGURATION"
        | "DISABLED"
        | "BUDGET_POLICY_LIMIT_EXCEEDED" => failed(FailureClass::Configuration),
        _ => match details.kind {
            Some(TerminationType::InternalError | TerminationType::CloudFailure) => {
                failed(FailureClass::Transient)
            }
            Some(TerminationType::ClientError) => failed(FailureClass::UserCode),
            _ => failed(FailureClass::Unknown),
        },
    }
}

fn classify_legacy(state: &RunState) -> RunOutcome {
    let life = state
        .life_cycle_state
        .clone()
        .unwrap_or(LifeCycleState::Other(String::new()));
    match life {
        LifeCycleState::Terminated | LifeCycleState::Skipped | LifeCycleState::InternalError => {}
        LifeCycleState::Other(s) => return in_progress(s, false),
        other => return in_progress(other.as_str().to_owned(), true),
    }
    let message = state.state_message.clone().unwrap_or_default();
    let result = state.result_state.clone();
    let code = result
        .as_ref()
        .map(|r| r.as_str().to_owned())
        .unwrap_or_else(|| life.as_str().to_owned());
    let class = match (life, result) {
        (LifeCycleState::Terminated, Some(ResultState::Success)) => return RunOutcome::Succeeded,
        (LifeCycleState::Skipped, _) | (_, Some(ResultState::MaximumConcurrentRunsReached)) => {
            FailureClass::Transient
        }
        (_, Some(ResultState::Canceled)) => FailureClass::Cancelled,
        (_, Some(ResultState::Failed | ResultState::TimedOut))
        | (_, Some(ResultState::SuccessWithFailures))
        | (_, Some(ResultState::UpstreamFailed)) => FailureClass::UserCode,
        (_, Some(ResultState::UpstreamCanceled)) => FailureClass::Cancelled,
        (_, Some(ResultState::Excluded | ResultState::Disabled)) => FailureClass::Configuration,
        _ => FailureClass::Unknown,
    };
    RunOutcome::Failed(Failure {
        class,
        code,
        message,
    })
}

/// A run still going, in a state the client knows or one it does not (yet).
fn in_progress(state: String, known: bool) -> RunOutcome {
    RunOutcome::InProgress { state, known }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::TerminationDetails;

    /// Legacy (life cycle, result) state.
    type Legacy<'a> = (&'a str, Option<&'a str>);
    /// New status (state, termination code, termination type).
    type Status<'a> = (&'a str, &'a str, &'a str);
    /// (case name, legacy state, status, expected class).
    type ShapeCase = (
        &'static str,
        Option<Legacy<'static>>,
        Option<Status<'static>>,
        &'static str,
    );
    type LegacyCase = (&'static str, Legacy<'static>, &'static str);

    fn run(legacy: Option<(&str, Option<&str>)>, status: Option<(&str, &str, &str)>) -> Run {
        Run {
            run_id: 1,
            state: legacy.map(|(life, result)| RunState {
                life_cycle_state: Some(life.to_owned().into()),
                result_state: result.map(|r| r.to_owned().into()),
                ..Default::default()
            }),
            status: status.map(|(state, code, kind)| RunStatus {
                state: Some(state.to_owned().into()),
                termination_details: (!code.is_empty()).then(|| TerminationDetails {
                    code: Some(code.to_owned()),
                    kind: Some(kind.to_owned().into()),
                    message: Some("m".into()),
                }),
                queue_details: None,
            }),
            ..Default::default()
        }
    }

    fn class(outcome: RunOutcome) -> &'static str {
        match outcome {
            RunOutcome::Succeeded => "succeeded",
            RunOutcome::InProgress { known: true, .. } => "in_progress",
            RunOutcome::InProgress { known: false, .. } => "in_progress_unknown",
            RunOutcome::Failed(f) => f.class.as_str(),
        }
    }

    /// Every row of the shapes table in the API notes, with and without `status`.
    #[test]
    fn shapes_table() {
        let cases: &[ShapeCase] = &[
            (
                "success",
                Some(("TERMINATED", Some("SUCCESS"))),
                Some(("TERMINATED", "SUCCESS", "SUCCESS")),
                "succeeded",
            ),
            (
                "task code failed",
                Some(("INTERNAL_ERROR", Some("FAILED"))),
                Some(("TERMINATED", "RUN_EXECUTION_ERROR", "CLIENT_ERROR")),
                "user_code",
            ),
            (
                "platform failure",
                Some(("INTERNAL_ERROR", Some("FAILED"))),
                Some(("TERMINATED", "INTERNAL_ERROR", "INTERNAL_ERROR")),
                "transient",
            ),
            (
                "cloud failure",
                Some(("TERMINATED", Some("FAILED"))),
                Some(("TERMINATED", "CLOUD_FAILURE", "CLOUD_FAILURE")),
                "transient",
            ),
            (
                "cancelled by a user",
                Some(("TERMINATED", Some("CANCELED"))),
                Some(("TERMINATED", "USER_CANCELED", "SUCCESS")),
                "cancelled",
            ),
            (
                "timed out",
                Some(("TERMINATED", Some("TIMEDOUT"))),
                Some(("TERMINATED", "CANCELED", "SUCCESS")),
                "cancelled",
            ),
            (
                "concurrency limit, no queue",
                Some(("SKIPPED", Some("MAXIMUM_CONCURRENT_RUNS_REACHED"))),
                Some(("TERMINATED", "MAX_CONCURRENT_RUNS_EXCEEDED", "CLIENT_ERROR")),
                "transient",
            ),
            (
                "waiting in the queue",
                Some(("QUEUED", None)),
                Some(("QUEUED", "", "")),
                "in_progress",
            ),
            (
                "running",
                Some(("RUNNING", None)),
                Some(("RUNNING", "", "")),
                "in_progress",
            ),
            (
                "unknown future state",
                Some(("HIBERNATING", None)),
                Some(("HIBERNATING", "", "")),
                "in_progress_unknown",
            ),
            (
                "permission problem",
                Some(("INTERNAL_ERROR", Some("FAILED"))),
                Some(("TERMINATED", "UNAUTHORIZED_ERROR", "CLIENT_ERROR")),
                "configuration",
            ),
            (
                "unknown client code",
                Some(("INTERNAL_ERROR", Some("FAILED"))),
                Some(("TERMINATED", "NEW_CODE", "CLIENT_ERROR")),
                "user_code",
            ),
            (
                "unknown platform code",
                Some(("INTERNAL_ERROR", Some("FAILED"))),
                Some(("TERMINATED", "NEW_CODE", "INTERNAL_ERROR")),
                "transient",
            ),
            (
                "unknown code and type",
                Some(("TERMINATED", Some("FAILED"))),
                Some(("TERMINATED", "NEW_CODE", "NEW_TYPE")),
                "unknown",
            ),
        ];
        for (name, legacy, status, want) in cases {
            assert_eq!(
                class(classify(&run(*legacy, *status))),
                *want,
                "{name} (status)"
            );
        }
        // The legacy fallback, used only when `status` is absent.
        let legacy_cases: &[LegacyCase] = &[
            ("success", ("TERMINATED", Some("SUCCESS")), "succeeded"),
            (
                "legacy INTERNAL_ERROR/FAILED is user code",
                ("INTERNAL_ERROR", Some("FAILED")),
                "user_code",
            ),
            ("cancelled", ("TERMINATED", Some("CANCELED")), "cancelled"),
            ("timed out", ("TERMINATED", Some("TIMEDOUT")), "user_code"),
            (
                "skipped is not success",
                ("SKIPPED", Some("MAXIMUM_CONCURRENT_RUNS_REACHED")),
                "transient",
            ),
            ("pending", ("PENDING", None), "in_progress"),
            ("unknown", ("HIBERNATING", None), "in_progress_unknown"),
            (
                "excluded",
                ("TERMINATED", Some("EXCLUDED")),
                "configuration",
            ),
        ];
        for (name, legacy, want) in legacy_cases {
            assert_eq!(
                class(classify(&run(Some(*legacy), None))),
                *want,
                "{name} (legacy)"
            );
        }
        assert_eq!(class(classify(&run(None, None))), "in_progress_unknown");
    }
}
