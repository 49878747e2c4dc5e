//! Why a message or an identifier was refused.

/// A message body or identifier that does not satisfy the contract. The text names the
/// problem so that it can travel as a dead-letter reason.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContractError {
    #[error("message body is not JSON: {0}")]
    NotJson(String),
    #[error("message has no schema_version")]
    MissingVersion,
    #[error("unknown schema_version {0} (this build understands {supported})", supported = crate::wire::SCHEMA_VERSION)]
    UnknownVersion(u64),
    #[error("invalid message: {0}")]
    Invalid(String),
    #[error("message body is {0} bytes, over the {max} byte limit", max = crate::wire::MAX_MESSAGE_BYTES)]
    TooLarge(usize),
    #[error("invalid {what} {value:?}: {why}")]
    InvalidId {
        what: &'static str,
        value: String,
        why: &'static str,
    },
}

impl ContractError {
    /// A short, stable, low-cardinality name for the kind of refusal (for headers and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::NotJson(_) => "not_json",
            Self::MissingVersion => "missing_version",
            Self::UnknownVersion(_) => "unknown_version",
            Self::Invalid(_) => "invalid",
            Self::TooLarge(_) => "too_large",
            Self::InvalidId { .. } => "invalid_id",
        }
    }
}
