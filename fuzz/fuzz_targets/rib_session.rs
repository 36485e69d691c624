//! Stateful: sequences of events through three peers' session state machines
//! (RFC 4271 §8) and the RIB, as the runtime wires them: OPEN/KEEPALIVE to
//! establish, UPDATEs (built, or raw bytes), ROUTE-REFRESH (request, and
//! BoRR/EoRR marking and sweeping stale routes, RFC 7313), NOTIFICATION,
//! connection loss, link cost and origination changes, the FIB's reports of
//! routes the kernel does (not) hold, flushes.
//!
//! After every flush, checked:
//! - nothing panics; every message a peer is sent decodes on its session
//!   without an RFC 7606 issue, and BoRR/EoRR go only to enhanced peers;
//! - counters: received = accepted + filtered = the peer's Adj-RIB-In rows,
//!   accepted = rows with verdict ok, at most the import limit unless `warn`,
//!   filtered at most `filtered_limit`;
//! - what each established peer holds (a model Adj-RIB-Out, fed by decoding
//!   what it was sent) equals the export the Loc-RIB best paths imply: for
//!   every prefix, the best path (`explain`, recomputed from scratch) if RFC
//!   4456 §6 lets it go to that peer, its family can be sent and (a peer's
//!   path) the kernel holds it, with the reflected attributes and next hop
//!   self; and `advertised` counts it.
#![no_main]

use bytes::{BufMut, Bytes, BytesMut};
use ipnet::IpNet;
use kittbgpd::config::{ImportLimitAction, Loopbacks};
use kittbgpd::rib::reflect::{may_send, reflected_attributes};
use kittbgpd::rib::{
    originated_attributes, ExportContext, PeerConfig, PeerId, Rib, RibConfig, RibOutput, Source,
};
use kittbgpd::session::{Action, Direction, Event, Session, SessionConfig};
use kittbgpd::wire::capability::ExtNhEntry;
use kittbgpd::wire::{
    nlri, AfiSafi, AsPath, Capability, Message, MpNextHop, MpReach, MpUnreach, Negotiated,
    Notification, Open, Origin, PathAttributes, RouteRefresh, Update, UpdateBuilder, AFI_IPV6,
    HEADER_LEN,
};
use libfuzzer_sys::fuzz_target;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

const PEERS: usize = 3;
const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
const LOCAL_AS: u32 = 65000;

/// The prefixes the inputs pick from: loopbacks of both families, and a few
/// the import policy refuses.
fn prefix(i: u8) -> IpNet {
    let s = match i % 16 {
        i @ 0..=5 => format!("10.255.0.{i}/32"),
        i @ 6..=11 => format!("fd00:255::{}/128", i - 6),
        12 => "10.255.0.0/24".into(),
        13 => "192.0.2.1/32".into(),
        14 => "2001:db8::1/128".into(),
        _ => "fd00:255::/64".into(),
    };
    s.parse().unwrap()
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let (a, b) = self.0.split_at(n.min(self.0.len()));
        self.0 = b;
        a
    }
    /// Up to 7 prefixes.
    fn prefixes(&mut self) -> Option<Vec<IpNet>> {
        let n = self.u8()? % 8;
        (0..n).map(|_| self.u8().map(prefix)).collect()
    }
}

/// What one peer holds of what we sent it.
#[derive(Default)]
struct Model {
    /// prefix -> (next hop, attributes as decoded)
    out: BTreeMap<IpNet, (MpNextHop, PathAttributes)>,
}

struct Peer {
    session: Session,
    negotiated: Option<Negotiated>,
    ctx: Option<ExportContext>,
    remote_id: Ipv4Addr,
    rr_client: bool,
    limit: u32,
    action: ImportLimitAction,
    model: Model,
}

struct World {
    rib: Rib,
    peers: Vec<Peer>,
    now: Instant,
    /// Every prefix that ever reached the RIB.
    seen: BTreeSet<IpNet>,
    /// Prefixes the FIB reported as not in the kernel (`set_forwarding`).
    not_forwardable: BTreeSet<IpNet>,
}

