//! The control socket: one JSON request per line, one JSON response per line.
//! Root-only (mode 0600) since it shows the whole routing state.

use super::peer::PeerStatus;
use super::rib_task::RibMsg;
use crate::ctl::{Request, RouteQuery};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixListener;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{debug, warn};

pub struct Control {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Control {
    pub fn shutdown(self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What the control socket reads: each peer's status, each measured link's view.
#[derive(Clone)]
pub struct Views {
    pub peers: Vec<watch::Receiver<PeerStatus>>,
    pub links: Vec<watch::Receiver<serde_json::Value>>,
}

pub fn serve(path: &Path, views: Views, rib: mpsc::Sender<RibMsg>) -> std::io::Result<Control> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // A socket left by a dead daemon would make bind fail; one in use is refused.
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another kittbgpd answers on it",
            ));
        }
        std::fs::remove_file(path)?;
    }
    let listener = UnixListener::bind(path)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    let task = tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(client(stream, views.clone(), rib.clone()));
                }
                Err(e) => warn!("control socket accept failed: {e}"),
            }
        }
    });
    Ok(Control {
        path: path.to_path_buf(),
        task,
    })
}

async fn client(stream: tokio::net::UnixStream, views: Views, rib: mpsc::Sender<RibMsg>) {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => answer(req, &views, &rib).await,
            Err(e) => serde_json::json!({ "error": format!("bad request: {e}") }),
        };
        debug!(?line, "control request");
        let mut text = response.to_string();
        text.push('\n');
        if wr.write_all(text.as_bytes()).await.is_err() {
            return;
        }
    }
}

async fn answer(req: Request, views: &Views, rib: &mpsc::Sender<RibMsg>) -> serde_json::Value {
    let peers = &views.peers;
    let json = |v: Result<serde_json::Value, serde_json::Error>| {
        v.unwrap_or_else(|e| serde_json::json!({ "error": e.to_string() }))
    };
    match req {
        Request::Neighbors => {
            let counts = ask(rib, |reply| RibMsg::Counts { reply })
                .await
                .unwrap_or_default();
            let list: Vec<serde_json::Value> = peers
                .iter()
                .enumerate()
                .map(|(i, p)| {
                    let mut v = json(serde_json::to_value(p.borrow().clone()));
                    if let (Some(obj), Some(c)) = (v.as_object_mut(), counts.get(i)) {
                        obj.insert("routes".into(), json(serde_json::to_value(c)));
                    }
                    v
                })
                .collect();
            serde_json::Value::Array(list)
        }
        Request::Routes { all, filtered } => {
            let query = RouteQuery { all, filtered };
            match ask(rib, |reply| RibMsg::RouteList { query, reply }).await {
                Some(routes) => json(serde_json::to_value(routes)),
                None => serde_json::json!({ "error": "routing task did not answer" }),
            }
        }
        Request::Links => {
            serde_json::Value::Array(views.links.iter().map(|l| l.borrow().clone()).collect())
        }
        Request::Explain { prefix } => {
            match ask(rib, |reply| RibMsg::Explain { prefix, reply }).await {
                Some(e) => json(serde_json::to_value(e)),
                None => serde_json::json!({ "error": "routing task did not answer" }),
            }
        }
    }
}

/// One question to the RIB task and its answer (None if the task is gone).
async fn ask<T>(
    rib: &mpsc::Sender<RibMsg>,
    msg: impl FnOnce(oneshot::Sender<T>) -> RibMsg,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    rib.send(msg(tx)).await.ok()?;
    rx.await.ok()
}
