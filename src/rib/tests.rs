//! Import, export, reflection and batching rules of [`Rib`], one test each.

use super::*;
use crate::wire::{AfiSafi, AsPath, Message, MpNextHop, MpReach, MpUnreach, Negotiated, Origin};
use crate::wire::{AttrErrorAction, AttrIssue, PathAttributes, Update};
use std::net::Ipv6Addr;

pub(super) const ME: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);

pub(super) fn neg() -> Negotiated {
    Negotiated::FABRIC
}

pub(super) fn loopbacks() -> Loopbacks {
    Loopbacks {
        ipv4: vec!["10.255.0.0/16".parse().unwrap()],
        ipv6: vec!["fd00:255::/48".parse().unwrap()],
        originate: Vec::new(),
        from_lo: false,
    }
}

pub(super) fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub(super) fn ll(i: u16) -> Ipv6Addr {
    Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 1, i)
}

pub(super) fn peer_cfg(i: u16, cost: Option<u32>) -> PeerConfig {
    PeerConfig {
        name: format!("p{i}"),
        address: IpAddr::V6(ll(i)),
        interface: Some(format!("wg{i}")),
        rr_client: true,
        cost,
        import_limit: 1000,
        import_limit_action: ImportLimitAction::Block,
        filtered_limit: 1000,
        multihop: false,
    }
}

/// A Rib with three established peers p1..p3 (router ids 10.0.0.11..13).
pub(super) fn rib_with(costs: [Option<u32>; 3]) -> Rib {
    let mut rib = Rib::new(RibConfig {
        router_id: ME,
        cluster_id: None,
        local_as: 65000,
        loopbacks: loopbacks(),
    });
    for (i, c) in costs.into_iter().enumerate() {
        let id = rib.add_peer(peer_cfg(i as u16 + 1, c));
        up(&mut rib, id);
    }
    flush(&mut rib);
    rib
}

/// A flush, then everything queued pulled for every peer.
pub(super) fn flush(rib: &mut Rib) -> Vec<RibOutput> {
    let mut out = rib.flush();
    out.extend(rib.transmit_all());
    out.extend(rib.fib_all());
    out
}

pub(super) fn up(rib: &mut Rib, id: PeerId) {
    let local = format!("[fe80::9:{}%3]:1790", id + 1).parse().unwrap();
    let remote_id = Ipv4Addr::new(10, 0, 0, 11 + id as u8);
    rib.peer_up(id, ExportContext::new(neg(), Some(local)), remote_id);
}

pub(super) fn attrs(med: Option<u32>) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        local_pref: Some(100),
        med,
        ..Default::default()
    }
}

pub(super) fn announce_with(a: PathAttributes, prefixes: &[&str], nh: u16) -> Update {
    let v6 = prefixes.iter().any(|p| p.contains(':'));
    let family = if v6 {
        AfiSafi::IPV6_UNICAST
    } else {
        AfiSafi::IPV4_UNICAST
    };
    let next_hop = MpNextHop::V6 {
        global: Ipv6Addr::UNSPECIFIED,
        link_local: Some(ll(nh)),
    };
    Update {
        attrs: PathAttributes {
            mp_reach: Some(Box::new(MpReach::new(
                family,
                next_hop,
                prefixes.iter().map(|p| net(p)),
            ))),
            ..a
        },
        ..Default::default()
    }
}

pub(super) fn announce(med: Option<u32>, prefixes: &[&str]) -> Update {
    announce_with(attrs(med), prefixes, 77)
}

pub(super) fn withdraw(prefixes: &[&str]) -> Update {
    let v6 = prefixes.iter().any(|p| p.contains(':'));
    if v6 {
        Update {
            attrs: PathAttributes {
                mp_unreach: Some(Box::new(MpUnreach::new(
                    AfiSafi::IPV6_UNICAST,
                    prefixes.iter().map(|p| net(p)),
                ))),
                ..Default::default()
            },
            ..Default::default()
        }
    } else {
        Update::withdraw_v4(prefixes.iter().map(|p| p.parse().unwrap()))
    }
}

