//! A process group's memory, read from /proc: its pids, their RSS and PSS, and a sampler
//! of the group's peaks.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// The pids of a process group (from /proc).
pub(super) fn group(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // /proc/PID/stat: "pid (comm) state ppid pgrp ...", comm may hold spaces.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| {
                    s.rsplit_once(')')?
                        .1
                        .split_whitespace()
                        .nth(2)?
                        .parse::<u32>()
                        .ok()
                })
                == Some(pgid)
        })
        .collect()
}

/// Resident set of a process in MiB (from /proc/PID/statm, 4 KiB pages).
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/statm"))
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * 4096.0 / 1024.0 / 1024.0)
}

/// Proportional set of a process in MiB (from /proc/PID/smaps_rollup).
fn pss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Pss:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<f64>()
                .ok()
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Samples a process group's summed RSS every 100 ms (and PSS every second) until
/// stopped; returns the peaks.
pub(super) struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(f64, f64)>,
}

impl Sampler {
    pub(super) fn start(pgid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut rss, mut pss) = (0.0f64, 0.0f64);
            let mut i = 0u64;
            while !flag.load(Ordering::Relaxed) {
                let pids = group(pgid);
                rss = rss.max(pids.iter().map(|p| rss_mib(*p)).sum());
                if i % 10 == 0 {
                    pss = pss.max(pids.iter().map(|p| pss_mib(*p)).sum());
                }
                i += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
            (rss, pss)
        });
        Self { stop, thread }
    }

    pub(super) fn finish(self) -> (f64, f64) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}
