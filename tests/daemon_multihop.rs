//! Multihop sessions over loopbacks (issue 12): the real daemon reaches a
//! scripted peer's "loopback" (127.0.0.3, ::1) from its own (`source`,
//! 127.0.0.2) once the underlay (a link session) has a route to it, and
//! takes an inbound session only when it comes to that source. The overlay
//! travels on them, the loopbacks do not.

mod common;

use common::*;
use kittbgpd::ctl::Request;
use kittbgpd::wire::Message;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The daemon's connection to a scripted neighbor listening on `listener`.
fn accept(listener: &TcpListener) -> (Peer, SocketAddr) {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        match listener.accept() {
            Ok((stream, from)) => {
                stream.set_nonblocking(false).unwrap();
                return (Peer::from_stream(stream), from);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                assert!(Instant::now() < deadline, "the daemon does not connect");
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
}

/// The underlay: a scripted link neighbor at `from` (connecting with hop
/// limit 255, as a direct neighbor does) announcing the neighbors'
/// loopbacks, so the multihop sessions have a route.
fn underlay(d: &Daemon, from: &str, loopbacks: &[&str]) -> Peer {
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.set_ttl(255).unwrap();
    sock.bind(&SocketAddr::new(ip(from), 0).into()).unwrap();
    let to = SocketAddr::new(ip("127.0.0.2"), d.port);
    sock.connect_timeout(&to.into(), Duration::from_secs(2))
        .unwrap();
    let mut p = Peer::from_stream(sock.into());
    p.establish();
    let prefixes: Vec<ipnet::Ipv4Net> = loopbacks.iter().map(|s| s.parse().unwrap()).collect();
    p.send_raw(&ipv4_announce(&prefixes, from.parse().unwrap()));
    p
}

/// After `establish`: the daemon's first announcement, with its next hop.
fn first_route(p: &mut Peer) -> (Vec<ipnet::IpNet>, Option<IpAddr>) {
    loop {
        if let Some(Message::Update(u)) = p.recv() {
            let announced: Vec<_> = u.announced().collect();
            if !announced.is_empty() {
                return (announced, u.attrs.next_hop.map(IpAddr::V4));
            }
        }
    }
}

fn neighbor(d: &Daemon, name: &str) -> serde_json::Value {
    let v = d.show(&Request::Neighbors);
    let list = v.as_array().cloned().unwrap_or_default();
    list.into_iter()
        .find(|n| n["name"] == name)
        .unwrap_or_else(|| panic!("no neighbor {name} in {v}"))
}

#[test]
fn multihop_sessions_are_sourced_from_our_loopback_both_ways() {
    let out4 = TcpListener::bind("127.0.0.3:0").unwrap();
    let out6 = TcpListener::bind("[::1]:0").unwrap();
    let neighbors = format!(
        "[[neighbor]]\nname = \"out\"\naddress = \"127.0.0.3\"\nport = {}\nmultihop = 2\n\
         source = \"127.0.0.2\"\nconnect_retry = 1\n\
         [[neighbor]]\nname = \"in\"\naddress = \"127.0.0.4\"\nmultihop = 2\nsource = \"127.0.0.2\"\n\
         passive = true\n\
         [[neighbor]]\nname = \"v6\"\naddress = \"::1\"\nport = {}\nmultihop = 1\nconnect_retry = 1\n\
         [[neighbor]]\nname = \"ul\"\naddress = \"127.0.0.9\"\npassive = true\n",
        out4.local_addr().unwrap().port(),
        out6.local_addr().unwrap().port(),
    );
    // The v6 session takes its default source: our IPv6 loopback, ::1 here.
    let loopbacks =
        "ipv4 = [\"10.0.0.0/8\", \"127.0.0.0/8\"]\nipv6 = [\"fd00::/16\", \"::1/128\"]\n\
                     originate = [\"10.0.0.1/32\", \"::1/128\"]";
    let top = "[kernel]\nenabled = false\n[overlay]\nipv4 = [\"192.168.0.0/16\"]\n\
               originate = [\"192.168.1.0/24\"]";
    let d = start_daemon_config(top, loopbacks, &neighbors, &[]);

    // 0. No route to 127.0.0.3 yet: held down, saying why; the v6 neighbor
    //    (::1, our own loopback here) is reachable at once.
    let (ok, text, _) = d.cli(&["show", "neighbors"]);
    assert!(ok);
    assert!(text.contains("no route to 127.0.0.3"), "{text}");
    let _ul = underlay(&d, "127.0.0.9", &["127.0.0.3/32", "127.0.0.4/32"]);

    // 1. Outbound: from the source address, to the neighbor's port; the
    //    overlay prefix arrives with our loopback as next hop (unchanged
    //    from the originator: us), our loopbacks do not.
    let (mut p, from) = accept(&out4);
    assert_eq!(from.ip(), ip("127.0.0.2"), "connection bound to source");
    p.establish();
    let (routes, next_hop) = first_route(&mut p);
    assert_eq!(routes, vec!["192.168.1.0/24".parse().unwrap()]);
    assert_eq!(next_hop, Some(ip("10.0.0.1")));
    let n = neighbor(&d, "out");
    assert_eq!(
        (&n["state"], &n["multihop"]),
        (&"Established".into(), &2.into()),
        "{n}"
    );
    assert_eq!(
        n["local_address"],
        "127.0.0.2:".to_string() + &from.port().to_string()
    );

    // 2. IPv6, default source.
    let (mut p6, from) = accept(&out6);
    assert_eq!(from.ip(), ip("::1"));
    p6.establish();

    // 3. Inbound: to another of our addresses, refused; to the source, taken.
    let daemon_at = |a: &str| SocketAddr::new(ip(a), d.port);
    let mut wrong =
        Peer::from_stream(connect_from(ip("127.0.0.4"), daemon_at("127.0.0.1")).unwrap());
    assert!(
        wrong.recv().is_none(),
        "a connection to 127.0.0.1 is refused"
    );
    let stream = connect_from(ip("127.0.0.4"), daemon_at("127.0.0.2")).unwrap();
    let mut inbound = Peer::from_stream(stream);
    inbound.establish();
    let (_, next_hop) = first_route(&mut inbound);
    assert_eq!(next_hop, Some(ip("10.0.0.1")));
    assert_eq!(neighbor(&d, "in")["state"], "Established");
    assert_eq!(neighbor(&d, "v6")["state"], "Established");
    let (ok, text, _) = d.cli(&["show", "protocols"]);
    assert!(ok);
    assert_eq!(text.matches("Established").count(), 4, "{text}");
}

#[test]
fn a_multihop_neighbor_added_by_reload_gets_through_a_gtsm_listener() {
    // Every neighbor direct with GTSM: the listener takes only hop limit 255.
    let link = "[[neighbor]]\nname = \"link\"\naddress = \"127.0.0.5\"\npassive = true\nttl_security = true\n";
    let loopbacks = "ipv4 = [\"10.0.0.0/8\", \"127.0.0.0/8\"]\noriginate = [\"127.0.0.2/32\"]";
    let d = start_daemon_config("[kernel]\nenabled = false", loopbacks, link, &[]);
    let path = d.socket.parent().unwrap().join("kittbgpd.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let mh = "[[neighbor]]\nname = \"mh\"\naddress = \"127.0.0.4\"\nmultihop = 3\npassive = true\n";
    std::fs::write(&path, format!("{text}\n{mh}")).unwrap();
    let (ok, out, err) = d.cli(&["reload"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("[add] neighbor mh: new neighbor 127.0.0.4"),
        "{out}"
    );

    let _ul = underlay(&d, "127.0.0.5", &["127.0.0.4/32"]);
    let deadline = Instant::now() + READ_TIMEOUT;
    while neighbor(&d, "mh")["held_down"]
        .to_string()
        .contains("no_route")
    {
        assert!(Instant::now() < deadline, "no route to 127.0.0.4 learned");
        std::thread::sleep(Duration::from_millis(20));
    }
    // Sent with the default TTL (64), as from three hops away.
    let to = SocketAddr::new(ip("127.0.0.2"), d.port);
    let stream = connect_from(ip("127.0.0.4"), to).expect("the listener no longer demands 255");
    let mut p = Peer::from_stream(stream);
    p.establish();
    assert_eq!(neighbor(&d, "mh")["state"], "Established");
}