/// What one peer got in a flush: (announced prefix, attrs), withdrawn, raw messages.
#[derive(Default, Debug)]
pub(super) struct Got {
    pub announced: Vec<(IpNet, PathAttributes)>,
    pub withdrawn: Vec<IpNet>,
    pub messages: Vec<Message>,
}

/// The messages sent to `peer`, decoded as it sees its session (`n`).
pub(super) fn sent_to(outputs: &[RibOutput], peer: PeerId, n: Negotiated) -> Vec<Message> {
    outputs
        .iter()
        .filter_map(|o| match o {
            RibOutput::Send { peer: p, messages } if *p == peer => Some(messages),
            _ => None,
        })
        .flatten()
        .map(|m| Message::decode(m.clone(), &n).unwrap())
        .collect()
}

pub(super) fn got(outputs: &[RibOutput], peer: PeerId) -> Got {
    let mut g = Got::default();
    for m in sent_to(outputs, peer, neg()) {
        if let Message::Update(u) = &m {
            g.withdrawn.extend(u.withdrawn_all());
            for p in u.announced() {
                g.announced.push((p, u.attrs.without_reach()));
            }
        }
        g.messages.push(m);
    }
    g
}

fn med_sent(outputs: &[RibOutput], peer: PeerId, prefix: &str) -> Option<u32> {
    got(outputs, peer)
        .announced
        .into_iter()
        .find(|(p, _)| *p == net(prefix))
        .and_then(|(_, a)| a.med)
}

#[test]
fn import_adds_link_cost_to_received_med() {
    let mut rib = rib_with([Some(10), Some(1), Some(1)]);
    rib.update(0, &announce(Some(5), &["10.255.0.7/32"]));
    rib.update(0, &announce(None, &["10.255.0.8/32"]));
    let out = flush(&mut rib);
    assert_eq!(med_sent(&out, 1, "10.255.0.7/32"), Some(15));
    assert_eq!(med_sent(&out, 1, "10.255.0.8/32"), Some(10), "cost alone");
    let e = rib.explain(net("10.255.0.7/32"));
    let c = &e.candidates[0];
    assert_eq!(
        (c.received_med, c.link_cost, c.med, c.best),
        (Some(5), Some(10), 15, true)
    );
}

#[test]
fn med_saturates_and_unknown_cost_is_2_pow_31() {
    let mut rib = rib_with([Some(10), None, Some(1)]);
    rib.update(0, &announce(Some(u32::MAX - 3), &["10.255.0.7/32"]));
    rib.update(1, &announce(Some(7), &["10.255.0.8/32"]));
    rib.update(1, &announce(Some(1 << 31), &["10.255.0.9/32"]));
    let out = flush(&mut rib);
    // The decision uses the saturated total; what is sent is capped at 2^31-1
    // (reflect::advertised_med: a BIRD neighbor adding up to 2^31 never wraps).
    let cap = reflect::MAX_ADVERTISED_MED;
    assert_eq!(med_sent(&out, 2, "10.255.0.7/32"), Some(cap));
    assert_eq!(med_sent(&out, 2, "10.255.0.8/32"), Some(cap));
    assert_eq!(med_sent(&out, 2, "10.255.0.9/32"), Some(cap));
    assert_eq!(
        rib.explain(net("10.255.0.7/32")).candidates[0].med,
        u32::MAX
    );
    assert_eq!(
        rib.explain(net("10.255.0.9/32")).candidates[0].med,
        u32::MAX
    );
    let e = rib.explain(net("10.255.0.8/32"));
    assert_eq!(e.candidates[0].med, (1 << 31) + 7);
    assert!(e.candidates[0].link_cost_unknown);
    assert_eq!(e.candidates[0].link_cost, Some(2_147_483_648));
}

