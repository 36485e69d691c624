//! Start-up code leaves the resident set once start-up is over.
//!
//! Most of the binary's text runs once: argument parsing, the TOML parser and
//! config validation, the kernel table dump, tunnel set-up. The kernel maps
//! text 64 KiB around each page fault, so after start-up nearly the whole
//! binary is mapped (~4 MiB of a 5 MiB text) although the idle daemon runs a
//! small part of it. Rarely run code says so ([`rare_code_ran`]: start-up
//! done, a reload, a session established); once the daemon has been quiet
//! for [`QUIET`] after it, the daemon unmaps its own read-only, never-written
//! file pages with `madvise(MADV_DONTNEED)`: they stay in the page cache, and
//! what still runs faults back in (a minor fault, no I/O).
//!
//! Only mappings of the daemon's own executable that are not writable and
//! hold no private (copy-on-write) page are touched: for a private file
//! mapping, MADV_DONTNEED drops modified pages, so the RELRO segment (written
//! by the dynamic loader before it was made read-only) and anything a
//! debugger patched are left alone. Shared libraries are left alone too.

use std::io;
use std::time::Duration;
use tokio::sync::Notify;

/// How long after the last rarely run code the pages are released.
pub const QUIET: Duration = Duration::from_secs(1);

/// Process-wide, as the code pages are.
static RARE_CODE_RAN: Notify = Notify::const_new();

/// Start-up, a reload or a session set-up just ran: release the code pages
/// once things are quiet again.
pub fn rare_code_ran() {
    RARE_CODE_RAN.notify_one();
}

/// The task: wait for rarely run code, then for [`QUIET`] without more, then
/// release.
pub async fn release_when_quiet() {
    loop {
        RARE_CODE_RAN.notified().await;
        loop {
            tokio::select! {
                () = tokio::time::sleep(QUIET) => break,
                () = RARE_CODE_RAN.notified() => {}
            }
        }
        release_logged("quiet");
    }
}

/// One mapping to release: start address and length in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Region {
    pub start: usize,
    pub len: usize,
}

/// The mappings of `exe` in `/proc/self/smaps` text that can be released:
/// readable, not writable, file-backed by `exe`, with no anonymous (copied)
/// page and something resident.
pub fn releasable(smaps: &str, exe: &str) -> Vec<Region> {
    let mut out = Vec::new();
    let mut current: Option<(Region, bool)> = None; // (region, candidate)
    let mut resident = 0u64;
    let mut anonymous = u64::MAX;
    let mut finish = |cur: Option<(Region, bool)>, resident: u64, anonymous: u64| {
        if let Some((r, true)) = cur {
            if resident > 0 && anonymous == 0 {
                out.push(r);
            }
        }
    };
    for line in smaps.lines() {
        if let Some(region) = mapping_header(line) {
            finish(current.take(), resident, anonymous);
            resident = 0;
            anonymous = u64::MAX;
            let perms = line.split_whitespace().nth(1).unwrap_or("");
            let candidate = perms.starts_with("r-") && path_of(line) == exe;
            current = Some((region, candidate));
        } else if let Some(v) = field_kib(line, "Rss:") {
            resident = v;
        } else if let Some(v) = field_kib(line, "Anonymous:") {
            anonymous = v;
        }
    }
    finish(current.take(), resident, anonymous);
    out
}

/// `start-end perms offset dev inode [path]` → the region, or None for a
/// field line (`Rss:   12 kB`).
fn mapping_header(line: &str) -> Option<Region> {
    let range = line.split_whitespace().next()?;
    let (a, b) = range.split_once('-')?;
    let start = usize::from_str_radix(a, 16).ok()?;
    let end = usize::from_str_radix(b, 16).ok()?;
    (end > start).then_some(Region {
        start,
        len: end - start,
    })
}

