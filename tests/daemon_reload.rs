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

/// The "name" of each entry `request` lists.
fn names_in(d: &Daemon, request: &Request) -> Vec<String> {
    let v = d.show(request);
    v.as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn names(d: &Daemon) -> Vec<String> {
    names_in(d, &Request::Neighbors)
}

/// A daemon with its neighbor Established: the daemon, the peer, the
/// session's "since", the config file and its text. No kernel routes: a
/// route the peer announces must not land in the host's table.
fn established() -> (Daemon, Peer, serde_json::Value, std::path::PathBuf, String) {
    let d = start_daemon_opts("[kernel]\nenabled = false\n", "", &[]);
    let mut p = Peer::ready(d.port);
    p.establish();
    let since = d.neighbor()["since"].clone();
    let path = config_path(&d);
    let original = std::fs::read_to_string(&path).unwrap();
    (d, p, since, path, original)
}

#[test]
fn reload_applies_the_difference_and_refuses_a_bad_file() {
    let (d, mut p, since, path, original) = established();

    // A new neighbor and a cost: dry run first, nothing applied.
    let changed = format!(
        "{original}cost = 77\nimport_limit = 5\n\n[[neighbor]]\nname = \"other\"\naddress = \"127.0.0.2\"\npassive = true\n\n[views]\nrule_priority = \"100-199\"\n"
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
    assert!(
        out.contains("[live] [views] rule_priority 20000-20999 -> 100-199"),
        "{out}"
    );

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
    // No kernel routes: no policy rule task, the range as reloaded.
    let v = d.show(&Request::Views);
    assert_eq!(v["rule_priority"], "100-199", "{v}");
    assert!(v["rules"].is_null(), "{v}");
    let (ok, out, _) = run(&d, &["show", "views"]);
    assert!(
        ok && out.starts_with("Policy rules: none (kernel routes are off"),
        "{out}"
    );

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

fn neighbor_named(d: &Daemon, name: &str) -> serde_json::Value {
    let v = d.show(&Request::Neighbors);
    v.as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == name)
        .cloned()
        .unwrap_or_default()
}

fn link_names(d: &Daemon) -> Vec<String> {
    names_in(d, &Request::Links)
}

/// A neighbor added by reload gets what one configured at start gets: its
/// interface tracked (held down while it is missing) and, with
/// `cost = "auto"`, a prober; switching it to a static cost stops the prober
/// (the link then only answers the neighbor's probe stream).
#[test]
fn an_added_neighbor_gets_link_tracking_and_its_prober() {
    // `_p`: the peer stays connected to the end (its session must not move).
    let (d, _p, since, path, original) = established();
    let added = |cost: &str| {
        format!(
            "{original}\n[[neighbor]]\nname = \"m\"\ninterface = \"kb-none0\"\naddress = \"fe80::99\"\npassive = true\ncost = {cost}\n"
        )
    };
    std::fs::write(&path, added("\"auto\"")).unwrap();
    let (ok, out, err) = run(&d, &["reload"]);
    assert!(ok, "{out}{err}");
    wait_until("m held down: its interface is missing", || {
        neighbor_named(&d, "m")["held_down"] == serde_json::json!(["interface"])
    });
    assert_eq!(link_names(&d), ["m"], "a prober for the added link");

    // [cost] and the switch to a static cost, both live.
    std::fs::write(&path, added("40") + "\n[cost]\nfactor = 2.0\n").unwrap();
    let (ok, out, err) = run(&d, &["reload"]);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("[live] neighbor m: cost \"auto\" -> 40"),
        "{out}"
    );
    assert!(out.contains("[live] [cost] changed"), "{out}");
    assert!(!out.contains("needs daemon restart"), "{out}");
    // The measuring prober stopped; the link only answers the neighbor's stream now.
    assert_eq!(link_names(&d), ["m"], "answering the stream");
    wait_until("m only answers the stream", || {
        d.show(&Request::Links)[0]["probe"] == "answer"
    });
    let link = d.show(&Request::Links)[0].clone();
    assert!(link.get("cost").is_none(), "nothing measured: {link}");
    assert_eq!(d.show(&Request::Config)["neighbor"][1]["cost"], 40);
    assert_eq!(
        neighbor_named(&d, "m")["held_down"],
        serde_json::json!(["interface"]),
        "still missing"
    );
    let n = d.neighbor();
    assert_eq!((&n["state"], &n["since"]), (&"Established".into(), &since));
}

fn http_get(port: u16) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(READ_TIMEOUT)).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

