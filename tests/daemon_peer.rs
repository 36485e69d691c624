//! The real daemon on loopback TCP, against a scripted peer: session set-up,
//! the originated loopback arriving, the RFC-mandated NOTIFICATION for
//! malformed input, refusal of strangers, and a Cease on SIGTERM.

use bytes::BytesMut;
use kittbgpd::wire::{
    split_frame, AfiSafi, Capability, Message, Negotiated, Notification, Open, MAX_MESSAGE_LEN,
};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const AS: u32 = 65000;

struct Daemon {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_daemon() -> Daemon {
    start_daemon_with("")
}

fn start_daemon_with(neighbor_extra: &str) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        r#"
router_id = "10.0.0.1"
local_as = {AS}
listen_port = {port}
control_socket = "{sock}"

[loopbacks]
ipv4 = ["10.0.0.0/8"]
originate = ["10.0.0.1/32"]
from_lo = false

[defaults]
hold_time = 9
error_wait_min = 1
error_wait_max = 1

[[neighbor]]
name = "test-peer"
address = "127.0.0.1"
passive = true
{neighbor_extra}
"#,
        sock = dir.path().join("ctl.sock").display()
    );
    let path = dir.path().join("kittbgpd.toml");
    std::fs::write(&path, config).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_kittbgpd"))
        .arg("-c")
        .arg(&path)
        .arg("--log-level")
        .arg("debug")
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
        _dir: dir,
    }
}

/// Connect from 127.0.0.1 with this TTL, giving up after 2 s.
fn try_connect(port: u16, ttl: u32) -> std::io::Result<TcpStream> {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)?;
    sock.set_ttl(ttl)?;
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    sock.connect_timeout(&addr.into(), Duration::from_secs(2))?;
    Ok(sock.into())
}

struct Peer {
    stream: TcpStream,
    buf: BytesMut,
    neg: Negotiated,
}

impl Peer {
    fn connect(port: u16) -> Peer {
        Peer::connect_ttl(port, 64)
    }

    fn connect_ttl(port: u16, ttl: u32) -> Peer {
        let stream = try_connect(port, ttl).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Peer {
            stream,
            buf: BytesMut::new(),
            neg: Negotiated::default(),
        }
    }

    fn send(&mut self, msg: &Message) {
        let bytes = msg.to_bytes(&self.neg).unwrap();
        self.stream.write_all(&bytes).unwrap();
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// Next message, or None when the daemon closed the connection.
    fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(frame) = split_frame(&mut self.buf, MAX_MESSAGE_LEN).unwrap() {
                return Some(Message::decode(frame, &self.neg).unwrap());
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk).unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn recv_notification(&mut self) -> Notification {
        loop {
            match self.recv() {
                Some(Message::Notification(n)) => return n,
                Some(_) => continue,
                None => panic!("connection closed without a NOTIFICATION"),
            }
        }
    }

    fn open(&mut self, asn: u32, id: &str) {
        let caps = vec![
            Capability::Multiprotocol(AfiSafi::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ];
        let ours = Open::new(asn, 9, id.parse().unwrap(), caps);
        self.send(&Message::Open(ours.clone()));
        if let Some(Message::Open(theirs)) = self.recv() {
            self.neg = Negotiated::from_opens(&ours, &theirs);
        }
    }

    /// OPEN, KEEPALIVE both ways: Established.
    fn establish(&mut self) {
        self.open(AS, "10.0.0.2");
        assert!(
            matches!(self.recv(), Some(Message::Keepalive)),
            "KEEPALIVE after OPEN"
        );
        self.send(&Message::Keepalive);
    }
}

fn update_header(body_len: usize) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + body_len) as u16).to_be_bytes());
    m.push(2);
    m
}

