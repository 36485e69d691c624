//! The control socket: one JSON request per line, one JSON response per line.
//! Root-only (mode 0600) since it shows the whole routing state, or shared
//! with `control_group` (mode 0660) so operators need not be root.

use super::fib_task::FibMsg;
use super::peer::{PeerCmd, PeerStatus};
use super::rib_task::RibMsg;
use crate::ctl::{Request, RouteQuery};
use crate::fib::{KernelView, PrefixState};
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
    /// Each BFD session (`show bfd`).
    pub bfd: Vec<watch::Receiver<super::bfd::BfdView>>,
    /// Tunnels built from `[wireguard]`: endpoint, handshake age, counters, link state.
    pub tunnels: Option<watch::Receiver<Vec<serde_json::Value>>>,
    /// Each peer task, in neighbor order (for enable / disable).
    pub peer_cmds: Vec<mpsc::UnboundedSender<PeerCmd>>,
    /// The kernel FIB task (`None`: `[kernel] enabled = false`).
    pub fib: Option<mpsc::UnboundedSender<FibMsg>>,
    /// The views' policy rules (`None`: no view has rules, or `[kernel] enabled = false`).
    pub rules: Option<super::rules_task::RulesHandle>,
    /// Per peer id: removed by a reload (its slot stays, not shown).
    pub removed: Vec<bool>,
    /// The configuration in force (`show config`).
    pub config: crate::config::Config,
    /// The owner of the running configuration (`kittbgpd reload`).
    pub reload: mpsc::UnboundedSender<super::reload::ReloadReq>,
}

pub fn serve(
    path: &Path,
    group: Option<&str>,
    views: watch::Receiver<Views>,
    rib: mpsc::Sender<RibMsg>,
) -> std::io::Result<Control> {
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
    set_group(path, group)?;
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

/// Owner group and mode of the socket: 0660 and `group`, or 0600 (root only).
/// At start and when a reload changes `control_group`.
pub fn set_group(path: &Path, group: Option<&str>) -> std::io::Result<()> {
    let mode = match group {
        Some(name) => {
            std::os::unix::fs::chown(path, None, Some(group_id(name)?))?;
            0o660
        }
        None => 0o600,
    };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// The id of group `name` (getgrnam_r(3)).
fn group_id(name: &str) -> std::io::Result<u32> {
    let cname = std::ffi::CString::new(name)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "bad group name"))?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: zeroed `group` is a valid out-parameter; buf outlives the call.
    let mut grp: libc::group = unsafe { std::mem::zeroed() };
    let mut found: *mut libc::group = std::ptr::null_mut();
    let rc = unsafe {
        libc::getgrnam_r(
            cname.as_ptr(),
            &mut grp,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut found,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::from_raw_os_error(rc));
    }
    if found.is_null() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("control_group: no group named {name:?}"),
        ));
    }
    Ok(grp.gr_gid)
}

