//! Shared by the daemon tests: the real daemon on loopback TCP with a
//! temporary configuration, a scripted peer that speaks BGP over a socket, and
//! the control socket. A read that times out fails the test: only EOF or a
//! reset counts as the daemon closing the connection.

#![allow(dead_code)] // each test binary uses its own part

use bytes::BytesMut;
use kittbgpd::ctl::{self, Request};
use kittbgpd::wire::{
    split_frame, AfiSafi, Capability, Message, Negotiated, Notification, Open,
    MAX_EXTENDED_MESSAGE_LEN,
};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const AS: u32 = 65000;
/// How long a read may wait for the daemon before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub struct Daemon {
    pub child: Child,
    pub port: u16,
    pub socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Daemon {
    /// `kittbgpd ARGS -s SOCKET` (the CLI against this daemon): exit success, stdout, stderr.
    pub fn cli(&self, args: &[&str]) -> (bool, String, String) {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_kittbgpd"))
            .args(args)
            .arg("-s")
            .arg(&self.socket)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into(),
            String::from_utf8_lossy(&out.stderr).into(),
        )
    }

    /// One request on the control socket (`kittbgpd show … --json`).
    pub fn show(&self, request: &Request) -> serde_json::Value {
        ctl::query(&self.socket, request).expect("control socket answers")
    }

    /// `show routes --json`, with `all` candidates and/or `filtered` routes.
    pub fn routes(&self, all: bool, filtered: bool) -> Vec<serde_json::Value> {
        let v = self.show(&Request::Routes {
            all,
            filtered,
            view: None,
        });
        v.as_array()
            .or_else(|| v.get("routes").and_then(|r| r.as_array()))
            .cloned()
            .unwrap_or_else(|| panic!("routes response: {v}"))
    }

    /// `show neighbors --json`: the one test neighbor.
    pub fn neighbor(&self) -> serde_json::Value {
        let v = self.show(&Request::Neighbors);
        let list = v
            .as_array()
            .or_else(|| v.get("neighbors").and_then(|r| r.as_array()))
            .cloned()
            .unwrap_or_else(|| panic!("neighbors response: {v}"));
        list.into_iter().next().expect("one neighbor")
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn start_daemon() -> Daemon {
    start_daemon_with("")
}

/// The daemon with one passive neighbor at 127.0.0.1 (`neighbor_extra` is
/// appended to its table); hold time 9 s, idle hold 1 s after an error.
pub fn start_daemon_with(neighbor_extra: &str) -> Daemon {
    start_daemon_opts("", neighbor_extra, &[])
}

/// As [`start_daemon_with`], with top-level keys `top` and environment `envs`.
pub fn start_daemon_opts(top: &str, neighbor_extra: &str, envs: &[(&str, &str)]) -> Daemon {
    let neighbors = format!(
        "[[neighbor]]\nname = \"test-peer\"\naddress = \"127.0.0.1\"\npassive = true\n{neighbor_extra}\n"
    );
    start_daemon_config(top, "", &neighbors, envs)
}

/// The daemon with top-level keys `top`, `[loopbacks]` ranges 10.0.0.0/8 and
/// fd00::/16 plus the keys `loopbacks`, and the `neighbors` tables. Kernel
/// routes are off unless `top` has a `[kernel]` table: a test run as root
/// must not leave routes in the host's table.
pub fn start_daemon_config(
    top: &str,
    loopbacks: &str,
    neighbors: &str,
    envs: &[(&str, &str)],
) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let socket = dir.path().join("ctl.sock");
    let loopbacks = if loopbacks.is_empty() {
        "ipv4 = [\"10.0.0.0/8\"]\nipv6 = [\"fd00::/16\"]\noriginate = [\"10.0.0.1/32\"]"
    } else {
        loopbacks
    };
    let kernel = if top.contains("[kernel]") {
        ""
    } else {
        "[kernel]\nenabled = false"
    };
    let config = format!(
        r#"
router_id = "10.0.0.1"
local_as = {AS}
listen_port = {port}
control_socket = "{sock}"
{top}
{kernel}

[loopbacks]
{loopbacks}
from_lo = false

[defaults]
hold_time = 9
error_wait_min = 1
error_wait_max = 1

{neighbors}
"#,
        sock = socket.display()
    );
    let path = dir.path().join("kittbgpd.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kittbgpd"))
        .arg("-c")
        .arg(&path)
        .arg("--log-level")
        .arg("debug")
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while try_connect(port, 255).is_err() {
        assert!(Instant::now() < deadline, "daemon did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    // That probe connection was from the neighbor's address: let the daemon settle.
    std::thread::sleep(Duration::from_millis(1200));
    Daemon {
        child,
        port,
        socket,
        _dir: dir,
    }
}

/// Connect from 127.0.0.1 with this TTL, giving up after 2 s.
pub fn try_connect(port: u16, ttl: u32) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_ttl(ttl)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    sock.connect_timeout(&addr.into(), Duration::from_secs(2))?;
    Ok(sock.into())
}

