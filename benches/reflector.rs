//! A route reflector with many clients: one daemon under test (kittbgpd, then
//! BIRD 2 with an equivalent config), K clients simulated here.
//!
//! In a network namespace of its own, the reflector listens on `fd00::1`
//! (pinned to CPU 1); K lightweight BGP speakers (tokio tasks on CPU 0, one
//! TCP session each from `fd00:1::N`, IPv4 + IPv6 unicast, RFC 8950 extended
//! next hop) establish, then on a trigger each announces its two loopbacks
//! (`10.255.x.y/32`, `fd00:255::N/128`). Measured: session set-up time (first
//! connect to the last session Established), convergence (trigger to the
//! moment every client holds every other client's routes), the reflector's
//! CPU seconds for that, its RSS once idle with K sessions and its peak RSS
//! (VmHWM); churn: 10 % of the clients withdraw their loopbacks, then announce
//! them again, timed until every client saw both.
//!
//! `cargo bench --bench reflector -- [--clients 100,300,1000] [--only kittbgpd|bird] [--before BIN]`
//! Needs root (namespace). BIRD: Debian's `bird2`, skipped with a note if absent.

use bytes::{BufMut, BytesMut};
use kittbgpd::wire::{
    capability::ExtNhEntry, split_frame, AfiSafi, AsPath, Capability, Message, MpNextHop,
    Negotiated, Open, Origin, PathAttributes, UpdateBuilder, AFI_IPV6, MAX_EXTENDED_MESSAGE_LEN,
};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, watch};

mod common;
use common::{
    arg, duts, pin_self, proc_cpu_seconds, proc_status_kib, root_netns, spawn_pinned, which, Dut,
    AS, PORT,
};

const DUT: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 1);

fn client_addr(i: u32) -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 1, 0, 0, 0, 0, (i >> 16) as u16, i as u16)
}

fn loopback_v4(i: u32) -> ipnet::Ipv4Net {
    ipnet::Ipv4Net::new(
        Ipv4Addr::from(u32::from(Ipv4Addr::new(10, 255, 0, 0)) + i),
        32,
    )
    .unwrap()
}

fn loopback_v6(i: u32) -> ipnet::Ipv6Net {
    ipnet::Ipv6Net::new(
        Ipv6Addr::new(0xfd00, 0x255, 0, 0, 0, 0, (i >> 16) as u16, i as u16),
        128,
    )
    .unwrap()
}

