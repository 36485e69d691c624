//! Table snapshots for MRT dumps (RFC 6396): the Loc-RIB (the selected path
//! per prefix, MED as the decision used it) and the Adj-RIB-In (every route
//! as received, accepted or filtered). Peer index 0 is this router (our own
//! routes); peer `i + 1` is neighbor `i`.

use super::flush::paths;
use super::loc_rib::Source;
use super::reflect::total_med;
use super::{PeerId, Rib};
use crate::mrt::{DumpEntry, DumpPeer, DumpPrefix, View};
use crate::wire::PathAttributes;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

impl Rib {
    /// The peers of a dump: this router, then every neighbor (its BGP
    /// identifier once a session came up, else 0.0.0.0).
    fn dump_peers(&self) -> Vec<DumpPeer> {
        let mut peers = vec![DumpPeer {
            bgp_id: self.cfg.router_id,
            address: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            asn: self.cfg.local_as,
        }];
        peers.extend(self.peers.iter().map(|p| DumpPeer {
            bgp_id: p.remote_id(),
            address: p.cfg.address,
            asn: self.cfg.local_as,
        }));
        peers
    }

    /// `(loc_rib, adj_rib_in)` views for [`crate::mrt::encode_view`].
    pub fn mrt_views(&self) -> (View, View) {
        let peers = self.dump_peers();
        let mut loc_view = View {
            name: "loc-rib".into(),
            peers: peers.clone(),
            prefixes: Vec::new(),
        };
        let mut adj_view = View {
            name: "adj-rib-in".into(),
            peers,
            prefixes: Vec::new(),
        };
        let loc = &self.loc;
        for id in loc.ids() {
            let dest = &loc.slab[id as usize];
            let prefix = loc.prefix(id);
            match loc.best_source(id) {
                Some(Source::Local) => loc_view.prefixes.push(DumpPrefix {
                    prefix,
                    entries: vec![DumpEntry {
                        peer: 0,
                        next_hop: None,
                        attrs: self.local_attrs.clone(),
                    }],
                }),
                Some(Source::Peer(best)) => {
                    if let Some((e, r)) = paths(loc, id)
                        .find(|(e, _)| e.peer() as usize == best && e.route() == dest.best_route())
                    {
                        let cost = self.peers.get(best).map_or(0, |p| p.link_cost());
                        // Overlay paths: the MED as received (no link cost on the overlay).
                        let med = if self.overlay.contains(&prefix) {
                            r.attrs.med
                        } else {
                            Some(total_med(r.attrs.med, cost))
                        };
                        let attrs = PathAttributes {
                            med,
                            ..(*r.attrs).clone()
                        };
                        loc_view.prefixes.push(DumpPrefix {
                            prefix,
                            entries: vec![DumpEntry {
                                peer: dump_index(e.peer()),
                                next_hop: r.next_hop,
                                attrs: Arc::new(attrs),
                            }],
                        });
                    }
                }
                None => {}
            }
            let mut entries: Vec<DumpEntry> = loc
                .entries(id)
                .map(|e| {
                    let r = loc.routes.get(e.route());
                    DumpEntry {
                        peer: dump_index(e.peer()),
                        next_hop: r.next_hop,
                        attrs: r.attrs.clone(),
                    }
                })
                .collect();
            if !entries.is_empty() {
                entries.sort_by_key(|e| e.peer);
                adj_view.prefixes.push(DumpPrefix { prefix, entries });
            }
        }
        (loc_view, adj_view)
    }

    /// The whole dump, encoded: both views, stamped `time` (seconds since the epoch).
    pub fn mrt_dump(&self, time: u32) -> bytes::BytesMut {
        let (l, a) = self.mrt_views();
        let mut out = bytes::BytesMut::new();
        let mut seq = 0;
        crate::mrt::encode_view(&l, self.cfg.router_id, time, &mut seq, &mut out);
        crate::mrt::encode_view(&a, self.cfg.router_id, time, &mut seq, &mut out);
        out
    }
}

fn dump_index(peer: u32) -> u16 {
    u16::try_from(peer.saturating_add(1)).unwrap_or(u16::MAX)
}

impl Rib {
    /// The route `peer` sent for `prefix` (Adj-RIB-In, accepted or filtered).
    pub fn received_route(&self, peer: PeerId, prefix: &ipnet::IpNet) -> Option<&super::InRoute> {
        self.received_path(peer, prefix, None)
    }

    /// The route `peer` sent for `prefix` with Path Identifier `path` (RFC
    /// 7911; `None`: the session has no ADD-PATH, its only route).
    pub fn received_path(
        &self,
        peer: PeerId,
        prefix: &ipnet::IpNet,
        path: Option<u32>,
    ) -> Option<&super::InRoute> {
        let id = self.loc.find(prefix)?;
        let r = self.loc.path_entry(id, peer as u32, path)?;
        Some(self.loc.routes.get(r))
    }
}

impl Rib {
    /// The configured address of `peer` (BMP per-peer header).
    pub fn peer_address(&self, peer: PeerId) -> Option<IpAddr> {
        self.peers.get(peer).map(|p| p.cfg.address)
    }
}
