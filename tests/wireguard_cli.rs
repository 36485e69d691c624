//! `kittbgpd wg genkey|pubkey`, and the daemon's refusal to start when no
//! WireGuard backend is there (no root, no tunnel created).

use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kittbgpd() -> Command {
    Command::new(env!("CARGO_BIN_EXE_kittbgpd"))
}

#[test]
fn genkey_writes_a_private_file_and_pubkey_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    let out = kittbgpd()
        .args(["wg", "genkey", "-o"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let public = String::from_utf8(out.stdout).unwrap();
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let private = std::fs::read_to_string(&key).unwrap();
    assert_eq!(private.trim().len(), 44, "base64 of 32 bytes: {private:?}");

    let out = kittbgpd()
        .args(["wg", "pubkey"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), public);
    assert_ne!(public.trim(), private.trim());

    // A key is never overwritten.
    let out = kittbgpd()
        .args(["wg", "genkey", "-o"])
        .arg(&key)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert_eq!(std::fs::read_to_string(&key).unwrap(), private);

    std::fs::write(dir.path().join("bad"), "not a key\n").unwrap();
    let out = kittbgpd()
        .args(["wg", "pubkey"])
        .arg(dir.path().join("bad"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a WireGuard key"));
}

#[test]
fn daemon_without_a_wireguard_backend_says_why_and_exits() {
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("node.key");
    assert!(kittbgpd()
        .args(["wg", "genkey", "-o"])
        .arg(&key)
        .output()
        .unwrap()
        .status
        .success());
    let peer = dir.path().join("peer.key");
    let out = kittbgpd()
        .args(["wg", "genkey", "-o"])
        .arg(&peer)
        .output()
        .unwrap();
    let peer_public = String::from_utf8(out.stdout).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = format!(
        r#"router_id = "10.0.0.1"
local_as = 65000
listen_port = {port}
control_socket = "{sock}"
[loopbacks]
ipv4 = ["10.0.0.0/8"]
from_lo = false
[kernel]
enabled = false
[wireguard]
private_key_file = "node.key"
backend = "userspace"
[[neighbor]]
interface = "kbtestwg0"
[neighbor.wireguard]
public_key = "{pk}"
"#,
        sock = dir.path().join("ctl.sock").display(),
        pk = peer_public.trim()
    );
    let path = dir.path().join("fabric.toml");
    std::fs::write(&path, config).unwrap();
    let mut child = kittbgpd()
        .arg("-c")
        .arg(&path)
        .env(
            "WG_USERSPACE_IMPLEMENTATION",
            dir.path().join("no-such-wireguard-go"),
        )
        // The log goes to standard error.
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the daemon kept running without a WireGuard backend");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert!(!status.success(), "{status:?} {err}");
    assert!(
        err.contains("wireguard-go is not on the PATH"),
        "{status:?} {err}"
    );
}
