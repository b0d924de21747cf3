//! Engine-neutral core of sluice: migration files, SQL statement splitting, the schema model and its
//! diff, the history model, and the runner that drives any [`engine::Engine`].
//!
//! Nothing in this crate talks to a database directly; the engine crates implement [`engine::Engine`].

pub mod analysis;
pub mod config;
pub mod dburl;
pub mod engine;
pub mod error;
pub mod history;
pub mod import;
pub mod layout;
pub mod lint;
pub mod migration;
pub mod plan;
pub mod planfile;
pub mod privileges;
pub mod progress;
pub mod quote;
pub mod redact;
pub mod rules;
pub mod runner;
// The two-version lifecycle is part of the runner (it runs steps under the run lock and records
// history); kept reachable as `sluice_core::lifecycle`.
pub use runner::lifecycle;
pub mod schema;
pub mod session;
pub mod sql;
pub mod target;

pub use error::{Error, Result};

/// The version of sluice recorded in the history.
pub const SLUICE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// Test hook: `SLUICE_CRASH_AT=<point>` ends the process the first time it reaches that point
/// (`<point>@<n>`: the n-th time) the way kill -9 does (no cleanup, connections just drop), so
/// tests can show that a rerun converges from exactly there. The points are named where they are
/// called (MariaDB cut-over and swap; PostgreSQL unnamed concurrent index builds:
/// `unnamed-index-recorded`, `unnamed-index-built`, `unnamed-index-progress-recorded`; a staged
/// type change's referencing columns: `child-step-done`).
pub fn crash_point(point: &str) {
    static REACHED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Ok(want) = std::env::var("SLUICE_CRASH_AT") else {
        return;
    };
    let (name, nth) = match want.split_once('@') {
        Some((name, n)) => (name, n.parse().unwrap_or(1)),
        None => (want.as_str(), 1),
    };
    if name == point && REACHED.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == nth {
        eprintln!("sluice: SLUICE_CRASH_AT={want}: ending the process here");
        std::process::abort();
    }
}
