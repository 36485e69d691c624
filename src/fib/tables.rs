//! The FIB of several kernel tables: one [`Fib`] core per table kittbgpd
//! owns (the default view's `[kernel] table` first, then each view's), and
//! the routes of ours found in a table it no longer owns (a view removed
//! while the daemon was down, or `[kernel] table` moved), which are deleted.
//!
//! Every table's state is its own: a prefix in two tables is two slots, a
//! dump or an event of one table never touches another's. The default
//! single-table case is one core, as before (no per-route cost added).
//! A route is "ours" by the same test in every table: our protocol number
//! at our metric, for an admitted prefix (the runtime's classification).

use super::{Fib, FibCounts, FibError, FibOp, FibRoute, KernelView, Seen};
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A kernel table id (`ip route ... table N`; 254 = main).
pub type TableId = u32;

#[derive(Debug)]
pub struct FibTables {
    /// Owned tables, each once, in the order given (the default view's first).
    tables: Vec<(TableId, Fib)>,
    /// Routes of ours in tables not owned, to delete (found by dumps and
    /// events, or left by a table given up); not tracked after the delete:
    /// one that failed is found again by the next dump.
    orphans: Vec<(TableId, IpNet)>,
    /// A table was added: a dump tells what it holds (adoption).
    want_dump: bool,
    /// Until the first dump ends: ours found in any table not owned are
    /// orphans (left by an earlier run whose views differed). Afterwards only
    /// tables given up in this run are swept, so another instance using the
    /// same protocol number in a table of its own is left alone.
    start_sweep: bool,
    /// Tables owned earlier in this run and given up by a reload.
    given_up: Vec<TableId>,
    /// Where the next poll starts, so that one busy table cannot starve the others.
    next: usize,
}

impl FibTables {
    /// Nothing desired, nothing known of the kernel; `tables` deduplicated.
    pub fn new(tables: &[TableId]) -> FibTables {
        let mut t = FibTables {
            tables: Vec::new(),
            orphans: Vec::new(),
            want_dump: false,
            start_sweep: true,
            given_up: Vec::new(),
            next: 0,
        };
        for &id in tables {
            if !t.owns(id) {
                t.tables.push((id, Fib::empty()));
            }
        }
        t
    }

    pub fn owns(&self, table: TableId) -> bool {
        self.tables.iter().any(|(t, _)| *t == table)
    }

