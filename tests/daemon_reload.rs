//! `kittbgpd reload` against the real daemon and a scripted peer: changes are
//! applied without touching the session they do not concern, an invalid file
//! changes nothing, SIGHUP reloads instead of killing, a removed neighbor gets
//! Cease / Peer De-configured (RFC 4486 §4).

mod common;

use common::*;
use kittbgpd::ctl::Request;
use std::process::Command;

fn config_path(d: &Daemon) -> std::path::PathBuf {
    d.socket.parent().unwrap().join("kittbgpd.toml")
}

/// `kittbgpd ARGS -s SOCKET`: exit success, stdout, stderr.
fn run(d: &Daemon, args: &[&str]) -> (bool, String, String) {
    d.cli(args)
}

fn names(d: &Daemon) -> Vec<String> {
    let v = d.show(&Request::Neighbors);
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn reload_applies_the_difference_and_refuses_a_bad_file() {
    let d = start_daemon();
    let mut p = Peer::ready(d.port);
    p.establish();
    let since = d.neighbor()["since"].clone();
    let path = config_path(&d);
    let original = std::fs::read_to_string(&path).unwrap();

    // A new neighbor and a cost: dry run first, nothing applied.
    let changed = format!(
        "{original}cost = 77\nimport_limit = 5\n\n[[neighbor]]\nname = \"other\"\naddress = \"127.0.0.2\"\npassive = true\n"
    );
    std::fs::write(&path, &changed).unwrap();
    let (ok, out, err) = run(&d, &["reload", "--dry-run"]);
    assert!(ok, "{err}");
    assert!(out.contains("none applied (dry run)"), "{out}");
    assert!(
        out.contains("[live] neighbor test-peer: cost - -> 77"),
        "{out}"
    );
    assert!(
        out.contains("[add] neighbor other: new neighbor 127.0.0.2"),
        "{out}"
    );
    assert_eq!(names(&d), ["test-peer"]);

    let (ok, out, err) = run(&d, &["reload"]);
    assert!(ok, "{err}");
    assert!(!out.contains("dry run"), "{out}");
    assert_eq!(names(&d), ["test-peer", "other"]);
    let n = d.neighbor();
    assert_eq!(n["state"], "Established", "{n}");
    assert_eq!(n["since"], since, "the session was not touched");
    assert_eq!(n["routes"]["limit"], 5, "{n}");
    let cfg = d.show(&Request::Config);
    assert_eq!(cfg["neighbor"][0]["cost"], 77, "{cfg}");

    // An invalid file: check's errors, nothing changed.
    std::fs::write(&path, format!("{changed}bogus_key = 1\n")).unwrap();
    let (ok, _, err) = run(&d, &["reload"]);
    let check = Command::new(env!("CARGO_BIN_EXE_kittbgpd"))
        .arg("check")
        .arg("-c")
        .arg(&path)
        .output()
        .unwrap();
    let check_err = String::from_utf8_lossy(&check.stderr);
    let first = check_err.lines().next().unwrap();
    assert!(!ok, "refused");
    assert!(err.contains(first), "reload: {err}\ncheck: {check_err}");
    assert!(err.contains("running configuration unchanged"), "{err}");
    assert_eq!(d.show(&Request::Config), cfg);

    // SIGHUP reloads (the neighbor is removed) and the daemon lives on.
    std::fs::write(&path, &original).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &d.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    while names(&d) != ["test-peer"] {
        assert!(std::time::Instant::now() < deadline, "{:?}", names(&d));
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert_eq!(d.neighbor()["since"], since, "still not touched");

    // Removing the established neighbor: Cease / Peer De-configured.
    let without = original.split("[[neighbor]]").next().unwrap().to_string()
        + "[[neighbor]]\nname = \"else\"\naddress = \"127.0.0.3\"\npassive = true\n";
    std::fs::write(&path, without).unwrap();
    let (ok, out, err) = run(&d, &["reload"]);
    assert!(ok, "{err}");
    assert!(out.contains("[remove] neighbor test-peer"), "{out}");
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (6, 3), "{n}");
    assert_eq!(names(&d), ["else"]);
}

/// A change of a session parameter restarts that session only, with Cease /
/// Other Configuration Change; a hold time change waits for the next session.
#[test]
fn a_session_change_restarts_only_that_session() {
    let d = start_daemon();
    let mut p = Peer::ready(d.port);
    p.establish();
    let path = config_path(&d);
    let original = std::fs::read_to_string(&path).unwrap();
    std::fs::write(&path, format!("{original}hold_time = 30\n")).unwrap();
    let (ok, out, err) = run(&d, &["reload"]);
    assert!(
        ok && out.contains("[live] neighbor test-peer: hold_time"),
        "{out}{err}"
    );
    assert_eq!(d.neighbor()["state"], "Established");
    std::fs::write(
        &path,
        format!("{original}hold_time = 30\nrr_client = false\n"),
    )
    .unwrap();
    let (ok, out, err) = run(&d, &["reload"]);
    assert!(
        ok && out.contains("[restart] neighbor test-peer: rr_client true -> false"),
        "{out}{err}"
    );
    let n = p.recv_notification();
    assert_eq!((n.code, n.subcode), (6, 6), "{n}");
    // The new session offers the reloaded hold time.
    let deadline = std::time::Instant::now() + READ_TIMEOUT;
    loop {
        let mut p = Peer::connect(d.port);
        if let Some(kittbgpd::wire::Message::Open(o)) = p.recv() {
            assert_eq!(o.hold_time, 30);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no OPEN from the new session"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}
