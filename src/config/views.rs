//! `[views]`: what every routing view shares (step 11): the range of `ip rule`
//! priorities kittbgpd owns for the views' policy rules.
//!
//! ```toml
//! [views]
//! rule_priority = "20000-20999"   # default
//! ```
//!
//! Priority 0 (`local`), 32766 (`main`) and 32767 (`default`) are the
//! kernel's own rules: the range lies within 1-32765. A rule is placed by
//! its view's id and its position in the view's `rules` ([`PriorityRange::priority`]).

use super::validate::Validator;
use serde::{Deserialize, Serialize};
use std::fmt;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileViews {
    pub rule_priority: Option<Spanned<String>>,
}

/// Priorities a view's rules may take: `VIEW_STRIDE` per view id.
pub const VIEW_STRIDE: u32 = 10;

/// The lowest and highest rule priority kittbgpd owns (inclusive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PriorityRange {
    pub first: u32,
    pub last: u32,
}

impl Default for PriorityRange {
    fn default() -> Self {
        PriorityRange {
            first: 20000,
            last: 20999,
        }
    }
}

impl PriorityRange {
    pub fn contains(&self, priority: u32) -> bool {
        (self.first..=self.last).contains(&priority)
    }

    /// The priority of rule `index` (its position in `rules`) of the view
    /// with `id`: `first + 10 x (id - 1) + index`. Fixed by id and position
    /// alone, so adding or removing a view or another view's rule moves no
    /// rule; the same number in `ip rule` and `ip -6 rule`.
    pub fn priority(&self, id: u8, index: usize) -> Result<u32, String> {
        let id = u32::from(id.max(1));
        if index >= VIEW_STRIDE as usize {
            return Err(format!(
                "rule {}: a view has at most {VIEW_STRIDE} rules",
                index + 1
            ));
        }
        let p = self.first + (id - 1) * VIEW_STRIDE + index as u32;
        if p > self.last {
            let top = self.first + id * VIEW_STRIDE - 1;
            return Err(format!(
                "view id {id} takes priorities up to {top}, beyond [views] rule_priority {self} \
                 ({VIEW_STRIDE} per view id): widen the range or use a lower id"
            ));
        }
        Ok(p)
    }
}

impl PriorityRange {
    /// Whether a view with `id` and `rules` rules fits (for the `[[view]]`
    /// check: an error there names the view's `rules` or `id` key).
    pub fn fits(&self, id: u8, rules: usize) -> Result<(), String> {
        match rules {
            0 => Ok(()),
            n => self.priority(id, n - 1).map(|_| ()),
        }
    }
}

impl fmt::Display for PriorityRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl Serialize for PriorityRange {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// `"A-B"` checked: numbers, A <= B, inside 1-32765.
pub fn parse_range(s: &str) -> Result<PriorityRange, String> {
    let (a, b) = s
        .split_once('-')
        .ok_or_else(|| format!("{s:?}: expected \"FIRST-LAST\", e.g. \"20000-20999\""))?;
    let num = |x: &str| {
        x.trim()
            .parse::<u32>()
            .map_err(|_| format!("{s:?}: {:?} is not a priority", x.trim()))
    };
    let (first, last) = (num(a)?, num(b)?);
    if first > last {
        return Err(format!("{s:?}: the range is empty"));
    }
    if first == 0 || last >= 32766 {
        return Err(format!(
            "{s:?}: priorities 0, 32766 and 32767 are the kernel's local, main and default \
             rules; the range must lie within 1-32765"
        ));
    }
    Ok(PriorityRange { first, last })
}

/// `[views]`, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Views {
    pub rule_priority: PriorityRange,
}

impl Validator<'_> {
    pub(super) fn check_view_settings(&mut self, v: Option<Spanned<FileViews>>) -> Views {
        let Some(v) = v else {
            return Views::default();
        };
        let v = v.into_inner();
        let rule_priority = match &v.rule_priority {
            None => PriorityRange::default(),
            Some(s) => parse_range(s.get_ref()).unwrap_or_else(|e| {
                self.error(s.span(), "views.rule_priority", e);
                PriorityRange::default()
            }),
        };
        Views { rule_priority }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::parse;

    const BASE: &str =
        "router_id = \"10.0.0.1\"\nlocal_as = 65000\n[loopbacks]\nipv4 = [\"10.0.0.0/8\"]\n";

    #[test]
    fn rule_priority_default_and_checks() {
        let c = parse(BASE, "t.toml").unwrap();
        assert_eq!(c.view_settings.rule_priority, PriorityRange::default());
        let c = parse(
            &format!("{BASE}[views]\nrule_priority = \"100-199\"\n"),
            "t.toml",
        )
        .unwrap();
        assert_eq!(
            c.view_settings.rule_priority,
            PriorityRange {
                first: 100,
                last: 199
            }
        );
        for (bad, why) in [
            ("\"0-100\"", "1-32765"),
            ("\"32000-32766\"", "1-32765"),
            ("\"32767-32767\"", "1-32765"),
            ("\"200-100\"", "empty"),
            ("\"200\"", "FIRST-LAST"),
            ("\"a-b\"", "not a priority"),
        ] {
            let e = parse(&format!("{BASE}[views]\nrule_priority = {bad}\n"), "t.toml")
                .unwrap_err()
                .to_string();
            assert!(e.starts_with("t.toml:6:"), "{bad}: {e}");
            assert!(e.contains("views.rule_priority"), "{bad}: {e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
        let e = parse(&format!("{BASE}[views]\nrule_prio = \"1-2\"\n"), "t.toml").unwrap_err();
        assert!(e.to_string().contains("t.toml:6:"), "{e}");
    }

    #[test]
    fn priority_by_view_id_and_position() {
        let r = PriorityRange::default();
        assert_eq!(r.priority(1, 0), Ok(20000));
        assert_eq!(r.priority(2, 3), Ok(20013));
        assert_eq!(r.priority(100, 9), Ok(20999));
        assert!(r.priority(101, 0).unwrap_err().contains("up to 21009"));
        assert!(r.priority(1, 10).unwrap_err().contains("at most 10"));
        let small = PriorityRange {
            first: 500,
            last: 504,
        };
        assert_eq!(small.priority(1, 4), Ok(504));
        assert!(small.priority(1, 5).is_err());
        assert!(r.fits(100, 10).is_ok() && r.fits(200, 0).is_ok());
        assert!(r.fits(100, 11).unwrap_err().contains("at most 10"));
        assert!(r.fits(101, 1).unwrap_err().contains("widen"));
    }
}