/// BMP message type of the next message (RFC 7854 §4.1 common header).
fn bmp_next_type(s: &mut std::net::TcpStream) -> Option<u8> {
    use std::io::Read;
    let mut h = [0u8; 6];
    s.read_exact(&mut h).ok()?;
    let len = u32::from_be_bytes([h[1], h[2], h[3], h[4]]) as usize;
    let mut rest = vec![0u8; len.saturating_sub(6)];
    s.read_exact(&mut rest).ok()?;
    Some(h[5])
}

/// `[metrics]`, `[bmp]` and `[mrt] updates` are applied by restarting only
/// their task: the endpoint moves, a collector added connects and a removed
/// one gets a Termination, the update log starts; the session is untouched.
#[test]
fn metrics_bmp_and_update_log_follow_a_reload() {
    let (d, mut p, since, path, original) = established();
    let collector = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let bmp_port = collector.local_addr().unwrap().port();
    let (m1, m2) = (free_port(), free_port());
    let log = path.parent().unwrap().join("updates.mrt");
    let with = |metrics: u16, bmp: bool| {
        let mut s = format!(
            "{original}\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n[mrt]\nupdates = \"{}\"\n",
            log.display()
        );
        if bmp {
            s += &format!("[bmp]\ncollector = [\"127.0.0.1:{bmp_port}\"]\n");
        }
        s
    };
    std::fs::write(&path, with(m1, true)).unwrap();
    let (ok, out, err) = run(&d, &["reload"]);
    assert!(ok && !out.contains("needs daemon restart"), "{out}{err}");
    let body = http_get(m1).expect("metrics on the new endpoint");
    assert!(
        body.starts_with("HTTP/1.1 200") && body.contains("kittbgpd_"),
        "{body}"
    );
    collector.set_nonblocking(false).unwrap();
    let (mut bmp, _) = collector.accept().unwrap();
    bmp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    assert_eq!(bmp_next_type(&mut bmp), Some(4), "Initiation");

    // ORIGIN IGP, empty AS_PATH, NEXT_HOP 127.0.0.2, LOCAL_PREF 100; NLRI 10.0.0.7/32.
    p.send_raw(&ipv4_announce(
        &["10.0.0.7/32".parse().unwrap()],
        "127.0.0.2".parse().unwrap(),
    ));
    wait_until("the UPDATE logged", || {
        std::fs::metadata(&log).is_ok_and(|m| m.len() > 0)
    });

    // The collector removed, the endpoint moved.
    std::fs::write(&path, with(m2, false)).unwrap();
    let (ok, out, err) = run(&d, &["reload"]);
    assert!(ok, "{out}{err}");
    let mut types = Vec::new();
    while let Some(t) = bmp_next_type(&mut bmp) {
        types.push(t);
    }
    assert_eq!(types.last(), Some(&5), "ends with a Termination: {types:?}");
    assert!(http_get(m1).is_none(), "old endpoint closed");
    assert!(http_get(m2).is_some_and(|b| b.starts_with("HTTP/1.1 200")));
    let n = d.neighbor();
    assert_eq!((&n["state"], &n["since"]), (&"Established".into(), &since));
}

/// `control_group` is applied to the bound socket: 0660 with the group, 0600 without.
#[test]
fn control_group_is_applied_to_the_running_socket() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let d = start_daemon();
    let path = config_path(&d);
    let original = std::fs::read_to_string(&path).unwrap();
    let mode = || {
        let m = std::fs::metadata(&d.socket).unwrap();
        (m.permissions().mode() & 0o777, m.gid())
    };
    assert_eq!(mode().0, 0o600);
    let grouped = original.replacen(
        "\ncontrol_socket = ",
        "\ncontrol_group = \"root\"\ncontrol_socket = ",
        1,
    );
    std::fs::write(&path, grouped).unwrap();
    let (ok, out, err) = run(&d, &["reload", "--json"]);
    assert!(ok && !out.contains("failed"), "{out}{err}");
    assert!(out.contains("control_group - -> root"), "{out}");
    assert_eq!(mode(), (0o660, 0));
    std::fs::write(&path, &original).unwrap();
    let (ok, out, err) = run(&d, &["reload"]);
    assert!(ok, "{out}{err}");
    assert_eq!(mode().0, 0o600);
}
