//! Idle memory: the daemon under test with two iBGP peers Established and the
//! kernel FIB on, no routes, settled (2 s after the second session is up, or
//! `--settle`).
//!
//! Read from /proc/PID/smaps_rollup: RSS, its anonymous part (heap, stacks:
//! the daemon's own memory) and its file-backed part (the pages of the
//! binary's and the C libraries' code and read-only data it has mapped; the
//! kernel maps text 64 KiB around each fault). kittbgpd and BIRD 2 take turns
//! run by run in one namespace and are printed side by side.
//!
//! `cargo bench --bench idle -- [--runs 5] [--settle 2] [--only kittbgpd|bird] [--before BIN]`
//! (`--settle S`: read S seconds after the second session is up, default 2;
//! more than 30 covers a keepalive round)
//! Needs root (namespace). BIRD: Debian's `bird2`, skipped with a note if absent.

use std::path::{Path, PathBuf};
use std::time::Duration;

mod common;
use common::*;

const FEEDER: [u8; 4] = [127, 0, 0, 2];
const SINK: [u8; 4] = [127, 0, 0, 3];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| arg(&args, name);
    let runs: usize = opt("--runs").and_then(|s| s.parse().ok()).unwrap_or(5);
    let only = opt("--only");
    let before = opt("--before").map(PathBuf::from);
    let settle: u64 = opt("--settle").and_then(|s| s.parse().ok()).unwrap_or(2);
    let Some(ns) = root_netns("idle bench") else {
        return;
    };
    ns.enter();
    pin_self(0);
    let work = tempfile::tempdir().unwrap();
    let kittbgpd = PathBuf::from(env!("CARGO_BIN_EXE_kittbgpd"));
    let bird = which("bird");
    let duts = duts(
        before.as_deref(),
        &kittbgpd,
        bird.as_deref(),
        only.as_deref(),
    );
    let mut results: Vec<Vec<Idle>> = duts.iter().map(|_| Vec::new()).collect();
    for _ in 0..runs {
        for (i, (_, dut)) in duts.iter().enumerate() {
            results[i].push(run_dut(*dut, work.path(), settle));
        }
    }
    println!();
    println!("idle: 2 iBGP peers Established, kernel FIB on, no routes, {settle} s settled; median of {runs} runs (by RSS)");
    println!("(RSS at the end; mean and max of RSS sampled every 100 ms while settling)");
    println!(
        "{:<9} {:>9} {:>10} {:>10} {:>9} {:>9}",
        "DUT", "RSS MiB", "anon MiB", "file MiB", "mean MiB", "max MiB"
    );
    let medians: Vec<(&str, Idle)> = duts
        .iter()
        .zip(results)
        .map(|((name, _), mut r)| {
            r.sort_by_key(|i| i.rss_kib);
            (*name, r[r.len() / 2])
        })
        .collect();
    let mib = |kib: u64| kib as f64 / 1024.0;
    for (name, m) in &medians {
        println!(
            "{:<9} {:>9.2} {:>10.2} {:>10.2} {:>9.2} {:>9.2}",
            name,
            mib(m.rss_kib),
            mib(m.anon_kib),
            mib(m.file_kib),
            mib(m.mean_kib),
            mib(m.max_kib)
        );
    }
    let get = |n: &str| medians.iter().find(|(k, _)| *k == n).map(|(_, m)| *m);
    if let (Some(k), Some(b)) = (get("kittbgpd"), get("bird")) {
        let r = |a: u64, b: u64| a as f64 / b.max(1) as f64;
        println!(
            "{:<9} {:>9.2} {:>10.2} {:>10.2} {:>9.2} {:>9.2}",
            "ratio k/b",
            r(k.rss_kib, b.rss_kib),
            r(k.anon_kib, b.anon_kib),
            r(k.file_kib, b.file_kib),
            r(k.mean_kib, b.mean_kib),
            r(k.max_kib, b.max_kib)
        );
    }
}

#[derive(Clone, Copy)]
struct Idle {
    rss_kib: u64,
    anon_kib: u64,
    file_kib: u64,
    /// Over the settling time, sampled every 100 ms.
    mean_kib: u64,
    max_kib: u64,
}

/// RSS and its anonymous and file-backed parts, from smaps_rollup.
fn smaps_rollup(pid: u32) -> Idle {
    let text = std::fs::read_to_string(format!("/proc/{pid}/smaps_rollup")).unwrap_or_default();
    let field = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let rss_kib = field("Rss:");
    let anon_kib = field("Anonymous:");
    Idle {
        rss_kib,
        anon_kib,
        file_kib: rss_kib.saturating_sub(anon_kib),
        mean_kib: rss_kib,
        max_kib: rss_kib,
    }
}

fn run_dut(dut: Dut<'_>, work: &Path, settle: u64) -> Idle {
    let mut child = spawn_reflector(
        &dut,
        work,
        true,
        "",
        "protocol kernel { ipv4 { export all; }; }\n",
    );
    let pid = child.id();
    let mut sink = connect_retry(SINK);
    assert!(sink.establish(SINK), "sink session");
    let mut feeder = connect_retry(FEEDER);
    assert!(feeder.establish(FEEDER), "feeder session");
    let start = std::time::Instant::now();
    let mut samples = Vec::new();
    while start.elapsed() < Duration::from_secs(settle) {
        std::thread::sleep(Duration::from_millis(100));
        samples.push(smaps_rollup(pid).rss_kib);
    }
    let mut idle = smaps_rollup(pid);
    if !samples.is_empty() {
        idle.mean_kib = samples.iter().sum::<u64>() / samples.len() as u64;
        idle.max_kib = samples.iter().copied().max().unwrap_or(0);
    }
    // SAFETY: our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    drop((sink, feeder));
    idle
}
