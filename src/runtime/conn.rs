//! The bytes of one TCP connection: a reader task that cuts the stream into
//! messages, a writer task that sends what the peer task queues. Both only move
//! bytes; events go back to the peer task tagged with the connection's generation.
//! Every queue is bounded: the reader waits while the peer task is behind (TCP
//! pushes back on the sender); the writer's queue holds a few RIB chunks (the
//! RIB sends one per credit) and the session's own messages, and the writer
//! reports each write the socket accepts (send hold timer, RFC 9687) and each
//! RIB chunk written (a credit back).

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
    /// The socket accepted bytes; `idle`: nothing left to write; `credits`:
    /// RIB chunks now fully written.
    Sent {
        dir: Direction,
        generation: u64,
        idle: bool,
        credits: u32,
    },
}

/// Events queued from connection tasks to the peer task, at most.
pub const EVENT_QUEUE: usize = 64;
/// Messages queued for the writer, at most: the RIB's chunks in flight
/// (bounded by its credits) plus the session's own messages.
const WRITE_QUEUE: usize = 32;
/// How long a closing connection may take to send its last bytes.
const CLOSE_GRACE: Duration = Duration::from_secs(5);
/// While a write waits, how often the socket's send queue is checked for
/// progress (the peer acknowledging data).
const PROGRESS_POLL: Duration = Duration::from_secs(5);

/// What the writer sends: a RIB chunk returns a credit once written.
#[derive(Debug)]
struct Out {
    bytes: Bytes,
    rib: bool,
}

/// The peer task's handle on one connection.
#[derive(Debug)]
pub struct ConnIo {
    pub generation: u64,
    pub local: Option<SocketAddr>,
    pub remote: Option<SocketAddr>,
    pub established: bool,
    writer: mpsc::Sender<Out>,
    /// Largest message the reader accepts, judged from the header alone
    /// (RFC 4271 §6.1): 4096 until OPENs negotiate RFC 8654 extended messages.
    max_len: Arc<AtomicUsize>,
    writer_task: JoinHandle<()>,
    reader_task: JoinHandle<()>,
}

impl ConnIo {
    /// Queue a message of the session; false if the writer's queue is full
    /// (the peer accepts nothing: the send hold timer ends it).
    pub fn send(&self, message: Bytes) -> bool {
        self.writer
            .try_send(Out {
                bytes: message,
                rib: false,
            })
            .is_ok()
    }

    /// Queue a chunk of UPDATEs from the RIB; a credit comes back once written.
    pub fn send_rib(&self, chunk: Bytes) -> bool {
        self.writer
            .try_send(Out {
                bytes: chunk,
                rib: true,
            })
            .is_ok()
    }

    /// The largest message the peer may send from now on.
    pub fn set_max_len(&self, max: usize) {
        self.max_len.store(max, Ordering::Relaxed);
    }

    /// Stop reading; the writer sends what is queued, then shuts the
    /// connection down, within [`CLOSE_GRACE`] (a peer that reads nothing
    /// does not keep the socket open).
    pub fn close(self) -> JoinHandle<()> {
        self.reader_task.abort();
        drop(self.writer);
        let mut writer = self.writer_task;
        tokio::spawn(async move {
            if tokio::time::timeout(CLOSE_GRACE, &mut writer)
                .await
                .is_err()
            {
                writer.abort();
            }
        })
    }
}

pub fn start(
    stream: TcpStream,
    dir: Direction,
    generation: u64,
    events: mpsc::Sender<ConnEvent>,
) -> ConnIo {
    let local = stream.local_addr().ok();
    let remote = stream.peer_addr().ok();
    let (rd, wr) = stream.into_split();
    let (writer, queue) = mpsc::channel(WRITE_QUEUE);
    let max_len = Arc::new(AtomicUsize::new(MAX_MESSAGE_LEN));
    let writer_task = tokio::spawn(write_loop(wr, queue, dir, generation, events.clone()));
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
    events: mpsc::Sender<ConnEvent>,
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
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = events
                        .send(ConnEvent::BadFrame {
                            dir,
                            generation,
                            notification: e.notification(),
                        })
                        .await;
                    return;
                }
            }
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(64 * 1024);
        }
        match rd.read_buf(&mut buf).await {
            Ok(0) => {
                let _ = events
                    .send(ConnEvent::Closed {
                        dir,
                        generation,
                        error: None,
                    })
                    .await;
                return;
            }
            Ok(_) => {}
            Err(e) => {
                let _ = events
                    .send(ConnEvent::Closed {
                        dir,
                        generation,
                        error: Some(e),
                    })
                    .await;
                return;
            }
        }
    }
}

/// Write whatever is queued with one vectored write where possible, so a
/// burst of messages costs few syscalls and no copy (RIB chunks are often
/// shared by an update group); report every write the socket accepts.
async fn write_loop(
    mut wr: OwnedWriteHalf,
    mut queue: mpsc::Receiver<Out>,
    dir: Direction,
    generation: u64,
    events: mpsc::Sender<ConnEvent>,
) {
    let mut batch: Vec<Bytes> = Vec::new();
    while let Some(first) = queue.recv().await {
        batch.clear();
        let mut total = first.bytes.len();
        batch.push(first.bytes);
        let mut credits = u32::from(first.rib);
        while total < 256 * 1024 {
            match queue.try_recv() {
                Ok(more) => {
                    total += more.bytes.len();
                    batch.push(more.bytes);
                    credits += u32::from(more.rib);
                }
                Err(_) => break,
            }
        }
        let mut at = 0;
        let mut unacked = send_queue(&wr);
        while at < batch.len() {
            let slices: Vec<std::io::IoSlice<'_>> = batch[at..]
                .iter()
                .take(64)
                .map(|b| std::io::IoSlice::new(b))
                .collect();
            let written = tokio::select! {
                r = wr.write_vectored(&slices) => r,
                () = tokio::time::sleep(PROGRESS_POLL) => {
                    // Not writable yet, but the peer may be reading, slowly:
                    // the kernel wakes a writer only once much has drained.
                    let now = send_queue(&wr);
                    if matches!((now, unacked), (Some(a), Some(b)) if a < b) {
                        let sent = ConnEvent::Sent { dir, generation, idle: false, credits: 0 };
                        if events.send(sent).await.is_err() {
                            return;
                        }
                    }
                    unacked = now;
                    continue;
                }
            };
            drop(slices);
            let mut n = match written {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            while n > 0 && at < batch.len() {
                let len = batch[at].len();
                if n >= len {
                    n -= len;
                    batch[at] = Bytes::new();
                    at += 1;
                } else {
                    bytes::Buf::advance(&mut batch[at], n);
                    n = 0;
                }
            }
            unacked = send_queue(&wr);
            let done = at == batch.len();
            let sent = ConnEvent::Sent {
                dir,
                generation,
                idle: done && queue.is_empty(),
                credits: if done { credits } else { 0 },
            };
            if events.send(sent).await.is_err() {
                return;
            }
        }
    }
    let _ = wr.shutdown().await;
}

/// Bytes in the socket's send queue not yet acknowledged by the peer
/// (TIOCOUTQ); `None` if unknown, which never counts as progress.
fn send_queue(wr: &OwnedWriteHalf) -> Option<i32> {
    use std::os::fd::AsRawFd;
    let fd = wr.as_ref().as_raw_fd();
    let mut n: libc::c_int = 0;
    // SAFETY: TIOCOUTQ on a socket fd writes one int to the pointer given.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCOUTQ, &mut n) };
    (rc == 0).then_some(n)
}
