//! The RIB task under our own graceful restart (RFC 4724 §4.1): what reaches
//! the peers' writers while the output is deferred, and once released.

use super::*;
use crate::runtime::bmp::SessionOpens;
use bytes::Bytes;

/// Node 2 with three graceful-restart neighbors (wg1, wg3, wg4).
const CONFIG: &str = "router_id = \"10.255.0.2\"\nlocal_as = 65000\n[loopbacks]\n\
    ipv4 = [\"10.255.0.0/16\"]\noriginate = [\"10.255.0.2/32\"]\n\
    [defaults]\ngraceful_restart = true\n\
    [[neighbor]]\ninterface = \"wg1\"\naddress = \"fe80::1:2\"\n\
    [[neighbor]]\ninterface = \"wg3\"\naddress = \"fe80::3:2\"\n\
    [[neighbor]]\ninterface = \"wg4\"\naddress = \"fe80::4:2\"\n";

const BOTH: [AfiSafi; 2] = [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST];

struct Node {
    task: RibTask,
    writers: Vec<mpsc::UnboundedReceiver<PeerCmd>>,
}

/// `restarted`: our kernel routes were found (the R bit is sent).
fn node(restarted: bool) -> Node {
    let config = crate::config::parse(CONFIG, "t").unwrap();
    let (peers, writers) = config
        .neighbors
        .iter()
        .map(|n| {
            let (tx, rx) = mpsc::unbounded_channel();
            (RibPeer::new(n, tx), rx)
        })
        .unzip();
    let (restarting, _) = watch::channel(restarted);
    let mut task = RibTask::new(&config, peers, None, restarting);
    task.restart_progress();
    let originated = ["10.255.0.2/32".parse().unwrap()].into_iter().collect();
    task.handle(RibMsg::Originate(originated));
    task.flush();
    Node { task, writers }
}

impl Node {
    /// `peer`'s session is up; `gr`: graceful restart negotiated, with the
    /// peer's R bit.
    fn up(&mut self, peer: PeerId, gr: Option<bool>) {
        let negotiated = Negotiated {
            four_octet_as: true,
            ipv4_unicast: true,
            ipv6_unicast: true,
            ipv4_extended_next_hop: true,
            ..Default::default()
        };
        let graceful = gr.map(|restarting| GracefulRestart {
            restart_time: 120,
            restarting,
            families: BOTH.to_vec(),
            preserved: BOTH.to_vec(),
        });
        let opens = SessionOpens {
            remote: None,
            sent: Bytes::new(),
            received: Bytes::new(),
        };
        self.task.handle(RibMsg::PeerUp {
            peer,
            epoch: 1,
            negotiated,
            local: Some(SocketAddr::new(
                format!("fe80::2:{peer}").parse().unwrap(),
                179,
            )),
            remote_id: Ipv4Addr::new(10, 255, 0, peer as u8 + 10),
            opens: Box::new(opens),
            graceful,
        });
        self.task.flush();
    }

    fn end_of_rib(&mut self, peer: PeerId) {
        for f in BOTH {
            let update = Box::new(Update::end_of_rib(f));
            self.task.handle(RibMsg::Update { peer, update });
        }
        self.task.flush();
    }

    /// Chunks sent to `peer`'s writer since the last call.
    fn sent(&mut self, peer: PeerId) -> usize {
        std::iter::from_fn(|| self.writers[peer].try_recv().ok())
            .filter(|c| matches!(c, PeerCmd::Send { .. }))
            .count()
    }

    /// `show neighbors`: whether each peer's output is deferred.
    fn deferred(&mut self) -> Vec<bool> {
        let (reply, mut rx) = oneshot::channel();
        self.task.handle(RibMsg::Counts { reply });
        let counts = rx.try_recv().unwrap();
        counts.iter().map(|c| c.output_deferred).collect()
    }
}

#[test]
fn a_restarted_node_sends_nothing_to_anyone_until_every_gr_neighbor_sent_end_of_rib() {
    let mut n = node(true);
    n.up(0, Some(false));
    // Without graceful restart: not awaited, but its output waits too.
    n.up(2, None);
    assert_eq!((n.sent(0), n.sent(2)), (0, 0), "held at session up");
    assert_eq!(n.deferred(), [true, false, true], "peer 1 is not up");
    n.end_of_rib(0);
    assert_eq!(n.sent(0), 0, "peer 1 (wg3) is still awaited");
    n.up(1, Some(false));
    assert_eq!(n.sent(1), 0);
    n.end_of_rib(1);
    // Released at once to every established peer: the credits were kept.
    assert!(n.sent(0) > 0 && n.sent(1) > 0 && n.sent(2) > 0);
    assert_eq!(n.deferred(), [false; 3]);
    assert!(n.task.restart.is_over());
}

#[test]
fn a_restarting_neighbor_is_not_awaited_for_the_output_but_for_the_end_of_the_restart() {
    let mut n = node(true);
    n.up(0, Some(false));
    n.up(1, Some(true));
    n.up(2, None);
    assert_eq!(n.sent(1), 0);
    n.end_of_rib(0);
    // Peer 1 waits for our End-of-RIB before sending its own.
    assert!(n.sent(0) > 0 && n.sent(1) > 0 && n.sent(2) > 0);
    assert!(
        !n.task.restart.is_over(),
        "the sweep still waits for peer 1"
    );
    n.end_of_rib(1);
    assert!(n.task.restart.is_over());
}

#[test]
fn without_a_restart_of_this_node_the_table_goes_at_session_up() {
    let mut n = node(false);
    n.up(0, Some(false));
    assert!(n.sent(0) > 0);
    assert_eq!(n.deferred(), [false; 3]);
}

#[test]
fn a_restarted_node_without_graceful_restart_neighbors_defers_nothing_and_says_nothing() {
    let config = crate::config::parse(
        &CONFIG.replace("graceful_restart = true", "graceful_restart = false"),
        "t",
    )
    .unwrap();
    let (mut restart, views) = restart::our_restart(&config, 1, true);
    assert!(!restart.holds_output() && !views[0].holds_output());
    let rib = Rib::new(RibConfig::from_config(&config));
    assert!(
        restart.progress(&rib, std::time::Instant::now()),
        "over at once"
    );
    assert!(
        restart.take_release().is_none(),
        "no release to log: nothing was held"
    );
    // With them, the output waits.
    let config = crate::config::parse(CONFIG, "t").unwrap();
    let (restart, _) = restart::our_restart(&config, 1, true);
    assert!(restart.holds_output());
}