fn local(p: PeerId) -> SocketAddr {
    SocketAddr::new(
        IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 9, p as u16 + 1)),
        1790,
    )
}

fn capabilities(bits: u8) -> Vec<Capability> {
    let mut c = Vec::new();
    if bits & 1 != 0 {
        c.push(Capability::Multiprotocol(AfiSafi::IPV4_UNICAST));
    }
    if bits & 2 != 0 {
        c.push(Capability::Multiprotocol(AfiSafi::IPV6_UNICAST));
    }
    if bits & 4 != 0 {
        c.push(Capability::RouteRefresh);
    }
    if bits & 8 != 0 {
        c.push(Capability::EnhancedRouteRefresh);
    }
    if bits & 16 != 0 {
        c.push(Capability::ExtendedNextHop(vec![ExtNhEntry {
            nlri: AfiSafi::IPV4_UNICAST,
            nexthop_afi: AFI_IPV6,
        }]));
    }
    if bits & 32 != 0 {
        c.push(Capability::FourOctetAs(LOCAL_AS));
    }
    if bits & 64 != 0 {
        c.push(Capability::ExtendedMessage);
    }
    c
}

/// The one place that knows how the RIB hands out what peers are sent: a
/// flush decides and marks, then every peer's queue is pulled with
/// `poll_transmit` in rounds of `budget` bytes (one chunk per peer per round,
/// as connections that take little at a time would) until nothing is left.
/// Returns the messages per peer, in order, and the import limit reports.
fn transmit(
    rib: &mut Rib,
    peers: usize,
    budget: usize,
) -> (Vec<(PeerId, Vec<Bytes>)>, Vec<(PeerId, ImportLimitAction)>) {
    let mut limits = Vec::new();
    for o in rib.flush() {
        match o {
            RibOutput::Send { .. } => panic!("flush sends nothing"),
            RibOutput::LimitReached { peer, action, .. } => limits.push((peer, action)),
            RibOutput::BestChanged { .. } => {}
        }
    }
    let mut sent = Vec::new();
    loop {
        let mut any = false;
        for p in 0..peers {
            if let Some(chunk) = rib.poll_transmit(p, budget) {
                sent.push((p, split(chunk)));
                any = true;
            } else {
                assert!(
                    !rib.wants_transmit(p),
                    "wants to transmit but sends nothing"
                );
            }
        }
        if !any {
            break;
        }
    }
    (sent, limits)
}

/// The BGP messages of a chunk, by their header's length (RFC 4271 §4.1).
fn split(mut chunk: Bytes) -> Vec<Bytes> {
    let mut out = Vec::new();
    while !chunk.is_empty() {
        assert!(chunk.len() >= HEADER_LEN, "chunk ends inside a header");
        let len = usize::from(u16::from_be_bytes([chunk[16], chunk[17]]));
        assert!(
            len >= HEADER_LEN && len <= chunk.len(),
            "bad length in chunk"
        );
        out.push(chunk.split_to(len));
    }
    out
}

/// Pull budget for a flush op: whole queues, or 1 byte up to 2 KiB.
fn budget(k: u8) -> usize {
    match k {
        0 => usize::MAX,
        k => 1 << (k % 12),
    }
}

