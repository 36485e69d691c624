//! `[[view]]`: a routing view (step 11, ARCHITECTURE.md "Routing views"): a
//! name, its identity on the wire, a kernel table, a link metric and the
//! policy rules that steer packets into its table. The neighbor's
//! `view_cost = { NAME = N }` gives the static cost of a link per view.
//!
//! ```toml
//! [[view]]
//! name = "bulk"
//! id = 2                      # 1..=254, the same on every node
//! table = 102
//! metric = "hops"             # latency | static | hops | { rtt = 1.0, loss = 50.0, weight = 1.0 }
//! rules = [ { fwmark = "0x2" } ]
//! ```

use super::validate::{key_span, Validator};
use super::view_rule::{FileRule, RuleMatch};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileView {
    pub name: Option<Spanned<String>>,
    pub id: Option<Spanned<i64>>,
    pub table: Option<Spanned<i64>>,
    pub metric: Option<Spanned<FileMetric>>,
    #[serde(default)]
    pub rules: Vec<Spanned<FileRule>>,
}

/// `metric` as written: a name or the expression's table.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum FileMetric {
    Name(String),
    Expression(FileExpression),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileExpression {
    #[serde(default)]
    pub rtt: f64,
    #[serde(default)]
    pub loss: f64,
    #[serde(default)]
    pub weight: f64,
}

/// How a view prices one link (see `views::cost`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Metric {
    /// The default view's cost of the link: measured (`cost = "auto"`) or static.
    Latency,
    /// The neighbor's `view_cost` for this view (unknown when absent).
    Static,
    /// 1 per link.
    Hops,
    /// rtt x RTT (µs) + loss x loss (percent) + weight x `view_cost`.
    Expression { rtt: f64, loss: f64, weight: f64 },
}

/// One `[[view]]`, checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct View {
    pub name: String,
    /// Identity on the wire (the byte before the prefix in SAFI 241 NLRI).
    pub id: u8,
    /// Kernel table of the view's best routes.
    pub table: u32,
    pub metric: Metric,
    pub rules: Vec<RuleMatch>,
}

/// Kernel tables a view may not use: unspec, default, main, local.
const RESERVED_TABLES: [i64; 4] = [0, 253, 254, 255];

