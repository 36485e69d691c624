//! Soak: memory and backpressure under churn, with a slow receiver.
//!
//! In a network namespace of its own: a feeder churns N routes through
//! kittbgpd (announce all, withdraw all, again, with a new MED each round);
//! a fast receiver reads at full speed, a slow one at 1 KiB/s (small receive
//! buffer), and stops reading three minutes before the end. Printed: kittbgpd's
//! RSS every `--sample` seconds (flat after warm-up: a slow peer costs memory
//! per prefix, not per change); the fast receiver's convergence per half
//! round, first with no slow receiver, then with it; when the send hold timer
//! (RFC 9687, `send_hold_time = 120` for the slow neighbor) drops the slow one.
//!
//! `cargo bench --bench soak -- [--minutes 10] [--routes 100000] [--sample 30] [--pause-ms 1000] [--bin PATH] [--keep-log FILE]`
//! Needs root (namespace). Not part of `cargo test`.

mod common;
use common::*;

use bytes::{Bytes, BytesMut};
use kittbgpd::wire::{Message, UpdateBuilder};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpStream};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

const FEEDER: [u8; 4] = [127, 0, 0, 2];
const FAST: [u8; 4] = [127, 0, 0, 3];
const SLOW: [u8; 4] = [127, 0, 0, 4];
const SLOW_RATE: usize = 1024;
const SEND_HOLD: u64 = 120;
const BASELINE_ROUNDS: usize = 5;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| arg(&args, name);
    let minutes: f64 = opt("--minutes")
        .and_then(|s| s.parse().ok())
        .unwrap_or(10.0);
    let n: u32 = opt("--routes")
        .and_then(|s| s.parse().ok())
        .unwrap_or(100_000);
    let sample = Duration::from_secs(opt("--sample").and_then(|s| s.parse().ok()).unwrap_or(30));
    let pause = Duration::from_millis(
        opt("--pause-ms")
            .and_then(|s| s.parse().ok())
            .unwrap_or(1000),
    );
    let bin = opt("--bin")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kittbgpd")));
    let Some(ns) = root_netns("soak") else {
        return;
    };
    ns.enter();
    let work = tempfile::tempdir().unwrap();
    let log = work.path().join("kittbgpd.log");
    let cfg = work.path().join("kittbgpd.toml");
    let neighbor = |name: &str, addr: [u8; 4], extra: &str| {
        format!(
            "[[neighbor]]\nname = \"{name}\"\naddress = \"{}\"\ncost = 0\n{extra}",
            Ipv4Addr::from(addr)
        )
    };
    std::fs::write(
        &cfg,
        format!(
            "router_id = \"127.0.0.1\"\nlocal_as = {AS}\ncontrol_socket = \"{}\"\n\
             [loopbacks]\nipv4 = [\"10.0.0.0/8\"]\nfrom_lo = false\n[kernel]\nenabled = false\n\
             [defaults]\npassive = true\nimport_limit = 4000000\n{}{}{}",
            work.path().join("ctl.sock").display(),
            neighbor("feeder", FEEDER, ""),
            neighbor("fast", FAST, ""),
            neighbor("slow", SLOW, &format!("send_hold_time = {SEND_HOLD}\n")),
        ),
    )
    .unwrap();
    let mut child = Command::new(&bin)
        .args(["-c", cfg.to_str().unwrap(), "--log-level", "info"])
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = child.id();
    let rss = move || proc_status_kib(pid, "VmRSS:") as f64 / 1024.0;

    let announce = [
        announcements(n, 64, 0, FEEDER).0,
        announcements(n, 64, 1, FEEDER).0,
    ];
    let withdraw = withdrawals(n);
    eprintln!(
        "{n} routes: {} bytes to announce, {} to withdraw",
        announce[0].len(),
        withdraw.len()
    );

    // The fast receiver: counts the prefixes it holds.
    let mut fast = connect_retry(FAST);
    assert!(fast.establish(FAST), "fast session");
    let held = Arc::new(AtomicUsize::new(0));
    keepalives(&fast.stream);
    {
        let held = held.clone();
        std::thread::spawn(move || count_held(&mut fast, n, &held));
    }
    let mut feeder = connect_retry(FEEDER);
    assert!(feeder.establish(FEEDER), "feeder session");
    drain(&feeder.stream);

    let t0 = Instant::now();
    let mut round = 0usize;
    let mut churn = |feeder: &mut TcpStream, held: &AtomicUsize| -> (Duration, Duration) {
        let a = timed(feeder, &announce[round % 2], || {
            held.load(Relaxed) == n as usize
        });
        std::thread::sleep(pause);
        let w = timed(feeder, &withdraw, || held.load(Relaxed) == 0);
        std::thread::sleep(pause);
        round += 1;
        (a, w)
    };

    // 1. No slow receiver.
    let baseline: Vec<(Duration, Duration)> = (0..BASELINE_ROUNDS)
        .map(|_| churn(&mut feeder.stream, &held))
        .collect();
    let warm_rss = rss();
    eprintln!(
        "baseline done at {:.0} s, RSS {warm_rss:.1} MiB",
        t0.elapsed().as_secs_f64()
    );

    // 2. The slow receiver joins; it stops reading three minutes before the end.
    let total = Duration::from_secs_f64(minutes * 60.0);
    let stop_at = total.saturating_sub(Duration::from_secs(180));
    let slow = connect_retry_with(SLOW, Some(4096));
    let mut slow = slow;
    assert!(slow.establish(SLOW), "slow session");
    keepalives(&slow.stream);
    let slow_bytes = Arc::new(AtomicU64::new(0));
    let soak_start = Instant::now();
    {
        let bytes = slow_bytes.clone();
        let mut stream = slow.stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; SLOW_RATE];
            let start = Instant::now();
            while start.elapsed() < stop_at {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => return,
                    Ok(k) => bytes.fetch_add(k as u64, Relaxed),
                };
                std::thread::sleep(Duration::from_secs(1));
            }
            // Stops reading, keeps the socket (and its keepalives) open.
            std::thread::sleep(Duration::from_secs(24 * 3600));
        });
    }
    // RSS and the send hold timer, watched from one thread.
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        let slow_bytes = slow_bytes.clone();
        let log = log.clone();
        std::thread::spawn(move || {
            let mut curve = vec![(0.0, rss(), 0)];
            let mut dropped = None;
            let mut next = sample;
            while !done.load(Relaxed) {
                std::thread::sleep(Duration::from_millis(500));
                let t = soak_start.elapsed();
                if dropped.is_none() {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    if text.contains("send hold timer expired") {
                        dropped = Some(t);
                    }
                }
                if t >= next {
                    let point = (t.as_secs_f64(), rss(), slow_bytes.load(Relaxed));
                    eprintln!(
                        "t={:>5.0} s  RSS {:>6.1} MiB  slow read {} B",
                        point.0, point.1, point.2
                    );
                    curve.push(point);
                    next += sample;
                }
            }
            (curve, dropped)
        })
    };
    let mut soaked = Vec::new();
    while soak_start.elapsed() < total {
        soaked.push(churn(&mut feeder.stream, &held));
    }
    done.store(true, Relaxed);
    let (curve, dropped) = watcher.join().unwrap();
    // SAFETY: our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    drop(slow);
    if let Some(keep) = opt("--keep-log") {
        let _ = std::fs::copy(&log, keep);
    }

    println!();
    println!(
        "soak: {n} routes churned (announce all / withdraw all, new MED each round, {} ms pause), {:.0} min, {} rounds",
        pause.as_millis(),
        minutes,
        round
    );
    println!("kittbgpd RSS (MiB) after warm-up ({warm_rss:.1} MiB), sampled every {} s; slow receiver bytes read:", sample.as_secs());
    println!("{:>7} {:>9} {:>12}", "t s", "RSS MiB", "slow read B");
    for (t, r, b) in &curve {
        println!("{t:>7.0} {r:>9.1} {b:>12}");
    }
    let (lo, hi) = curve
        .iter()
        .fold((f64::MAX, 0.0f64), |(lo, hi), (_, r, _)| {
            (lo.min(*r), hi.max(*r))
        });
    println!(
        "RSS min {lo:.1} max {hi:.1} MiB (spread {:.1} MiB)",
        hi - lo
    );
    println!();
    println!("fast receiver convergence per half round (ms):");
    println!(
        "{:<22} {:>6} {:>11} {:>9} {:>11} {:>9}",
        "", "rounds", "announce p50", "max", "withdraw p50", "max"
    );
    for (name, v) in [
        ("no slow receiver", &baseline),
        ("with slow receiver", &soaked),
    ] {
        let a = stats(v.iter().map(|x| x.0).collect());
        let w = stats(v.iter().map(|x| x.1).collect());
        println!(
            "{name:<22} {:>6} {:>11.1} {:>9.1} {:>11.1} {:>9.1}",
            v.len(),
            a.0,
            a.1,
            w.0,
            w.1
        );
    }
    println!();
    match dropped {
        Some(t) => println!(
            "slow receiver stopped reading at t={:.0} s; dropped by the send hold timer (NOTIFICATION 8, send_hold_time {SEND_HOLD} s) at t={:.0} s, {:.0} s later",
            stop_at.as_secs_f64(),
            t.as_secs_f64(),
            t.as_secs_f64() - stop_at.as_secs_f64()
        ),
        None => println!(
            "slow receiver stopped reading at t={:.0} s; not dropped before the end (send_hold_time {SEND_HOLD} s)",
            stop_at.as_secs_f64()
        ),
    }
}