impl World {
    fn new(setup: &mut Input) -> Option<World> {
        let mut rib = Rib::new(RibConfig {
            router_id: ME,
            cluster_id: None,
            local_as: LOCAL_AS,
            loopbacks: Loopbacks {
                ipv4: vec!["10.255.0.0/16".parse().unwrap()],
                ipv6: vec!["fd00:255::/48".parse().unwrap()],
                originate: Vec::new(),
                from_lo: false,
            },
        });
        let mut peers = Vec::new();
        for p in 0..PEERS {
            let b = setup.u8()?;
            let action = match (b >> 4) & 3 {
                0 => ImportLimitAction::Block,
                1 => ImportLimitAction::Warn,
                2 => ImportLimitAction::Restart,
                _ => ImportLimitAction::Disable,
            };
            let limit = u32::from(b & 7);
            let rr_client = b & 8 != 0 || p == 0;
            rib.add_peer(PeerConfig {
                name: format!("p{p}"),
                address: IpAddr::V6(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, p as u16 + 1)),
                interface: Some(format!("wg{p}")),
                rr_client,
                cost: (b & 64 != 0).then_some(u32::from(b >> 6) * 10),
                import_limit: limit,
                import_limit_action: action,
                filtered_limit: u32::from(b >> 7) * 2,
                multihop: false,
            });
            let session = Session::new(SessionConfig {
                local_as: LOCAL_AS,
                remote_as: LOCAL_AS,
                router_id: ME,
                hold_time: 240,
                keepalive: 80,
                connect_retry: Duration::from_secs(5),
                error_wait_min: Duration::from_secs(5),
                error_wait_max: Duration::from_secs(300),
                passive: true,
                capabilities: capabilities(0x7f),
                send_hold_time: None,
            });
            peers.push(Peer {
                session,
                negotiated: None,
                ctx: None,
                remote_id: Ipv4Addr::UNSPECIFIED,
                rr_client,
                limit,
                action,
                model: Model::default(),
            });
        }
        Some(World {
            rib,
            peers,
            now: Instant::now(),
            seen: BTreeSet::new(),
            not_forwardable: BTreeSet::new(),
        })
    }

    fn event(&mut self, p: PeerId, ev: Event) {
        let trace = std::env::var_os("RIB_SESSION_TRACE").is_some();
        if trace {
            eprintln!("p{p} <- {ev:?}");
        }
        let actions = self.peers[p].session.handle(ev, self.now);
        for a in actions {
            if trace {
                eprintln!("p{p} -> {a:?}");
            }
            match a {
                Action::Established {
                    negotiated, remote, ..
                } => {
                    let peer = &mut self.peers[p];
                    let ctx = ExportContext::new(negotiated, Some(local(p)));
                    peer.negotiated = Some(negotiated);
                    peer.ctx = Some(ctx.clone());
                    peer.remote_id = remote.bgp_id;
                    peer.model = Model::default();
                    self.rib.peer_up(p, ctx, remote.bgp_id);
                }
                Action::Update(u) => {
                    self.seen.extend(u.announced());
                    self.seen.extend(u.withdrawn_all());
                    let before = self.rib.counts(p);
                    let l = self.rib.update(p, &u);
                    let after = self.rib.counts(p);
                    assert!(
                        after.received <= before.received + l.accepted + l.filtered,
                        "more routes than announced"
                    );
                }
                Action::RouteRefresh(rr) => {
                    // As the RIB task dispatches it (RFC 2918, RFC 7313 §4-5).
                    let family = AfiSafi {
                        afi: rr.afi,
                        safi: rr.safi,
                    };
                    if self.rib.family_negotiated(p, family) {
                        match rr.subtype {
                            RouteRefresh::REQUEST => self.rib.route_refresh(p, rr.afi),
                            RouteRefresh::BORR => self.rib.begin_refresh(p, family),
                            RouteRefresh::EORR => {
                                self.rib.end_refresh(p, family);
                            }
                            _ => {}
                        }
                    }
                }
                Action::Down(_) => {
                    let peer = &mut self.peers[p];
                    peer.negotiated = None;
                    peer.ctx = None;
                    peer.model = Model::default();
                    self.rib.peer_down(p);
                    let c = self.rib.counts(p);
                    assert_eq!((c.received, c.advertised), (0, 0), "peer down clears");
                }
                Action::Connect | Action::Send(..) | Action::Close(_) => {}
            }
        }
    }

    /// Bytes as they come off the wire: decoded under the session's
    /// parameters, malformed ones reported as the runtime does.
    fn receive(&mut self, p: PeerId, frame: Bytes) {
        let neg = self.peers[p].session.negotiated().unwrap_or_default();
        match Message::decode(frame, &neg) {
            Ok(m) => self.event(p, Event::Received(Direction::Inbound, m)),
            Err(e) => self.event(p, Event::Malformed(Direction::Inbound, e.notification())),
        }
    }

    fn send_message(&mut self, p: PeerId, m: Message) {
        let neg = self.peers[p].session.negotiated().unwrap_or_default();
        if let Ok(b) = m.to_bytes(&neg) {
            self.receive(p, b);
        }
    }

    fn establish(&mut self, p: PeerId, input: &mut Input) -> Option<()> {
        let caps = input.u8()?;
        let id = match input.u8()? % 5 {
            0 => ME,
            1 => Ipv4Addr::UNSPECIFIED,
            2 => Ipv4Addr::new(10, 0, 0, 11),
            _ => Ipv4Addr::new(10, 0, 0, 11 + p as u8),
        };
        self.event(p, Event::Start);
        if self.peers[p].session.accepts(Direction::Inbound) {
            self.event(p, Event::Connected(Direction::Inbound));
        }
        let open = Open {
            version: 4,
            my_as: LOCAL_AS as u16,
            hold_time: if caps & 128 != 0 { 0 } else { 90 },
            bgp_id: id,
            capabilities: capabilities(caps),
            other_params: Vec::new(),
        };
        self.send_message(p, Message::Open(open));
        self.send_message(p, Message::Keepalive);
        Some(())
    }

    fn update(&mut self, p: PeerId, input: &mut Input) -> Option<()> {
        let flags = input.u8()?;
        let announce = input.prefixes()?;
        let withdraw = input.prefixes()?;
        let nh_kind = input.u8()?;
        let v6_nh = match nh_kind % 4 {
            0 => MpNextHop::V6 {
                global: Ipv6Addr::UNSPECIFIED,
                link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, p as u16 + 1)),
            },
            1 => MpNextHop::V6 {
                global: "fd00::1".parse().unwrap(),
                link_local: None,
            },
            2 => MpNextHop::V6 {
                global: Ipv6Addr::UNSPECIFIED,
                link_local: None,
            },
            _ => MpNextHop::V6 {
                global: "fd00::2".parse().unwrap(),
                link_local: Some(Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, 9)),
            },
        };
        let med = if flags & 1 != 0 {
            Some(input.u32()?)
        } else {
            None
        };
        let local_pref = if flags & 2 != 0 {
            Some(u32::from(input.u8()?))
        } else {
            None
        };
        let originator_id = match (flags >> 2) & 3 {
            0 => None,
            1 => Some(ME),
            2 => Some(Ipv4Addr::new(10, 0, 0, 99)),
            _ => Some(Ipv4Addr::new(10, 0, 0, 11 + input.u8()? % 3)),
        };
        let cluster_list = match (flags >> 4) & 3 {
            0 | 1 => Vec::new(),
            2 => vec![ME],
            _ => vec![Ipv4Addr::new(10, 0, 0, 50), Ipv4Addr::new(10, 0, 0, 51)],
        };
        let mandatory = flags & 64 == 0;
        let v4_in_nlri = flags & 128 != 0;
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for n in &announce {
            match n {
                IpNet::V4(_) => v4.push(*n),
                IpNet::V6(_) => v6.push(*n),
            }
        }
        let mut attrs = PathAttributes {
            origin: mandatory.then_some(Origin::Igp),
            as_path: mandatory.then(AsPath::default),
            med,
            local_pref,
            originator_id,
            cluster_list: cluster_list.into(),
            ..Default::default()
        };
        let mut nlri_field = BytesMut::new();
        if v4_in_nlri {
            attrs.next_hop = (!v4.is_empty()).then_some(Ipv4Addr::new(10, 1, 0, p as u8));
            for n in &v4 {
                nlri::put(&mut nlri_field, *n);
            }
            if !v6.is_empty() {
                attrs.mp_reach = Some(Box::new(MpReach::new(AfiSafi::IPV6_UNICAST, v6_nh, v6)));
            }
        } else if !v4.is_empty() {
            attrs.mp_reach = Some(Box::new(MpReach::new(AfiSafi::IPV4_UNICAST, v6_nh, v4)));
        } else if !v6.is_empty() {
            attrs.mp_reach = Some(Box::new(MpReach::new(AfiSafi::IPV6_UNICAST, v6_nh, v6)));
        }
        let mut withdrawn_field = BytesMut::new();
        let mut w6 = Vec::new();
        for n in withdraw {
            match n {
                IpNet::V4(_) => nlri::put(&mut withdrawn_field, n),
                IpNet::V6(_) => w6.push(n),
            }
        }
        if !w6.is_empty() {
            attrs.mp_unreach = Some(Box::new(MpUnreach::new(AfiSafi::IPV6_UNICAST, w6)));
        }
        let u = Update {
            withdrawn: withdrawn_field.freeze(),
            attrs,
            nlri: nlri_field.freeze(),
            issues: Vec::new(),
            add_path: false,
        };
        self.send_message(p, Message::Update(u));
        Some(())
    }

    /// An UPDATE of arbitrary body bytes.
    fn raw_update(&mut self, p: PeerId, input: &mut Input) -> Option<()> {
        let n = usize::from(input.u8()?);
        let body = input.bytes(n);
        let mut m = BytesMut::with_capacity(HEADER_LEN + body.len());
        m.put_bytes(0xff, 16);
        m.put_u16((HEADER_LEN + body.len()) as u16);
        m.put_u8(2);
        m.put_slice(body);
        self.receive(p, m.freeze());
        Some(())
    }

    fn flush(&mut self, budget: usize) {
        let (sent, limits) = transmit(&mut self.rib, self.peers.len(), budget);
        assert!(!self.rib.has_work(), "flush left work");
        for (p, messages) in sent {
            self.deliver(p, messages);
        }
        let mut reset = false;
        for (p, action) in limits {
            if matches!(
                action,
                ImportLimitAction::Restart | ImportLimitAction::Disable
            ) {
                // RFC 4486 §4: Cease / Maximum Number of Prefixes Reached;
                // the RIB task flushes again after the session went down.
                self.event(p, Event::Stop(Notification::cease(1)));
                reset = true;
            }
        }
        if reset {
            self.flush(budget);
        } else {
            self.check();
        }
    }

    /// One chunk of `budget` bytes pulled for `p` without a flush (the queue
    /// may stay half sent while more ops arrive).
    fn pull(&mut self, p: PeerId, budget: usize) {
        if let Some(chunk) = self.rib.poll_transmit(p, budget) {
            self.deliver(p, split(chunk));
        }
    }

    /// What `p` received: checked and applied to its model of our routes.
    fn deliver(&mut self, p: PeerId, messages: Vec<Bytes>) {
        {
            let peer = &mut self.peers[p];
            let neg = peer.negotiated.expect("sent to an established peer only");
            for m in messages {
                assert!(m.len() <= neg.max_message_len(), "message too long");
                let msg = Message::decode(m, &neg).expect("we send what decodes");
                match msg {
                    Message::Update(u) => {
                        assert!(
                            u.issues.is_empty(),
                            "we send malformed attributes: {:?}",
                            u.issues
                        );
                        if u.is_end_of_rib().is_some() {
                            continue;
                        }
                        for w in u.withdrawn_all() {
                            peer.model.out.remove(&w);
                        }
                        let plain = u.attrs.without_reach();
                        let mp_nh = u.attrs.mp_reach.as_ref().map(|r| r.next_hop);
                        for n in u.nlri_v4() {
                            let nh = MpNextHop::V4(u.attrs.next_hop.expect("NEXT_HOP with NLRI"));
                            peer.model.out.insert(IpNet::V4(n), (nh, plain.clone()));
                        }
                        if let (Some(r), Some(nh)) = (&u.attrs.mp_reach, mp_nh) {
                            for n in r.prefixes() {
                                peer.model.out.insert(n, (nh, plain.clone()));
                            }
                        }
                    }
                    Message::RouteRefresh(rr) => {
                        assert!(neg.enhanced_route_refresh, "BoRR/EoRR without RFC 7313");
                        assert!(
                            rr.subtype == RouteRefresh::BORR || rr.subtype == RouteRefresh::EORR
                        );
                    }
                    other => panic!("the RIB sent {other:?}"),
                }
            }
        }
    }

    fn check(&self) {
        let rib = &self.rib;
        for (p, peer) in self.peers.iter().enumerate() {
            let c = rib.counts(p);
            let rows = rib.adj_rib_in(p);
            assert_eq!(
                c.received,
                c.accepted + c.filtered,
                "received = accepted + filtered"
            );
            assert_eq!(c.received, rows.len(), "received = Adj-RIB-In rows");
            let ok = rows.iter().filter(|(_, r)| r.verdict.is_ok()).count();
            assert_eq!(c.accepted, ok, "accepted = rows accepted");
            if c.filtered_limit > 0 {
                assert!(
                    c.filtered <= c.filtered_limit as usize,
                    "over the filtered limit"
                );
            }
            if peer.limit > 0 && peer.action != ImportLimitAction::Warn {
                assert!(c.accepted <= peer.limit as usize, "over the import limit");
            }
            if peer.ctx.is_none() {
                assert_eq!(c.received, 0, "routes of a down peer");
            }
        }
        // The export each established peer should hold, from the best paths.
        let mut expected: Vec<BTreeMap<IpNet, (MpNextHop, PathAttributes)>> =
            vec![BTreeMap::new(); PEERS];
        let mut best_count = 0;
        let all: BTreeSet<IpNet> = self.seen.iter().chain(rib.originated()).copied().collect();
        for &prefix in &all {
            let e = rib.explain(prefix);
            let Some(best) = e.candidates.iter().find(|c| c.best) else {
                continue;
            };
            best_count += 1;
            let (source, attrs) = if best.peer == "self" {
                (Source::Local, originated_attributes())
            } else {
                let s: PeerId = best.peer[1..].parse().unwrap();
                let (_, route) = rib
                    .adj_rib_in(s)
                    .into_iter()
                    .find(|(n, _)| *n == prefix)
                    .expect("best path is in the Adj-RIB-In");
                let a = reflected_attributes(&route.attrs, best.med, self.peers[s].remote_id, ME);
                (Source::Peer(s), a)
            };
            // Export only what this node forwards (rib/forwarding.rs).
            if source != Source::Local && self.not_forwardable.contains(&prefix) {
                continue;
            }
            let from_client = match source {
                Source::Peer(s) => self.peers[s].rr_client,
                Source::Local => true,
            };
            for (q, peer) in self.peers.iter().enumerate() {
                let Some(ctx) = &peer.ctx else { continue };
                if !may_send(source, from_client, q, peer.rr_client) {
                    continue;
                }
                let Some(nh) = ctx.next_hop_for(&prefix) else {
                    continue;
                };
                expected[q].insert(prefix, (nh, attrs.clone()));
            }
        }
        assert_eq!(rib.len(), best_count, "Loc-RIB size");
        if std::env::var_os("RIB_SESSION_TRACE").is_some() {
            let sizes: Vec<_> = self
                .peers
                .iter()
                .map(|p| (p.ctx.is_some(), p.model.out.len()))
                .collect();
            eprintln!("check: best {best_count}, peers (up, held) {sizes:?}");
        }
        for (q, peer) in self.peers.iter().enumerate() {
            let Some(ctx) = &peer.ctx else { continue };
            let neg = ctx.negotiated;
            assert_eq!(
                rib.counts(q).advertised,
                expected[q].len(),
                "advertised count of p{q}"
            );
            // Expected attributes as the peer decodes them (the codec's normal form).
            let exp: BTreeMap<IpNet, (MpNextHop, PathAttributes)> = expected[q]
                .iter()
                .filter_map(|(n, (nh, a))| Some((*n, (*nh, normal_form(&neg, *n, *nh, a)?))))
                .collect();
            let got = &peer.model.out;
            if &exp != got {
                let diff: Vec<_> = exp
                    .keys()
                    .chain(got.keys())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .filter(|n| exp.get(n) != got.get(n))
                    .map(|n| (n, exp.get(n), got.get(n)))
                    .collect();
                panic!("p{q} holds other routes than the best paths imply: {diff:#?}");
            }
        }
    }
}