#[test]
fn daemon_speaks_bgp_and_answers_errors_with_notifications() {
    let d = start_daemon();

    // 1. Session up, our originated loopback arrives with next hop self.
    let mut p = Peer::connect(d.port);
    p.establish();
    let mut announced = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while announced.is_empty() && Instant::now() < deadline {
        if let Some(Message::Update(u)) = p.recv() {
            announced.extend(u.announced());
            if !announced.is_empty() {
                assert_eq!(
                    u.attrs.next_hop,
                    Some("127.0.0.1".parse().unwrap()),
                    "next hop self"
                );
                assert_eq!(u.attrs.local_pref, Some(100));
            }
        }
    }
    assert_eq!(
        announced,
        vec!["10.0.0.1/32".parse::<ipnet::IpNet>().unwrap()]
    );

    // 2. An attribute whose length runs past the attribute field, with no NLRI to
    //    withdraw: RFC 7606 §4 leaves only a session reset, UPDATE Message Error /
    //    Malformed Attribute List (3/1).
    let body = [0u8, 0, 0, 4, 0x40, 1, 9, 0];
    let mut m = update_header(body.len());
    m.extend_from_slice(&body);
    p.send_raw(&m);
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (3, 1), "{n}");
    assert!(p.recv().is_none(), "closed after the NOTIFICATION");

    // 3. A broken marker: Message Header Error / Connection Not Synchronized (1/1).
    std::thread::sleep(Duration::from_millis(1300)); // idle hold (error_wait 1 s)
    let mut p = Peer::connect(d.port);
    let mut bad = vec![0xff; 16];
    bad[3] = 0;
    bad.extend_from_slice(&[0, 19, 4]);
    p.send_raw(&bad);
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (1, 1), "{n}");

    // 4. A wrong AS in OPEN: OPEN Message Error / Bad Peer AS (2/2).
    std::thread::sleep(Duration::from_millis(1300));
    let mut p = Peer::connect(d.port);
    p.open(64999, "10.0.0.2");
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (2, 2), "{n}");

    // 5. A KEEPALIVE of the wrong length: Bad Message Length (1/2) with the length as data.
    std::thread::sleep(Duration::from_millis(1300));
    let mut p = Peer::connect(d.port);
    p.establish();
    let mut ka = vec![0xff; 16];
    ka.extend_from_slice(&[0, 20, 4, 0]);
    p.send_raw(&ka);
    let n = p.recv_notification();
    assert_eq!(
        (n.code, n.subcode, n.data.as_ref()),
        (1, 2, &[0u8, 20][..]),
        "{n}"
    );

    // 6. Established again, then SIGTERM: the daemon says Cease / Administrative Shutdown.
    std::thread::sleep(Duration::from_millis(1300));
    let mut p = Peer::connect(d.port);
    p.establish();
    let pid = d.child.id() as libc::pid_t;
    // SAFETY: signalling our own child process.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (6, 2), "{n}");
}

#[test]
fn strangers_are_refused() {
    let d = start_daemon();
    // 127.0.0.2 is on lo but is not a configured neighbor: accepted by TCP, closed at once, no OPEN.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(&std::net::SocketAddr::from(([127, 0, 0, 2], 0)).into())
        .unwrap();
    sock.connect(&std::net::SocketAddr::from(([127, 0, 0, 1], d.port)).into())
        .unwrap();
    let mut s: TcpStream = sock.into();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(
        s.read(&mut buf).unwrap_or(0),
        0,
        "a stranger gets nothing, not even an OPEN"
    );
}

/// RFC 5082: with ttl_security the daemon sends with TTL 255 and ignores
/// segments that arrive with less, so only a peer sending 255 gets a session.
#[test]
fn gtsm_accepts_only_ttl_255() {
    let d = start_daemon_with("ttl_security = true");
    let mut p = Peer::connect_ttl(d.port, 255);
    p.establish();
    drop(p);
    // With every neighbor under GTSM the listener itself drops the SYN sent with TTL 64.
    std::thread::sleep(Duration::from_millis(1300));
    assert!(
        try_connect(d.port, 64).is_err(),
        "a handshake with TTL 64 must not complete"
    );
}

/// A peer that restarts connects again before its Cease on the old
/// connection is processed: the new connection is held and taken as soon as
/// the old session ends, not refused (which would cost a connect-retry).
#[test]
fn reconnect_racing_the_old_sessions_cease_is_taken() {
    let d = start_daemon();
    let mut old = Peer::connect(d.port);
    old.establish();
    assert!(
        matches!(old.recv(), Some(Message::Update(_))),
        "Established"
    );
    // The new connection arrives while the old session is still Established...
    let mut new = Peer::connect(d.port);
    std::thread::sleep(Duration::from_millis(300));
    // ...then the old one says Cease / Administrative Reset and goes away.
    old.send(&Message::Notification(Notification::new(6, 4, Vec::new())));
    drop(old);
    new.establish();
    // Established: the table follows.
    let mut announced = Vec::new();
    while announced.is_empty() {
        match new.recv() {
            Some(Message::Update(u)) => announced.extend(u.announced()),
            Some(_) => {}
            None => panic!("closed"),
        }
    }
}
