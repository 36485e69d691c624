//! The fabric at scale, in memory (issue 12 part 7a): N routers (ring plus
//! chords, two loopbacks each) + 2 route reflectors with multihop sessions to
//! every router, 1000 anycast overlay prefixes (tests/common/scale.rs). For
//! each N: converge, check every choice against Dijkstra, print wall time,
//! CPU time (getrusage), messages and bytes, and memory per node measured by
//! a counting allocator that charges each allocation to the node whose `Rib`
//! made it (fabric::CURRENT_NODE). No BIRD counterpart: this runs the RIBs
//! without sockets.
//!
//! `cargo bench --bench fabric_scale [-- --sizes 100,300,1000 --prefixes 1000 --chunk 65536 --seed 1 --no-add-path --no-check]`

#[path = "../tests/common/fabric.rs"]
mod fabric;
#[path = "../tests/common/scale.rs"]
mod scale;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// Nodes accounted one by one; the harness and anything beyond share the last slot.
const SLOTS: usize = 4096;
static LIVE: [AtomicUsize; SLOTS + 1] = [const { AtomicUsize::new(0) }; SLOTS + 1];
static PEAK: [AtomicUsize; SLOTS + 1] = [const { AtomicUsize::new(0) }; SLOTS + 1];
static TOTAL_LIVE: AtomicUsize = AtomicUsize::new(0);
static TOTAL_PEAK: AtomicUsize = AtomicUsize::new(0);

/// Each allocation carries a header holding the slot it is charged to, so a
/// free (or a Bytes dropped by another node) credits the right one.
struct Counting;

const HEADER: usize = 16;

fn slot() -> usize {
    fabric::CURRENT_NODE
        .try_with(|c| c.get())
        .unwrap_or(usize::MAX)
        .min(SLOTS)
}

fn charge(slot: usize, n: usize) {
    let live = LIVE[slot].fetch_add(n, Relaxed) + n;
    PEAK[slot].fetch_max(live, Relaxed);
    let total = TOTAL_LIVE.fetch_add(n, Relaxed) + n;
    TOTAL_PEAK.fetch_max(total, Relaxed);
}

fn credit(slot: usize, n: usize) {
    LIVE[slot].fetch_sub(n, Relaxed);
    TOTAL_LIVE.fetch_sub(n, Relaxed);
}

/// Header size and the layout asked of the system for `l`.
fn outer(l: Layout) -> (usize, Layout) {
    let h = HEADER.max(l.align());
    let layout = Layout::from_size_align(l.size() + h, l.align().max(HEADER)).expect("layout");
    (h, layout)
}

