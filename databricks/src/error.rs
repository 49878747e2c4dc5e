//! Jobs API failures mapped to meaning at the client's boundary.

use std::time::Duration;

/// A failed Jobs API call.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ApiError {
    #[error("Databricks {endpoint}: could not connect or the connection broke: {detail}")]
    Transport {
        endpoint: &'static str,
        detail: String,
    },
    #[error("Databricks {endpoint}: no response within {seconds} s")]
    Timeout {
        endpoint: &'static str,
        seconds: u64,
    },
    #[error("Databricks {endpoint}: HTTP {status} {error_code}: {message}")]
    Http {
        endpoint: &'static str,
        status: u16,
        error_code: String,
        message: String,
        retry_after: Option<Duration>,
    },
    #[error("Databricks {endpoint}: unreadable response: {detail}")]
    Decode {
        endpoint: &'static str,
        detail: String,
    },
    #[error("Databricks client misconfigured: {0}")]
    Config(String),
    /// Not sent: the fleet paused the endpoint after the workspace throttled it.
    #[error("Databricks {endpoint}: paused for {} s after throttling", retry_after.as_secs())]
    Paused {
        endpoint: &'static str,
        retry_after: Duration,
    },
}

impl ApiError {
    /// Worth retrying the same request: transport trouble, timeouts, throttling, and
    /// server-side errors (500, 502, 503, 504).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Transport { .. } | Self::Timeout { .. } => true,
            Self::Http { status, .. } => matches!(status, 429 | 500 | 502 | 503 | 504),
            Self::Decode { .. } | Self::Config(_) | Self::Paused { .. } => false,
        }
    }

    /// Asking again cannot help: the request itself is refused (a 4xx other than
    /// throttling, authentication, 404 and the documented not-found answers, which callers
    /// handle), or the client is misconfigured. Refused credentials (401, 403), a 404 that
    /// is not about the run (`ENDPOINT_NOT_FOUND`: a wrong host or path) and answers that
    /// are not the API's (an HTML sign-in page with 200) say nothing about the partition
    /// and can be fixed, so they are retried within the outage budget like transport
    /// trouble, timeouts, 429 and 5xx.
    pub fn is_permanent(&self) -> bool {
        match self {
            Self::Http { status, .. } => {
                (400..500).contains(status)
                    && !matches!(status, 401 | 403 | 404 | 408 | 429)
                    && !self.is_not_found()
            }
            Self::Config(_) => true,
            Self::Decode { .. }
            | Self::Transport { .. }
            | Self::Timeout { .. }
            | Self::Paused { .. } => false,
        }
    }

    /// The token is missing, wrong or lacks the rights (401, 403).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            Self::Http {
                status: 401 | 403,
                ..
            }
        )
    }

    /// 429, or 503 with a `Retry-After`.
    pub fn is_throttled(&self) -> bool {
        matches!(self, Self::Http { status: 429, .. } | Self::Paused { .. })
            || matches!(
                self,
                Self::Http {
                    status: 503,
                    retry_after: Some(_),
                    ..
                }
            )
    }

    /// The run or job does not exist (any more): only the documented answers,
    /// `RESOURCE_DOES_NOT_EXIST` or the usual HTTP 400 `INVALID_PARAMETER_VALUE` "... does
    /// not exist". Any other 404 (`ENDPOINT_NOT_FOUND` from a wrong host or path, a
    /// gateway's HTML page) proves nothing about the run.
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::Http {
                status,
                error_code,
                message,
                ..
            } => {
                error_code == "RESOURCE_DOES_NOT_EXIST"
                    || (*status == 400
                        && error_code == "INVALID_PARAMETER_VALUE"
                        && message.contains("does not exist"))
            }
            _ => false,
        }
    }

    /// The server's requested wait before trying again.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Http { retry_after, .. } => *retry_after,
            Self::Paused { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Http { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// Reads an error body: the JSON `{error_code, message}` form, or a plain-text or HTML
/// page from a gateway, reduced to a short readable line.
pub(crate) fn parse_error_body(status: u16, body: &str) -> (String, String) {
    #[derive(serde::Deserialize)]
    struct Body {
        #[serde(default)]
        error_code: Option<String>,
        #[serde(default)]
        message: Option<String>,
    }
    if let Ok(b) = serde_json::from_str::<Body>(body)
        && (b.error_code.is_some() || b.message.is_some())
    {
        return (
            b.error_code.unwrap_or_else(|| format!("HTTP_{status}")),
            b.message.unwrap_or_default(),
        );
    }
    let text = strip_tags(body);
    let text: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut text: String = text.chars().take(200).collect();
    if text.is_empty() {
        text = "(empty body)".into();
    }
    let kind = if body.trim_start().starts_with('<') {
        "HTML error page: "
    } else {
        ""
    };
    (format!("HTTP_{status}"), format!("{kind}{text}"))
}

fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, code: &str, msg: &str) -> ApiError {
        ApiError::Http {
            endpoint: "runs/get",
            status,
            error_code: code.into(),
            message: msg.into(),
            retry_after: None,
        }
    }

    #[test]
    fn not_found_in_both_forms() {
        assert!(http(400, "INVALID_PARAMETER_VALUE", "Run 123 does not exist.").is_not_found());
        assert!(http(404, "RESOURCE_DOES_NOT_EXIST", "gone").is_not_found());
        assert!(!http(400, "INVALID_PARAMETER_VALUE", "job_id must be set").is_not_found());
        assert!(!http(404, "HTTP_404", "HTML error page: 404 Not Found").is_not_found());
        assert!(!http(404, "ENDPOINT_NOT_FOUND", "No API found for 'GET /x'").is_not_found());
        assert!(!http(404, "FEATURE_DISABLED", "").is_not_found());
    }

    #[test]
    fn permanent_and_transient_failures() {
        for s in [400, 409] {
            assert!(http(s, "X", "").is_permanent(), "{s}");
        }
        for s in [401, 403, 408, 429, 500, 502, 503, 504] {
            assert!(!http(s, "X", "").is_permanent(), "{s}");
        }
        assert!(!http(400, "INVALID_PARAMETER_VALUE", "Run 1 does not exist.").is_permanent());
        assert!(!http(404, "ENDPOINT_NOT_FOUND", "").is_permanent());
        let login = ApiError::Decode {
            endpoint: "runs/get",
            detail: "expected value at line 1".into(),
        };
        assert!(
            !login.is_permanent(),
            "a proxy can be fixed: within the budget"
        );
        let down = ApiError::Transport {
            endpoint: "runs/get",
            detail: "connection refused".into(),
        };
        assert!(!down.is_permanent());
        assert!(http(403, "PERMISSION_DENIED", "").is_auth());
    }

    #[test]
    fn retryable_statuses() {
        for s in [429, 500, 502, 503, 504] {
            assert!(http(s, "X", "").is_retryable(), "{s}");
        }
        for s in [400, 401, 403, 404, 409] {
            assert!(!http(s, "X", "").is_retryable(), "{s}");
        }
    }

    #[test]
    fn error_bodies_of_every_kind_read_well() {
        assert_eq!(
            parse_error_body(400, r#"{"error_code":"INVALID_STATE","message":"nope"}"#),
            ("INVALID_STATE".into(), "nope".into())
        );
        let (code, msg) = parse_error_body(
            502,
            "<html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1></body></html>",
        );
        assert_eq!(code, "HTTP_502");
        assert_eq!(msg, "HTML error page: 502 Bad Gateway Bad Gateway");
        assert_eq!(parse_error_body(503, "upstream busy").1, "upstream busy");
        assert_eq!(parse_error_body(500, "").1, "(empty body)");
    }
}
