//! Label sets. Every value comes from a fixed list or from a small, operator-chosen set
//! (backfill ids, DQ rule names); see the crate docs.

use prometheus_client::encoding::EncodeLabelSet;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Lane {
    pub lane: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct LaneReason {
    pub lane: &'static str,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Backfill {
    pub backfill: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct RunOutcome {
    /// `succeeded`, `retried`, `dead_lettered`.
    pub result: &'static str,
    /// Failure class (`none` on success).
    pub class: &'static str,
    /// `status.termination_details.type` and `.code`, folded to `OTHER` when unknown.
    pub termination_type: String,
    pub termination_code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Endpoint {
    pub endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EndpointCode {
    pub endpoint: &'static str,
    pub code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BackfillState {
    pub backfill: String,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BackfillReason {
    pub backfill: String,
    pub reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BackfillKind {
    pub backfill: String,
    pub kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BackfillRule {
    pub backfill: String,
    pub rule: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BackfillKindState {
    pub backfill: String,
    pub kind: &'static str,
    pub state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Queue {
    pub queue: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct EndpointName {
    pub endpoint: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Result {
    pub result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct BuildInfo {
    pub version: &'static str,
    pub role: &'static str,
}

/// An HTTP status as a label value from a fixed list (anything else is `other`).
pub fn status_code_label(status: u16) -> &'static str {
    const KNOWN: [(u16, &str); 11] = [
        (200, "200"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (409, "409"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    if let Some((_, label)) = KNOWN.iter().find(|(code, _)| *code == status) {
        return label;
    }
    match status {
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

/// Keeps a label value from an open enum bounded: known shapes pass, the rest fold.
pub(crate) fn bounded_token(value: &str) -> String {
    let ok = !value.is_empty()
        && value.len() <= 40
        && value
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        value.to_owned()
    } else {
        "OTHER".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_fold_into_a_fixed_list() {
        assert_eq!(status_code_label(429), "429");
        assert_eq!(status_code_label(418), "4xx");
        assert_eq!(status_code_label(599), "5xx");
        assert_eq!(status_code_label(302), "other");
    }

    #[test]
    fn open_enum_values_are_kept_bounded() {
        assert_eq!(bounded_token("RUN_EXECUTION_ERROR"), "RUN_EXECUTION_ERROR");
        assert_eq!(bounded_token("run 123 failed: boom"), "OTHER");
        assert_eq!(bounded_token(&"A".repeat(41)), "OTHER");
        assert_eq!(bounded_token(""), "OTHER");
    }
}
