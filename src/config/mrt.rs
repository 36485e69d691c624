//! `[mrt]`: a live MRT log of received UPDATEs (RFC 6396 §4.4.3 BGP4MP_MESSAGE_AS4).
//!
//! ```toml
//! [mrt]
//! updates = "/var/lib/kittbgpd/updates.mrt"   # appended to; absolute path
//! ```

use super::validate::{key_span, Validator};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileMrt {
    pub updates: Option<PathBuf>,
}

/// `[mrt]`, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Mrt {
    pub updates: Option<PathBuf>,
}

impl Validator<'_> {
    pub(super) fn check_mrt(&mut self, m: Option<Spanned<FileMrt>>) -> Mrt {
        let Some(m) = m else {
            return Mrt::default();
        };
        let span = m.span();
        let m = m.into_inner();
        if let Some(p) = &m.updates {
            if !p.is_absolute() {
                let at = key_span(self.text, span, "updates");
                self.error(
                    at,
                    "mrt.updates",
                    format!("{}: not an absolute path", p.display()),
                );
            }
        }
        Mrt { updates: m.updates }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const BASE: &str =
        "router_id = \"10.0.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.0.0.0/8\"]\n";

    #[test]
    fn updates_file_must_be_absolute() {
        let c = parse(
            &format!("{BASE}[mrt]\nupdates = \"/tmp/u.mrt\"\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.mrt.updates.as_deref(),
            Some(std::path::Path::new("/tmp/u.mrt"))
        );
        let e = parse(&format!("{BASE}[mrt]\nupdates = \"u.mrt\"\n"), "t.toml").unwrap_err();
        assert!(e.to_string().contains("t.toml:6:"), "{e}");
        assert!(parse(BASE, "t.toml").unwrap().mrt.updates.is_none());
    }
}
