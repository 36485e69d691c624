//! The RIB task's side of our own graceful restart (RFC 4724 §4.1): the
//! [`RestartGrace`] of the default table and of each view, fed with the
//! sessions coming up, and what its end releases: our deferred output and
//! the FIB's sweep of the previous run's kernel routes.

use super::RibTask;
use crate::config::Config;
use crate::rib::RestartGrace;
use crate::wire::open::GracefulRestart;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use tracing::{debug, info};

/// Our restart over the default table and a copy per view: every enabled
/// graceful-restart neighbor awaited until the longest `restart_time`.
/// `restarted` (our kernel routes were found, the R bit is sent): the output
/// is deferred too, that deadline being the selection-deferral timer.
pub(super) fn our_restart(
    config: &Config,
    views: usize,
    restarted: bool,
) -> (RestartGrace, Vec<RestartGrace>) {
    let gr = config
        .neighbors
        .iter()
        .enumerate()
        .filter(|(_, n)| n.graceful_restart && n.enabled);
    let deadline = gr
        .clone()
        .map(|(_, n)| n.restart_time)
        .max()
        .map(|t| Instant::now() + Duration::from_secs(t.into()));
    let any_gr = gr.clone().next().is_some();
    let restart = RestartGrace::new(gr.map(|(i, _)| i), deadline);
    // Without a graceful-restart neighbor there is no End-of-RIB to wait for.
    let restart = if restarted && any_gr {
        restart.defer_output()
    } else {
        restart
    };
    let view_restart = vec![restart.clone(); views];
    (restart, view_restart)
}

impl RibTask {
    /// A session of `peer` is up: whether its End-of-RIB is awaited (not
    /// without graceful restart, nor a view End-of-RIB without the view
    /// families), and whether it restarts too (R bit: not awaited for the
    /// deferral, it waits for ours).
    pub(super) fn restart_session_up(
        &mut self,
        peer: usize,
        graceful: Option<&GracefulRestart>,
        view_families: bool,
    ) {
        let name = self.peers[peer].name.clone();
        match graceful {
            None => {
                if self.restart.session_without_gr(peer) {
                    debug!(peer = %name, "no graceful restart on this session: its End-of-RIB is not awaited");
                }
            }
            Some(g) => {
                self.restart.session_with_gr(peer, g.restarting);
                for r in &mut self.view_restart {
                    r.session_with_gr(peer, g.restarting);
                }
            }
        }
        // A session without the view families (BIRD) sends no view End-of-RIB.
        if graceful.is_none() || !view_families {
            for r in &mut self.view_restart {
                r.session_without_gr(peer);
            }
        }
        if self.output_deferred() || self.views_deferred() {
            let waits_for: Vec<&str> = std::iter::once(&self.restart)
                .chain(&self.view_restart)
                .flat_map(RestartGrace::deferral_waits_for)
                .collect::<BTreeSet<_>>()
                .into_iter()
                .filter_map(|i| self.peers.get(i).map(|p| p.name.as_str()))
                .collect();
            let left = self
                .restart
                .poll_timeout()
                .map(|t| t.saturating_duration_since(Instant::now()).as_secs());
            info!(peer = %name, ?waits_for, deferral_timer_left_s = ?left, "graceful restart of this node: output deferred until End-of-RIB from every graceful-restart neighbor or the deferral timer (RFC 4724 §4.1)");
        }
    }

    /// Restarting speaker (RFC 4724 §4.1): once every awaited GR neighbor
    /// sent End-of-RIB for each family of its session, the FIB sweeps the
    /// routes of the previous run not re-learned (sent after the routes,
    /// once the FIB pulled them all: [`RibTask::feed_fib`]).
    /// Each view's table is swept on its own, once the view's End-of-RIB
    /// came from every graceful-restart neighbor carrying the views.
    ///
    /// Our output is deferred meanwhile ([`RestartGrace::holds_output`]):
    /// the default table's until its End-of-RIBs, the views' (one stream
    /// with one End-of-RIB per family) until those of every view.
    pub(super) fn restart_progress(&mut self) {
        let now = Instant::now();
        let views_held = self.views_deferred();
        let over = self.restart.progress(&self.rib, now);
        if let Some(why) = self.restart.take_release() {
            info!("graceful restart of this node: output released to every neighbor: {why}");
        }
        if over {
            info!("graceful restart of this node over: End-of-RIB from every graceful-restart neighbor, or the restart time passed");
            if self.fib.is_some() && self.restart.sweeps() {
                self.end_grace_owed.push(self.kernel_table);
            }
            self.restarting.send_replace(false);
        }
        let mut why = None;
        for (r, t) in self.view_restart.iter_mut().zip(self.views.tables()) {
            if r.progress(&t.rib, now) && self.fib.is_some() && r.sweeps() {
                debug!(view = %t.view.name, "graceful restart of this node over in the view");
                self.end_grace_owed.push(t.view.table);
            }
            why = r.take_release().or(why);
        }
        if views_held && !self.views_deferred() {
            let why = why.map_or_else(String::new, |w| w.to_string());
            info!("graceful restart of this node: views' output released to every neighbor: {why}");
        }
    }

    /// The default table's output is held back (RFC 4724 §4.1).
    pub(super) fn output_deferred(&self) -> bool {
        self.restart.holds_output()
    }

    /// The views' output is held back: until every view's deferral is over.
    pub(super) fn views_deferred(&self) -> bool {
        self.view_restart.iter().any(RestartGrace::holds_output)
    }
}
