//! `[overlay]`: the prefixes carried on multihop sessions to and from route
//! reflectors (issue 12), next hop unchanged, resolved over the loopbacks.
//!
//! ```toml
//! [overlay]
//! ipv4 = ["10.100.0.0/16"]          # prefixes of any length inside are overlay
//! ipv6 = ["fd00:100::/32"]
//! originate = ["10.100.1.0/24"]     # static overlay prefixes of this node
//! from_lo = true                    # overlay-range addresses on `lo` originated
//! cluster_id = "10.255.255.1"       # RFC 4456 §7 for overlay reflection (default: router id)
//! ```

use super::validate::{key_span, Loopbacks, Validator};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOverlay {
    #[serde(default)]
    pub ipv4: Vec<Spanned<Ipv4Net>>,
    #[serde(default)]
    pub ipv6: Vec<Spanned<Ipv6Net>>,
    #[serde(default)]
    pub originate: Vec<Spanned<IpNet>>,
    pub from_lo: Option<bool>,
    pub cluster_id: Option<Spanned<Ipv4Addr>>,
}

/// `[overlay]`, resolved. Empty ranges: no overlay (phase one of the fabric).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Overlay {
    pub ipv4: Vec<Ipv4Net>,
    pub ipv6: Vec<Ipv6Net>,
    pub originate: Vec<IpNet>,
    pub from_lo: bool,
    /// CLUSTER_ID used when reflecting overlay routes (RFC 4456 §7); two
    /// reflectors of one cluster share it. `None`: the router id. Loopbacks
    /// keep the router id, so reflectors of one cluster still relay them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster_id: Option<Ipv4Addr>,
}