    /// The owned tables, in order.
    pub fn ids(&self) -> impl Iterator<Item = TableId> + '_ {
        self.tables.iter().map(|(t, _)| *t)
    }

    pub fn get(&self, table: TableId) -> Option<&Fib> {
        self.tables
            .iter()
            .find(|(t, _)| *t == table)
            .map(|(_, f)| f)
    }

    fn get_mut(&mut self, table: TableId) -> Option<&mut Fib> {
        let fib = self.tables.iter_mut().find(|(t, _)| *t == table);
        fib.map(|(_, f)| f)
    }

    /// The tables owned from now on (a reload's view list). A table given up
    /// has its routes of ours deleted (a removed view's table must not keep
    /// steering traffic); a new table starts empty and a dump adopts what of
    /// ours it holds.
    pub fn set_tables(&mut self, tables: &[TableId]) {
        let (keep, gone): (Vec<_>, Vec<_>) = std::mem::take(&mut self.tables)
            .into_iter()
            .partition(|(t, _)| tables.contains(t));
        self.tables = keep;
        self.given_up.retain(|t| !tables.contains(t));
        for (t, mut fib) in gone {
            if !self.given_up.contains(&t) {
                self.given_up.push(t);
            }
            for op in fib.remove_all() {
                self.orphans.push((t, op.prefix()));
            }
        }
        for &t in tables {
            if !self.owns(t) {
                self.tables.push((t, Fib::empty()));
                self.want_dump = true;
            }
        }
        self.next = 0;
    }

    /// Our routes found at start are kept in each table until `now + grace`.
    pub fn start_grace(&mut self, now: Instant, grace: Duration) {
        for (_, fib) in &mut self.tables {
            fib.start_grace(now, grace);
        }
    }

    /// Ends the startup grace of `table` (see [`Fib::end_grace`]).
    pub fn end_grace(&mut self, table: TableId) -> bool {
        self.get_mut(table).is_some_and(Fib::end_grace)
    }

    /// The route for `prefix` in `table` changed; ignored for a table not owned.
    pub fn set_via(&mut self, table: TableId, prefix: IpNet, route: Option<(IpAddr, &str)>) {
        if let Some(fib) = self.get_mut(table) {
            fib.set_via(prefix, route);
        }
    }

    /// [`FibTables::set_via`] with a [`FibRoute`].
    pub fn set(&mut self, table: TableId, prefix: IpNet, route: Option<FibRoute>) {
        if let Some(fib) = self.get_mut(table) {
            fib.set(prefix, route);
        }
    }

    /// A route event of `table`: to its core, or (ours appearing in a table
    /// given up) an orphan to delete. Another protocol's routes in tables
    /// not owned are none of our business.
    pub fn kernel_event(&mut self, table: TableId, seen: Seen, present: bool) {
        match self.get_mut(table) {
            Some(fib) => fib.kernel_event(seen, present),
            None => {
                if let (Seen::Ours(r), true) = (seen, present) {
                    if self.given_up.contains(&table) {
                        self.orphan(table, r.prefix);
                    }
                }
            }
        }
    }

    fn orphan(&mut self, table: TableId, prefix: IpNet) {
        if !self.orphans.contains(&(table, prefix)) {
            self.orphans.push((table, prefix));
        }
    }

    /// A dump of every table starts (one kernel dump covers them all).
    pub fn begin_dump(&mut self) {
        for (_, fib) in &mut self.tables {
            fib.begin_dump();
        }
        self.orphans.clear();
    }

    /// One route of the dump, in `table`.
    pub fn dumped(&mut self, table: TableId, seen: Seen) {
        match self.get_mut(table) {
            Some(fib) => fib.dumped(seen),
            None => {
                if let Seen::Ours(r) = seen {
                    if self.start_sweep || self.given_up.contains(&table) {
                        self.orphan(table, r.prefix);
                    }
                }
            }
        }
    }

    pub fn end_dump(&mut self) {
        for (_, fib) in &mut self.tables {
            fib.end_dump();
        }
        self.want_dump = false;
        self.start_sweep = false;
    }

    pub fn wants_dump(&self) -> bool {
        self.want_dump || self.tables.iter().any(|(_, f)| f.wants_dump())
    }

    pub fn has_work(&self) -> bool {
        !self.orphans.is_empty() || self.tables.iter().any(|(_, f)| f.has_work())
    }

    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tables
            .iter()
            .filter_map(|(_, f)| f.poll_timeout())
            .min()
    }

    /// At most `max` operations, each with its table: orphans' deletes first,
    /// then the tables in turn, starting one further each call.
    pub fn poll_max(&mut self, now: Instant, max: usize) -> Vec<(TableId, FibOp)> {
        let n = self.orphans.len().min(max);
        let mut ops: Vec<(TableId, FibOp)> = (self.orphans.drain(..n))
            .map(|(t, p)| (t, FibOp::Delete(p)))
            .collect();
        let len = self.tables.len();
        for i in 0..len {
            let (t, fib) = &mut self.tables[(self.next + i) % len];
            let room = max - ops.len();
            ops.extend(fib.poll_max(now, room).into_iter().map(|op| (*t, op)));
        }
        if len > 0 {
            self.next = (self.next + 1) % len;
        }
        ops
    }

    /// The outcome of an operation from [`FibTables::poll_max`].
    pub fn result(
        &mut self,
        table: TableId,
        op: &FibOp,
        result: Result<(), FibError>,
        now: Instant,
    ) {
        // An orphan's delete: done, gone already, or found again by a dump.
        if let Some(fib) = self.get_mut(table) {
            fib.result(op, result, now);
        }
    }

    /// See [`Fib::keeps_failing`].
    pub fn keeps_failing(&self, table: TableId, prefix: &IpNet) -> bool {
        self.get(table).is_some_and(|f| f.keeps_failing(prefix))
    }

    /// [`Fib::forwarding_changes`] of every table, with its table.
    pub fn forwarding_changes(&mut self) -> Vec<(TableId, IpNet, bool)> {
        let mut out = Vec::new();
        for (t, fib) in &mut self.tables {
            out.extend(
                fib.forwarding_changes()
                    .into_iter()
                    .map(|(p, ok)| (*t, p, ok)),
            );
        }
        out
    }

    /// Prefixes another protocol holds at our metric, per table.
    pub fn foreign(&self) -> Vec<(TableId, IpNet)> {
        let each = self
            .tables
            .iter()
            .map(|(t, f)| f.foreign().map(move |p| (*t, p)));
        each.flatten().collect()
    }

    /// Counts per table, in order.
    pub fn counts(&self) -> Vec<(TableId, FibCounts)> {
        self.tables.iter().map(|(t, f)| (*t, f.counts())).collect()
    }

    /// Our routes in the kernel, over every owned table.
    pub fn installed(&self) -> usize {
        self.tables.iter().map(|(_, f)| f.counts().installed).sum()
    }

    /// `show kernel`: every table's prefixes (table order, then prefix
    /// order), or only `table`'s.
    pub fn view(&self, table: Option<TableId>) -> Vec<KernelView> {
        let tables = self.tables.iter();
        let tables = tables.filter(|(t, _)| table.is_none_or(|w| w == *t));
        tables.flat_map(|(t, f)| f.view(*t)).collect()
    }

    /// On a clean stop with `on_stop = "remove"`: every table's routes, deleted.
    pub fn remove_all(&mut self) -> Vec<(TableId, FibOp)> {
        let each = self.tables.iter_mut();
        let ops = each.flat_map(|(t, f)| f.remove_all().into_iter().map(|op| (*t, op)));
        ops.collect()
    }
}
