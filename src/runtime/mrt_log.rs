//! `[mrt] updates = FILE`: every UPDATE received, appended to FILE as MRT
//! BGP4MP_MESSAGE_AS4 (RFC 6396 §4.4.3). The RIB task encodes ([`MrtLog`]);
//! a writer task appends. The queue is bounded: when the disk cannot keep up,
//! records are dropped and counted (logged), the RIB never waits.

use crate::rib::{PeerId, Rib};
use crate::wire::{Message, Negotiated, Update};
use bytes::{Bytes, BytesMut};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tracing::warn;

/// Records queued before new ones are dropped.
pub const QUEUE: usize = 16 * 1024;

/// The RIB task's side.
#[derive(Default)]
pub struct MrtLog {
    tx: Option<mpsc::Sender<Bytes>>,
    /// Per peer: the session's negotiated options and local address.
    up: Vec<Option<(Negotiated, Option<SocketAddr>)>>,
    dropped: u64,
}

impl MrtLog {
    /// Starts the writer task for `file` (`None`: no log).
    pub fn start(file: Option<PathBuf>) -> MrtLog {
        let Some(file) = file else {
            return MrtLog::default();
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(writer(file, rx));
        MrtLog {
            tx: Some(tx),
            ..MrtLog::default()
        }
    }

    /// A reload of `[mrt] updates`: the old writer finishes its queue and
    /// closes; records go to `file` from now on (sessions stay known).
    pub fn reopen(&mut self, file: Option<PathBuf>) {
        self.tx = file.map(|file| {
            let (tx, rx) = mpsc::channel(QUEUE);
            tokio::spawn(writer(file, rx));
            tx
        });
    }

    pub fn peer_up(&mut self, peer: PeerId, neg: Negotiated, local: Option<SocketAddr>) {
        if self.up.len() <= peer {
            self.up.resize_with(peer + 1, || None);
        }
        self.up[peer] = Some((neg, local));
    }

    pub fn peer_down(&mut self, peer: PeerId) {
        if let Some(p) = self.up.get_mut(peer) {
            *p = None;
        }
    }

    /// One UPDATE received from `peer` (re-encoded as the session encodes:
    /// the values are the received ones, attribute order is canonical).
    pub fn update(&mut self, rib: &Rib, peer: PeerId, update: &Update) {
        let Some(tx) = &self.tx else { return };
        let Some(Some((neg, local))) = self.up.get(peer) else {
            return;
        };
        let Ok(msg) = Message::Update(update.clone()).to_bytes(neg) else {
            return;
        };
        let unspecified = IpAddr::V6(Ipv6Addr::UNSPECIFIED);
        let asn = rib.config().local_as;
        let time = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as u32);
        let mut out = BytesMut::new();
        crate::mrt::encode_bgp4mp_message(
            &mut out,
            time,
            asn,
            asn,
            0,
            rib.peer_address(peer).unwrap_or(unspecified),
            local.map_or(unspecified, |l| l.ip()),
            &msg,
        );
        if tx.try_send(out.freeze()).is_err() {
            self.dropped += 1;
            if self.dropped.is_power_of_two() {
                warn!(
                    dropped = self.dropped,
                    "MRT update log cannot keep up: records dropped"
                );
            }
        }
    }
}

async fn writer(file: PathBuf, mut rx: mpsc::Receiver<Bytes>) {
    let f = tokio::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(&file)
        .await;
    let mut f = match f {
        Ok(f) => f,
        Err(e) => {
            warn!("MRT update log {}: {e}; not logging", file.display());
            // Drain so the RIB task's queue never fills for nothing.
            while rx.recv().await.is_some() {}
            return;
        }
    };
    while let Some(first) = rx.recv().await {
        let mut batch = first.to_vec();
        while let Ok(m) = rx.try_recv() {
            batch.extend_from_slice(&m);
            if batch.len() > 1 << 20 {
                break;
            }
        }
        if let Err(e) = f.write_all(&batch).await {
            warn!("MRT update log {}: {e}", file.display());
        }
    }
}