/// Which client a received prefix belongs to, and its family (0: v4, 1: v6).
fn owner(p: ipnet::IpNet) -> Option<(u32, usize)> {
    match p {
        ipnet::IpNet::V4(p) => {
            let i = u32::from(p.addr()).checked_sub(u32::from(Ipv4Addr::new(10, 255, 0, 0)))?;
            Some((i, 0))
        }
        ipnet::IpNet::V6(p) => {
            let s = p.addr().segments();
            Some(((u32::from(s[6]) << 16) | u32::from(s[7]), 1))
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let opt = |name: &str| arg(&args, name);
    let clients: Vec<u32> = opt("--clients")
        .unwrap_or_else(|| "100,300,1000".into())
        .split(',')
        .filter_map(|s| s.parse().ok())
        .collect();
    let only = opt("--only");
    let before = opt("--before").map(PathBuf::from);
    let Some(ns) = root_netns("reflector bench") else {
        return;
    };
    let max = clients.iter().copied().max().unwrap_or(0);
    let mut batch = format!("address add {DUT}/64 dev lo\n");
    for i in 1..=max {
        batch += &format!("address add {}/64 dev lo\n", client_addr(i));
    }
    let mut ip = Command::new("ip")
        .args(["-n", &ns.name, "-6", "-batch", "-"])
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(ip.stdin.as_mut().unwrap(), batch.as_bytes()).unwrap();
    drop(ip.stdin.take());
    assert!(ip.wait().unwrap().success(), "ip -batch failed");
    ns.enter();
    pin_self(0);
    // Addresses are usable once DAD is done (it is off on lo, but be patient).
    std::thread::sleep(Duration::from_millis(500));
    let work = tempfile::tempdir().unwrap();
    let kittbgpd = PathBuf::from(env!("CARGO_BIN_EXE_kittbgpd"));
    let bird = which("bird");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();

    let duts = duts(
        before.as_deref(),
        &kittbgpd,
        bird.as_deref(),
        only.as_deref(),
    );
    let mut rows = Vec::new();
    for &k in &clients {
        for (name, dut) in &duts {
            eprintln!("K = {k}: {name}");
            let r = rt.block_on(run(k, *dut, work.path()));
            eprintln!(
                "  setup {:.0} ms, converge {:.0} ms, CPU {:.2} s, idle {:.1} MiB, peak {:.1} MiB, churn {:.0} ms",
                r.setup.as_secs_f64() * 1e3,
                r.converge.as_secs_f64() * 1e3,
                r.cpu,
                r.idle_kib as f64 / 1024.0,
                r.hwm_kib as f64 / 1024.0,
                r.churn.as_secs_f64() * 1e3
            );
            rows.push((k, *name, r));
        }
    }
    print_table(&rows);
}

fn spawn_dut(dut: Dut<'_>, k: u32, work: &Path) -> Child {
    let (bin, args): (&Path, Vec<String>) = match dut {
        Dut::Kittbgpd(bin) => {
            let cfg = work.join("kittbgpd.toml");
            let mut s = format!(
                r#"router_id = "10.0.0.1"
local_as = {AS}
control_socket = "{}"
[loopbacks]
ipv4 = ["10.255.0.0/16"]
ipv6 = ["fd00:255::/64"]
from_lo = false
[kernel]
enabled = false
[defaults]
passive = true
"#,
                work.join("kittbgpd.sock").display()
            );
            for i in 1..=k {
                s += &format!(
                    "[[neighbor]]\nname = \"c{i}\"\naddress = \"{}\"\ncost = 0\n",
                    client_addr(i)
                );
            }
            std::fs::write(&cfg, s).unwrap();
            let args = ["-c", cfg.to_str().unwrap(), "--log-level", "warn"];
            (bin, args.iter().map(|s| s.to_string()).collect())
        }
        Dut::Bird(bin) => {
            let cfg = work.join("bird.conf");
            let mut s = format!(
                "log \"{}\" all;\nrouter id 10.0.0.1;\nprotocol device {{}}\n",
                work.join("bird.log").display()
            );
            for i in 1..=k {
                s += &format!(
                    "protocol bgp c{i} {{\n  local {DUT} port {PORT} as {AS};\n  neighbor {} as {AS};\n  passive on;\n  rr client;\n  ipv4 {{ import all; export all; next hop self; extended next hop on; }};\n  ipv6 {{ import all; export all; next hop self; }};\n}}\n",
                    client_addr(i)
                );
            }
            std::fs::write(&cfg, s).unwrap();
            let sock = work.join("bird.ctl");
            let args = [
                "-f",
                "-c",
                cfg.to_str().unwrap(),
                "-s",
                sock.to_str().unwrap(),
            ];
            (bin, args.iter().map(|s| s.to_string()).collect())
        }
    };
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    spawn_pinned(bin, &args)
}

// ---- the clients

/// What the bench asks of every client.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Phase {
    Wait,
    Announce,
    /// The flapping clients withdraw.
    Withdraw,
    /// They announce again.
    Reannounce,
}

fn open(i: u32) -> Open {
    let caps = vec![
        Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
        Capability::Multiprotocol(AfiSafi::IPV6_UNICAST),
        Capability::ExtendedNextHop(vec![ExtNhEntry {
            nlri: AfiSafi::IPV4_UNICAST,
            nexthop_afi: AFI_IPV6,
        }]),
        Capability::FourOctetAs(AS),
    ];
    Open::new(AS, 240, Ipv4Addr::from(0x0a01_0000 + i), caps)
}

fn announcement(i: u32, neg: &Negotiated) -> BytesMut {
    let b = UpdateBuilder::new(neg);
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        local_pref: Some(100),
        ..Default::default()
    };
    let nh = MpNextHop::V6 {
        global: client_addr(i),
        link_local: None,
    };
    let mut out = BytesMut::new();
    b.announce_v4(&attrs, nh, [loopback_v4(i)], &mut out)
        .unwrap();
    b.announce_v6(&attrs, nh, [loopback_v6(i)], &mut out)
        .unwrap();
    out
}

fn withdrawal(i: u32, neg: &Negotiated) -> BytesMut {
    let b = UpdateBuilder::new(neg);
    let mut out = BytesMut::new();
    b.withdraw_v4([loopback_v4(i)], &mut out).unwrap();
    b.withdraw_v6([loopback_v6(i)], &mut out).unwrap();
    out
}

/// One client: establish, report; then follow the phases, reporting each
/// time it holds what the phase should leave it with.
struct Client {
    i: u32,
    k: u32,
    flapper: bool,
}

/// Client `i` reached `phase` (established for `Wait`).
type Report = (u32, Phase);