/// `a` for `prefix` encoded on a session with `neg` and decoded again; `None`
/// if it cannot be encoded (then nothing is sent).
fn normal_form(
    neg: &Negotiated,
    prefix: IpNet,
    nh: MpNextHop,
    a: &PathAttributes,
) -> Option<PathAttributes> {
    let b = UpdateBuilder::new(neg);
    let mut out = BytesMut::new();
    match prefix {
        IpNet::V4(n) => b.announce_v4(a, nh, [n], &mut out).ok()?,
        IpNet::V6(n) => b.announce_v6(a, nh, [n], &mut out).ok()?,
    };
    match Message::decode(out.freeze(), neg).ok()? {
        Message::Update(u) => Some(u.attrs.without_reach()),
        _ => None,
    }
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let Some(mut world) = World::new(&mut input) else {
        return;
    };
    let mut ops = 0;
    while let Some(op) = input.u8() {
        ops += 1;
        if ops > 64 {
            break;
        }
        let p = usize::from(op >> 4) % PEERS;
        let done = match op & 15 {
            0 | 1 => world.establish(p, &mut input),
            2 => {
                world.event(p, Event::Closed(Direction::Inbound));
                Some(())
            }
            3 | 4 => world.update(p, &mut input),
            5 => world.raw_update(p, &mut input),
            6 => input.u8().map(|b| {
                let afi = u16::from(b % 4);
                let subtype = (b >> 2) % 4;
                let safi = if b & 0x80 != 0 { 2 } else { 1 };
                world.send_message(
                    p,
                    Message::RouteRefresh(RouteRefresh { afi, subtype, safi }),
                );
            }),
            7 => {
                world.send_message(p, Message::Notification(Notification::cease(2)));
                Some(())
            }
            8 => input.u8().map(|b| {
                let cost = match b % 7 {
                    0 => None,
                    1 => Some(0),
                    2 => Some(1),
                    3 => Some(10),
                    4 => Some((1 << 31) - 1),
                    5 => Some(1 << 31),
                    _ => Some(u32::MAX),
                };
                world.rib.set_link_cost(p, cost);
            }),
            9 => input.u8().map(|b| {
                let set: BTreeSet<IpNet> = (0..8)
                    .filter(|i| b & (1 << i) != 0)
                    .map(|i| prefix(i * 2))
                    .collect();
                world.seen.extend(set.iter().copied());
                world.rib.set_originated(set);
            }),
            10 => {
                world.send_message(p, Message::Keepalive);
                Some(())
            }
            11 => input.u8().map(|b| {
                // The FIB reports whether the kernel holds a prefix's route.
                let n = prefix(b);
                let ok = b & 0x10 != 0;
                if ok {
                    world.not_forwardable.remove(&n);
                } else {
                    world.not_forwardable.insert(n);
                }
                world.rib.set_forwarding(n, ok);
            }),
            12 => input.u8().map(|b| world.pull(p, budget(b))),
            _ => {
                world.flush(budget(op >> 4));
                Some(())
            }
        };
        if done.is_none() {
            break;
        }
    }
    world.flush(usize::MAX);
});
