//! The real daemon as systemd and Prometheus see it: READY=1 and WATCHDOG=1 on
//! NOTIFY_SOCKET (sd_notify(3)), `[metrics] listen` answering GET /metrics with
//! the session's state, and `control_group` giving the socket to a group.

mod common;

use common::*;
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixDatagram;

/// The next sd_notify datagram (the test fails if none comes within READ_TIMEOUT).
fn notification(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 512];
    let n = sock
        .recv(&mut buf)
        .expect("a notification before the read timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

fn http_get(port: u16, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out)
        .expect("whole response before the read timeout");
    out
}

#[test]
fn ready_watchdog_metrics_and_control_group() {
    let dir = tempfile::tempdir().unwrap();
    let notify_path = dir.path().join("notify.sock");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let mport = free_port();
    let d = start_daemon_opts(
        "control_group = \"root\"",
        &format!("\n[metrics]\nlisten = \"127.0.0.1:{mport}\""),
        &[
            ("NOTIFY_SOCKET", notify_path.to_str().unwrap()),
            ("WATCHDOG_USEC", "200000"),
        ],
    );
    // Ready only once the control socket exists.
    assert_eq!(notification(&notify).trim(), "READY=1");
    let meta = std::fs::metadata(&d.socket).unwrap();
    assert_eq!((meta.permissions().mode() & 0o777, meta.gid()), (0o660, 0));
    assert_eq!(notification(&notify).trim(), "WATCHDOG=1");

    let mut peer = Peer::ready(d.port);
    peer.establish();
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    let text = loop {
        let r = http_get(mport, "/metrics");
        assert!(
            std::time::Instant::now() < deadline,
            "never Established in /metrics:\n{r}"
        );
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        if r.contains("kittbgpd_session_up{neighbor=\"test-peer\"} 1") {
            break r;
        }
        // The peer task publishes Established right after its KEEPALIVE went out.
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(
        text.contains("kittbgpd_session_state{neighbor=\"test-peer\",state=\"Established\"} 1"),
        "{text}"
    );
    // curl-like clients get the classic text format, Prometheus (Accept) OpenMetrics.
    assert!(
        text.contains("# TYPE kittbgpd_updates_received_total counter"),
        "{text}"
    );
    let mut s = std::net::TcpStream::connect(("127.0.0.1", mport)).unwrap();
    s.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text; version=1.0.0\r\n\r\n"
    )
    .unwrap();
    let mut om = String::new();
    s.read_to_string(&mut om).unwrap();
    assert!(om.contains("application/openmetrics-text"), "{om}");
    assert!(om.trim_end().ends_with("# EOF"), "{om}");
    let r = http_get(mport, "/other");
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
}