/// Connect from `from` (bound first) to `to`, giving up after 2 s.
pub fn connect_from(
    from: std::net::IpAddr,
    to: std::net::SocketAddr,
) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(
        socket2::Domain::for_address(to),
        socket2::Type::STREAM,
        None,
    )?;
    sock.bind(&std::net::SocketAddr::new(from, 0).into())?;
    sock.connect_timeout(&to.into(), Duration::from_secs(2))?;
    Ok(sock.into())
}

/// One read: `Some(n)` bytes, `None` when the daemon closed the connection
/// (EOF or reset). Panics when nothing came within the read timeout: a hung
/// daemon must fail the test, not pass it as "closed".
pub fn read_or_closed(stream: &mut TcpStream, buf: &mut [u8]) -> Option<usize> {
    match stream.read(buf) {
        Ok(0) => None,
        Ok(n) => Some(n),
        Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => None,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("timed out waiting for the daemon (neither data nor a close)")
        }
        Err(e) => panic!("read failed: {e}"),
    }
}

/// The default capabilities of the scripted peer.
pub fn default_caps(asn: u32) -> Vec<Capability> {
    vec![
        Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
        Capability::RouteRefresh,
        Capability::FourOctetAs(asn),
    ]
}

pub struct Peer {
    pub stream: TcpStream,
    buf: BytesMut,
    pub neg: Negotiated,
    /// The daemon's OPEN when [`Peer::ready`] already read it.
    their_open: Option<Open>,
}

impl Peer {
    pub fn connect(port: u16) -> Peer {
        Peer::connect_ttl(port, 64)
    }

    pub fn connect_ttl(port: u16, ttl: u32) -> Peer {
        Peer::from_stream(try_connect(port, ttl).unwrap())
    }

    /// A connection made elsewhere (accepted from the daemon, or bound to an address).
    pub fn from_stream(stream: TcpStream) -> Peer {
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        Peer {
            stream,
            buf: BytesMut::new(),
            neg: Negotiated::default(),
            their_open: None,
        }
    }

    /// A connection the daemon took: its OPEN is in. Retries while the
    /// daemon is still closing an earlier connection (it closes new ones then).
    pub fn ready(port: u16) -> Peer {
        Peer::ready_ttl(port, 64)
    }

