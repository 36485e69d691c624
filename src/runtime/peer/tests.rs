//! The peer task over real loopback sockets: a multihop session leaves from
//! its source address and follows the underlay's reachability.

use super::*;
use crate::wire::{split_frame, AfiSafi, Capability, Open, MAX_EXTENDED_MESSAGE_LEN};
use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(5);

/// The scripted neighbor's end of one connection.
struct Remote {
    stream: TcpStream,
    buf: BytesMut,
}

impl Remote {
    async fn send(&mut self, msg: Message) {
        let bytes = msg.to_bytes(&Negotiated::default()).unwrap();
        self.stream.write_all(&bytes).await.unwrap();
    }

    /// The next message; `None` once the connection is closed.
    async fn recv(&mut self) -> Option<Message> {
        loop {
            if let Some(f) = split_frame(&mut self.buf, MAX_EXTENDED_MESSAGE_LEN).unwrap() {
                return Some(Message::decode(f, &Negotiated::default()).unwrap());
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("the peer task neither sent nor closed")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }
}

async fn accept(listener: &TcpListener) -> (Remote, SocketAddr) {
    let (stream, from) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the peer task connects")
        .unwrap();
    let buf = BytesMut::new();
    (Remote { stream, buf }, from)
}

async fn wait_for(h: &mut PeerHandle, what: impl Fn(&PeerStatus) -> bool) {
    tokio::time::timeout(WAIT, h.status.wait_for(what))
        .await
        .expect("status reached")
        .unwrap();
}

/// A multihop session to a scripted neighbor on 127.0.0.3 (from 127.0.0.2),
/// established: the peer task's handle and the neighbor's end.
async fn established(listener: &TcpListener) -> (PeerHandle, Remote) {
    let port = listener.local_addr().unwrap().port();
    let text = format!(
        "router_id = \"10.0.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"127.0.0.0/8\"]\n\
         [[neighbor]]\nname = \"rr\"\naddress = \"127.0.0.3\"\nport = {port}\nmultihop = 2\n\
         source = \"127.0.0.2\"\nconnect_retry = 1\n"
    );
    let config = crate::config::parse(&text, "t").unwrap();
    let n = config.neighbors[0].clone();
    let session = super::super::session_config(&config, &n, Default::default());
    let (rib, mut rib_rx) = mpsc::channel(64);
    tokio::spawn(async move { while rib_rx.recv().await.is_some() {} });
    let mut h = spawn(0, n, session, rib);

    // Held down until the RIB reports a route to the neighbor's address.
    wait_for(&mut h, |s| s.held_down.contains(HoldReason::NoRoute)).await;
    h.tx.send(PeerCmd::Reachable(true)).unwrap();
    let (mut remote, from) = accept(listener).await;
    assert_eq!(
        from.ip(),
        "127.0.0.2".parse::<IpAddr>().unwrap(),
        "bound to source"
    );
    assert!(matches!(remote.recv().await, Some(Message::Open(_))));
    let caps = vec![Capability::Multiprotocol(AfiSafi::IPV4_UNICAST)];
    let open = Open::new(65000, 9, "10.0.0.3".parse().unwrap(), caps);
    remote.send(Message::Open(open)).await;
    remote.send(Message::Keepalive).await;
    wait_for(&mut h, |s| s.state == State::Established).await;
    (h, remote)
}

#[tokio::test]
async fn no_route_ends_a_multihop_session_with_cease_and_a_route_starts_it_again() {
    // The neighbor's loopback is 127.0.0.3; ours (the source) is 127.0.0.2.
    let listener = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let (mut h, mut remote) = established(&listener).await;

    // The underlay lost the route: Cease at once, then held down, saying why.
    h.tx.send(PeerCmd::Reachable(false)).unwrap();
    let notification = loop {
        match remote.recv().await {
            Some(Message::Notification(n)) => break n,
            Some(_) => continue,
            None => panic!("closed without a NOTIFICATION"),
        }
    };
    assert_eq!((notification.code, notification.subcode), (6, 0));
    assert!(remote.recv().await.is_none(), "closed after the Cease");
    wait_for(&mut h, |s| s.held_down.contains(HoldReason::NoRoute)).await;
    assert_eq!(h.status.borrow().state, State::Idle);

    // The route is back: the session starts again from the source address.
    h.tx.send(PeerCmd::Reachable(true)).unwrap();
    let (mut remote, from) = accept(&listener).await;
    assert_eq!(from.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
    assert!(matches!(remote.recv().await, Some(Message::Open(_))));
    assert!(!h.status.borrow().held_down.is_held());
}

/// Issue 13 (c): a session the prober ended says so, not "connection closed by peer".
#[tokio::test]
async fn a_probe_hold_down_says_why_in_the_last_error() {
    let listener = TcpListener::bind("127.0.0.3:0").await.unwrap();
    let (mut h, mut remote) = established(&listener).await;
    h.tx.send(PeerCmd::Link {
        up: false,
        why: HoldReason::Probe,
    })
    .unwrap();
    // Nothing can be sent over a dead link: closed without a NOTIFICATION.
    while let Some(m) = remote.recv().await {
        assert!(!matches!(m, Message::Notification(_)), "{m:?}");
    }
    wait_for(&mut h, |s| s.state == State::Idle).await;
    assert_eq!(
        h.status.borrow().last_error.as_deref(),
        Some("held down: link dead (probes unanswered)")
    );
}
