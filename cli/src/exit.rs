//! Command failures and their exit codes.

use std::process::ExitCode;

/// Why a command did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad usage: exit 2, with a message naming the problem.
    #[error("{0}")]
    Usage(String),
    /// The command ran and the answer is "no" (for example an incomplete backfill): exit 1
    /// without an error line, the command has printed its report.
    #[error("{0}")]
    Negative(String),
    /// Something failed: exit 1.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

impl CliError {
    pub fn usage(msg: impl Into<String>) -> Self {
        Self::Usage(msg.into())
    }

    pub(crate) fn report(&self) -> ExitCode {
        match self {
            Self::Usage(msg) => {
                eprintln!("error: {msg}");
                ExitCode::from(2)
            }
            Self::Negative(msg) => {
                eprintln!("{msg}");
                ExitCode::from(1)
            }
            Self::Failed(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(1)
            }
        }
    }
}
