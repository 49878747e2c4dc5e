//! Running the real `backfill` binary as separate processes.

use std::ops::{Deref, DerefMut};
use std::process::{Child, Command, Output, Stdio};

/// A child process that is killed when dropped, so a failed test leaves no worker behind
/// (one that would keep consuming, or re-declare a deleted namespace).
#[derive(Debug)]
pub struct OwnedChild(Child);

impl Deref for OwnedChild {
    type Target = Child;

    fn deref(&self) -> &Child {
        &self.0
    }
}

impl DerefMut for OwnedChild {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for OwnedChild {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// A `backfill` command with the environment of one test fleet.
pub fn backfill(env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_backfill"));
    cmd.env_remove("RUST_LOG");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// A command line written as one string, split at spaces (for arguments without spaces).
pub fn words(line: &str) -> Vec<&str> {
    line.split_whitespace().collect()
}

pub fn run(env: &[(&str, String)], args: &[&str]) -> Output {
    backfill(env).args(args).output().expect("run backfill")
}

pub fn spawn(env: &[(&str, String)], args: &[&str]) -> OwnedChild {
    OwnedChild(
        backfill(env)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn backfill"),
    )
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
