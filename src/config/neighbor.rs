//! Validation of one `[[neighbor]]`: its address and session options with
//! `[defaults]` applied; link sessions (an interface, GTSM possible) and
//! multihop sessions over loopbacks (RFC 4271 §8 is the same; only the
//! transport differs).

use super::file::{FileNeighbor, LinkCost, SessionOptions};
use super::validate::{
    key_span, AddPaths, ImportLimitAction, Loopbacks, Neighbor, Validator, DEFAULT_FILTERED_LIMIT,
};
use super::DEFAULT_PORT;
use std::net::IpAddr;
use std::ops::Range;
use std::time::Duration;

impl Validator<'_> {
    pub(super) fn check_neighbor(
        &mut self,
        i: usize,
        span: Range<usize>,
        n: FileNeighbor,
        d: &SessionOptions,
        local_as: u32,
        loopbacks: &Loopbacks,
    ) -> Option<Neighbor> {
        let key = |k: &str| format!("neighbor[{i}].{k}");
        let Some(address) = n.address.as_ref() else {
            self.error(
                span,
                &key("address"),
                "missing: the neighbor's address (e.g. \"fe80::2\")",
            );
            return None;
        };
        let (addr_span, address) = (address.span(), *address.get_ref());
        let link_local = is_link_local(address);
        if link_local && n.interface.is_none() && n.multihop.is_none() {
            self.error(
                addr_span.clone(),
                &key("interface"),
                format!("{address} is link-local: set the interface it is reached on"),
            );
        }
        if address.is_unspecified() || address.is_multicast() {
            self.error(
                addr_span.clone(),
                &key("address"),
                format!("{address} is not a unicast address"),
            );
        }
        if let Some(ifname) = &n.interface {
            if ifname.is_empty() || ifname.len() > 15 || ifname.contains(['/', ' ', '%']) {
                self.error(
                    span.clone(),
                    &key("interface"),
                    format!("{ifname:?} is not a valid interface name"),
                );
            }
        }
        if let Some(r) = &n.remote_as {
            let remote_as = *r.get_ref();
            if remote_as != local_as {
                // Only iBGP exists yet: an eBGP session would be run as iBGP.
                self.error(
                    r.span(),
                    &key("remote_as"),
                    format!("{remote_as} differs from local_as {local_as}: only iBGP (remote_as = local_as) is supported"),
                );
            }
        }
        if n.probe.is_some() && n.cost != Some(LinkCost::Auto) {
            self.error(
                key_span(self.text, span.clone(), "probe"),
                &key("probe"),
                "chooses how cost = \"auto\" measures the link; this neighbor's cost is not measured",
            );
        }
        let (multihop, source) = self.check_multihop(i, span.clone(), &n, address, loopbacks);
        let name = n
            .name
            .clone()
            .or_else(|| n.interface.clone())
            .unwrap_or_else(|| address.to_string());
        let hold_time = pick_spanned(&n.hold_time, &d.hold_time).map(|s| (s.span(), *s.get_ref()));
        let hold = match hold_time {
            Some((s, h)) if h == 1 || h == 2 => {
                self.error(
                    s,
                    &key("hold_time"),
                    "must be 0 or at least 3 seconds (RFC 4271 §4.2)",
                );
                240
            }
            Some((_, h)) => h,
            None => 240,
        };
        let keepalive = match pick_spanned(&n.keepalive, &d.keepalive) {
            Some(k) if hold != 0 && *k.get_ref() > hold / 3 && *k.get_ref() != 0 => {
                self.error(
                    k.span(),
                    &key("keepalive"),
                    format!(
                        "{} s is more than a third of the hold time ({hold} s)",
                        k.get_ref()
                    ),
                );
                hold / 3
            }
            Some(k) => *k.get_ref(),
            None => hold / 3,
        };
        let connect_retry = match pick_spanned(&n.connect_retry, &d.connect_retry) {
            Some(c) if *c.get_ref() == 0 => {
                self.error(c.span(), &key("connect_retry"), "must be at least 1 second");
                5
            }
            Some(c) => *c.get_ref(),
            None => 5,
        };
        let error_wait_min = n.error_wait_min.or(d.error_wait_min).unwrap_or(5);
        let error_wait_max = n.error_wait_max.or(d.error_wait_max).unwrap_or(300);
        if error_wait_min > error_wait_max {
            self.error(
                span.clone(),
                &key("error_wait_min"),
                format!("{error_wait_min} s is above error_wait_max ({error_wait_max} s)"),
            );
        }
        let action = match pick_spanned(&n.import_limit_action, &d.import_limit_action) {
            None => ImportLimitAction::Block,
            Some(a) => match a.get_ref().as_str() {
                "warn" => ImportLimitAction::Warn,
                "block" => ImportLimitAction::Block,
                "restart" => ImportLimitAction::Restart,
                "disable" => ImportLimitAction::Disable,
                other => {
                    self.error(
                        a.span(),
                        &key("import_limit_action"),
                        format!("{other:?}: expected one of warn, block, restart, disable"),
                    );
                    ImportLimitAction::Block
                }
            },
        };
        let add_paths = match pick_spanned(&n.add_paths, &d.add_paths) {
            None => AddPaths::Off,
            Some(a) => match a.get_ref().as_str() {
                "off" => AddPaths::Off,
                "receive" => AddPaths::Receive,
                "send" => AddPaths::Send,
                "both" => AddPaths::Both,
                other => {
                    self.error(
                        a.span(),
                        &key("add_paths"),
                        format!("{other:?}: expected one of off, receive, send, both"),
                    );
                    AddPaths::Off
                }
            },
        };
        let restart_time = match pick_spanned(&n.restart_time, &d.restart_time) {
            Some(r) if *r.get_ref() > 4095 => {
                self.error(
                    r.span(),
                    &key("restart_time"),
                    "must be at most 4095 seconds (12 bits, RFC 4724 §3)",
                );
                120
            }
            Some(r) => *r.get_ref(),
            None => 120,
        };
        Some(Neighbor {
            name,
            interface: n.interface.clone(),
            address,
            port: n.port.or(d.port).unwrap_or(DEFAULT_PORT),
            remote_as: local_as,
            cost: match n.cost {
                Some(LinkCost::Static(c)) => Some(c),
                Some(LinkCost::Auto) | None => None,
            },
            cost_auto: n.cost == Some(LinkCost::Auto),
            probe: n.probe,
            hold_time: hold,
            keepalive,
            connect_retry: Duration::from_secs(connect_retry.into()),
            send_hold_time: n.send_hold_time.or(d.send_hold_time),
            error_wait_min: Duration::from_secs(error_wait_min.into()),
            error_wait_max: Duration::from_secs(error_wait_max.into()),
            passive: n.passive.or(d.passive).unwrap_or(false),
            rr_client: n.rr_client.or(d.rr_client).unwrap_or(true),
            extended_next_hop: n.extended_next_hop.or(d.extended_next_hop).unwrap_or(true),
            // GTSM (RFC 5082) is for directly connected neighbors: off for multihop
            // ones even when `[defaults]` sets it (set on the neighbor: an error).
            ttl_security: multihop.is_none() && n.ttl_security.or(d.ttl_security).unwrap_or(false),
            multihop,
            source,
            import_limit: n.import_limit.or(d.import_limit).unwrap_or(1000),
            import_limit_action: action,
            add_paths,
            filtered_limit: n
                .filtered_limit
                .or(d.filtered_limit)
                .unwrap_or(DEFAULT_FILTERED_LIMIT),
            enabled: n.enabled.unwrap_or(true),
            graceful_restart: n.graceful_restart.or(d.graceful_restart).unwrap_or(false),
            restart_time,
            bfd: self.check_neighbor_bfd(i, &n, d, address),
            view_cost: Default::default(),
        })
    }
    /// `multihop = N` and `source`: a session to a neighbor's loopback, not
    /// bound to an interface, sent with hop limit N, from our own loopback
    /// (default: the first of `loopbacks.originate` of the address's family).
    fn check_multihop(
        &mut self,
        i: usize,
        span: Range<usize>,
        n: &FileNeighbor,
        address: IpAddr,
        loopbacks: &Loopbacks,
    ) -> (Option<u8>, Option<IpAddr>) {
        let key = |k: &str| format!("neighbor[{i}].{k}");
        let at = |text: &str, k: &str| key_span(text, span.clone(), k);
        let Some(hops) = &n.multihop else {
            if let Some(s) = &n.source {
                self.error(
                    s.span(),
                    &key("source"),
                    "only for multihop sessions (set multihop = N); a link session leaves from its interface",
                );
            }
            return (None, None);
        };
        let (hops_span, hops) = (hops.span(), *hops.get_ref());
        if hops == 0 {
            self.error(
                hops_span,
                &key("multihop"),
                "must be 1 to 255 (the hop limit)",
            );
        }
        if n.interface.is_some() {
            self.error(
                at(self.text, "interface"),
                &key("interface"),
                "a multihop session is not bound to an interface: remove interface (or multihop, for a link session)",
            );
        }
        if is_link_local(address) {
            self.error(
                at(self.text, "address"),
                &key("address"),
                format!(
                    "{address} is link-local: a multihop neighbor is addressed by its loopback"
                ),
            );
        } else if !loopbacks.admits(ipnet::IpNet::from(address)) {
            self.error(
                at(self.text, "address"),
                &key("address"),
                format!("{address} is not inside the loopback ranges: no route to it would ever be learned"),
            );
        }
        if n.ttl_security == Some(true) {
            self.error(
                at(self.text, "ttl_security"),
                &key("ttl_security"),
                "GTSM (RFC 5082) is for directly connected neighbors, not multihop sessions",
            );
        }
        if n.cost == Some(LinkCost::Auto) {
            self.error(
                at(self.text, "cost"),
                &key("cost"),
                "cost = \"auto\" measures a link; a multihop session has none (its cost is the underlay's)",
            );
        }
        let source = match &n.source {
            Some(s) => {
                let a = *s.get_ref();
                if a.is_ipv4() != address.is_ipv4()
                    || is_link_local(a)
                    || a.is_unspecified()
                    || a.is_multicast()
                {
                    self.error(
                        s.span(),
                        &key("source"),
                        format!("{a} cannot source a session to {address}: one of our unicast addresses of the same family, not link-local"),
                    );
                }
                Some(a)
            }
            None => {
                let own = loopbacks
                    .originate
                    .iter()
                    .map(|p| p.addr())
                    .find(|a| a.is_ipv4() == address.is_ipv4());
                if own.is_none() {
                    let family = if address.is_ipv4() { "IPv4" } else { "IPv6" };
                    self.error(
                        span,
                        &key("source"),
                        format!("no {family} loopback in loopbacks.originate to source the session from: set source"),
                    );
                }
                own
            }
        };
        (Some(hops), source)
    }
}

