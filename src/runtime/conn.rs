//! The bytes of one TCP connection: a reader task that cuts the stream into
//! messages, a writer task that sends what the peer task queues. Both only move
//! bytes; events go back to the peer task tagged with the connection's generation.

use crate::session::Direction;
use crate::wire::{split_frame, Notification, MAX_MESSAGE_LEN};
use bytes::{Bytes, BytesMut};
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Events from connection tasks (and connect attempts) to the peer task.
#[derive(Debug)]
pub enum ConnEvent {
    ConnectDone(io::Result<TcpStream>),
    Frame {
        dir: Direction,
        generation: u64,
        frame: Bytes,
    },
    BadFrame {
        dir: Direction,
        generation: u64,
        notification: Notification,
    },
    Closed {
        dir: Direction,
        generation: u64,
        error: Option<io::Error>,
    },
}

/// The peer task's handle on one connection.
#[derive(Debug)]
pub struct ConnIo {
    pub generation: u64,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub established: bool,
    writer: mpsc::UnboundedSender<Bytes>,
    /// Largest message the reader accepts, judged from the header alone
    /// (RFC 4271 §6.1): 4096 until OPENs negotiate RFC 8654 extended messages.
    max_len: Arc<AtomicUsize>,
    writer_task: JoinHandle<()>,
    reader_task: JoinHandle<()>,
}

impl ConnIo {
    pub fn send(&self, message: Bytes) {
        let _ = self.writer.send(message);
    }

    /// The largest message the peer may send from now on.
    pub fn set_max_len(&self, max: usize) {
        self.max_len.store(max, Ordering::Relaxed);
    }

    /// Stop reading; the writer sends what is queued, then shuts the connection down.
    pub fn close(self) -> JoinHandle<()> {
        self.reader_task.abort();
        drop(self.writer);
        self.writer_task
    }
}

pub fn start(
    stream: TcpStream,
    dir: Direction,
    generation: u64,
    events: mpsc::UnboundedSender<ConnEvent>,
) -> ConnIo {
    let local = stream.local_addr().ok();
    let remote = stream.peer_addr().ok();
    let (rd, wr) = stream.into_split();
    let (writer, queue) = mpsc::unbounded_channel();
    let max_len = Arc::new(AtomicUsize::new(MAX_MESSAGE_LEN));
    let writer_task = tokio::spawn(write_loop(wr, queue));
    let reader_task = tokio::spawn(read_loop(rd, dir, generation, max_len.clone(), events));
    ConnIo {
        generation,
        local,
        remote,
        established: false,
        writer,
        max_len,
        writer_task,
        reader_task,
    }
}

/// Wait for closing connections' writers, at most `limit`.
pub async fn wait_all(handles: Vec<JoinHandle<()>>, limit: Duration) {
    let _ = tokio::time::timeout(limit, futures::future::join_all(handles)).await;
}

async fn read_loop(
    mut rd: OwnedReadHalf,
    dir: Direction,
    generation: u64,
    max_len: Arc<AtomicUsize>,
    events: mpsc::UnboundedSender<ConnEvent>,
) {
    let mut buf = BytesMut::with_capacity(64 * 1024);
    loop {
        loop {
            match split_frame(&mut buf, max_len.load(Ordering::Relaxed)) {
                Ok(Some(frame)) => {
                    if events
                        .send(ConnEvent::Frame {
                            dir,
                            generation,
                            frame,
                        })
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = events.send(ConnEvent::BadFrame {
                        dir,
                        generation,
                        notification: e.notification(),
                    });
                    return;
                }
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = events.send(ConnEvent::Closed {
                    dir,
                    generation,
                    error: None,
                });
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = events.send(ConnEvent::Closed {
                    dir,
                    generation,
                    error: Some(e),
                });
                return;
            }
        }
    }
}

/// Coalesce whatever is queued into one write, so a burst of UPDATEs costs few syscalls.
async fn write_loop(mut wr: OwnedWriteHalf, mut queue: mpsc::UnboundedReceiver<Bytes>) {
    let mut batch = BytesMut::new();
    while let Some(first) = queue.recv().await {
        batch.clear();
        batch.extend_from_slice(&first);
        while batch.len() < 256 * 1024 {
            match queue.try_recv() {
                Ok(more) => batch.extend_from_slice(&more),
                Err(_) => break,
            }
        }
        if wr.write_all(&batch).await.is_err() {
            return;
        }
    }
    let _ = wr.shutdown().await;
}
