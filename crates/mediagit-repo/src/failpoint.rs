//! Failpoints for crash testing: named places where a test can ask the
//! process to die by SIGKILL, to prove that a crash at that point leaves a
//! valid repository.
//!
//! The library never reads the environment: the CLI passes the
//! `MEDIAGIT_FAILPOINTS` value to [`configure`]. A spec is a comma-separated
//! list of `PREFIX@N`: the N-th time a failpoint whose name starts with
//! PREFIX is hit, the process kills itself. `PREFIX@N=int` sends it SIGINT
//! instead (a Ctrl-C at an exact point, for the interrupt tests), and
//! `PREFIX@N=stop` SIGSTOP (the process waits there until a test has changed
//! the working tree under it and sends SIGCONT: races made exact). With no
//! spec, [`hit`] is one atomic load.
//!
//! Compiled in only with the `failpoints` cargo feature (the crash tests
//! enable it: `cargo test --features mediagit-cli/failpoints`); in every
//! other build [`hit`] is an empty inline function and nothing reads a
//! spec, so an environment variable can never make an installed binary
//! kill itself mid-write.
#[cfg(feature = "failpoints")]
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "failpoints")]
use std::sync::OnceLock;

#[cfg(feature = "failpoints")]
struct Point {
    prefix: String,
    at: u64,
    /// The signal to send: SIGKILL, or SIGINT for `=int`.
    signal: libc::c_int,
    count: AtomicU64,
}

#[cfg(feature = "failpoints")]
static POINTS: OnceLock<Vec<Point>> = OnceLock::new();

/// Parses and installs a spec (first call wins). Malformed items are ignored.
#[cfg(feature = "failpoints")]
pub fn configure(spec: &str) {
    let points = spec
        .split(',')
        .filter_map(|item| {
            let (prefix, at) = item.trim().split_once('@')?;
            let (at, signal) = match at.split_once('=') {
                Some((at, "int")) => (at, libc::SIGINT),
                Some((at, "stop")) => (at, libc::SIGSTOP),
                Some(_) => return None,
                None => (at, libc::SIGKILL),
            };
            Some(Point {
                prefix: prefix.to_string(),
                at: at.parse().ok()?,
                signal,
                count: AtomicU64::new(0),
            })
        })
        .collect();
    let _ = POINTS.set(points);
}

/// Marks a failpoint: nothing, in a build without the `failpoints` feature.
#[cfg(not(feature = "failpoints"))]
#[inline(always)]
pub fn hit(_name: &str) {}

/// Marks a failpoint. Kills the process if the configured count is reached.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    let Some(points) = POINTS.get() else { return };
    for p in points {
        if name.starts_with(&p.prefix) && p.count.fetch_add(1, Ordering::SeqCst) + 1 == p.at {
            // SAFETY: raise is an async-signal-safe libc call with a plain
            // integer argument; sending SIGKILL to ourselves ends the
            // process at once, which is exactly the crash being simulated
            // (SIGINT runs the handler the CLI installed, as a Ctrl-C would;
            // SIGSTOP suspends the process until a SIGCONT).
            //
            // raise() signals this thread (tgkill): it takes the signal
            // before it returns, so a SIGSTOP stops it here, not some
            // instructions later (kill(getpid()) may be taken by another
            // thread while this one runs on).
            unsafe {
                libc::raise(p.signal);
            }
        }
    }
}