#[test]
fn reflected_routes_carry_originator_and_cluster_own_routes_neither() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &announce(Some(2), &["fd00:255::7/128"]));
    rib.set_originated([net("10.255.0.1/32")].into());
    let out = flush(&mut rib);
    let g = got(&out, 1);
    let (_, learned) = g
        .announced
        .iter()
        .find(|(p, _)| *p == net("fd00:255::7/128"))
        .unwrap();
    assert_eq!(learned.originator_id, Some(Ipv4Addr::new(10, 0, 0, 11)));
    assert_eq!(learned.cluster_list, vec![ME]);
    assert_eq!(learned.local_pref, Some(100));
    assert_eq!(learned.as_path, Some(AsPath::default()), "iBGP: no prepend");
    let (_, own) = g
        .announced
        .iter()
        .find(|(p, _)| *p == net("10.255.0.1/32"))
        .unwrap();
    assert_eq!(*own, originated_attributes());
    // Next hop self: our link-local address on that session.
    let Message::Update(u) = &g.messages[0] else {
        panic!()
    };
    assert_eq!(
        u.attrs.mp_reach.as_ref().unwrap().next_hop,
        MpNextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: Some("fe80::9:2".parse().unwrap())
        }
    );
}

#[test]
fn own_originator_id_and_cluster_loops_are_filtered() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    let mut a = attrs(None);
    a.originator_id = Some(ME);
    rib.update(0, &announce_with(a, &["10.255.0.7/32"], 7));
    let mut a = attrs(None);
    a.cluster_list = vec![Ipv4Addr::new(10, 0, 0, 50), ME].into();
    rib.update(0, &announce_with(a, &["10.255.0.8/32"], 7));
    let out = flush(&mut rib);
    assert!(got(&out, 1).announced.is_empty());
    let reason = |p| rib.explain(net(p)).filtered[0].reason.clone();
    assert_eq!(reason("10.255.0.7/32"), FilterReason::OriginatorIsUs);
    assert_eq!(reason("10.255.0.8/32"), FilterReason::ClusterLoop);
}

#[test]
fn configured_cluster_id_is_used_for_loops_and_prepending() {
    let cluster = Ipv4Addr::new(10, 0, 0, 100);
    let mut rib = Rib::new(RibConfig {
        router_id: ME,
        cluster_id: Some(cluster),
        local_as: 65000,
        loopbacks: loopbacks(),
    });
    for i in 0..2 {
        let id = rib.add_peer(peer_cfg(i + 1, Some(1)));
        up(&mut rib, id);
    }
    let mut a = attrs(None);
    a.cluster_list = vec![cluster].into();
    rib.update(0, &announce_with(a, &["10.255.0.8/32"], 7));
    rib.update(0, &announce(None, &["10.255.0.9/32"]));
    let out = flush(&mut rib);
    let g = got(&out, 1);
    assert_eq!(g.announced.len(), 1, "{g:?}");
    assert_eq!(g.announced[0].1.cluster_list, vec![cluster]);
}

#[test]
fn never_back_to_sender_and_withdrawn_there_when_best_moves() {
    let mut rib = rib_with([Some(10), Some(10), Some(10)]);
    rib.update(1, &announce(Some(50), &["10.255.0.7/32"]));
    let out = flush(&mut rib);
    assert_eq!(med_sent(&out, 0, "10.255.0.7/32"), Some(60));
    assert!(got(&out, 1).announced.is_empty(), "not back to p2");
    // p1 now offers a better path: p2 gets it, p1 gets a withdrawal.
    rib.update(0, &announce(Some(5), &["10.255.0.7/32"]));
    let out = flush(&mut rib);
    assert_eq!(got(&out, 0).withdrawn, vec![net("10.255.0.7/32")]);
    assert_eq!(med_sent(&out, 1, "10.255.0.7/32"), Some(15));
    assert_eq!(med_sent(&out, 2, "10.255.0.7/32"), Some(15));
}