impl Validator<'_> {
    /// Every `[[view]]`; `kernel_table` is the default view's table.
    pub(super) fn check_views(
        &mut self,
        raw: Vec<Spanned<FileView>>,
        kernel_table: u32,
        priorities: &super::views::PriorityRange,
    ) -> Vec<View> {
        let mut views: Vec<View> = Vec::new();
        for (i, v) in raw.into_iter().enumerate() {
            let span = v.span();
            let v = v.into_inner();
            let key = |k: &str| format!("view[{i}].{k}");
            let at = |k: &str| key_span(self.text, span.clone(), k);
            let name = match &v.name {
                Some(n) if valid_name(n.get_ref()) => n.get_ref().clone(),
                Some(n) => {
                    let m = format!(
                        "{:?}: a name is 1-32 letters, digits, '-' or '_'",
                        n.get_ref()
                    );
                    self.error(n.span(), &key("name"), m);
                    continue;
                }
                None => {
                    self.error(span.clone(), &key("name"), "missing: the view's name");
                    continue;
                }
            };
            if views.iter().any(|o| o.name == name) {
                self.error(
                    at("name"),
                    &key("name"),
                    format!("duplicate view name {name:?}"),
                );
            }
            let id = match &v.id {
                Some(id) if (1..=254).contains(id.get_ref()) => *id.get_ref() as u8,
                Some(id) => {
                    let m = format!(
                        "{}: a view id is 1..=254 (0 and 255 are reserved)",
                        id.get_ref()
                    );
                    self.error(id.span(), &key("id"), m);
                    continue;
                }
                None => {
                    let m = "missing: the view's id on the wire (1..=254, the same on every node)";
                    self.error(span.clone(), &key("id"), m);
                    continue;
                }
            };
            if let Some(o) = views.iter().find(|o| o.id == id) {
                let m = format!("id {id} is already view {:?}'s", o.name);
                self.error(at("id"), &key("id"), m);
            }
            let table = match &v.table {
                Some(t) if RESERVED_TABLES.contains(t.get_ref()) => {
                    let m = format!(
                        "table {} is reserved (0 unspec, 253 default, 254 main, 255 local)",
                        t.get_ref()
                    );
                    self.error(t.span(), &key("table"), m);
                    continue;
                }
                Some(t) if *t.get_ref() == i64::from(kernel_table) => {
                    let m = format!("table {kernel_table} is the default view's ([kernel] table)");
                    self.error(t.span(), &key("table"), m);
                    continue;
                }
                Some(t) => match u32::try_from(*t.get_ref()) {
                    Ok(t) => t,
                    Err(_) => {
                        let m = format!("{}: a table is 1 to 4294967295", t.get_ref());
                        self.error(t.span(), &key("table"), m);
                        continue;
                    }
                },
                None => {
                    self.error(
                        span.clone(),
                        &key("table"),
                        "missing: the view's kernel table",
                    );
                    continue;
                }
            };
            if let Some(o) = views.iter().find(|o| o.table == table) {
                let m = format!("table {table} is already view {:?}'s", o.name);
                self.error(at("table"), &key("table"), m);
            }
            let metric = match &v.metric {
                None => Metric::Latency,
                Some(m) => match m.get_ref() {
                    FileMetric::Name(n) => match n.as_str() {
                        "latency" => Metric::Latency,
                        "static" => Metric::Static,
                        "hops" => Metric::Hops,
                        other => {
                            let msg = format!(
                                "{other:?}: expected latency, static, hops or {{ rtt, loss, weight }}"
                            );
                            self.error(m.span(), &key("metric"), msg);
                            Metric::Latency
                        }
                    },
                    FileMetric::Expression(e) => {
                        let ok = |x: f64| x.is_finite() && x >= 0.0;
                        if !(ok(e.rtt) && ok(e.loss) && ok(e.weight)) {
                            let msg = "rtt, loss and weight must be numbers >= 0";
                            self.error(m.span(), &key("metric"), msg);
                        }
                        Metric::Expression {
                            rtt: e.rtt,
                            loss: e.loss,
                            weight: e.weight,
                        }
                    }
                },
            };
            let mut rules = Vec::new();
            for (j, r) in v.rules.iter().enumerate() {
                match r.get_ref().check() {
                    Ok(m) => rules.push(m),
                    Err(e) => self.error(r.span(), &key(&format!("rules[{j}]")), e),
                }
            }
            // Each view's rules get their own priorities in [views] rule_priority.
            if let Err(e) = priorities.fits(id, rules.len()) {
                self.error(at("rules"), &key("rules"), e);
            }
            views.push(View {
                name,
                id,
                table,
                metric,
                rules,
            });
        }
        views
    }

    /// A neighbor's `view_cost`: every name must be a configured view.
    pub(super) fn check_view_cost(
        &mut self,
        i: usize,
        raw: Option<Spanned<BTreeMap<String, u32>>>,
        views: &[View],
    ) -> BTreeMap<String, u32> {
        let Some(raw) = raw else {
            return BTreeMap::new();
        };
        let span = raw.span();
        let map = raw.into_inner();
        for name in map.keys() {
            if !views.iter().any(|v| &v.name == name) {
                let m = format!("{name:?} is not a configured [[view]]");
                self.error(span.clone(), &format!("neighbor[{i}].view_cost"), m);
            }
        }
        map
    }
}

