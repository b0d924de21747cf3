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

/// Test hook: `SLUICE_PAUSE_AT=<point>` with `SLUICE_PAUSE_FILE=<path>` holds the process at a
/// crash point (every `SLUICE_CRASH_AT` point is one) the first time it reaches it: it creates
/// `<path>.paused`, then waits until `<path>` exists (at most 120 s) and deletes both, so a test
/// can act at exactly that moment, e.g. write a row between a rollback's count and its swap.
/// Nothing else reads these variables.
pub fn pause_point(point: &str) {
    if std::env::var("SLUICE_PAUSE_AT").map_or(true, |p| p != point) {
        return;
    }
    let Ok(file) = std::env::var("SLUICE_PAUSE_FILE") else {
        return;
    };
    static PAUSED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if PAUSED.swap(true, std::sync::atomic::Ordering::SeqCst) {
        return;
    }
    let paused = format!("{file}.paused");
    eprintln!("sluice: SLUICE_PAUSE_AT={point}: paused until {file} exists");
    if std::fs::write(&paused, point).is_err() {
        return;
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !std::path::Path::new(&file).exists() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let _ = std::fs::remove_file(&file);
    let _ = std::fs::remove_file(&paused);
}

/// [`pause_point`] from async code: held on a blocking thread, so the runtime's other tasks (a
/// copy beside the paused apply, a log apply beside a paused index build) go on meanwhile. Costs
/// one environment lookup when no pause is asked for.
pub async fn pause_point_async(point: &'static str) {
    if std::env::var_os("SLUICE_PAUSE_AT").is_some() {
        let _ = tokio::task::spawn_blocking(move || pause_point(point)).await;
    }
}

/// Test hook: `SLUICE_CRASH_AT=<point>` ends the process the first time it reaches that point
/// (`<point>@<n>`: the n-th time) the way kill -9 does (no cleanup, connections just drop), so
/// tests can show that a rerun converges from exactly there. The points are named where they are
/// called (MariaDB cut-over and swap; PostgreSQL unnamed concurrent index builds:
/// `unnamed-index-recorded`, `unnamed-index-built`, `unnamed-index-progress-recorded`; a staged
/// type change's referencing columns: `child-step-done`).
pub fn crash_point(point: &str) {
    pause_point(point);
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
