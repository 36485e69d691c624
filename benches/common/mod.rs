//! What the benches share: a minimal blocking BGP speaker, the network
//! namespace they run in, and /proc readings of the daemon under test.
#![allow(dead_code)]

use bytes::BytesMut;
use kittbgpd::wire::{
    split_frame, AfiSafi, Capability, Message, Negotiated, Open, MAX_EXTENDED_MESSAGE_LEN,
};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const AS: u32 = 65000;
pub const DUT: [u8; 4] = [127, 0, 0, 1];
pub const PORT: u16 = 1790;

/// The value after `--name` on the command line.
pub fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

pub fn negotiated() -> Negotiated {
    Negotiated {
        four_octet_as: true,
        ipv4_unicast: true,
        route_refresh: true,
        ..Default::default()
    }
}

// ---- a minimal blocking BGP speaker

pub struct Speaker {
    pub stream: TcpStream,
    pub buf: BytesMut,
    pub neg: Negotiated,
}

pub fn our_open(id: [u8; 4]) -> Open {
    let caps = vec![
        Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(AS),
    ];
    Open::new(AS, 240, Ipv4Addr::from(id), caps)
}

impl Speaker {
    pub fn connect(from: [u8; 4], to: [u8; 4], port: u16) -> std::io::Result<Speaker> {
        Speaker::connect_with(from, to, port, None)
    }

    /// `rcvbuf`: a small receive buffer, so a slow reader pushes back at once.
    pub fn connect_with(
        from: [u8; 4],
        to: [u8; 4],
        port: u16,
        rcvbuf: Option<usize>,
    ) -> std::io::Result<Speaker> {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
        if let Some(size) = rcvbuf {
            sock.set_recv_buffer_size(size)?;
        }
        sock.bind(&SocketAddr::from((from, 0)).into())?;
        sock.connect_timeout(&SocketAddr::from((to, port)).into(), Duration::from_secs(2))?;
        let stream: TcpStream = sock.into();
        stream.set_nodelay(true)?;
        Ok(Speaker {
            stream,
            buf: BytesMut::with_capacity(1 << 20),
            neg: Negotiated::default(),
        })
    }

    pub fn accept(listener: &TcpListener) -> Speaker {
        let (stream, _) = listener.accept().unwrap();
        Speaker {
            stream,
            buf: BytesMut::with_capacity(1 << 20),
            neg: Negotiated::default(),
        }
    }

    pub fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(frame) = split_frame(&mut self.buf, MAX_EXTENDED_MESSAGE_LEN).ok()? {
                return Message::decode(frame, &self.neg).ok();
            }
            if self.buf.capacity() - self.buf.len() < 65536 {
                self.buf.reserve(1 << 20);
            }
            let len = self.buf.len();
            let cap = self.buf.capacity();
            // SAFETY: read into the spare capacity, then commit only what was read.
            unsafe { self.buf.set_len(cap) };
            let n = self.stream.read(&mut self.buf[len..]).unwrap_or(0);
            unsafe { self.buf.set_len(len + n) };
            if n == 0 {
                return None;
            }
        }
    }

    /// OPEN both ways, KEEPALIVE both ways.
    pub fn establish(&mut self, id: [u8; 4]) -> bool {
        let ours = our_open(id);
        self.stream
            .write_all(
                &Message::Open(ours.clone())
                    .to_bytes(&Negotiated::default())
                    .unwrap(),
            )
            .unwrap();
        let Some(Message::Open(theirs)) = self.recv() else {
            return false;
        };
        self.neg = Negotiated::from_opens(&ours, &theirs);
        self.stream
            .write_all(&Message::Keepalive.to_bytes(&self.neg).unwrap())
            .unwrap();
        loop {
            match self.recv() {
                Some(Message::Keepalive) => return true,
                Some(Message::Notification(n)) => panic!("peer refused the session: {n}"),
                Some(_) => {}
                None => return false,
            }
        }
    }
}

/// Count distinct announced prefixes 10.0.0.0 + i, i < n, until all n are there.
pub fn connect_retry(from: [u8; 4]) -> Speaker {
    connect_retry_with(from, None)
}

pub fn connect_retry_with(from: [u8; 4], rcvbuf: Option<usize>) -> Speaker {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(s) = Speaker::connect_with(from, DUT, PORT, rcvbuf) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "daemon under test does not listen"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The daemon under test on CPU 1; feeder and sink stay on CPU 0.
pub fn pin_self(cpu: usize) {
    // SAFETY: a zeroed cpu_set_t is valid; we set one bit and apply it to this thread.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
    }
}

pub fn proc_cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: u64 = f.get(11).and_then(|s| s.parse().ok()).unwrap_or(0)
        + f.get(12).and_then(|s| s.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    ticks as f64 / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}

