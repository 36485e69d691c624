//! The tasks that only export state and touch no session: the metrics
//! endpoint and the BMP collectors. Started from the config at start and
//! restarted one by one by a reload (re-bind the listener, connect added
//! collectors, end removed ones with a Termination).

use super::control::Views;
use super::rib_task::RibMsg;
use crate::config::bmp::Bmp;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::info;

struct Collector {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub struct Services {
    started: Instant,
    rib: mpsc::Sender<RibMsg>,
    views: watch::Receiver<Views>,
    router_id: String,
    metrics: Option<(SocketAddr, JoinHandle<()>)>,
    bmp_stats: u64,
    collectors: BTreeMap<String, Collector>,
}

impl Services {
    pub fn new(
        started: Instant,
        rib: mpsc::Sender<RibMsg>,
        views: watch::Receiver<Views>,
        router_id: String,
    ) -> Services {
        Services {
            started,
            rib,
            views,
            router_id,
            metrics: None,
            bmp_stats: 0,
            collectors: BTreeMap::new(),
        }
    }

    /// `[metrics] listen`: nothing to do if unchanged; else the old endpoint
    /// closes and the new one is bound.
    pub async fn set_metrics(&mut self, listen: Option<SocketAddr>) -> Result<(), String> {
        if self.metrics.as_ref().map(|(a, _)| *a) == listen {
            return Ok(());
        }
        if let Some((addr, task)) = self.metrics.take() {
            task.abort();
            let _ = task.await;
            info!(%addr, "metrics endpoint closed");
        }
        let Some(addr) = listen else { return Ok(()) };
        let task = super::metrics::serve(addr, self.views.clone(), self.rib.clone(), self.started)
            .await
            .map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
        self.metrics = Some((addr, task));
        Ok(())
    }

    /// `[bmp]`: added collectors connect, removed ones end (Termination);
    /// a new `stats_interval` restarts them all.
    pub fn set_bmp(&mut self, bmp: &Bmp) {
        if bmp.stats_interval != self.bmp_stats {
            self.stop_collectors(|_| true);
            self.bmp_stats = bmp.stats_interval;
        }
        self.stop_collectors(|addr| !bmp.collectors.iter().any(|c| c == addr));
        for c in &bmp.collectors {
            if self.collectors.contains_key(c) {
                continue;
            }
            let (stop, stop_rx) = watch::channel(false);
            let task = tokio::spawn(super::bmp::collector(
                c.clone(),
                self.rib.clone(),
                Duration::from_secs(bmp.stats_interval),
                self.router_id.clone(),
                stop_rx,
            ));
            self.collectors.insert(c.clone(), Collector { stop, task });
        }
    }

    fn stop_collectors(&mut self, which: impl Fn(&str) -> bool) {
        let gone: Vec<String> = self
            .collectors
            .keys()
            .filter(|a| which(a))
            .cloned()
            .collect();
        for addr in gone {
            if let Some(c) = self.collectors.remove(&addr) {
                info!(collector = %addr, "BMP collector no longer configured: ending its session");
                let _ = c.stop.send(true);
            }
        }
    }

    /// Shutdown: every collector ends (Termination, RFC 7854 §4.5), at most 3 s.
    pub async fn stop(&mut self) {
        if let Some((_, task)) = self.metrics.take() {
            task.abort();
        }
        let mut tasks = Vec::new();
        for (_, c) in std::mem::take(&mut self.collectors) {
            let _ = c.stop.send(true);
            tasks.push(c.task);
        }
        let _ =
            tokio::time::timeout(Duration::from_secs(3), futures::future::join_all(tasks)).await;
    }
}
