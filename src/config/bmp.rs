//! `[bmp]`: BMP (RFC 7854) collectors the daemon exports to.
//!
//! ```toml
//! [bmp]
//! collector = ["127.0.0.1:11019"]   # host:port, one connection each
//! stats_interval = 60               # seconds between Stats Reports
//! ```

use super::validate::{key_span, Validator};
use serde::{Deserialize, Serialize};
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileBmp {
    #[serde(default)]
    pub collector: Vec<String>,
    pub stats_interval: Option<u64>,
}

/// `[bmp]`, resolved. No collector: no BMP.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Bmp {
    pub collectors: Vec<String>,
    pub stats_interval: u64,
}

pub const DEFAULT_STATS_INTERVAL: u64 = 60;

impl Validator<'_> {
    pub(super) fn check_bmp(&mut self, b: Option<Spanned<FileBmp>>) -> Bmp {
        let Some(b) = b else {
            return Bmp {
                collectors: Vec::new(),
                stats_interval: DEFAULT_STATS_INTERVAL,
            };
        };
        let span = b.span();
        let b = b.into_inner();
        for c in &b.collector {
            let ok = c.rsplit_once(':').is_some_and(|(host, port)| {
                !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p != 0)
            });
            if !ok {
                let at = key_span(self.text, span.clone(), "collector");
                self.error(at, "bmp.collector", format!("{c:?} is not host:port"));
            }
        }
        let stats_interval = b.stats_interval.unwrap_or(DEFAULT_STATS_INTERVAL);
        if stats_interval == 0 {
            let at = key_span(self.text, span.clone(), "stats_interval");
            self.error(at, "bmp.stats_interval", "must be at least 1 (seconds)");
        }
        Bmp {
            collectors: b.collector,
            stats_interval: stats_interval.max(1),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const BASE: &str =
        "router_id = \"10.0.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.0.0.0/8\"]\n";

    #[test]
    fn collectors_and_interval() {
        let c = parse(&format!("{BASE}[bmp]\ncollector = [\"127.0.0.1:11019\", \"[::1]:11019\"]\nstats_interval = 5\n"), "t.toml").unwrap();
        assert_eq!(c.bmp.collectors, ["127.0.0.1:11019", "[::1]:11019"]);
        assert_eq!(c.bmp.stats_interval, 5);
        let c = parse(BASE, "t.toml").unwrap();
        assert!(c.bmp.collectors.is_empty());
    }

    #[test]
    fn bad_collector_is_an_error_with_its_line() {
        let e = parse(
            &format!("{BASE}[bmp]\ncollector = [\"nohost\"]\n"),
            "t.toml",
        )
        .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("t.toml:6:")
                && text.contains("bmp.collector")
                && text.contains("host:port"),
            "{text}"
        );
    }
}
