//! What this node originates: the `loopbacks.originate` prefixes plus, with
//! `from_lo`, the addresses on `lo` inside the loopback ranges; and the
//! overlay's: `[overlay] originate` plus, with its `from_lo`, the addresses on
//! `lo` inside the overlay ranges (the RIB tells the two apart by range). One value with
//! two inputs (a reload changes the config part, a netlink event the `lo`
//! part); each input returns the new set only when it changed, so the RIB
//! hears exactly the difference and neither input overwrites the other.

use super::overlay::Overlay;
use super::Loopbacks;
use ipnet::IpNet;
use std::collections::BTreeSet;

#[derive(Debug, Clone)]
pub struct Originated {
    loopbacks: Loopbacks,
    /// `[overlay]` (a reload replaces it: [`set_overlay`](Self::set_overlay)).
    overlay: Overlay,
    on_lo: Vec<IpNet>,
    /// The set last handed out.
    sent: BTreeSet<IpNet>,
}

impl Originated {
    /// At start: the config and what `lo` holds; [`current`](Self::current)
    /// is what to announce first.
    pub fn new(loopbacks: Loopbacks, overlay: Overlay, on_lo: Vec<IpNet>) -> Originated {
        let mut o = Originated {
            loopbacks,
            overlay,
            on_lo,
            sent: BTreeSet::new(),
        };
        o.sent = o.compute();
        o
    }

    pub fn current(&self) -> &BTreeSet<IpNet> {
        &self.sent
    }

    pub fn loopbacks(&self) -> &Loopbacks {
        &self.loopbacks
    }

    /// Whether addresses on `lo` matter (loopbacks' or overlay's `from_lo`).
    pub fn from_lo(&self) -> bool {
        self.loopbacks.from_lo || self.overlay.from_lo
    }

    /// A reload: the new `[loopbacks]`. `Some(set)` if what we originate changed.
    pub fn set_loopbacks(&mut self, loopbacks: Loopbacks) -> Option<BTreeSet<IpNet>> {
        self.loopbacks = loopbacks;
        self.changed()
    }

    /// A reload: the new `[overlay]`. `Some(set)` if what we originate changed.
    pub fn set_overlay(&mut self, overlay: Overlay) -> Option<BTreeSet<IpNet>> {
        self.overlay = overlay;
        self.changed()
    }

    /// The addresses now on `lo`. `Some(set)` if what we originate changed.
    pub fn set_on_lo(&mut self, on_lo: Vec<IpNet>) -> Option<BTreeSet<IpNet>> {
        self.on_lo = on_lo;
        self.changed()
    }

    fn compute(&self) -> BTreeSet<IpNet> {
        let mut set: BTreeSet<IpNet> = self.loopbacks.originate.iter().copied().collect();
        if self.loopbacks.from_lo {
            let admitted = self.on_lo.iter().filter(|p| self.loopbacks.admits(**p));
            set.extend(admitted);
        }
        set.extend(self.overlay.originated(self.on_lo.iter().map(|p| p.addr())));
        set
    }

    fn changed(&mut self) -> Option<BTreeSet<IpNet>> {
        let now = self.compute();
        (now != self.sent).then(|| {
            self.sent = now.clone();
            now
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lb(originate: &[&str], from_lo: bool) -> Loopbacks {
        Loopbacks {
            ipv4: vec!["10.255.0.0/24".parse().unwrap()],
            ipv6: vec![],
            originate: originate.iter().map(|p| p.parse().unwrap()).collect(),
            from_lo,
        }
    }

    fn set(v: &[&str]) -> BTreeSet<IpNet> {
        v.iter().map(|p| p.parse().unwrap()).collect()
    }

    #[test]
    fn a_lo_change_after_a_reload_keeps_the_reloaded_config() {
        let lo = |v: &[&str]| v.iter().map(|p| p.parse().unwrap()).collect();
        let mut o = Originated::new(
            lb(&["10.255.0.1/32"], true),
            Overlay::default(),
            lo(&["10.255.0.7/32"]),
        );
        assert_eq!(o.current(), &set(&["10.255.0.1/32", "10.255.0.7/32"]));
        // Reload: 10.255.0.1 no longer originated, 10.255.0.2 is.
        assert_eq!(
            o.set_loopbacks(lb(&["10.255.0.2/32"], true)),
            Some(set(&["10.255.0.2/32", "10.255.0.7/32"]))
        );
        // Then an address appears on lo (and one outside the range): the
        // reloaded config stays, the start-up one does not come back.
        assert_eq!(
            o.set_on_lo(lo(&["10.255.0.7/32", "10.255.0.8/32", "192.0.2.1/32"])),
            Some(set(&["10.255.0.2/32", "10.255.0.7/32", "10.255.0.8/32"]))
        );
        assert_eq!(
            o.set_on_lo(lo(&["10.255.0.8/32", "10.255.0.7/32"])),
            None,
            "same set: nothing to send"
        );
    }

    #[test]
    fn from_lo_off_ignores_lo_and_on_again_uses_it() {
        let lo = vec!["10.255.0.7/32".parse().unwrap()];
        let mut o = Originated::new(lb(&[], true), Overlay::default(), lo);
        assert_eq!(o.set_loopbacks(lb(&[], false)), Some(set(&[])));
        assert_eq!(o.set_on_lo(vec!["10.255.0.9/32".parse().unwrap()]), None);
        assert_eq!(
            o.set_loopbacks(lb(&[], true)),
            Some(set(&["10.255.0.9/32"]))
        );
    }

    #[test]
    fn overlay_prefixes_come_from_its_config_and_from_lo_in_its_ranges() {
        let overlay = Overlay {
            ipv4: vec!["192.168.0.0/16".parse().unwrap()],
            originate: vec!["192.168.1.0/24".parse().unwrap()],
            from_lo: true,
            ..Overlay::default()
        };
        let lo = vec![
            "10.255.0.7/32".parse().unwrap(),
            "192.168.9.9/32".parse().unwrap(),
        ];
        let mut o = Originated::new(lb(&[], false), overlay, lo);
        assert!(o.from_lo(), "lo is read for the overlay alone");
        assert_eq!(o.current(), &set(&["192.168.1.0/24", "192.168.9.9/32"]));
        assert_eq!(
            o.set_on_lo(vec![]),
            Some(set(&["192.168.1.0/24"])),
            "the anycast address left lo: withdrawn"
        );
    }

    #[test]
    fn a_reloaded_overlay_changes_what_is_originated_once() {
        let lo: Vec<IpNet> = vec!["10.77.0.1/32".parse().unwrap()];
        let mut o = Originated::new(lb(&[], false), Overlay::default(), lo);
        assert!(o.current().is_empty(), "no overlay: nothing from lo");
        let overlay = Overlay {
            ipv4: vec!["10.77.0.0/16".parse().unwrap()],
            from_lo: true,
            ..Overlay::default()
        };
        let set = o.set_overlay(overlay.clone()).expect("changed");
        assert_eq!(set, ["10.77.0.1/32".parse().unwrap()].into());
        assert_eq!(o.set_overlay(overlay), None, "same again: no change");
        assert_eq!(o.set_overlay(Overlay::default()), Some(BTreeSet::new()));
    }
}
