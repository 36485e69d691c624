//! Route reflection benchmark: feeder -> daemon under test -> sink.
//!
//! In a network namespace of its own, a feeder pre-encodes N loopback-shaped
//! IPv4 routes and sends them, once the sink is Established, to the daemon under
//! test (route reflector, both peers RR clients, pinned to CPU 1); the sink counts
//! distinct prefixes until it holds all N. Measured: time from the first byte
//! sent to the last route received; the floor (feeder straight to sink, no
//! daemon); the daemon's CPU seconds (utime+stime from /proc); its peak RSS
//! (VmHWM) and RSS growth per route. Then the feeder's session is closed:
//! "drop" is the time from the close until the sink has seen every route
//! withdrawn (a reflector losing a client with a full table). Run with
//! kittbgpd and with BIRD 2 in the middle, in one run, and printed side by side.
//!
//! `cargo bench --bench reflect -- [--routes 100000,1000000] [--runs 3] [--only kittbgpd|bird] [--before BIN]`
//! `--before BIN`: also run another kittbgpd binary (e.g. the main branch's), as row "before".
//! `--kernel`: the daemon also installs every route in the kernel (kittbgpd's
//! `[kernel]`, BIRD's `protocol kernel`), next hop 192.0.2.2 on a veth
//! (`kbdummy`); VmHWM and CPU are then read once the daemon's CPU time stops
//! growing (the kernel FIB done), the wall time still ends at the sink.
//! `--hold SECS` (with `--kernel`): CPU and VmHWM read SECS later still (40:
//! one periodic dump of the whole kernel table is in the figures).
//! Needs root (namespace). BIRD: Debian's `bird2`, skipped with a note if absent.

use bytes::Bytes;
use kittbgpd::wire::Message;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use std::time::{Duration, Instant};

mod common;
use common::*;

const FEEDER: [u8; 4] = [127, 0, 0, 2];
const SINK: [u8; 4] = [127, 0, 0, 3];
/// Routes sharing one attribute set (MED changes every this many prefixes).
const ROUTES_PER_ATTR_SET: u32 = 64;
/// With `--kernel`: the routes' next hop, on a veth with 192.0.2.1/24.
const KERNEL_NEXT_HOP: [u8; 4] = [192, 0, 2, 2];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| arg(&args, name);
    let routes: Vec<u32> = opt("--routes")
        .unwrap_or_else(|| "100000,1000000".into())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let runs: usize = opt("--runs").and_then(|s| s.parse().ok()).unwrap_or(3);
    let only = opt("--only");
    let before = opt("--before").map(PathBuf::from);
    let kernel = args.iter().any(|a| a == "--kernel");
    let hold = Duration::from_secs(opt("--hold").and_then(|s| s.parse().ok()).unwrap_or(0));
    let Some(ns) = root_netns("reflect bench") else {
        return;
    };
    ns.enter();
    pin_self(0);
    let work = tempfile::tempdir().unwrap();
    let kittbgpd = PathBuf::from(env!("CARGO_BIN_EXE_kittbgpd"));
    let bird = which("bird");

    let mut rows = Vec::new();
    for &n in &routes {
        let feed = Feed::new(n, if kernel { KERNEL_NEXT_HOP } else { FEEDER });
        eprintln!(
            "{n} routes in {} UPDATEs, {} bytes",
            feed.messages,
            feed.bytes.len()
        );
        let floor = median((0..runs).map(|_| run_floor(&feed)).collect());
        // The daemons take turns run by run, so a noisy moment hits them alike.
        let duts = duts(
            before.as_deref(),
            &kittbgpd,
            bird.as_deref(),
            only.as_deref(),
        );
        let mut results: Vec<Vec<RunResult>> = duts.iter().map(|_| Vec::new()).collect();
        for _ in 0..runs {
            for (i, (_, dut)) in duts.iter().enumerate() {
                if kernel {
                    dummy_link();
                }
                results[i].push(run_dut(&feed, *dut, work.path(), kernel, hold));
            }
        }
        let row = Row {
            n,
            floor,
            results: duts
                .iter()
                .zip(results)
                .map(|((name, _), r)| (*name, summarize(r)))
                .collect(),
        };
        rows.push(row);
    }
    print_table(&rows, runs);
}