#[test]
fn non_client_routes_only_go_to_clients() {
    let mut rib = Rib::new(RibConfig {
        router_id: ME,
        cluster_id: None,
        local_as: 65000,
        loopbacks: loopbacks(),
    });
    for (i, client) in [(1, false), (2, false), (3, true)] {
        let id = rib.add_peer(PeerConfig {
            rr_client: client,
            ..peer_cfg(i, Some(1))
        });
        up(&mut rib, id);
    }
    flush(&mut rib);
    rib.update(0, &announce(None, &["10.255.0.7/32"]));
    rib.update(2, &announce(None, &["10.255.0.8/32"]));
    let out = flush(&mut rib);
    let prefixes = |p| -> Vec<IpNet> { got(&out, p).announced.iter().map(|a| a.0).collect() };
    assert_eq!(
        prefixes(1),
        vec![net("10.255.0.8/32")],
        "non-client to non-client: no"
    );
    assert_eq!(prefixes(2), vec![net("10.255.0.7/32")]);
    assert_eq!(prefixes(0), vec![net("10.255.0.8/32")]);
}

#[test]
fn only_changed_prefixes_are_sent_again() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &announce(Some(1), &["10.255.0.7/32", "10.255.0.8/32"]));
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).announced.len(), 2);
    assert_eq!(
        got(&out, 1).messages.len(),
        1,
        "one UPDATE for one attribute set"
    );
    // Same routes again: nothing to send.
    rib.update(0, &announce(Some(1), &["10.255.0.7/32", "10.255.0.8/32"]));
    assert!(flush(&mut rib).is_empty());
    rib.update(0, &announce(Some(9), &["10.255.0.8/32"]));
    let out = flush(&mut rib);
    let g = got(&out, 1);
    assert_eq!(g.announced.len(), 1);
    assert_eq!(g.announced[0].0, net("10.255.0.8/32"));
    // A worse path from another peer does not change the best: nothing sent.
    rib.update(1, &announce(Some(500), &["10.255.0.7/32"]));
    let out = flush(&mut rib);
    assert!(out
        .iter()
        .all(|o| !matches!(o, RibOutput::Send { peer, .. } if *peer != 1)));
}

#[test]
fn groups_prefixes_by_attribute_set_and_packs_withdrawals() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &announce(Some(1), &["10.255.0.1/32", "10.255.0.2/32"]));
    rib.update(0, &announce(Some(2), &["10.255.0.3/32"]));
    rib.update(0, &announce(Some(1), &["10.255.0.4/32"]));
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).messages.len(), 2, "two attribute sets");
    rib.update(
        0,
        &withdraw(&["10.255.0.1/32", "10.255.0.3/32", "10.255.0.4/32"]),
    );
    let out = flush(&mut rib);
    let g = got(&out, 1);
    assert_eq!(g.messages.len(), 1);
    assert_eq!(g.withdrawn.len(), 3);
}

/// Two established peers; `a` accepts at most `limit` routes (block).
fn limited_pair(limit: u32) -> (Rib, PeerId, PeerId) {
    let mut rib = Rib::new(RibConfig {
        router_id: ME,
        cluster_id: None,
        local_as: 65000,
        loopbacks: loopbacks(),
    });
    let a = rib.add_peer(PeerConfig {
        import_limit: limit,
        ..peer_cfg(1, Some(1))
    });
    let b = rib.add_peer(peer_cfg(2, Some(1)));
    up(&mut rib, a);
    up(&mut rib, b);
    flush(&mut rib);
    (rib, a, b)
}