impl Overlay {
    /// An overlay prefix: of any length, inside a configured range.
    pub fn contains(&self, prefix: &IpNet) -> bool {
        match prefix {
            IpNet::V4(p) => self.ipv4.iter().any(|r| r.contains(p)),
            IpNet::V6(p) => self.ipv6.iter().any(|r| r.contains(p)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.ipv4.is_empty() && self.ipv6.is_empty()
    }

    /// What this node originates into the overlay: `originate`, plus (with
    /// `from_lo`) the addresses on `lo` inside the ranges, as host routes.
    pub fn originated(&self, on_lo: impl IntoIterator<Item = IpAddr>) -> BTreeSet<IpNet> {
        let mut set: BTreeSet<IpNet> = self.originate.iter().copied().collect();
        if self.from_lo {
            set.extend(
                on_lo
                    .into_iter()
                    .map(IpNet::from)
                    .filter(|p| self.contains(p)),
            );
        }
        set
    }
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(b) || b.contains(a)
}

impl Validator<'_> {
    pub(super) fn check_overlay(
        &mut self,
        o: Option<Spanned<FileOverlay>>,
        loopbacks: &Loopbacks,
    ) -> Overlay {
        let Some(o) = o else {
            return Overlay::default();
        };
        let span = o.span();
        let o = o.into_inner();
        let lb: Vec<IpNet> = loopbacks
            .ipv4
            .iter()
            .map(|r| IpNet::V4(*r))
            .chain(loopbacks.ipv6.iter().map(|r| IpNet::V6(*r)))
            .collect();
        let ranges: Vec<(String, std::ops::Range<usize>, IpNet)> = o
            .ipv4
            .iter()
            .enumerate()
            .map(|(i, r)| {
                (
                    format!("overlay.ipv4[{i}]"),
                    r.span(),
                    IpNet::V4(r.get_ref().trunc()),
                )
            })
            .chain(o.ipv6.iter().enumerate().map(|(i, r)| {
                (
                    format!("overlay.ipv6[{i}]"),
                    r.span(),
                    IpNet::V6(r.get_ref().trunc()),
                )
            }))
            .collect();
        for (key, at, r) in &ranges {
            if let Some(l) = lb.iter().find(|l| overlaps(l, r)) {
                self.error(
                    at.clone(),
                    key,
                    format!(
                        "{r} overlaps the loopback range {l}: loopbacks and overlay must be apart"
                    ),
                );
            }
        }
        let overlay = Overlay {
            ipv4: o.ipv4.iter().map(|r| r.get_ref().trunc()).collect(),
            ipv6: o.ipv6.iter().map(|r| r.get_ref().trunc()).collect(),
            originate: Vec::new(),
            from_lo: o.from_lo.unwrap_or(false),
            cluster_id: None,
        };
        if overlay.is_empty() && (!o.originate.is_empty() || o.from_lo == Some(true)) {
            self.error(
                span.clone(),
                "overlay",
                "no overlay range: set overlay.ipv4 and/or overlay.ipv6",
            );
        }
        let mut originate = Vec::new();
        for (i, p) in o.originate.into_iter().enumerate() {
            let prefix = *p.get_ref();
            if prefix.trunc() != prefix {
                self.error(
                    p.span(),
                    &format!("overlay.originate[{i}]"),
                    format!(
                        "{prefix} has host bits set (did you mean {}?)",
                        prefix.trunc()
                    ),
                );
            } else if !overlay.contains(&prefix) {
                self.error(
                    p.span(),
                    &format!("overlay.originate[{i}]"),
                    format!("{prefix} is not inside the overlay ranges"),
                );
            }
            originate.push(prefix);
        }
        let cluster_id = o.cluster_id.map(|c| {
            if c.get_ref().is_unspecified() {
                let at = key_span(self.text, span.clone(), "cluster_id");
                self.error(at, "overlay.cluster_id", "must not be 0.0.0.0");
            }
            *c.get_ref()
        });
        Overlay {
            originate,
            cluster_id,
            ..overlay
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, ConfigErrors};

    const BASE: &str = "router_id = \"10.0.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.255.0.0/16\"]\nipv6 = [\"fd00:255::/48\"]\n";

    fn errors(overlay: &str) -> Vec<(String, usize)> {
        match parse(&format!("{BASE}[overlay]\n{overlay}"), "t.toml") {
            Ok(_) => Vec::new(),
            Err(ConfigErrors(e)) => e.into_iter().map(|e| (e.key, e.line)).collect(),
        }
    }

    #[test]
    fn ranges_contain_prefixes_of_any_length() {
        let c = parse(
            &format!("{BASE}[overlay]\nipv4 = [\"10.100.0.0/16\"]\nipv6 = [\"fd00:100::/32\"]\noriginate = [\"10.100.1.0/24\", \"fd00:100::1/128\"]\nfrom_lo = true\ncluster_id = \"10.9.9.9\"\n"),
            "t.toml",
        )
        .unwrap();
        let o = &c.overlay;
        assert!(o.contains(&"10.100.7.0/24".parse().unwrap()));
        assert!(o.contains(&"10.100.7.7/32".parse().unwrap()));
        assert!(
            !o.contains(&"10.0.0.0/8".parse().unwrap()),
            "wider than the range"
        );
        assert!(!o.contains(&"10.255.0.1/32".parse().unwrap()));
        assert!(o.contains(&"fd00:100:1::/48".parse().unwrap()));
        assert_eq!(o.cluster_id, Some("10.9.9.9".parse().unwrap()));
        let lo = ["10.100.0.5".parse().unwrap(), "10.255.0.1".parse().unwrap()];
        let set = o.originated(lo);
        assert_eq!(set.len(), 3, "{set:?}");
        assert!(set.contains(&"10.100.0.5/32".parse().unwrap()));
        assert!(parse(BASE, "t.toml").unwrap().overlay.is_empty());
    }

    #[test]
    fn errors_name_line_and_key() {
        // Overlapping the loopback ranges, either way round.
        assert_eq!(
            errors("ipv4 = [\"10.0.0.0/8\"]\n"),
            [("overlay.ipv4[0]".to_string(), 7)]
        );
        assert_eq!(
            errors("ipv6 = [\"fd00:100::/32\", \"fd00:255:0:1::/64\"]\n"),
            [("overlay.ipv6[1]".to_string(), 7)]
        );
        assert_eq!(
            errors(
                "ipv4 = [\"10.100.0.0/16\"]\noriginate = [\"10.101.0.0/24\", \"10.100.0.1/16\"]\n"
            ),
            [
                ("overlay.originate[0]".to_string(), 8),
                ("overlay.originate[1]".to_string(), 8)
            ]
        );
        assert_eq!(
            errors("originate = [\"10.100.0.0/24\"]\n"),
            [
                ("overlay".to_string(), 6),
                ("overlay.originate[0]".to_string(), 7)
            ]
        );
        assert_eq!(
            errors("ipv4 = [\"10.100.0.0/16\"]\ncluster_id = \"0.0.0.0\"\n"),
            [("overlay.cluster_id".to_string(), 8)]
        );
        assert_eq!(errors("bogus = 1\n").len(), 1);
    }
}
