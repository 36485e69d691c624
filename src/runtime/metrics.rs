//! The Prometheus endpoint (`[metrics] listen`): a minimal HTTP/1.1 responder
//! for `GET /metrics`, one request per connection. Each scrape asks the owners
//! for the same views the control socket shows (no shared state, no locks) and
//! renders them with [`crate::metrics::render`]. A full HTTP stack (hyper) would
//! add much for one fixed route; a scraper needs no more than this.

use super::control::{self, Views};
use super::fib_task::FibMsg;
use super::rib_task::RibMsg;
use crate::ctl::Request;
use crate::metrics::{render, to_classic_text, Snapshot};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";
/// A request head larger than this, or slower than the timeout, is dropped.
const MAX_HEAD: usize = 8192;
const READ_TIMEOUT: Duration = Duration::from_secs(5);

pub async fn serve(
    addr: SocketAddr,
    views: watch::Receiver<Views>,
    rib: mpsc::Sender<RibMsg>,
    started: Instant,
) -> std::io::Result<tokio::task::JoinHandle<()>> {
    let listener = TcpListener::bind(addr).await?;
    info!(%addr, "metrics on http://{addr}/metrics");
    Ok(tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(client(stream, views.clone(), rib.clone(), started));
                }
                Err(e) => {
                    warn!("metrics accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }))
}

async fn client(
    mut stream: TcpStream,
    views: watch::Receiver<Views>,
    rib: mpsc::Sender<RibMsg>,
    started: Instant,
) {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(Some(h)) => h,
        _ => return,
    };
    let response = match route(&head) {
        Ok(()) => {
            // The views as of now (a reload replaces them).
            let views = views.borrow().clone();
            let body = render(&snapshot(&views, &rib, started).await);
            if wants_openmetrics(&head) {
                reply("200 OK", OPENMETRICS, &body)
            } else {
                reply("200 OK", CLASSIC, &to_classic_text(&body))
            }
        }
        Err(status) => reply(status, "text/plain; charset=utf-8", "GET /metrics\n"),
    };
    debug!(
        request = head.lines().next().unwrap_or(""),
        "metrics request"
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// The request head up to the blank line (None: closed or too large).
async fn read_head(stream: &mut TcpStream) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 || buf.len() + n > MAX_HEAD {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8(buf).ok()
}

/// Only `GET /metrics` (or `/`), with or without a query string.
fn route(head: &str) -> Result<(), &'static str> {
    let mut parts = head.lines().next().unwrap_or("").split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    match (method, path) {
        ("GET", "/metrics" | "/") => Ok(()),
        ("GET", _) => Err("404 Not Found"),
        _ => Err("405 Method Not Allowed"),
    }
}

/// Prometheus asks for OpenMetrics in `Accept`; anything else gets the classic format.
fn wants_openmetrics(head: &str) -> bool {
    head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("accept:") && l.contains("application/openmetrics-text")
    })
}

fn reply(status: &str, content_type: &str, body: &str) -> String {
    format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// The views `show neighbors|links|kernel` print, asked of their owners now.
async fn snapshot(views: &Views, rib: &mpsc::Sender<RibMsg>, started: Instant) -> Snapshot {
    let array = |v: serde_json::Value| match v {
        serde_json::Value::Array(a) => a,
        _ => Vec::new(),
    };
    let neighbors = array(control::answer(Request::Neighbors, views, rib).await);
    let links = array(control::answer(Request::Links, views, rib).await);
    let bfd = array(control::answer(Request::Bfd, views, rib).await);
    let (kernel, kernel_ops) = match &views.fib {
        Some(fib) => (
            Some(array(
                control::answer(Request::Kernel { table: None }, views, rib).await,
            )),
            control::ask_task(fib, |reply| FibMsg::Ops { reply })
                .await
                .map(|o| (o.done, o.failed)),
        ),
        None => (None, None),
    };
    let best_changes = control::ask(rib, |reply| RibMsg::BestChanges { reply })
        .await
        .unwrap_or(0);
    let views = control::ask(rib, |reply| RibMsg::ViewMetrics { reply })
        .await
        .unwrap_or_default();
    Snapshot {
        uptime_s: started.elapsed().as_secs_f64(),
        now_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        neighbors,
        links,
        bfd,
        kernel,
        kernel_ops,
        best_changes,
        views,
    }
}

#[cfg(test)]
mod tests {
    use super::route;

    #[test]
    fn only_get_metrics_is_served() {
        assert_eq!(route("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), Ok(()));
        assert_eq!(route("GET /metrics?x=1 HTTP/1.0\r\n\r\n"), Ok(()));
        assert_eq!(route("GET /other HTTP/1.1\r\n\r\n"), Err("404 Not Found"));
        assert_eq!(
            route("POST /metrics HTTP/1.1\r\n\r\n"),
            Err("405 Method Not Allowed")
        );
        assert_eq!(route(""), Err("405 Method Not Allowed"));
        assert!(super::wants_openmetrics(
            "GET /metrics HTTP/1.1\r\nAccept: application/openmetrics-text;version=1.0.0,text/plain;q=0.5\r\n\r\n"
        ));
        assert!(!super::wants_openmetrics(
            "GET /metrics HTTP/1.1\r\nAccept: */*\r\n\r\n"
        ));
    }
}
