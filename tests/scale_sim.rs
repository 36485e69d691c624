//! The scale scenario of benches/fabric_scale.rs, small enough for `cargo
//! test`: 30 routers in a ring with chords, two reflectors, 100 anycast
//! overlay prefixes; converged, every choice equals Dijkstra
//! (common/scale.rs). Figures at 100, 300 and 1000 routers come from
//! `cargo bench --bench fabric_scale`.

#[path = "common/fabric.rs"]
mod fabric;
#[path = "common/scale.rs"]
mod scale;

fn converged(add_path: bool, prefixes: usize, seed: u64) -> scale::Scale {
    let mut s = scale::build(30, prefixes, seed, add_path);
    s.f.converge_all();
    assert_eq!(s.f.mh_up.len(), 2 * 2 * 30, "every multihop session up");
    s
}

/// ADD-PATH on the reflectors: every router exits at its own nearest origin.
#[test]
fn thirty_routers_choose_their_nearest_exit_with_add_path() {
    let mut s = converged(true, 100, 7);
    let checked = scale::check(&s);
    assert_eq!(checked.choices, 100 * 32);
    // Quiet: converging again sends nothing.
    assert_eq!(s.f.converge(), 0);
}

/// Without ADD-PATH: the nearest of the exits its reflectors chose.
#[test]
fn thirty_routers_choose_among_their_reflectors_exits_without_add_path() {
    let s = converged(false, 100, 7);
    scale::check(&s);
}

/// A link cost change re-converges to Dijkstra again.
#[test]
fn a_cost_change_reconverges_to_dijkstra() {
    let mut s = converged(true, 40, 11);
    let (a, b) = (0, 1);
    for (x, y) in [(a, b), (b, a)] {
        let p = s.f.nodes[x].peer_of[&y];
        s.f.nodes[x].rib.set_link_cost(p, Some(500));
        s.f.cost.insert((x, y), 500);
    }
    s.f.converge_all();
    scale::check(&s);
}