    pub fn ready_ttl(port: u16, ttl: u32) -> Peer {
        let deadline = Instant::now() + READ_TIMEOUT;
        loop {
            let mut p = Peer::connect_ttl(port, ttl);
            match p.recv() {
                Some(Message::Open(o)) => {
                    p.their_open = Some(o);
                    return p;
                }
                other => {
                    assert!(
                        Instant::now() < deadline,
                        "the daemon takes no connection: {other:?}"
                    );
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }

    pub fn send(&mut self, msg: &Message) {
        let bytes = msg.to_bytes(&self.neg).unwrap();
        self.stream.write_all(&bytes).unwrap();
    }

    pub fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Next message, or None when the daemon closed the connection (EOF or
    /// reset). A read timeout panics.
    pub fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(frame) = split_frame(&mut self.buf, MAX_EXTENDED_MESSAGE_LEN).unwrap() {
                return Some(Message::decode(frame, &self.neg).unwrap());
            }
            let mut chunk = [0u8; 4096];
            let n = read_or_closed(&mut self.stream, &mut chunk)?;
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Skips other messages up to a NOTIFICATION; panics if the connection closes first.
    pub fn recv_notification(&mut self) -> Notification {
        loop {
            match self.recv() {
                Some(Message::Notification(n)) => return n,
                Some(_) => continue,
                None => panic!("connection closed without a NOTIFICATION"),
            }
        }
    }

    /// After a NOTIFICATION: the daemon closes the connection (anything else
    /// but KEEPALIVEs/UPDATEs queued before fails).
    pub fn expect_closed(&mut self) {
        while let Some(m) = self.recv() {
            assert!(
                matches!(m, Message::Keepalive | Message::Update(_)),
                "expected a close, got {m:?}"
            );
        }
    }

    pub fn open(&mut self, asn: u32, id: &str) {
        self.open_with(asn, id, default_caps(asn));
    }

    pub fn open_with(&mut self, asn: u32, id: &str, caps: Vec<Capability>) {
        self.send_open(Open::new(asn, 9, id.parse().unwrap(), caps));
    }

    /// Sends `ours`; reads the daemon's OPEN (unless already read) and
    /// negotiates as the daemon does.
    pub fn send_open(&mut self, ours: Open) {
        self.send(&Message::Open(ours.clone()));
        let theirs = match self.their_open.take() {
            Some(o) => Some(o),
            None => match self.recv() {
                Some(Message::Open(o)) => Some(o),
                _ => None,
            },
        };
        if let Some(theirs) = theirs {
            self.neg = Negotiated::from_opens(&ours, &theirs);
        }
    }

    /// OPEN, KEEPALIVE both ways: Established.
    pub fn establish(&mut self) {
        self.establish_with(default_caps(AS));
    }

    pub fn establish_with(&mut self, caps: Vec<Capability>) {
        self.open_with(AS, "10.0.0.2", caps);
        assert!(
            matches!(self.recv(), Some(Message::Keepalive)),
            "KEEPALIVE after OPEN"
        );
        self.send(&Message::Keepalive);
    }
}

/// A message header of type `t` announcing `19 + body_len` octets.
pub fn header(body_len: usize, t: u8) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body_len) as u16).to_be_bytes());
    m.push(t);
    m
}

pub fn update_header(body_len: usize) -> Vec<u8> {
    header(body_len, 2)
}

/// A whole UPDATE message from its body.
pub fn raw_update(body: &[u8]) -> Vec<u8> {
    let mut m = update_header(body.len());
    m.extend_from_slice(body);
    m
}

/// An UPDATE with no withdrawals, these path attributes and this NLRI.
pub fn announce_raw(attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut body = vec![0, 0, 0, attrs.len() as u8];
    body.extend_from_slice(attrs);
    body.extend_from_slice(nlri);
    raw_update(&body)
}

/// Poll `f` until it holds (at most READ_TIMEOUT).
pub fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + READ_TIMEOUT;
    while !f() {
        assert!(Instant::now() < deadline, "timed out: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// An iBGP UPDATE announcing IPv4 `prefixes` (ORIGIN IGP, empty AS_PATH,
/// NEXT_HOP, LOCAL_PREF 100).
pub fn ipv4_announce(prefixes: &[ipnet::Ipv4Net], next_hop: std::net::Ipv4Addr) -> Vec<u8> {
    let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0, 0x40, 3, 4];
    attrs.extend_from_slice(&next_hop.octets());
    attrs.extend_from_slice(&[0x40, 5, 4, 0, 0, 0, 100]);
    let mut nlri = Vec::new();
    for p in prefixes {
        let len = p.prefix_len();
        nlri.push(len);
        nlri.extend_from_slice(&p.network().octets()[..len.div_ceil(8) as usize]);
    }
    announce_raw(&attrs, &nlri)
}
