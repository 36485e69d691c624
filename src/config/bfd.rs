//! `[bfd]` and a neighbor's `bfd` key: BFD (RFC 5880) single hop (RFC 5881),
//! BIRD's `bfd on` in the BGP protocol and `protocol bfd` interface options.

use super::file::{FileNeighbor, SessionOptions};
use super::validate::{key_span, Validator};
use crate::bfd::BfdParams;
use std::net::IpAddr;

impl Validator<'_> {
    pub(super) fn check_bfd(&mut self, b: Option<toml::Spanned<BfdParams>>) -> BfdParams {
        let Some(b) = b else {
            return BfdParams::default();
        };
        let span = b.span();
        let b = b.into_inner();
        for (key, message) in b.problems() {
            let at = key_span(self.text, span.clone(), key);
            self.error(at, &format!("bfd.{key}"), message);
        }
        b
    }

    /// `bfd` of neighbor `i` (own or `[defaults]`): a link session over IPv6
    /// only. Set in `[defaults]`, it stays off for multihop neighbors.
    pub(super) fn check_neighbor_bfd(
        &mut self,
        i: usize,
        n: &FileNeighbor,
        d: &SessionOptions,
        address: IpAddr,
    ) -> bool {
        let key = format!("neighbor[{i}].bfd");
        if let Some(own) = n.bfd.as_ref().filter(|b| *b.get_ref()) {
            let why = if n.multihop.is_some() {
                Some("single-hop BFD (RFC 5881) only: multihop BFD (RFC 5883) is not supported")
            } else if n.interface.is_none() {
                Some("BFD runs on a link: set the interface the neighbor is reached on")
            } else if address.is_ipv4() {
                Some("BFD runs over IPv6 (the neighbor's link-local address)")
            } else {
                None
            };
            if let Some(why) = why {
                self.error(own.span(), &key, why);
                return false;
            }
            return true;
        }
        let from_defaults = n.bfd.is_none() && d.bfd.as_ref().is_some_and(|b| *b.get_ref());
        from_defaults && n.multihop.is_none() && n.interface.is_some() && address.is_ipv6()
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{parse, ConfigError};
    use std::time::Duration;

    const HEAD: &str = r#"router_id = "10.255.0.1"
local_as = 65000
[loopbacks]
ipv4 = ["10.255.0.0/16"]
originate = ["10.255.0.1/32"]
[defaults]
bfd = true
[[neighbor]]
interface = "wg2"
address = "fe80::2"
[[neighbor]]
name = "rr"
address = "10.255.0.9"
multihop = 2
[[neighbor]]
interface = "wg3"
address = "fe80::3"
bfd = false
"#;

    fn errors(text: &str) -> Vec<(String, usize)> {
        let e: Vec<ConfigError> = parse(text, "f.toml").unwrap_err().0;
        e.into_iter().map(|e| (e.key, e.line)).collect()
    }

    #[test]
    fn defaults_turn_it_on_for_link_neighbors_only() {
        let c = parse(HEAD, "t").unwrap();
        let on: Vec<bool> = c.neighbors.iter().map(|n| n.bfd).collect();
        assert_eq!(on, [true, false, false]);
        assert_eq!(c.bfd.tx(), Duration::from_millis(100));
        assert_eq!(c.bfd.rx(), Duration::from_millis(100));
        assert_eq!(c.bfd.idle(), Duration::from_secs(1));
        assert_eq!(c.bfd.detect_mult(), 3);
        let c = parse(&HEAD.replace("bfd = true\n", ""), "t").unwrap();
        assert!(c.neighbors.iter().all(|n| !n.bfd), "off by default");
    }

    #[test]
    fn bfd_table_overrides_and_is_checked_with_line_and_key() {
        let t = format!("{HEAD}[bfd]\ninterval = 0.3\nmin_rx = 0.05\nmultiplier = 5\n");
        let c = parse(&t, "t").unwrap();
        assert_eq!(c.bfd.tx(), Duration::from_millis(300));
        assert_eq!(c.bfd.rx(), Duration::from_millis(50));
        assert_eq!(c.bfd.detect_mult(), 5);
        let t = format!("{HEAD}[bfd]\ninterval = 0\nmultiplier = 256\n");
        assert_eq!(
            errors(&t),
            [
                ("bfd.interval".to_string(), 20),
                ("bfd.multiplier".to_string(), 21)
            ]
        );
        let t = format!("{HEAD}[bfd]\nintervall = 1\n");
        assert_eq!(errors(&t)[0].0, "bfd.intervall");
    }

    #[test]
    fn turning_bfd_on_or_retiming_it_restarts_no_session() {
        use crate::config::diff::{diff, Apply};
        let old = parse(HEAD, "t").unwrap();
        let text = format!(
            "{}[bfd]\ninterval = 0.2\n",
            HEAD.replace("bfd = false\n", "")
        );
        let new = parse(&text, "t").unwrap();
        let changes = diff(&old, &new);
        let what: Vec<(Apply, Option<&str>, &str)> = changes
            .iter()
            .map(|c| (c.apply, c.neighbor.as_deref(), c.what.as_str()))
            .collect();
        assert_eq!(
            what,
            [
                (
                    Apply::Live,
                    None,
                    "[bfd] changed (BFD sessions take the new timers with a poll sequence)"
                ),
                (Apply::Live, Some("wg3"), "bfd false -> true"),
            ]
        );
    }

    #[test]
    fn bfd_on_a_multihop_neighbor_is_an_error() {
        let t = HEAD.replace("multihop = 2\n", "multihop = 2\nbfd = true\n");
        assert_eq!(errors(&t), [("neighbor[1].bfd".to_string(), 15)]);
    }
}