fn withdrawals(n: u32) -> Bytes {
    let builder = UpdateBuilder::new(&negotiated());
    let mut out = BytesMut::new();
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let prefixes = (0..n).map(|k| ipnet::Ipv4Net::new(Ipv4Addr::from(base + k), 32).unwrap());
    builder.withdraw_v4(prefixes, &mut out).unwrap();
    out.freeze()
}

/// Send `bytes`, then wait until `converged`; the time from the first byte.
fn timed(feeder: &mut TcpStream, bytes: &[u8], converged: impl Fn() -> bool) -> Duration {
    let t = Instant::now();
    feeder.write_all(bytes).unwrap();
    while !converged() {
        std::thread::sleep(Duration::from_micros(500));
    }
    t.elapsed()
}

/// Track how many of the `n` prefixes the receiver holds.
fn count_held(s: &mut Speaker, n: u32, held: &AtomicUsize) {
    let mut seen = vec![false; n as usize];
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let index = |p: ipnet::IpNet| match p {
        ipnet::IpNet::V4(p) => {
            Some(u32::from(p.addr()).wrapping_sub(base) as usize).filter(|i| *i < n as usize)
        }
        ipnet::IpNet::V6(_) => None,
    };
    let mut count = 0usize;
    while let Some(m) = s.recv() {
        let Message::Update(u) = m else { continue };
        for p in u.withdrawn_all() {
            if let Some(i) = index(p) {
                count -= usize::from(std::mem::replace(&mut seen[i], false));
            }
        }
        for p in u.announced() {
            if let Some(i) = index(p) {
                count += usize::from(!std::mem::replace(&mut seen[i], true));
            }
        }
        held.store(count, Relaxed);
    }
}

/// A KEEPALIVE every 30 s from a clone of `stream` (hold time 240 s).
fn keepalives(stream: &TcpStream) {
    let mut w = stream.try_clone().unwrap();
    let ka = Message::Keepalive.to_bytes(&negotiated()).unwrap();
    std::thread::spawn(move || loop {
        std::thread::sleep(Duration::from_secs(30));
        if w.write_all(&ka).is_err() {
            return;
        }
    });
}

/// Read and discard what the daemon sends the feeder.
fn drain(stream: &TcpStream) {
    let mut r = stream.try_clone().unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while matches!(r.read(&mut buf), Ok(k) if k > 0) {}
    });
}

/// (median, max) in ms.
fn stats(mut v: Vec<Duration>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(v[v.len() - 1]))
}