impl Client {
    /// Connects (again, until the reflector takes the session) and
    /// exchanges OPEN and KEEPALIVE.
    async fn establish(
        &self,
    ) -> (
        tokio::net::tcp::OwnedReadHalf,
        tokio::net::tcp::OwnedWriteHalf,
        BytesMut,
        Negotiated,
    ) {
        'retry: loop {
            let s = tokio::net::TcpSocket::new_v6().unwrap();
            s.bind(SocketAddr::from((client_addr(self.i), 0))).unwrap();
            let raw = socket2::SockRef::from(&s);
            let _ = raw.set_unicast_hops_v6(255);
            let connect = s.connect(SocketAddr::from((DUT, PORT)));
            let Ok(Ok(sock)) = tokio::time::timeout(Duration::from_secs(2), connect).await else {
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            };
            sock.set_nodelay(true).unwrap();
            let (mut rd, mut wr) = sock.into_split();
            let ours = open(self.i);
            let open_bytes = Message::Open(ours.clone())
                .to_bytes(&Negotiated::default())
                .unwrap();
            if wr.write_all(&open_bytes).await.is_err() {
                continue;
            }
            let mut buf = BytesMut::with_capacity(16 * 1024);
            let mut neg = Negotiated::default();
            loop {
                while let Ok(Some(frame)) = split_frame(&mut buf, MAX_EXTENDED_MESSAGE_LEN) {
                    match Message::decode(frame, &neg) {
                        Ok(Message::Open(theirs)) => {
                            neg = Negotiated::from_opens(&ours, &theirs);
                            let k = Message::Keepalive.to_bytes(&neg).unwrap();
                            if wr.write_all(&k).await.is_err() {
                                continue 'retry;
                            }
                        }
                        Ok(Message::Keepalive) => return (rd, wr, buf, neg),
                        _ => continue 'retry,
                    }
                }
                let read = tokio::time::timeout(Duration::from_secs(5), rd.read_buf(&mut buf));
                if !matches!(read.await, Ok(Ok(n)) if n > 0) {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue 'retry;
                }
            }
        }
    }

    async fn run(self, mut phase: watch::Receiver<Phase>, done: mpsc::UnboundedSender<Report>) {
        let (mut rd, mut wr, mut buf, neg) = self.establish().await;
        let _ = done.send((self.i, Phase::Wait));
        // Per other client: holds its v4 / v6 loopback.
        let mut held = vec![[false; 2]; self.k as usize + 1];
        let mut count = 0usize;
        let all = 2 * (self.k as usize - 1);
        let flappers = (1..=self.k).filter(|j| j % 10 == 0 && *j != self.i).count();
        let mut current = Phase::Wait;
        let mut reported = Phase::Wait;
        loop {
            // What this client should hold now, and whether it reported it.
            let target = match current {
                Phase::Withdraw => Some(all - 2 * flappers),
                Phase::Announce | Phase::Reannounce => Some(all),
                Phase::Wait => None,
            };
            if target == Some(count) && reported != current {
                reported = current;
                let _ = done.send((self.i, current));
            }
            tokio::select! {
                r = rd.read_buf(&mut buf) => {
                    if r.unwrap_or(0) == 0 {
                        return;
                    }
                    while let Ok(Some(frame)) = split_frame(&mut buf, MAX_EXTENDED_MESSAGE_LEN) {
                        match Message::decode(frame, &neg) {
                            Ok(Message::Update(u)) => {
                                for p in u.withdrawn_all() {
                                    if let Some((j, f)) = owner(p) {
                                        if let Some(h) = held.get_mut(j as usize) {
                                            if std::mem::take(&mut h[f]) {
                                                count -= 1;
                                            }
                                        }
                                    }
                                }
                                for p in u.announced() {
                                    if let Some((j, f)) = owner(p) {
                                        if let Some(h) = held.get_mut(j as usize) {
                                            if !std::mem::replace(&mut h[f], true) {
                                                count += 1;
                                            }
                                        }
                                    }
                                }
                            }
                            Ok(Message::Notification(n)) => panic!("client {}: {n}", self.i),
                            _ => {}
                        }
                    }
                    if buf.capacity() - buf.len() < 4096 {
                        buf.reserve(16 * 1024);
                    }
                }
                r = phase.changed() => {
                    if r.is_err() {
                        return;
                    }
                    current = *phase.borrow_and_update();
                    let msg = match current {
                        Phase::Announce => Some(announcement(self.i, &neg)),
                        Phase::Withdraw if self.flapper => Some(withdrawal(self.i, &neg)),
                        Phase::Reannounce if self.flapper => Some(announcement(self.i, &neg)),
                        _ => None,
                    };
                    if let Some(m) = msg {
                        wr.write_all(&m).await.unwrap();
                    }
                    // Keep the session alive for a long run.
                    let mut k = BytesMut::new();
                    k.put_slice(&Message::Keepalive.to_bytes(&neg).unwrap());
                    wr.write_all(&k).await.unwrap();
                }
            }
        }
    }
}

// ---- one run

