//! Running the real `backfill` binary as separate processes.

use std::process::{Child, Command, Output, Stdio};

/// A `backfill` command with the environment of one test fleet.
pub fn backfill(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backfill"));
    cmd.env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

pub fn run(env: &[(&str, String)], args: &[&str]) -> Output {
    backfill(env).args(args).output().expect("run backfill")
}

pub fn spawn(env: &[(&str, String)], args: &[&str]) -> Child {
    backfill(env)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn backfill")
}

/// Sends SIGTERM and returns the exit code.
pub fn terminate(child: &mut Child) -> Option<i32> {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    child.wait().ok().and_then(|s| s.code())
}

pub fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}