#[test]
fn import_limit_blocks_reports_once_and_recovers() {
    let (mut rib, a, b) = limited_pair(2);
    rib.update(
        a,
        &announce(None, &["10.255.0.1/32", "10.255.0.2/32", "10.255.0.3/32"]),
    );
    rib.update(a, &announce(None, &["10.255.0.4/32"]));
    let out = flush(&mut rib);
    let limits: Vec<_> = out
        .iter()
        .filter(|o| matches!(o, RibOutput::LimitReached { .. }))
        .collect();
    assert_eq!(
        limits,
        vec![&RibOutput::LimitReached {
            peer: a,
            action: ImportLimitAction::Block,
            limit: 2
        }]
    );
    assert_eq!(got(&out, b).announced.len(), 2);
    assert_eq!(rib.counts(a).accepted, 2);
    assert_eq!(rib.counts(a).filtered, 2);
    assert_eq!(
        rib.explain(net("10.255.0.3/32")).filtered[0].reason,
        FilterReason::ImportLimit
    );
    // Re-announcing an accepted route at the limit keeps it.
    rib.update(a, &announce(Some(3), &["10.255.0.1/32"]));
    assert_eq!(rib.counts(a).accepted, 2);
    // Room again: the held route with the lowest prefix is accepted first.
    rib.update(a, &withdraw(&["10.255.0.2/32"]));
    let out = flush(&mut rib);
    let g = got(&out, b);
    assert_eq!(g.withdrawn, vec![net("10.255.0.2/32")]);
    let sent: Vec<IpNet> = g.announced.iter().map(|a| a.0).collect();
    assert_eq!(
        sent,
        [net("10.255.0.1/32"), net("10.255.0.3/32")],
        "new MED, promoted"
    );
    assert_eq!((rib.counts(a).accepted, rib.counts(a).filtered), (2, 1));
    // Then new announcements once there is room.
    rib.update(a, &withdraw(&["10.255.0.1/32", "10.255.0.4/32"]));
    rib.update(a, &announce(None, &["10.255.0.6/32"]));
    let out = flush(&mut rib);
    assert!(got(&out, b)
        .announced
        .iter()
        .any(|(p, _)| *p == net("10.255.0.6/32")));
    assert_eq!(rib.counts(a).accepted, 2);
    // And it is reported again the next time.
    rib.update(a, &announce(None, &["10.255.0.5/32"]));
    assert!(flush(&mut rib)
        .iter()
        .any(|o| matches!(o, RibOutput::LimitReached { .. })));
}

#[test]
fn reloaded_import_limit_admits_held_routes() {
    let (mut rib, a, b) = limited_pair(1);
    rib.update(a, &announce(None, &["10.255.0.1/32", "10.255.0.2/32"]));
    flush(&mut rib);
    assert_eq!((rib.counts(a).accepted, rib.counts(a).filtered), (1, 1));
    rib.set_import_limit(a, 5, ImportLimitAction::Block);
    let out = flush(&mut rib);
    assert_eq!(got(&out, b).announced.len(), 1, "the held route goes out");
    assert_eq!((rib.counts(a).accepted, rib.counts(a).filtered), (2, 0));
    assert_eq!(rib.counts(a).limit, 5);
}

#[test]
fn import_limit_warn_accepts() {
    let mut rib = Rib::new(RibConfig {
        router_id: ME,
        cluster_id: None,
        local_as: 65000,
        loopbacks: loopbacks(),
    });
    let a = rib.add_peer(PeerConfig {
        import_limit: 1,
        import_limit_action: ImportLimitAction::Warn,
        ..peer_cfg(1, Some(1))
    });
    up(&mut rib, a);
    rib.update(a, &announce(None, &["10.255.0.1/32", "10.255.0.2/32"]));
    let out = flush(&mut rib);
    assert_eq!(rib.counts(a).accepted, 2);
    assert_eq!(
        out.iter()
            .filter(|o| matches!(
                o,
                RibOutput::LimitReached {
                    action: ImportLimitAction::Warn,
                    ..
                }
            ))
            .count(),
        1
    );
}