async fn client(
    stream: tokio::net::UnixStream,
    views: watch::Receiver<Views>,
    rib: mpsc::Sender<RibMsg>,
) {
    let (rd, mut wr) = stream.into_split();
    let mut lines = BufReader::new(rd).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let response = match serde_json::from_str::<Request>(&line) {
            Ok(req) => {
                let views = views.borrow().clone();
                answer(req, &views, &rib).await
            }
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

pub(super) async fn answer(
    req: Request,
    views: &Views,
    rib: &mpsc::Sender<RibMsg>,
) -> serde_json::Value {
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
                .filter(|(i, _)| !views.removed.get(*i).copied().unwrap_or(false))
                .map(|(i, p)| {
                    let mut v = json(serde_json::to_value(p.borrow().clone()));
                    if let (Some(obj), Some(c)) = (v.as_object_mut(), counts.get(i)) {
                        obj.insert("routes".into(), json(serde_json::to_value(c)));
                    }
                    bfd_of(views, &mut v);
                    link_of(views, &mut v);
                    v
                })
                .collect();
            serde_json::Value::Array(list)
        }
        Request::Routes {
            all,
            filtered,
            view: Some(view),
        } => {
            let query = RouteQuery { all, filtered };
            match ask(rib, |reply| RibMsg::ViewRoutes {
                view: view.clone(),
                query,
                reply,
            })
            .await
            {
                Some(Some(routes)) => json(serde_json::to_value(routes)),
                Some(None) => serde_json::json!({ "error": format!("no [[view]] named {view:?}") }),
                None => serde_json::json!({ "error": "routing task did not answer" }),
            }
        }
        Request::Routes {
            all,
            filtered,
            view: None,
        } => {
            let query = RouteQuery { all, filtered };
            match ask(rib, |reply| RibMsg::RouteList { query, reply }).await {
                Some(mut routes) => {
                    if let Some(fib) = &views.fib {
                        // The default view's table (the routes shown are its).
                        let table = Some(views.config.kernel.table);
                        let kernel = ask_task(fib, |reply| FibMsg::View { table, reply })
                            .await
                            .unwrap_or_default();
                        annotate(&mut routes, &kernel);
                    }
                    json(serde_json::to_value(routes))
                }
                None => serde_json::json!({ "error": "routing task did not answer" }),
            }
        }
        Request::Enable { neighbor } => admin(views, &neighbor, true),
        Request::Disable { neighbor } => admin(views, &neighbor, false),
        Request::Kernel { table } => match &views.fib {
            Some(fib) => match ask_task(fib, |reply| FibMsg::View { table, reply }).await {
                Some(v) => json(serde_json::to_value(v)),
                None => serde_json::json!({ "error": "kernel task did not answer" }),
            },
            None => {
                serde_json::json!({ "error": "kernel routes are off ([kernel] enabled = false)" })
            }
        },
        Request::Links => links_with_tunnels(views),
        Request::Bfd => json(serde_json::to_value(
            views
                .bfd
                .iter()
                .map(|b| b.borrow().clone())
                .collect::<Vec<_>>(),
        )),
        Request::Config => json(serde_json::to_value(&views.config)),
        Request::Reload { dry_run } => {
            let sent = ask_task(&views.reload, |reply| super::reload::ReloadReq {
                dry_run,
                reply,
            });
            sent.await
                .unwrap_or_else(|| serde_json::json!({ "error": "reload task did not answer" }))
        }
        Request::Tunnels => serde_json::Value::Array(tunnel_views(views)),
        Request::Views => views_answer(views).await,
        Request::DumpMrt { file } => dump_mrt(rib, &file).await,
        Request::Explain {
            prefix,
            view: Some(view),
        } => {
            let msg = |reply| RibMsg::ViewExplain {
                view: view.clone(),
                prefix,
                reply,
            };
            match ask(rib, msg).await {
                Some(Some(e)) => json(serde_json::to_value(e)),
                Some(None) => serde_json::json!({ "error": format!("no [[view]] named {view:?}") }),
                None => serde_json::json!({ "error": "routing task did not answer" }),
            }
        }
        Request::Explain { prefix, view: None } => {
            match ask(rib, |reply| RibMsg::Explain { prefix, reply }).await {
                Some(e) => json(serde_json::to_value(e)),
                None => serde_json::json!({ "error": "routing task did not answer" }),
            }
        }
    }
}

/// `show views`: the policy rules (priority range, each rule and its
/// state, other protocols' rules in the range, counters); `rules` is null
/// when no task runs.
async fn views_answer(views: &Views) -> serde_json::Value {
    let range = views.config.view_settings.rule_priority.to_string();
    let Some(h) = &views.rules else {
        let why = if views.config.kernel.enabled {
            "no view has rules"
        } else {
            "kernel routes are off ([kernel] enabled = false)"
        };
        return serde_json::json!({ "rule_priority": range, "rules": null, "note": why });
    };
    match h.view().await {
        Some(v) => serde_json::json!({ "rule_priority": range, "rules": v }),
        None => serde_json::json!({ "error": "policy rule task did not answer" }),
    }
}

/// `kittbgpd dump mrt FILE`: the RIB task encodes, this task writes (to
/// FILE.tmp, mode 0600, then renamed: a reader never sees half a dump).
async fn dump_mrt(rib: &mpsc::Sender<RibMsg>, file: &Path) -> serde_json::Value {
    if !file.is_absolute() {
        return serde_json::json!({ "error": format!("{}: not an absolute path", file.display()) });
    }
    let time = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as u32);
    let Some(bytes) = ask(rib, |reply| RibMsg::MrtDump { time, reply }).await else {
        return serde_json::json!({ "error": "routing task did not answer" });
    };
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let written = async {
        let mut f = tokio::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)
            .await?;
        f.write_all(&bytes).await?;
        f.sync_all().await?;
        tokio::fs::rename(&tmp, file).await
    }
    .await;
    match written {
        Ok(()) => serde_json::json!({ "file": file, "bytes": bytes.len() }),
        Err(e) => {
            let _ = tokio::fs::remove_file(&tmp).await;
            serde_json::json!({ "error": format!("{}: {e}", file.display()) })
        }
    }
}

/// One question to the RIB task and its answer (None if the task is gone).
pub(super) async fn ask<T>(
    rib: &mpsc::Sender<RibMsg>,
    msg: impl FnOnce(oneshot::Sender<T>) -> RibMsg,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    rib.send(msg(tx)).await.ok()?;
    rx.await.ok()
}

/// One question to another task (FIB) and its answer (None if the task is gone).
pub(super) async fn ask_task<T, M>(
    task: &mpsc::UnboundedSender<M>,
    msg: impl FnOnce(oneshot::Sender<T>) -> M,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    task.send(msg(tx)).ok()?;
    rx.await.ok()
}

