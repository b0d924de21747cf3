//! The runner: status, up, down, verify, repair, baseline and drift, driven through [`Engine`].
//!
//! Invariants it keeps:
//! - Every command that writes holds the engine's run lock for its whole duration.
//! - A migration's progress is recorded after every statement that commits, so a failed or killed run
//!   resumes at the first statement not recorded, never redoing or skipping one.
//! - Nothing is executed before every migration that will run has been parsed and checked.
//!
//! Embedding sluice (a deploy tool calling it as a library) takes four calls: connect an engine
//! (`sluice_postgres::PgEngine::connect` or `sluice_mysql::MySqlEngine::connect` with a
//! [`crate::dburl::DbUrl`]), read the files ([`crate::migration::discover`]), look at what would
//! happen ([`plan`]) and apply ([`up`]) with a [`RunContext`] made by [`RunContext::new`].
//! `crates/sluice/examples/embed.rs` does exactly that.

use crate::engine::{Engine, LockAttempt, LockHolder};
use crate::error::{Error, Result, SqlFailure};
use crate::history::{statement_hash, Event, EventKind, HistoryRow, RecordState};
use crate::migration::{Direction, Migration, TxMode};
use crate::schema::{diff, Difference};
use crate::sql::{self, SqlStatement};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Tables with fewer rows than this run rewrites and online copies as written by default (the plain
/// statement takes milliseconds there): the default of `--as-written-below-rows`.
pub const DEFAULT_AS_WRITTEN_BELOW_ROWS: u64 = 10_000;

/// Who runs, with which application version, and how progress is reported.
pub struct RunContext {
    pub actor: String,
    pub app_version: Option<String>,
    pub lock_wait: Duration,
    /// How long one statement may wait for a table lock before it gives up and retries, so live
    /// queries never queue behind sluice for longer than this.
    pub lock_timeout: Duration,
    /// How long sluice keeps retrying a statement that times out on a lock before it fails.
    pub lock_retry_for: Duration,
    /// Receives one line per notable event (applied migration, lock wait...).
    pub say: Box<dyn Fn(&str) + Send + Sync>,
    /// How MariaDB/MySQL ALTERs run online.
    pub online: crate::engine::OnlineOptions,
    /// What backfills pace themselves on.
    pub pacing: crate::engine::Pacing,
    /// How long a step holding ACCESS EXCLUSIVE on an existing table may run before the server
    /// cancels it (zero: no limit). Such steps are meant to be instant; one that is not would stop
    /// every query on the table for as long as it runs.
    pub exclusive_timeout: Duration,
    /// A terminal display for long work (backfills, online copies, index builds); None logs their
    /// progress through `say` instead (see [`crate::progress`]).
    pub progress: Option<crate::progress::Progress>,
    /// Logical replication (PostgreSQL): this publisher's subscribers, checked before a run adds
    /// columns to published tables (`--subscriber-url`; see [`UpOptions::subscriber_urls`]).
    pub subscriber_urls: Vec<String>,
}

impl RunContext {
    /// A run with the same defaults as the `sluice` command: 1 s lock timeout retried for 10 min,
    /// 60 s to get the run lock, backfills paced on client latency, online copies for tables of
    /// [`DEFAULT_AS_WRITTEN_BELOW_ROWS`] rows or more, progress logged through `say`. Change any
    /// field afterwards. `actor` is recorded in the history as who applied each migration.
    pub fn new(actor: impl Into<String>, say: impl Fn(&str) + Send + Sync + 'static) -> Self {
        let lock_timeout = Duration::from_secs(1);
        let lock_retry_for = Duration::from_secs(600);
        RunContext {
            actor: actor.into(),
            app_version: None,
            lock_wait: Duration::from_secs(60),
            lock_timeout,
            lock_retry_for,
            say: Box::new(say),
            online: crate::engine::OnlineOptions {
                lock_timeout,
                lock_retry_for,
                as_written_below_rows: DEFAULT_AS_WRITTEN_BELOW_ROWS,
                ..Default::default()
            },
            pacing: crate::engine::Pacing::default(),
            exclusive_timeout: Duration::from_secs(5),
            progress: None,
            subscriber_urls: vec![],
        }
    }

    /// The online options with this run's progress display.
    pub fn online_options(&self) -> crate::engine::OnlineOptions {
        crate::engine::OnlineOptions {
            progress: self
                .progress
                .clone()
                .or_else(|| self.online.progress.clone()),
            ..self.online.clone()
        }
    }

    pub(crate) fn event(
        &self,
        kind: EventKind,
        m: Option<(&i64, &str, &str)>,
        detail: impl Into<String>,
    ) -> Event {
        Event {
            kind,
            version: m.map(|m| *m.0),
            name: m.map(|m| m.1.to_string()),
            checksum: m.map(|m| m.2.to_string()),
            actor: self.actor.clone(),
            app_version: self.app_version.clone(),
            sluice_version: crate::SLUICE_VERSION.into(),
            detail: detail.into(),
        }
    }
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    if l.chars().count() > 80 {
        format!("{}…", l.chars().take(80).collect::<String>())
    } else {
        l.to_string()
    }
}

/// Runs `f` while holding the run lock, and releases it whatever `f` returns.
macro_rules! locked {
    ($engine:expr, $ctx:expr, $body:expr) => {{
        acquire_lock($engine, $ctx).await?;
        let result = async { $body }.await;
        let released = $engine.release_run_lock().await;
        match (result, released) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(v), Ok(())) => Ok(v),
        }
    }};
}

mod apply;
mod backfill;
mod ddl_probe;
mod down;
mod drift;
pub mod lifecycle;
mod lock;
mod planning;
mod prepare;
mod record;
mod replication;
mod retry;
mod status;
mod steps;
mod type_change;
mod up;
mod verify;

pub use self::{
    backfill::*, down::*, drift::*, lock::*, planning::*, prepare::*, status::*, type_change::*,
    up::*, verify::*,
};
// What the lifecycle (two application versions) runs through.
pub(crate) use self::{
    record::{record_failure, snapshot},
    retry::LockRetry,
    steps::{
        execute_bounded, execute_bounded_timed, run_step, run_steps, Held, StepOpts, StepsRun,
    },
};
// What the modules share among themselves.
use self::{apply::*, record::*, steps::*};