#[test]
fn filtered_routes_are_kept_with_their_reason() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(
        0,
        &announce(None, &["10.255.0.0/24", "192.0.2.1/32", "10.255.0.1/32"]),
    );
    let mut no_nh = announce(None, &["fd00:255::1/128"]);
    if let Some(r) = no_nh.attrs.mp_reach.as_mut() {
        r.next_hop = MpNextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: None,
        };
    }
    rib.update(0, &no_nh);
    flush(&mut rib);
    let reasons: Vec<_> = rib
        .routes(false, true)
        .into_iter()
        .map(|r| (r.prefix, r.status, r.reason.unwrap()))
        .collect();
    assert_eq!(reasons.len(), 3);
    assert!(reasons.iter().all(|r| r.1 == "filtered"));
    assert_eq!(reasons[0].0, "10.255.0.0/24");
    assert_eq!(reasons[0].2, FilterReason::NotHostRoute.to_string());
    assert_eq!(
        reasons[1].2,
        FilterReason::OutsideLoopbackRanges.to_string()
    );
    assert_eq!(reasons[2].2, FilterReason::BadNextHop("::").to_string());
    assert_eq!(rib.counts(0).accepted, 1);
}

#[test]
fn treat_as_withdraw_removes_the_route_and_keeps_it_as_filtered() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &announce(None, &["10.255.0.1/32"]));
    flush(&mut rib);
    let mut bad = announce(None, &["10.255.0.1/32"]);
    bad.issues.push(AttrIssue {
        code: 4,
        action: AttrErrorAction::TreatAsWithdraw,
        reason: "bad MED length",
    });
    rib.update(0, &bad);
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn, vec![net("10.255.0.1/32")]);
    assert_eq!(
        rib.explain(net("10.255.0.1/32")).filtered[0].reason,
        FilterReason::MalformedAttributes("bad MED length")
    );
}

#[test]
fn peer_up_sends_full_table_then_end_of_rib() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.set_originated([net("10.255.0.1/32"), net("fd00:255::1/128")].into());
    rib.update(0, &announce(Some(1), &["10.255.0.7/32"]));
    flush(&mut rib);
    rib.peer_down(2);
    up(&mut rib, 2);
    let out = flush(&mut rib);
    let g = got(&out, 2);
    assert_eq!(g.announced.len(), 3);
    let eors: Vec<_> = g
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::Update(u) => u.is_end_of_rib(),
            _ => None,
        })
        .collect();
    assert_eq!(eors, [AfiSafi::IPV4_UNICAST, AfiSafi::IPV6_UNICAST]);
    assert!(matches!(g.messages.last(), Some(Message::Update(u)) if u.is_end_of_rib().is_some()));
}

#[test]
fn route_refresh_resends_with_borr_and_eorr() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.set_originated([net("10.255.0.1/32"), net("fd00:255::1/128")].into());
    flush(&mut rib);
    rib.route_refresh(1, crate::wire::AFI_IPV4);
    let out = flush(&mut rib);
    let g = got(&out, 1);
    assert_eq!(g.announced.len(), 1);
    let subtypes: Vec<_> = g
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::RouteRefresh(r) => Some(r.subtype),
            _ => None,
        })
        .collect();
    assert_eq!(subtypes, [1, 2]);
    assert!(matches!(g.messages[0], Message::RouteRefresh(_)));
}

#[test]
fn link_cost_change_redecides_only_that_peers_prefixes() {
    let mut rib = rib_with([Some(10), Some(20), Some(1)]);
    rib.update(0, &announce_with(attrs(Some(0)), &["10.255.0.7/32"], 1));
    rib.update(1, &announce_with(attrs(Some(0)), &["10.255.0.7/32"], 2));
    rib.update(1, &announce_with(attrs(Some(0)), &["10.255.0.8/32"], 2));
    let out = flush(&mut rib);
    assert!(out.contains(&RibOutput::BestChanged {
        prefix: net("10.255.0.7/32"),
        best: Some((IpAddr::V6(ll(1)), 0))
    }));
    rib.set_link_cost(0, Some(30));
    let out = flush(&mut rib);
    assert!(out.contains(&RibOutput::BestChanged {
        prefix: net("10.255.0.7/32"),
        best: Some((IpAddr::V6(ll(2)), 1))
    }));
    let g = got(&out, 2);
    assert_eq!(g.announced.len(), 1, "10.255.0.8 untouched");
    assert_eq!(g.announced[0].1.med, Some(20));
    assert_eq!(rib.link_cost(0), Some(30));
    let e = rib.explain(net("10.255.0.7/32"));
    let loser = e.candidates.iter().find(|c| !c.best).unwrap();
    let lost = loser.lost.as_ref().unwrap();
    assert_eq!((lost.step, lost.against.as_str()), (Step::Med, "p2"));
}