/// `kittbgpd enable|disable NEIGHBOR`.
fn admin(views: &Views, neighbor: &str, enable: bool) -> serde_json::Value {
    let found = (views.peers.iter().enumerate()).position(|(i, p)| {
        !views.removed.get(i).copied().unwrap_or(false) && p.borrow().name == neighbor
    });
    match found.and_then(|i| views.peer_cmds.get(i)) {
        Some(tx) if tx.send(PeerCmd::Admin { enable }).is_ok() => {
            serde_json::json!({ "neighbor": neighbor, "enabled": enable })
        }
        Some(_) => serde_json::json!({ "error": format!("neighbor {neighbor}: task gone") }),
        None => serde_json::json!({ "error": format!("no neighbor named {neighbor:?}") }),
    }
}

/// The kernel state of each best path from a peer (`show routes`).
fn annotate(routes: &mut [crate::ctl::RouteView], kernel: &[KernelView]) {
    let by_prefix: std::collections::HashMap<String, &KernelView> =
        kernel.iter().map(|k| (k.prefix.to_string(), k)).collect();
    for r in routes.iter_mut().filter(|r| r.best && r.peer != "self") {
        r.kernel = Some(match by_prefix.get(&r.prefix) {
            None => "pending".into(),
            Some(k) => match (k.state, k.foreign_protocol, &k.error) {
                (PrefixState::Conflict, Some(p), _) => format!("conflict (proto {p})"),
                (PrefixState::Conflict, None, _) => "conflict".into(),
                (PrefixState::Failed, _, Some(e)) => format!("failed: {e}"),
                (s, _, _) => serde_json::to_value(s)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
            },
        });
    }
}

/// A neighbor with BFD: its session's state and why it last went down, under
/// "bfd" (what `show neighbors` says of a session BFD holds down).
fn bfd_of(views: &Views, neighbor: &mut serde_json::Value) {
    let Some(obj) = neighbor.as_object_mut() else {
        return;
    };
    let name = obj.get("name").and_then(|n| n.as_str()).unwrap_or_default();
    let Some(rx) = views.bfd.iter().find(|b| b.borrow().name == name) else {
        return;
    };
    let b = rx.borrow();
    let s = b.session.as_ref();
    obj.insert(
        "bfd".into(),
        serde_json::json!({
            "state": s.map(|s| s.state),
            "last_down": s.and_then(|s| s.last_down.clone()),
        }),
    );
}

/// A neighbor with a measured link: why the prober last took it down and its
/// damping, under "link" (what `show neighbors` says of a session the prober
/// holds down).
fn link_of(views: &Views, neighbor: &mut serde_json::Value) {
    let Some(obj) = neighbor.as_object_mut() else {
        return;
    };
    let name = obj.get("name").and_then(|n| n.as_str()).unwrap_or_default();
    let Some(rx) = views
        .links
        .iter()
        .find(|l| l.borrow().get("name").and_then(|n| n.as_str()) == Some(name))
    else {
        return;
    };
    let l = rx.borrow();
    // The history is oldest first: the latest entry without a new cost is the last down.
    let down = l
        .get("history")
        .and_then(|h| h.as_array())
        .and_then(|h| {
            h.iter()
                .rev()
                .find(|c| c.get("new").is_some_and(|n| n.is_null()))
        })
        .and_then(|c| c.get("reason").cloned());
    obj.insert(
        "link".into(),
        serde_json::json!({
            "last_down": down,
            "damping": l.get("damping").cloned(),
        }),
    );
}

/// Measured links, each with its tunnel's view under "tunnel" (same interface);
/// a tunnel without a prober is a link of its own.
fn links_with_tunnels(views: &Views) -> serde_json::Value {
    let mut links: Vec<serde_json::Value> =
        views.links.iter().map(|l| l.borrow().clone()).collect();
    for t in tunnel_views(views) {
        let ifname = t.get("interface").cloned();
        match links
            .iter_mut()
            .find(|l| l.get("interface") == ifname.as_ref())
        {
            Some(l) => {
                if let Some(o) = l.as_object_mut() {
                    // A static-cost link (its prober only answers the stream): the tunnel's state.
                    if !o.contains_key("state") {
                        o.insert("state".into(), t.get("link").cloned().unwrap_or_default());
                    }
                    o.insert("tunnel".into(), t);
                }
            }
            None => links.push(serde_json::json!({
                "name": t.get("name").cloned().unwrap_or_default(),
                "interface": ifname,
                "state": t.get("link").cloned().unwrap_or_default(),
                "tunnel": t,
            })),
        }
    }
    serde_json::Value::Array(links)
}

fn tunnel_views(views: &Views) -> Vec<serde_json::Value> {
    views
        .tunnels
        .as_ref()
        .map_or(Vec::new(), |t| t.borrow().clone())
}

#[cfg(test)]
mod tests {
    #[test]
    fn group_lookup() {
        assert_eq!(super::group_id("root").unwrap(), 0);
        assert!(super::group_id("no-such-group-kb").is_err());
    }
}
