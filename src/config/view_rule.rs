//! One policy rule of a `[[view]]` (step 11): which packets the kernel looks
//! up in the view's table. Every key is optional; a rule matches the
//! conjunction of the keys it has, and must have at least one.
//!
//! ```toml
//! rules = [ { fwmark = "0x2" }, { fwmark = "0x20/0xf0" }, { dscp = 8 },
//!           { from = "10.9.0.0/16", iif = "eth0" }, { uid = "1000-1999" } ]
//! ```

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// A rule as written in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    /// `"0x2"`, `"2"` or `"0x20/0xf0"` (value/mask).
    pub fwmark: Option<String>,
    /// Differentiated Services code point, 0..=63.
    pub dscp: Option<u8>,
    /// Source prefix; a rule with `from` exists only in that family.
    pub from: Option<IpNet>,
    /// Incoming interface.
    pub iif: Option<String>,
    /// `"1000"` or `"1000-1999"`.
    pub uid: Option<String>,
}

/// A rule, checked: what is compared with the kernel's rules.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct RuleMatch {
    /// (value, mask); mask `u32::MAX` when none was written.
    pub fwmark: Option<(u32, u32)>,
    pub dscp: Option<u8>,
    pub from: Option<IpNet>,
    pub iif: Option<String>,
    /// Inclusive range.
    pub uid: Option<(u32, u32)>,
}

fn number(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u32::from_str_radix(hex, 16),
        None => s.parse::<u32>(),
    };
    r.map_err(|_| format!("{s:?}: not a 32-bit number"))
}

impl FileRule {
    /// The rule checked, or what is wrong with it (one message).
    pub fn check(&self) -> Result<RuleMatch, String> {
        let fwmark = match &self.fwmark {
            None => None,
            Some(s) => {
                let (v, m) = match s.split_once('/') {
                    Some((v, m)) => (number(v)?, number(m)?),
                    None => (number(s)?, u32::MAX),
                };
                if m == 0 {
                    return Err(format!("fwmark {s:?}: a zero mask matches every packet"));
                }
                if v & !m != 0 {
                    return Err(format!("fwmark {s:?}: the value has bits outside the mask"));
                }
                Some((v, m))
            }
        };
        if let Some(d) = self.dscp {
            if d > 63 {
                return Err(format!("dscp {d}: a code point is 0..=63"));
            }
        }
        if let Some(i) = &self.iif {
            if i.is_empty() || i.len() > 15 || i.contains('/') || i.contains(char::is_whitespace) {
                return Err(format!("iif {i:?}: not an interface name"));
            }
        }
        let uid = match &self.uid {
            None => None,
            Some(s) => {
                let (a, b) = match s.split_once('-') {
                    Some((a, b)) => (number(a)?, number(b)?),
                    None => (number(s)?, number(s)?),
                };
                if a > b {
                    return Err(format!("uid {s:?}: the range is empty"));
                }
                Some((a, b))
            }
        };
        let rule = RuleMatch {
            fwmark,
            dscp: self.dscp,
            from: self.from.map(|p| p.trunc()),
            iif: self.iif.clone(),
            uid,
        };
        if rule.fwmark.is_none()
            && rule.dscp.is_none()
            && rule.from.is_none()
            && rule.iif.is_none()
            && rule.uid.is_none()
        {
            return Err("a rule needs at least one of fwmark, dscp, from, iif, uid".into());
        }
        Ok(rule)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> Result<RuleMatch, String> {
        let r: FileRule = toml::from_str(toml_text).map_err(|e| e.to_string())?;
        r.check()
    }

    #[test]
    fn keys_are_checked() {
        let r = rule("fwmark = \"0x20/0xf0\"\nuid = \"1000-1999\"").unwrap();
        assert_eq!(r.fwmark, Some((0x20, 0xf0)));
        assert_eq!(r.uid, Some((1000, 1999)));
        assert_eq!(rule("fwmark = \"7\"").unwrap().fwmark, Some((7, u32::MAX)));
        assert_eq!(
            rule("from = \"10.9.1.0/16\"").unwrap().from,
            Some("10.9.0.0/16".parse().unwrap())
        );
        assert!(rule("").unwrap_err().contains("at least one"));
        assert!(rule("dscp = 64").unwrap_err().contains("0..=63"));
        assert!(rule("fwmark = \"0x3/0x2\"")
            .unwrap_err()
            .contains("outside"));
        assert!(rule("fwmark = \"1/0\"").unwrap_err().contains("zero mask"));
        assert!(rule("uid = \"5-4\"").unwrap_err().contains("empty"));
        assert!(rule("iif = \"a b\"").unwrap_err().contains("interface"));
        assert!(rule("table = 3").is_err());
    }
}