#[test]
fn peer_down_withdraws_its_routes_everywhere() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.update(0, &announce(None, &["10.255.0.7/32"]));
    rib.update(0, &announce(None, &["fd00:255::7/128"]));
    flush(&mut rib);
    rib.peer_down(0);
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn.len(), 2);
    assert!(out.contains(&RibOutput::BestChanged {
        prefix: net("10.255.0.7/32"),
        best: None
    }));
    assert!(rib.explain(net("10.255.0.7/32")).candidates.is_empty());
    assert!(rib.is_empty());
}

#[test]
fn own_loopback_wins_and_withdrawal_of_origination_propagates() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.set_originated([net("10.255.0.1/32"), net("192.0.2.1/32")].into());
    rib.update(0, &announce(Some(0), &["10.255.0.1/32"]));
    let out = flush(&mut rib);
    assert_eq!(rib.originated().len(), 1, "only loopbacks are originated");
    assert_eq!(got(&out, 0).announced.len(), 1, "ours goes to p1 too");
    let e = rib.explain(net("10.255.0.1/32"));
    assert_eq!(e.best.as_deref(), Some("self"));
    let lost = e.candidates[1].lost.as_ref().unwrap();
    assert_eq!(lost.step, Step::LocallyOriginated);
    // Stop originating: p1's path takes over and goes to the others.
    rib.set_originated(BTreeSet::new());
    let out = flush(&mut rib);
    assert_eq!(got(&out, 0).withdrawn, vec![net("10.255.0.1/32")]);
    assert_eq!(med_sent(&out, 1, "10.255.0.1/32"), Some(1));
}

#[test]
fn route_views_best_all_filtered() {
    let mut rib = rib_with([Some(1), Some(5), Some(1)]);
    rib.update(0, &announce(None, &["10.255.0.7/32", "192.0.2.1/32"]));
    rib.update(1, &announce(None, &["10.255.0.7/32"]));
    flush(&mut rib);
    let best = rib.routes(false, false);
    assert_eq!(best.len(), 1);
    assert!(best[0].best && best[0].peer == "p1" && best[0].status == "accepted");
    assert_eq!(
        (best[0].received_med, best[0].link_cost, best[0].med),
        (None, Some(1), Some(1))
    );
    let all = rib.routes(true, false);
    assert_eq!(all.len(), 2);
    assert!(!all[1].best && all[1].peer == "p2");
    let both = rib.routes(true, true);
    assert_eq!(both.len(), 3);
    let json = serde_json::to_value(&best[0]).unwrap();
    for key in [
        "prefix", "peer", "next_hop", "status", "reason", "med", "best",
    ] {
        assert!(json.get(key).is_some(), "{key}");
    }
}

#[test]
fn updates_for_unknown_or_down_peers_are_ignored() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.peer_down(0);
    assert_eq!(
        rib.update(0, &announce(None, &["10.255.0.7/32"])),
        Learned::default()
    );
    assert_eq!(
        rib.update(99, &announce(None, &["10.255.0.7/32"])),
        Learned::default()
    );
    rib.set_link_cost(99, Some(1));
    rib.route_refresh(99, 1);
    rib.peer_down(99);
    assert!(flush(&mut rib).is_empty());
}