// ---- the routes

struct Feed {
    n: u32,
    bytes: Bytes,
    messages: usize,
}

impl Feed {
    /// N /32s from 10.0.0.0 up, packed per attribute set.
    fn new(n: u32, next_hop: [u8; 4]) -> Feed {
        let (bytes, messages) = announcements(n, ROUTES_PER_ATTR_SET, 0, next_hop);
        Feed { n, bytes, messages }
    }
}

/// Counts the distinct routes of the feed (10.0.0.0 up, `n`) the sink sees
/// announced, or `withdrawn`, until it has seen every one.
fn sink_until(s: &mut Speaker, n: u32, withdrawn: bool) -> Option<Instant> {
    let mut seen = vec![false; n as usize];
    let mut count = 0;
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    while count < n {
        let Message::Update(u) = s.recv()? else {
            continue;
        };
        let prefixes = u.announced().filter(|_| !withdrawn);
        for p in prefixes.chain(u.withdrawn_all().filter(|_| withdrawn)) {
            if let ipnet::IpNet::V4(p) = p {
                let i = u32::from(p.addr()).wrapping_sub(base) as usize;
                if i < seen.len() && !seen[i] {
                    seen[i] = true;
                    count += 1;
                }
            }
        }
    }
    Some(Instant::now())
}

fn sink_until_all(s: &mut Speaker, n: u32) -> Option<Instant> {
    sink_until(s, n, false)
}

fn sink_until_withdrawn(s: &mut Speaker, n: u32) -> Option<Instant> {
    sink_until(s, n, true)
}

// ---- runs

struct RunResult {
    wall: Duration,
    /// From the feeder's close until the sink saw every route withdrawn.
    drop: Duration,
    cpu: f64,
    hwm_kib: u64,
    base_kib: u64,
}

fn run_floor(feed: &Feed) -> Duration {
    let listener = TcpListener::bind(SocketAddr::from((SINK, PORT + 1))).unwrap();
    let n = feed.n;
    let sink = std::thread::spawn(move || {
        let mut s = Speaker::accept(&listener);
        assert!(s.establish(SINK));
        sink_until_all(&mut s, n).unwrap()
    });
    let mut f = Speaker::connect(FEEDER, SINK, PORT + 1).unwrap();
    assert!(f.establish(FEEDER));
    let t0 = Instant::now();
    f.stream.write_all(&feed.bytes).unwrap();
    let t1 = sink.join().unwrap();
    t1 - t0
}

/// (Re)creates the interface (a veth pair: no dummy module here) the kernel routes point to: a new one
/// carries none of the previous run's routes.
fn dummy_link() {
    let ip = |args: &str| {
        std::process::Command::new("ip")
            .args(args.split(' '))
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    ip("link del kbdummy");
    assert!(ip("link add kbdummy type veth peer name kbdummy-peer"));
    assert!(ip("link set kbdummy-peer up"));
    assert!(ip("addr add 192.0.2.1/24 dev kbdummy"));
    assert!(ip("link set kbdummy up"));
}

/// Waits until the daemon's CPU time stops growing (200 ms without a tick).
fn settle(pid: u32) {
    let mut last = proc_cpu_seconds(pid);
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let now = proc_cpu_seconds(pid);
        if now == last {
            return;
        }
        last = now;
    }
}