/// Writes the current slot into the header of the system's block `p` (for
/// `l`) and returns the caller's pointer, or null if `p` is.
unsafe fn tagged(p: *mut u8, l: Layout) -> *mut u8 {
    if p.is_null() {
        return p;
    }
    let (h, _) = outer(l);
    let s = slot();
    (p.add(h - 8) as *mut usize).write(s);
    charge(s, l.size());
    p.add(h)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        tagged(System.alloc(outer(l).1), l)
    }

    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        tagged(System.alloc_zeroed(outer(l).1), l)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, l: Layout) {
        let (h, o) = outer(l);
        let s = (ptr.sub(8) as *const usize).read();
        credit(s, l.size());
        System.dealloc(ptr.sub(h), o);
    }

    unsafe fn realloc(&self, ptr: *mut u8, l: Layout, new_size: usize) -> *mut u8 {
        let (h, o) = outer(l);
        let old = (ptr.sub(8) as *const usize).read();
        let p = System.realloc(ptr.sub(h), o, new_size + h);
        if !p.is_null() {
            credit(old, l.size());
        }
        tagged(p, Layout::from_size_align_unchecked(new_size, l.align()))
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn cpu_time() -> Duration {
    // SAFETY: getrusage fills the struct it is given.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

fn arg(args: &[String], name: &str) -> Option<String> {
    let i = args.iter().position(|a| a == name)?;
    args.get(i + 1).cloned()
}

fn mib(b: usize) -> String {
    format!("{:.1}", b as f64 / (1024.0 * 1024.0))
}

fn kib(b: usize) -> String {
    format!("{:.0}", b as f64 / 1024.0)
}

struct Row {
    n: usize,
    links: usize,
    sessions: usize,
    wall: Duration,
    cpu: Duration,
    messages: usize,
    bytes: usize,
    router_live: usize,
    router_max: usize,
    router_peak: usize,
    rr_live: [usize; 2],
    rr_peak: [usize; 2],
    total_peak: usize,
    check: Duration,
    ties: usize,
    choices: usize,
}

struct Run {
    prefixes: usize,
    chunk: usize,
    seed: u64,
    add_path: bool,
    check: bool,
}

fn run(n: usize, o: &Run, last: bool) -> Row {
    for s in 0..=SLOTS {
        PEAK[s].store(LIVE[s].load(Relaxed), Relaxed);
    }
    TOTAL_PEAK.store(TOTAL_LIVE.load(Relaxed), Relaxed);
    let base = TOTAL_LIVE.load(Relaxed);
    let mut s = scale::build(n, o.prefixes, o.seed, o.add_path);
    s.f.chunk = o.chunk;
    let (wall0, cpu0) = (Instant::now(), cpu_time());
    s.f.converge_all();
    let (wall, cpu) = (wall0.elapsed(), cpu_time() - cpu0);
    assert_eq!(s.f.mh_up.len(), 2 * 2 * n, "every multihop session up");
    let live = |i: usize| LIVE[i.min(SLOTS)].load(Relaxed);
    let peak = |i: usize| PEAK[i.min(SLOTS)].load(Relaxed);
    let router_live = (0..n).map(live).sum::<usize>() / n;
    let router_max = (0..n).map(live).max().unwrap();
    let router_peak = (0..n).map(peak).sum::<usize>() / n;
    let rr_live = s.reflectors.map(live);
    let rr_peak = s.reflectors.map(peak);
    let total_peak = TOTAL_PEAK.load(Relaxed) - base;
    let sets = (0..n)
        .map(|i| s.f.nodes[i].rib.attribute_sets())
        .sum::<usize>()
        / n;
    let routes = (0..n).map(|i| s.f.nodes[i].rib.len()).sum::<usize>() / n;
    eprintln!("N = {n}: per router {routes} prefixes, {sets} attribute sets held");
    let t = Instant::now();
    let checked = if o.check {
        scale::check(&s)
    } else {
        scale::Checked::default()
    };
    let (messages, bytes, links) = (s.f.messages, s.f.bytes, s.links);
    if last {
        // Freeing millions of small allocations takes longer than the run: the process ends instead.
        std::mem::forget(s);
    }
    Row {
        n,
        links,
        sessions: links + 2 * n,
        wall,
        cpu,
        messages,
        bytes,
        router_live,
        router_max,
        router_peak,
        rr_live,
        rr_peak,
        total_peak,
        check: t.elapsed(),
        ties: checked.ties,
        choices: checked.choices,
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let sizes: Vec<usize> = arg(&args, "--sizes")
        .unwrap_or_else(|| "100,300,1000".into())
        .split(',')
        .map(|s| s.trim().parse().expect("--sizes N,N,..."))
        .collect();
    let o = Run {
        prefixes: arg(&args, "--prefixes").map_or(1000, |s| s.parse().unwrap()),
        chunk: arg(&args, "--chunk").map_or(65536, |s| s.parse().unwrap()),
        seed: arg(&args, "--seed").map_or(1, |s| s.parse().unwrap()),
        add_path: !args.iter().any(|a| a == "--no-add-path"),
        check: !args.iter().any(|a| a == "--no-check"),
    };
    println!(
        "fabric_scale: ring + chords, 2 loopbacks per router, 2 reflectors, {} anycast overlay \
         prefixes (2-3 origins), ADD-PATH {}, pull {} B per peer per visit, seed {}",
        o.prefixes,
        if o.add_path { "on" } else { "off" },
        o.chunk,
        o.seed
    );
    let mut rows = Vec::new();
    let count = sizes.len();
    for (k, n) in sizes.into_iter().enumerate() {
        let r = run(n, &o, k + 1 == count);
        eprintln!(
            "N = {n}: converged in {:.2?}, checked {} choices against Dijkstra in {:.2?} ({} ties)",
            r.wall, r.choices, r.check, r.ties
        );
        rows.push(r);
    }
    println!();
    println!(
        "| routers | links | sessions | wall | CPU | messages | MiB sent | KiB/router live (max) | KiB/router peak | reflector MiB live | reflector MiB peak | total peak MiB |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {} | {:.2} s | {:.2} s | {} | {} | {} ({}) | {} | {} / {} | {} / {} | {} |",
            r.n,
            r.links,
            r.sessions,
            r.wall.as_secs_f64(),
            r.cpu.as_secs_f64(),
            r.messages,
            mib(r.bytes),
            kib(r.router_live),
            kib(r.router_max),
            kib(r.router_peak),
            mib(r.rr_live[0]),
            mib(r.rr_live[1]),
            mib(r.rr_peak[0]),
            mib(r.rr_peak[1]),
            mib(r.total_peak),
        );
    }
}