fn is_link_local(a: IpAddr) -> bool {
    matches!(a, IpAddr::V6(a) if a.is_unicast_link_local())
}

fn pick_spanned<'a, T>(
    own: &'a Option<toml::Spanned<T>>,
    default: &'a Option<toml::Spanned<T>>,
) -> Option<&'a toml::Spanned<T>> {
    own.as_ref().or(default.as_ref())
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, ConfigError};

    const HEAD: &str = r#"router_id = "10.255.0.1"
local_as = 65000
[loopbacks]
ipv4 = ["10.255.0.0/16"]
ipv6 = ["fd00:255::/48"]
originate = ["10.255.0.1/32", "fd00:255::1/128"]
[defaults]
ttl_security = true
[[neighbor]]
interface = "wg2"
address = "fe80::2"
[[neighbor]]
name = "rr"
"#;

    /// The second neighbor (a multihop one) with `keys` (from line 14 on).
    fn config(keys: &str) -> String {
        format!("{HEAD}{keys}")
    }

    fn errors(keys: &str) -> Vec<ConfigError> {
        parse(&config(keys), "f.toml").unwrap_err().0
    }

    /// Key and line of the first error.
    fn key_line(e: &[ConfigError]) -> (&str, usize) {
        (e[0].key.as_str(), e[0].line)
    }

    #[test]
    fn multihop_defaults_source_to_our_loopback_of_the_family_and_drops_gtsm() {
        let c = parse(&config("address = \"10.255.0.3\"\nmultihop = 2\n"), "f").unwrap();
        let (link, rr) = (&c.neighbors[0], &c.neighbors[1]);
        assert_eq!(
            (link.multihop, link.source, link.ttl_security),
            (None, None, true)
        );
        assert_eq!(rr.multihop, Some(2));
        assert_eq!(rr.source, Some("10.255.0.1".parse().unwrap()));
        assert!(
            !rr.ttl_security,
            "GTSM off for multihop, though [defaults] sets it"
        );
        assert!(crate::rib::PeerConfig::from(rr).multihop);
        assert!(!crate::rib::PeerConfig::from(link).multihop);
        let c = parse(&config("address = \"fd00:255::3\"\nmultihop = 255\n"), "f").unwrap();
        assert_eq!(c.neighbors[1].source, Some("fd00:255::1".parse().unwrap()));
        let keys = "address = \"fd00:255::3\"\nmultihop = 1\nsource = \"fd00:255::7\"\n";
        let c = parse(&config(keys), "f").unwrap();
        assert_eq!(c.neighbors[1].source, Some("fd00:255::7".parse().unwrap()));
    }

    #[test]
    fn multihop_rejects_link_settings_with_file_line_and_key() {
        let e = errors(
            "address = \"10.255.0.3\"\nmultihop = 2\ninterface = \"wg3\"\nttl_security = true\ncost = \"auto\"\n",
        );
        let got: Vec<_> = e.iter().map(|e| (e.key.as_str(), e.line)).collect();
        assert_eq!(
            got,
            [
                ("neighbor[1].interface", 16),
                ("neighbor[1].ttl_security", 17),
                ("neighbor[1].cost", 18)
            ],
            "{e:?}"
        );
        assert!(e[1].message.contains("RFC 5082"), "{}", e[1]);
        assert!(e[0].to_string().starts_with("f.toml:16:"), "{}", e[0]);
    }

    #[test]
    fn multihop_address_is_a_loopback_in_the_ranges() {
        let e = errors("address = \"fe80::3\"\nmultihop = 2\n");
        assert_eq!(key_line(&e), ("neighbor[1].address", 14), "{e:?}");
        assert!(e[0].message.contains("link-local"), "{}", e[0]);
        let e = errors("address = \"192.0.2.3\"\nmultihop = 2\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert!(e[0].message.contains("loopback ranges"), "{}", e[0]);
        let e = errors("address = \"10.255.0.3\"\nmultihop = 0\n");
        assert_eq!(key_line(&e), ("neighbor[1].multihop", 15), "{e:?}");
        let e = errors("address = \"10.255.0.3\"\nmultihop = 256\n");
        assert_eq!(e[0].key, "neighbor[1].multihop", "{e:?}");
    }

    #[test]
    fn source_is_required_without_a_loopback_of_the_family_and_checked() {
        let text = config("address = \"fd00:255::3\"\nmultihop = 2\n")
            .replace(", \"fd00:255::1/128\"", "");
        let e = parse(&text, "f.toml").unwrap_err().0;
        assert_eq!(
            (e.len(), e[0].key.as_str()),
            (1, "neighbor[1].source"),
            "{e:?}"
        );
        assert!(e[0].message.contains("no IPv6 loopback"), "{}", e[0]);
        assert!(e[0].message.contains("set source"), "{}", e[0]);
        let e = errors("address = \"fd00:255::3\"\nmultihop = 2\nsource = \"10.255.0.1\"\n");
        assert_eq!(key_line(&e), ("neighbor[1].source", 16), "{e:?}");
        let e = errors("address = \"10.255.0.3\"\nsource = \"10.255.0.1\"\n");
        assert_eq!(e[0].key, "neighbor[1].source", "{e:?}");
        assert!(e[0].message.contains("only for multihop"), "{}", e[0]);
    }

    #[test]
    fn a_multihop_address_is_unique_among_all_neighbors() {
        let text = format!(
            "{}[[neighbor]]\ninterface = \"wg4\"\naddress = \"10.255.0.3\"\n",
            config("address = \"10.255.0.3\"\nmultihop = 2\n")
        );
        let e = parse(&text, "f.toml").unwrap_err().0;
        assert!(
            e.iter().any(|e| e.message.contains("configured twice")),
            "{e:?}"
        );
    }
}