pub fn proc_status_kib(pid: u32, key: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

// ---- the namespace

pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn create() -> Netns {
        let name = format!("kbbench{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "ip netns add {name} failed");
        Command::new("ip")
            .args(["-n", &name, "link", "set", "lo", "up"])
            .status()
            .unwrap();
        Netns { name }
    }

    /// Move this process's main thread (and the threads it spawns later) into the namespace.
    pub fn enter(&self) {
        let f = std::fs::File::open(format!("/run/netns/{}", self.name)).unwrap();
        use std::os::fd::AsRawFd;
        // SAFETY: a valid namespace fd; CLONE_NEWNET.
        let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
        assert_eq!(rc, 0, "setns failed");
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// UPDATEs announcing `n` /32s from 10.0.0.0 up with next hop `next_hop`,
/// `per_set` routes per attribute set (MED = set number + `med_offset`);
/// returns the bytes and the number of messages.
pub fn announcements(
    n: u32,
    per_set: u32,
    med_offset: u32,
    next_hop: [u8; 4],
) -> (bytes::Bytes, usize) {
    use kittbgpd::wire::{AsPath, MpNextHop, Origin, PathAttributes, UpdateBuilder};
    let builder = UpdateBuilder::new(&negotiated());
    let mut out = BytesMut::new();
    let mut messages = 0;
    let base = u32::from(Ipv4Addr::new(10, 0, 0, 0));
    let mut i = 0;
    while i < n {
        let end = (i + per_set).min(n);
        let attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            local_pref: Some(100),
            med: Some(i / per_set + med_offset),
            ..Default::default()
        };
        let prefixes = (i..end).map(|k| ipnet::Ipv4Net::new(Ipv4Addr::from(base + k), 32).unwrap());
        messages += builder
            .announce_v4(
                &attrs,
                MpNextHop::V4(Ipv4Addr::from(next_hop)),
                prefixes,
                &mut out,
            )
            .unwrap();
        i = end;
    }
    (out.freeze(), messages)
}

// ---- the daemons under test

#[derive(Clone, Copy)]
pub enum Dut<'a> {
    Kittbgpd(&'a Path),
    Bird(&'a Path),
}

/// The daemons a run compares, named: `before` (another kittbgpd binary, if
/// given), this kittbgpd and BIRD (if installed), as `--only` allows.
pub fn duts<'a>(
    before: Option<&'a Path>,
    kittbgpd: &'a Path,
    bird: Option<&'a Path>,
    only: Option<&str>,
) -> Vec<(&'static str, Dut<'a>)> {
    let mut duts = Vec::new();
    if let Some(b) = before {
        duts.push(("before", Dut::Kittbgpd(b)));
    }
    if only.is_none_or(|o| o == "kittbgpd") {
        duts.push(("kittbgpd", Dut::Kittbgpd(kittbgpd)));
    }
    if only.is_none_or(|o| o == "bird") {
        match bird {
            Some(b) => duts.push(("bird", Dut::Bird(b))),
            None => eprintln!("bird not found: BIRD column skipped (apt-get install bird2)"),
        }
    }
    duts
}

/// The daemon under test, on CPU 1 (the bench's own threads stay on CPU 0).
pub fn spawn_pinned(bin: &Path, args: &[&str]) -> std::process::Child {
    Command::new("taskset")
        .arg("-c")
        .arg("1")
        .arg(bin)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap()
}

/// A reflector between two passive RR clients, "feeder" (127.0.0.2) and
/// "sink" (127.0.0.3), as `dut`: its config written into `work`, started on
/// CPU 1. `kernel`: routes into the kernel FIB too; `kb_defaults` more
/// `[defaults]` lines for kittbgpd; `bird_kernel` the kernel protocols for BIRD.
pub fn spawn_reflector(
    dut: &Dut<'_>,
    work: &Path,
    kernel: bool,
    kb_defaults: &str,
    bird_kernel: &str,
) -> std::process::Child {
    match dut {
        Dut::Kittbgpd(bin) => {
            let cfg = work.join("kittbgpd.toml");
            std::fs::write(
                &cfg,
                format!(
                    r#"router_id = "127.0.0.1"
local_as = {AS}
control_socket = "{}"
[loopbacks]
ipv4 = ["10.0.0.0/8"]
from_lo = false
[kernel]
enabled = {kernel}
[defaults]
passive = true
{kb_defaults}
[[neighbor]]
name = "feeder"
address = "127.0.0.2"
cost = 0
[[neighbor]]
name = "sink"
address = "127.0.0.3"
cost = 0
"#,
                    work.join("kittbgpd.sock").display()
                ),
            )
            .unwrap();
            spawn_pinned(bin, &["-c", cfg.to_str().unwrap(), "--log-level", "warn"])
        }
        Dut::Bird(bin) => {
            let cfg = work.join("bird.conf");
            let peer = |name: &str, addr: &str| {
                format!(
                    "protocol bgp {name} {{\n  local 127.0.0.1 port {PORT} as {AS};\n  neighbor {addr} as {AS};\n  passive on;\n  rr client;\n  ipv4 {{ import all; export all; next hop self; }};\n}}\n"
                )
            };
            std::fs::write(
                &cfg,
                format!(
                    "router id 127.0.0.1;\nprotocol device {{}}\n{bird_kernel}{}{}",
                    peer("feeder", "127.0.0.2"),
                    peer("sink", "127.0.0.3")
                ),
            )
            .unwrap();
            let sock = work.join("bird.ctl");
            spawn_pinned(
                bin,
                &[
                    "-f",
                    "-c",
                    cfg.to_str().unwrap(),
                    "-s",
                    sock.to_str().unwrap(),
                ],
            )
        }
    }
}

/// A network namespace of its own for bench `name` (not entered yet), or
/// `None` with a note when not root (the bench is then skipped).
pub fn root_netns(name: &str) -> Option<Netns> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("{name}: needs root (network namespace); skipped");
        return None;
    }
    Some(Netns::create())
}