/// The path of a mapping header: everything after the fifth field (a path
/// may hold spaces, and a replaced binary reads `... (deleted)`).
fn path_of(line: &str) -> &str {
    let mut rest = line;
    for _ in 0..5 {
        rest = rest.trim_start();
        rest = rest.find(char::is_whitespace).map_or("", |i| &rest[i..]);
    }
    rest.trim()
}

fn field_kib(line: &str, name: &str) -> Option<u64> {
    line.strip_prefix(name)?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Release the daemon's start-up code pages; returns the bytes of the
/// mappings advised (not all of them were resident).
pub fn release() -> io::Result<usize> {
    let exe = std::fs::read_link("/proc/self/exe")?;
    let smaps = std::fs::read_to_string("/proc/self/smaps")?;
    let mut bytes = 0;
    for r in releasable(&smaps, &exe.to_string_lossy()) {
        // SAFETY: the region is a whole mapping of our own executable,
        // read-only and without private pages (checked above): dropping its
        // page table entries loses nothing, the next access faults the same
        // bytes back from the file. No Rust reference covers code pages.
        let rc = unsafe { libc::madvise(r.start as *mut libc::c_void, r.len, libc::MADV_DONTNEED) };
        if rc != 0 {
            return Err(io::Error::last_os_error());
        }
        bytes += r.len;
    }
    Ok(bytes)
}

/// A periodic safety-net dump (links, kernel routes) just ran: its parsing
/// mapped much of the netlink crates' text again (fault-around). Released at
/// once: nothing else rare follows it, and waiting [`QUIET`] would keep it
/// resident for a second out of every ten.
pub fn periodic_work_done() {
    release_logged("after a periodic dump");
}

/// [`release`], logged; a failure only costs memory.
fn release_logged(when: &str) {
    match release() {
        Ok(bytes) => tracing::debug!("{when}: released {} KiB of code mappings", bytes / 1024),
        Err(e) => tracing::debug!("{when}: cannot release code pages: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXE: &str = "/usr/bin/kittbgpd";

    fn smaps() -> String {
        let m = |range: &str, perms: &str, path: &str, rss: u64, anon: u64| {
            format!(
                "{range} {perms} 00000000 fe:00 5308465                    {path}\n\
                 Size:               1000 kB\nRss:                {rss} kB\n\
                 Pss:                {rss} kB\nAnonymous:          {anon} kB\n\
                 VmFlags: rd mr mw me\n"
            )
        };
        [
            m("1000-2000", "r--p", EXE, 8, 0),  // headers, .rodata: released
            m("2000-5000", "r-xp", EXE, 12, 0), // text: released
            m("5000-6000", "r--p", EXE, 4, 4),  // RELRO: written by the loader
            m("6000-7000", "rw-p", EXE, 4, 0),  // .data: writable
            m("7000-8000", "r-xp", EXE, 0, 0),  // nothing resident
            m("8000-9000", "r-xp", "/usr/lib/libc.so.6", 40, 0), // another file
            m("9000-a000", "rw-p", "[heap]", 4, 4),
            m("a000-b000", "r-xp", "/usr/bin/kittbgpd (deleted)", 4, 0),
        ]
        .concat()
    }

    #[test]
    fn releases_only_clean_read_only_mappings_of_the_executable() {
        assert_eq!(
            releasable(&smaps(), EXE),
            vec![
                Region {
                    start: 0x1000,
                    len: 0x1000
                },
                Region {
                    start: 0x2000,
                    len: 0x3000
                },
            ]
        );
    }

    #[test]
    fn a_mapping_without_an_anonymous_line_is_left_alone() {
        let text = format!("1000-2000 r-xp 00000000 fe:00 1 {EXE}\nRss: 8 kB\n");
        assert!(releasable(&text, EXE).is_empty());
    }

    #[test]
    fn release_keeps_the_process_running() {
        // The test binary's own code: released, then this code runs on.
        let bytes = release().expect("madvise");
        assert!(bytes > 0, "the test binary has text mappings");
        assert_eq!(releasable("garbage\n\n", EXE), vec![]);
    }
}
