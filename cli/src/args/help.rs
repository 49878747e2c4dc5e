//! Which global settings each subcommand's `--help` shows.

use super::cli::Cli;

/// The global settings each command uses (`log_format` everywhere but `completions`): the
/// others are hidden from that command's `--help` (still accepted, so one environment
/// serves every command).
const USES: [(&str, &[&str]); 22] = {
    const B: [&str; 3] = ["amqp_url", "namespace", "delay_tiers"];
    const D: [&str; 4] = [
        "databricks_host",
        "databricks_token",
        "max_retry_after_s",
        "api_budget",
    ];
    [
        (
            "produce",
            &[B[0], B[1], B[2], "ledger_url", D[0], D[1], D[2], D[3]],
        ),
        ("plan", &[]),
        (
            "worker",
            &[
                B[0],
                B[1],
                B[2],
                "ledger_url",
                D[0],
                D[1],
                D[2],
                D[3],
                "metrics_addr",
            ],
        ),
        (
            "reconcile",
            &["ledger_url", D[0], D[1], D[2], D[3], "metrics_addr"],
        ),
        ("status", &["ledger_url"]),
        ("promote", &["ledger_url", D[0], D[1], D[2], D[3]]),
        ("amend", &["ledger_url", D[0], D[1], D[2], D[3]]),
        ("rollback", &["ledger_url", D[0], D[1], D[2], D[3]]),
        ("audit", &["ledger_url"]),
        ("rerun", &[B[0], B[1], B[2], "ledger_url"]),
        ("pause", &["ledger_url"]),
        ("resume", &["ledger_url"]),
        ("cancel", &["ledger_url", D[0], D[1], D[2], D[3]]),
        ("guards", &["ledger_url"]),
        ("dlq", &[B[0], B[1], B[2], "ledger_url"]),
        ("topology", &[B[0], B[1], B[2]]),
        ("throttle", &["ledger_url"]),
        ("sim", &["metrics_addr"]),
        ("demo", &[B[0], B[1], B[2], "ledger_url", "metrics_addr"]),
        ("rehearsal-check", &["ledger_url"]),
        ("completions", &[]),
        ("help", &[]),
    ]
};

/// Every global setting's argument id.
const GLOBALS: [&str; 10] = [
    "amqp_url",
    "ledger_url",
    "namespace",
    "databricks_host",
    "databricks_token",
    "max_retry_after_s",
    "api_budget",
    "delay_tiers",
    "metrics_addr",
    "log_format",
];

/// The command line for `argv`. When it asks for a subcommand's help (`backfill sim
/// --help`, `backfill help sim`), the global settings that subcommand does not use are
/// hidden from it; parsing is the same either way.
pub fn command_for(argv: &[String]) -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    let names: Vec<&str> = USES.iter().map(|(n, _)| *n).collect();
    let words: Vec<&str> = argv.iter().skip(1).map(String::as_str).collect();
    let asks_help = words
        .iter()
        .any(|w| *w == "--help" || *w == "-h" || *w == "help");
    let Some(name) = words
        .iter()
        .find(|w| names.contains(w) && **w != "help")
        .copied()
        .filter(|_| asks_help)
    else {
        return cmd;
    };
    let uses = USES
        .iter()
        .find(|(n, _)| *n == name)
        .map_or(&[][..], |(_, u)| *u);
    for id in GLOBALS {
        let used = uses.contains(&id) || (id == "log_format" && name != "completions");
        if !used {
            cmd = cmd.mut_arg(id, |a| a.hide(true));
        }
    }
    cmd
}