/// Rough scale check (debug builds are slow; run with `--ignored --nocapture`).
#[test]
#[ignore]
fn reflects_many_routes() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.peers[0].cfg.import_limit = 0;
    let n: u32 = 200_000;
    let t = std::time::Instant::now();
    let prefixes: Vec<IpNet> = (0..n)
        .map(|i| {
            IpNet::V6(
                ipnet::Ipv6Net::new(
                    Ipv6Addr::from(0xfd00_0255_0000_0000_0000_0000_0000_0000u128 | u128::from(i)),
                    128,
                )
                .unwrap(),
            )
        })
        .collect();
    for chunk in prefixes.chunks(500) {
        let next_hop = MpNextHop::V6 {
            global: Ipv6Addr::UNSPECIFIED,
            link_local: Some(ll(1)),
        };
        let u = Update {
            attrs: PathAttributes {
                mp_reach: Some(Box::new(MpReach::new(
                    AfiSafi::IPV6_UNICAST,
                    next_hop,
                    chunk.iter().copied(),
                ))),
                ..attrs(Some(1))
            },
            ..Default::default()
        };
        rib.update(0, &u);
    }
    let imported = t.elapsed();
    let out = flush(&mut rib);
    let flushed = t.elapsed() - imported;
    let msgs: usize = out
        .iter()
        .map(|o| match o {
            RibOutput::Send { messages, .. } => messages.len(),
            _ => 0,
        })
        .sum();
    eprintln!(
        "{n} routes: import {imported:?}, flush {flushed:?}, {msgs} messages, {} sets",
        rib.attribute_sets()
    );
    assert_eq!(rib.counts(1).advertised, n as usize);
}

#[test]
fn a_path_the_kernel_cannot_hold_is_not_exported_until_installed() {
    let mut rib = rib_with([Some(1), Some(1), Some(1)]);
    rib.set_originated([net("10.255.0.1/32")].into());
    rib.update(0, &announce(None, &["10.255.0.7/32"]));
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).announced.len(), 2);
    // The FIB says: conflict or refused. Withdrawn from the others, best path kept.
    rib.set_forwarding(net("10.255.0.7/32"), false);
    rib.set_forwarding(net("10.255.0.1/32"), false);
    let out = flush(&mut rib);
    assert_eq!(got(&out, 1).withdrawn, vec![net("10.255.0.7/32")]);
    assert_eq!(got(&out, 2).withdrawn, vec![net("10.255.0.7/32")]);
    assert!(
        got(&out, 1).announced.is_empty(),
        "our own loopback is always exported"
    );
    assert_eq!(rib.counts(1).advertised, 1);
    assert_eq!(
        rib.explain(net("10.255.0.7/32")).best.as_deref(),
        Some("p1"),
        "the BGP state is untouched"
    );
    // A session coming up meanwhile does not get it either.
    rib.peer_down(2);
    flush(&mut rib);
    up(&mut rib, 2);
    let out = flush(&mut rib);
    assert_eq!(
        got(&out, 2)
            .announced
            .iter()
            .map(|(p, _)| *p)
            .collect::<Vec<_>>(),
        vec![net("10.255.0.1/32")]
    );
    // Installed: announced again.
    rib.set_forwarding(net("10.255.0.7/32"), true);
    let out = flush(&mut rib);
    assert_eq!(med_sent(&out, 1, "10.255.0.7/32"), Some(1));
    assert_eq!(med_sent(&out, 2, "10.255.0.7/32"), Some(1));
    assert_eq!(rib.counts(1).advertised, 2);
}

mod addpath;
mod graceful;
mod hardening;

/// Issue 12: the overlay on multihop sessions, resolved over the underlay.
mod overlay;

/// Step 5: resource limits (route table, filtered routes) on peer input.
mod limits;

/// Kernel routes pulled by the FIB in batches.
mod fib_pull;

/// Paths through a router whose session just went down.
mod lost_routers;
