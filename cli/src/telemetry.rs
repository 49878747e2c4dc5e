//! Logging: human-readable by default, JSON with `--log-format json`, to stderr so that
//! `--json` output on stdout stays clean. `RUST_LOG` refines the filter.

use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// `quiet` (commands that print their own report) logs only warnings by default, and
/// nothing from lapin.
pub fn init(format: LogFormat, quiet: bool) {
    let default = if quiet {
        "warn,lapin=off"
    } else {
        "info,lapin=warn,sqlx=warn"
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // Colours only for a person at a terminal: a log written to a file or a pipe (or with
    // NO_COLOR set) carries no escape codes.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
