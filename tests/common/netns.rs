//! Root-only tests in a network namespace of their own: a thread unshares
//! its netns (it ends with the thread) and runs the scenario there.

use std::future::Future;
use std::process::Command;

/// `sh -c CMD` in this thread's namespace; its standard output (panics on failure).
pub fn sh(cmd: &str) -> String {
    let out = Command::new("sh").arg("-c").arg(cmd).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Run `scenario` on a current-thread runtime in a fresh network namespace;
/// skipped (with a note) unless root with iproute2.
pub fn in_fresh_netns<F, Fut>(scenario: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 || Command::new("ip").arg("-V").output().is_err() {
        eprintln!("skipped: needs root and iproute2 (a network namespace)");
        return;
    }
    std::thread::spawn(|| {
        // SAFETY: unshare(2) on this thread only; its netns ends with it.
        if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
            eprintln!("skipped: cannot create a network namespace");
            return;
        }
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(scenario());
    })
    .join()
    .unwrap();
}