struct RunResult {
    setup: Duration,
    converge: Duration,
    cpu: f64,
    idle_kib: u64,
    hwm_kib: u64,
    churn: Duration,
}

/// Waits until all `k` clients reported `phase` (gives up after 120 s or
/// when the daemon `pid` is gone).
async fn wait_all(
    rx: &mut mpsc::UnboundedReceiver<Report>,
    k: u32,
    phase: Phase,
    pid: u32,
) -> Instant {
    let mut n = 0;
    let start = Instant::now();
    while n < k {
        match tokio::time::timeout(Duration::from_secs(1), rx.recv()).await {
            Ok(Some((_, p))) if p == phase => n += 1,
            Ok(Some((i, p))) => panic!("client {i} reported {p:?} while waiting for {phase:?}"),
            Ok(None) => panic!("clients gone"),
            Err(_) => {
                let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| !s.contains(") Z"));
                if !alive || start.elapsed() > Duration::from_secs(120) {
                    // SAFETY: our own child.
                    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
                    panic!("{phase:?}: {n} of {k} clients (daemon alive: {alive})");
                }
            }
        }
    }
    Instant::now()
}

async fn run(k: u32, dut: Dut<'_>, work: &Path) -> RunResult {
    let mut child = spawn_dut(dut, k, work);
    let pid = child.id();
    // Give the daemon time to read its config, start every session and listen.
    tokio::time::sleep(Duration::from_millis(1000 + 2 * u64::from(k))).await;
    let (phase_tx, phase_rx) = watch::channel(Phase::Wait);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let t_setup = Instant::now();
    let tasks: Vec<_> = (1..=k)
        .map(|i| {
            let c = Client {
                i,
                k,
                flapper: i % 10 == 0,
            };
            tokio::spawn(c.run(phase_rx.clone(), done_tx.clone()))
        })
        .collect();
    let up = wait_all(&mut done_rx, k, Phase::Wait, pid).await;
    let setup = up - t_setup;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let idle_kib = proc_status_kib(pid, "VmRSS:");
    let cpu0 = proc_cpu_seconds(pid);
    let t0 = Instant::now();
    phase_tx.send(Phase::Announce).unwrap();
    let t1 = wait_all(&mut done_rx, k, Phase::Announce, pid).await;
    let cpu = proc_cpu_seconds(pid) - cpu0;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c0 = Instant::now();
    phase_tx.send(Phase::Withdraw).unwrap();
    wait_all(&mut done_rx, k, Phase::Withdraw, pid).await;
    phase_tx.send(Phase::Reannounce).unwrap();
    let c1 = wait_all(&mut done_rx, k, Phase::Reannounce, pid).await;
    let hwm_kib = proc_status_kib(pid, "VmHWM:");
    // SAFETY: our own child.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let _ = child.wait();
    drop(phase_tx);
    for t in tasks {
        t.abort();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    RunResult {
        setup,
        converge: t1 - t0,
        cpu,
        idle_kib,
        hwm_kib,
        churn: c1 - c0,
    }
}

// ---- the table

fn print_table(rows: &[(u32, &'static str, RunResult)]) {
    println!();
    println!("route reflector, K clients (2 loopbacks each, over IPv6 loopback sessions); DUT pinned to CPU 1, clients on CPU 0");
    println!(
        "{:>6}  {:<9} {:>9} {:>11} {:>7} {:>10} {:>10} {:>9}",
        "K", "DUT", "setup ms", "converge ms", "CPU s", "idle MiB", "peak MiB", "churn ms"
    );
    let mib = |k: u64| k as f64 / 1024.0;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    for (k, name, r) in rows {
        println!(
            "{:>6}  {:<9} {:>9.0} {:>11.0} {:>7.2} {:>10.1} {:>10.1} {:>9.0}",
            k,
            name,
            ms(r.setup),
            ms(r.converge),
            r.cpu,
            mib(r.idle_kib),
            mib(r.hwm_kib),
            ms(r.churn)
        );
        if *name != "bird" {
            continue;
        }
        let b = r;
        for (k2, name2, r) in rows {
            if k2 != k || *name2 == "bird" {
                continue;
            }
            println!(
                "{:>6}  {:<9} {:>9.2} {:>11.2} {:>7.2} {:>10.2} {:>10.2} {:>9.2}",
                k,
                format!("{name2}/b"),
                ms(r.setup) / ms(b.setup),
                ms(r.converge) / ms(b.converge),
                r.cpu / b.cpu.max(1e-9),
                mib(r.idle_kib) / mib(b.idle_kib).max(1e-9),
                mib(r.hwm_kib) / mib(b.hwm_kib).max(1e-9),
                ms(r.churn) / ms(b.churn)
            );
        }
    }
}