fn valid_name(n: &str) -> bool {
    (1..=32).contains(&n.len())
        && n.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{parse, ConfigError};

    const BASE: &str = "router_id = \"10.255.0.1\"\nlocal_as = 65000\n[loopbacks]\n\
        ipv4 = [\"10.255.0.0/16\"]\noriginate = [\"10.255.0.1/32\"]\n\
        [[neighbor]]\ninterface = \"wg1\"\naddress = \"fe80::1:2\"\ncost = 10\n";

    fn errors(extra: &str) -> Vec<ConfigError> {
        parse(&format!("{BASE}{extra}"), "f.toml").unwrap_err().0
    }

    fn keys(extra: &str) -> Vec<(String, usize)> {
        errors(extra).into_iter().map(|e| (e.key, e.line)).collect()
    }

    #[test]
    fn views_and_view_cost_resolve() {
        let text = BASE.replace(
            "cost = 10\n",
            "cost = 10\nview_cost = { bulk = 40, mgmt = 7 }\n",
        ) + "[[view]]\nname = \"bulk\"\nid = 2\ntable = 102\nmetric = \"hops\"\n\
               rules = [ { fwmark = \"0x2\" } ]\n\
               [[view]]\nname = \"mgmt\"\nid = 3\ntable = 103\nmetric = \"static\"\n\
               [[view]]\nname = \"mix\"\nid = 4\ntable = 104\n\
               metric = { rtt = 1.0, loss = 50.0, weight = 2.0 }\n\
               [[view]]\nname = \"fast\"\nid = 5\ntable = 105\n";
        let c = parse(&text, "t").unwrap();
        let v: Vec<_> = c
            .views
            .iter()
            .map(|v| (v.name.as_str(), v.id, v.table, v.metric))
            .collect();
        assert_eq!(
            v,
            [
                ("bulk", 2, 102, Metric::Hops),
                ("mgmt", 3, 103, Metric::Static),
                (
                    "mix",
                    4,
                    104,
                    Metric::Expression {
                        rtt: 1.0,
                        loss: 50.0,
                        weight: 2.0
                    }
                ),
                ("fast", 5, 105, Metric::Latency),
            ]
        );
        assert_eq!(c.views[0].rules[0].fwmark, Some((2, u32::MAX)));
        assert_eq!(c.neighbors[0].view_cost["bulk"], 40);
        // No view: nothing changes in the effective config (its JSON neither).
        let plain = parse(BASE, "t").unwrap();
        assert!(plain.views.is_empty() && plain.neighbors[0].view_cost.is_empty());
        let json = serde_json::to_string(&plain).unwrap();
        assert!(!json.contains("\"view\""), "{json}");
    }

    #[test]
    fn view_errors_name_file_line_and_key() {
        let v = |name: &str, id: &str, table: &str| {
            format!("[[view]]\nname = \"{name}\"\nid = {id}\ntable = {table}\n")
        };
        // Duplicate name, id and table: each on its own line of view[1].
        let two = v("a", "2", "102") + &v("a", "2", "102");
        let k = keys(&two);
        for key in ["view[1].name", "view[1].id", "view[1].table"] {
            assert!(k.iter().any(|(x, _)| x == key), "{key}: {k:?}");
        }
        assert!(k.contains(&("view[1].id".into(), 16)), "{k:?}");
        for id in ["0", "255"] {
            assert_eq!(keys(&v("a", id, "102")), [("view[0].id".into(), 12)]);
        }
        for table in ["254", "255", "0", "253"] {
            assert_eq!(keys(&v("a", "1", table)), [("view[0].table".into(), 13)]);
        }
        // The default view's table ([kernel] table) is taken too.
        let k = keys(&format!("[kernel]\ntable = 100\n{}", v("a", "1", "100")));
        assert_eq!(k, [("view[0].table".into(), 15)]);
        let k = keys(&(v("a", "1", "101") + "metric = \"fastest\"\n"));
        assert_eq!(k, [("view[0].metric".into(), 14)]);
        let k = keys(&(v("a", "1", "101") + "rules = [ { dscp = 99 } ]\n"));
        assert_eq!(k, [("view[0].rules[0]".into(), 14)]);
        // A view's rules must fit [views] rule_priority (10 priorities per id).
        let rules = "rules = [ { fwmark = \"0x1\" } ]\n";
        assert!(parse(&format!("{BASE}{}{rules}", v("a", "100", "101")), "t").is_ok());
        let k = keys(&(v("a", "101", "101") + rules));
        assert_eq!(k, [("view[0].rules".into(), 14)]);
        let small = format!(
            "[views]\nrule_priority = \"100-119\"\n{}{rules}",
            v("a", "3", "101")
        );
        assert_eq!(keys(&small)[0].0, "view[0].rules");
        let e = errors(&v("a b", "1", "101"));
        assert_eq!(e[0].key, "view[0].name");
        assert!(e[0].to_string().starts_with("f.toml:11:"), "{}", e[0]);
    }

    #[test]
    fn view_cost_names_must_be_views() {
        let text = BASE.replace("cost = 10\n", "cost = 10\nview_cost = { bulk = 40 }\n")
            + "[[view]]\nname = \"fast\"\nid = 1\ntable = 101\n";
        let e = parse(&text, "f.toml").unwrap_err().0;
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(
            (e[0].key.as_str(), e[0].line),
            ("neighbor[0].view_cost", 10)
        );
        assert!(e[0].message.contains("\"bulk\""), "{}", e[0].message);
    }
}

#[cfg(test)]
mod reload_tests {
    use crate::config::diff::{diff, effective, Apply};
    use crate::config::parse;

    #[test]
    fn views_and_view_cost_take_a_daemon_restart() {
        let base = "router_id = \"10.255.0.1\"\nlocal_as = 65000\n[loopbacks]\n\
            ipv4 = [\"10.255.0.0/16\"]\noriginate = [\"10.255.0.1/32\"]\n\
            [[neighbor]]\ninterface = \"wg1\"\naddress = \"fe80::1:2\"\ncost = 10\n";
        let view = "[[view]]\nname = \"bulk\"\nid = 2\ntable = 102\n";
        let old = parse(base, "t").unwrap();
        let new = parse(&format!("{base}{view}"), "t").unwrap();
        let d = diff(&old, &new);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].apply, Apply::NeedsDaemonRestart);
        assert!(
            effective(&old, &new).views.is_empty(),
            "still the running views"
        );
        let cost = format!("{base}view_cost = {{ bulk = 4 }}\n{view}");
        let with_cost = parse(&cost, "t").unwrap();
        let d = diff(&new, &with_cost);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].apply, Apply::NeedsDaemonRestart);
        assert!(effective(&new, &with_cost).neighbors[0]
            .view_cost
            .is_empty());
        assert!(diff(&with_cost, &with_cost).is_empty());
    }
}