fn run_dut(feed: &Feed, dut: Dut<'_>, work: &Path, kernel: bool, hold: Duration) -> RunResult {
    let bird_kernel = if kernel {
        "protocol kernel { ipv4 { export all; }; }\nprotocol direct { ipv4; interface \"kbdummy\"; }\n"
    } else {
        ""
    };
    let mut child = spawn_reflector(&dut, work, kernel, "import_limit = 4000000", bird_kernel);
    let pid = child.id();
    let mut sink = connect_retry(SINK);
    assert!(sink.establish(SINK), "sink session");
    let n = feed.n;
    let (all_tx, all_rx) = std::sync::mpsc::channel();
    let sink_thread = std::thread::spawn(move || {
        let all = sink_until_all(&mut sink, n);
        let _ = all_tx.send(all);
        all.and_then(|_| sink_until_withdrawn(&mut sink, n))
    });
    let mut f = connect_retry(FEEDER);
    assert!(f.establish(FEEDER), "feeder session");
    std::thread::sleep(Duration::from_millis(200));
    let base_kib = proc_status_kib(pid, "VmRSS:");
    let cpu0 = proc_cpu_seconds(pid);
    let t0 = Instant::now();
    f.stream.write_all(&feed.bytes).unwrap();
    let t1 = all_rx.recv().ok().flatten().expect("sink lost its session");
    if kernel {
        settle(pid);
        let routes = std::process::Command::new("sh")
            .args(["-c", "ip -4 route show dev kbdummy | wc -l"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default();
        eprintln!("{n} routes: {routes} kernel routes via kbdummy (incl. the connected one)");
        if !hold.is_zero() {
            std::thread::sleep(hold);
            settle(pid);
        }
    }
    let cpu = proc_cpu_seconds(pid) - cpu0;
    let hwm_kib = proc_status_kib(pid, "VmHWM:");
    // The feeder goes: every route is withdrawn from the sink.
    let t2 = Instant::now();
    drop(f);
    let t3 = sink_thread.join().unwrap().expect("sink lost its session");
    // SAFETY: our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    RunResult {
        wall: t1 - t0,
        drop: t3 - t2,
        cpu,
        hwm_kib,
        base_kib,
    }
}

// ---- the table

struct Summary {
    wall: Duration,
    drop: Duration,
    cpu: f64,
    hwm_kib: u64,
    bytes_per_route: f64,
}

struct Row {
    n: u32,
    floor: Duration,
    results: Vec<(&'static str, Summary)>,
}

fn median<T: Ord + Copy>(mut v: Vec<T>) -> T {
    v.sort();
    v[v.len() / 2]
}

fn summarize(runs: Vec<RunResult>) -> Summary {
    let n = runs.len();
    let mut by_wall: Vec<&RunResult> = runs.iter().collect();
    by_wall.sort_by_key(|r| r.wall);
    let m = by_wall[n / 2];
    Summary {
        wall: m.wall,
        drop: median(runs.iter().map(|r| r.drop).collect()),
        cpu: m.cpu,
        hwm_kib: runs.iter().map(|r| r.hwm_kib).max().unwrap_or(0),
        bytes_per_route: 0.0_f64.max((m.hwm_kib.saturating_sub(m.base_kib)) as f64 * 1024.0),
    }
}

fn print_table(rows: &[Row], runs: usize) {
    println!();
    println!("route reflection: feeder -> DUT (RR, pinned to CPU 1) -> sink; median of {runs} runs; IPv4 /32, {ROUTES_PER_ATTR_SET} routes per attribute set");
    println!(
        "{:>9}  {:<9} {:>10} {:>10} {:>9} {:>10} {:>11} {:>9}",
        "routes", "DUT", "wall ms", "floor ms", "CPU s", "VmHWM MiB", "B/route", "drop ms"
    );
    for row in rows {
        for (name, s) in &row.results {
            println!(
                "{:>9}  {:<9} {:>10.1} {:>10.1} {:>9.2} {:>10.1} {:>11.0} {:>9.1}",
                row.n,
                name,
                s.wall.as_secs_f64() * 1e3,
                row.floor.as_secs_f64() * 1e3,
                s.cpu,
                s.hwm_kib as f64 / 1024.0,
                s.bytes_per_route / f64::from(row.n),
                s.drop.as_secs_f64() * 1e3
            );
        }
        let get = |n: &str| row.results.iter().find(|(k, _)| *k == n).map(|(_, s)| s);
        if let (Some(k), Some(b)) = (get("kittbgpd"), get("bird")) {
            println!(
                "{:>9}  {:<9} {:>10.2} {:>10} {:>9.2} {:>10.2} {:>11.2} {:>9.2}",
                row.n,
                "ratio k/b",
                k.wall.as_secs_f64() / b.wall.as_secs_f64(),
                "",
                k.cpu / b.cpu.max(1e-9),
                k.hwm_kib as f64 / b.hwm_kib.max(1) as f64,
                k.bytes_per_route / b.bytes_per_route.max(1.0),
                k.drop.as_secs_f64() / b.drop.as_secs_f64().max(1e-9)
            );
        }
    }
}
