//! A panic in any task (RIB, FIB, a session) must end the daemon: with
//! unwinding, tokio catches a task's panic and the process would go on with
//! its sessions up and its RIB or FIB dead. The binary is built with
//! `panic = "abort"` (Cargo.toml; main.rs refuses to compile otherwise) and
//! says so in `--version`; this checks the binary cargo built here.

use std::process::Command;

#[test]
fn the_daemon_binary_aborts_on_panic() {
    let out = Command::new(env!("CARGO_BIN_EXE_kittbgpd"))
        .arg("--version")
        .output()
        .expect("run kittbgpd --version");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("(panic=abort)"), "{text}");
}
