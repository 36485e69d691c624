//! One received UPDATE, cut by view: the default view's part and, per view
//! id, an ordinary IPv4/IPv6 unicast UPDATE for that view's table (the view
//! families' entries repacked as plain prefixes). The view's `Rib` thus
//! imports exactly as the default one does; only the way in and out differs.

use crate::wire::attr::is_view;
use crate::wire::{AfiSafi, MpReach, MpUnreach, Update};
use ipnet::IpNet;
use std::collections::BTreeMap;

/// What one UPDATE holds.
#[derive(Debug, Default)]
pub struct Split {
    /// Whatever is not of a view family; `None` when nothing is left (an
    /// UPDATE of view routes only must not reach the default table as an
    /// empty UPDATE, which would read as its End-of-RIB).
    pub default: Option<Update>,
    /// Per view id, the unicast UPDATE of that view's routes.
    pub views: BTreeMap<u8, Update>,
    /// End-of-RIB of a view family (RFC 4724 §2): every view's table of
    /// that AFI got all the routes of the session.
    pub end_of_rib: Option<AfiSafi>,
}

/// Whether `u` carries anything of a view family.
pub fn has_views(u: &Update) -> bool {
    let a = &u.attrs;
    a.mp_reach.as_ref().is_some_and(|r| is_view(r.afi_safi))
        || a.mp_unreach.as_ref().is_some_and(|r| is_view(r.afi_safi))
}

fn unicast(f: AfiSafi) -> AfiSafi {
    AfiSafi {
        afi: f.afi,
        safi: crate::wire::SAFI_UNICAST,
    }
}

/// Cuts `u` (see [`Split`]); for an UPDATE without view routes use `u` as is.
pub fn split(u: &Update) -> Split {
    let mut out = Split::default();
    if let Some(f) = u.is_end_of_rib().filter(|f| is_view(*f)) {
        out.end_of_rib = Some(unicast(f));
        return out;
    }
    let a = &u.attrs;
    let reach = a.mp_reach.as_ref().filter(|r| is_view(r.afi_safi));
    let unreach = a.mp_unreach.as_ref().filter(|r| is_view(r.afi_safi));
    // The default view's rest.
    let mut rest = u.clone();
    if reach.is_some() {
        rest.attrs.mp_reach = None;
    }
    if unreach.is_some() {
        rest.attrs.mp_unreach = None;
    }
    let keeps = !rest.withdrawn.is_empty()
        || !rest.nlri.is_empty()
        || rest.attrs.mp_reach.is_some()
        || rest.attrs.mp_unreach.is_some();
    if keeps {
        out.default = Some(rest);
    }
    // The view's attributes: the same, without MP_REACH / MP_UNREACH.
    let base = Update {
        attrs: a.without_reach(),
        issues: u.issues.clone(),
        ..Update::default()
    };
    let group = |entries: &mut dyn Iterator<Item = (u8, IpNet)>| {
        let mut m: BTreeMap<u8, Vec<IpNet>> = BTreeMap::new();
        for (id, p) in entries {
            m.entry(id).or_default().push(p);
        }
        m
    };
    if let Some(w) = unreach {
        for (id, prefixes) in group(&mut w.view_prefixes()) {
            let v = out.views.entry(id).or_insert_with(|| base.clone());
            v.attrs.mp_unreach = Some(Box::new(MpUnreach::new(unicast(w.afi_safi), prefixes)));
        }
    }
    if let Some(r) = reach {
        for (id, prefixes) in group(&mut r.view_prefixes()) {
            let v = out.views.entry(id).or_insert_with(|| base.clone());
            v.attrs.mp_reach = Some(Box::new(MpReach::new(
                unicast(r.afi_safi),
                r.next_hop,
                prefixes,
            )));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{view_nlri, Message, MpNextHop, Negotiated, UpdateBuilder};
    use bytes::BytesMut;
    use ipnet::Ipv4Net;

    fn decode(b: bytes::Bytes) -> Update {
        let neg = Negotiated {
            views: crate::wire::Families {
                ipv4_unicast: true,
                ipv6_unicast: true,
            },
            ..Negotiated::FABRIC
        };
        match Message::decode(b, &neg).unwrap() {
            Message::Update(u) => u,
            m => panic!("{m:?}"),
        }
    }

    fn view_neg(id: u8) -> Negotiated {
        Negotiated {
            view: Some(id),
            ..Negotiated::FABRIC
        }
    }

    #[test]
    fn a_view_update_becomes_a_unicast_one_for_its_table() {
        let nh = MpNextHop::V6 {
            global: std::net::Ipv6Addr::UNSPECIFIED,
            link_local: Some("fe80::1".parse().unwrap()),
        };
        let mut attrs = crate::rib::originated_attributes();
        attrs.med = Some(30);
        let p: Ipv4Net = "10.255.0.3/32".parse().unwrap();
        let mut b = BytesMut::new();
        UpdateBuilder::new(&view_neg(4))
            .announce_v4(&attrs, nh, [p], &mut b)
            .unwrap();
        let s = split(&decode(b.freeze()));
        assert!(s.default.is_none(), "nothing for the default table");
        assert_eq!(s.views.keys().copied().collect::<Vec<_>>(), [4]);
        let v = &s.views[&4];
        let r = v.attrs.mp_reach.as_ref().unwrap();
        assert_eq!(r.afi_safi, AfiSafi::IPV4_UNICAST);
        assert_eq!(r.next_hop, nh);
        assert_eq!(v.announced().collect::<Vec<_>>(), [IpNet::V4(p)]);
        assert_eq!(v.attrs.med, Some(30));
        // Withdrawal and End-of-RIB.
        let mut b = BytesMut::new();
        let builder = UpdateBuilder::new(&view_neg(4));
        builder.withdraw_v4([p], &mut b).unwrap();
        let s = split(&decode(b.split().freeze()));
        assert!(s.default.is_none());
        assert_eq!(
            s.views[&4].withdrawn_all().collect::<Vec<_>>(),
            [IpNet::V4(p)]
        );
        builder.end_of_rib(AfiSafi::IPV6_UNICAST, &mut b).unwrap();
        let s = split(&decode(b.freeze()));
        assert_eq!(s.end_of_rib, Some(AfiSafi::IPV6_UNICAST));
        assert!(s.default.is_none() && s.views.is_empty());
    }

    #[test]
    fn mixed_views_and_default_fields_are_cut_apart() {
        // IPv4 NLRI field for the default view plus MP_UNREACH of two views.
        let mut u = Update::announce_v4(
            crate::rib::originated_attributes(),
            "192.0.2.1".parse().unwrap(),
            ["10.255.0.9/32".parse().unwrap()],
        );
        let mut list = BytesMut::new();
        view_nlri::put(&mut list, 2, "10.255.0.1/32".parse().unwrap());
        view_nlri::put(&mut list, 3, "10.255.0.2/32".parse().unwrap());
        view_nlri::put(&mut list, 2, "10.255.0.4/32".parse().unwrap());
        u.attrs.mp_unreach = Some(Box::new(MpUnreach {
            afi_safi: view_nlri::IPV4_VIEW,
            withdrawn: list.freeze(),
            add_path: false,
        }));
        let s = split(&u);
        let d = s.default.unwrap();
        assert!(d.attrs.mp_unreach.is_none());
        assert_eq!(d.announced().count(), 1);
        assert_eq!(s.views[&2].withdrawn_all().count(), 2);
        assert_eq!(s.views[&3].withdrawn_all().count(), 1);
        assert!(has_views(&u) && !has_views(&d));
    }
}
