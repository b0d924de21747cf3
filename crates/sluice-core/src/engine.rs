//! The contract every database engine implements. The runner drives migrations only through it, so
//! one flow serves PostgreSQL, MariaDB and MySQL (and, later, several targets at once).

use crate::error::Result;
use crate::history::{Event, EventRow, HistoryRow, Snapshot};
use crate::schema::Schema;
use crate::sql::SqlStatement;
use crate::target::Target;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Who holds (or wants) the run lock: shown to a second run that has to wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockHolder {
    pub host: String,
    pub pid: u32,
    pub since: Option<DateTime<Utc>>,
    /// The server-side session holding the lock (backend pid / connection id).
    pub session: Option<String>,
}

impl std::fmt::Display for LockHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "held by pid {} on host {}", self.pid, self.host)?;
        if let Some(s) = self.since {
            write!(f, " since {}", s.format("%Y-%m-%d %H:%M:%S UTC"))?;
        }
        if let Some(sess) = &self.session {
            write!(f, ", server session {sess}")?;
        }
        Ok(())
    }
}

impl LockHolder {
    pub fn me() -> Self {
        LockHolder {
            host: hostname::get()
                .map(|h| h.to_string_lossy().into_owned())
                .unwrap_or_else(|_| "unknown".into()),
            pid: std::process::id(),
            since: Some(Utc::now()),
            session: None,
        }
    }
}

pub enum LockAttempt {
    Acquired,
    Busy(Option<LockHolder>),
}

/// A statement the server rejected.
#[derive(Debug, Clone)]
pub struct ServerError {
    pub code: String,
    pub message: String,
    /// 1-based character position inside the statement, when the server reports one.
    pub position: Option<usize>,
    /// True when the connection itself is gone (the statement's outcome is unknown).
    pub connection_lost: bool,
    /// True when the statement gave up waiting for a lock (lock_timeout / lock_wait_timeout):
    /// nothing was changed and it may be retried.
    pub lock_timeout: bool,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.code.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{} ({})", self.message, self.code)
        }
    }
}

/// A data migration run in batches: `UPDATE table SET <set> [WHERE <filter>]`, one short
/// transaction per batch, resumable.
#[derive(Debug, Clone)]
pub struct BackfillSpec {
    pub table: String,
    /// The SET list, e.g. `token = md5(random()::text)`.
    pub set: String,
    pub filter: Option<String>,
    /// A fixed batch size; None adapts the size to `target_batch`.
    pub batch_rows: Option<i64>,
    pub target_batch: std::time::Duration,
    pub pause: std::time::Duration,
    /// Called after every batch with (rows done, estimated total): a progress bar on a terminal.
    /// Without it, progress goes to the log every 2 s.
    pub progress: Option<Progress>,
    pub pacing: Pacing,
}

/// What the backfill paces itself on, besides its target batch duration. Batches take CPU, I/O
/// and row locks whenever they run, so a backfill that wants to go unnoticed watches what clients
/// feel and backs off, rather than trusting a fixed batch size or pause.
#[derive(Debug, Clone)]
pub struct Pacing {
    /// Keep the latency of a probe query during batches within this multiple of its latency when
    /// the backfill is not running (and at least 1 ms above it); None runs at full speed.
    pub latency_factor: Option<f64>,
    /// The probe query; None probes a point read by primary key on the table being backfilled.
    pub probe: Option<String>,
    /// Pause while any replica replays more than this far behind (`pg_stat_replication.replay_lag`).
    pub max_replica_lag: Option<std::time::Duration>,
    /// A query the user supplies: while it returns true (or a number above zero), batches pause.
    pub throttle_query: Option<String>,
    /// What batch duration the batch size adapts to (shorter: row locks held for less time and
    /// smaller commits; longer: less overhead per row).
    pub target_batch: std::time::Duration,
}

impl Default for Pacing {
    fn default() -> Self {
        Pacing {
            latency_factor: Some(1.5),
            probe: None,
            max_replica_lag: Some(std::time::Duration::from_secs(5)),
            throttle_query: None,
            target_batch: std::time::Duration::from_millis(50),
        }
    }
}

impl Pacing {
    /// Full speed: only the batch duration target and the optional pause apply.
    pub fn speed() -> Self {
        Pacing {
            latency_factor: None,
            ..Pacing::default()
        }
    }
}

#[derive(Clone)]
pub struct Progress(pub std::sync::Arc<dyn Fn(i64, i64) + Send + Sync>);

impl std::fmt::Debug for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Progress")
    }
}

#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct BackfillReport {
    pub rows: i64,
    pub batches: i64,
    pub seconds: f64,
    /// True when this run continued a job an earlier run started.
    pub resumed: bool,
    /// What the run paced itself on, in words (e.g. "probe latency within 1.5x of 0.31 ms").
    pub pacing: String,
    /// Seconds spent paused by the pacing (latency, replica lag or the throttle query).
    pub throttled_seconds: f64,
    /// The probe's latency (p90, ms) with the backfill idle, and during batches.
    pub probe_idle_ms: Option<f64>,
    pub probe_busy_ms: Option<f64>,
}

/// How an engine's online ALTER (MariaDB/MySQL shadow-table copy) behaves.
#[derive(Debug, Clone)]
pub struct OnlineOptions {
    /// Copy and verify, then stop before the swap and wait for `sluice cutover`.
    pub postpone_cutover: bool,
    /// How long one DDL or the cut-over RENAME may wait for a metadata lock.
    pub lock_timeout: std::time::Duration,
    /// How long to keep retrying a step that times out on a lock.
    pub lock_retry_for: std::time::Duration,
    /// Target duration of one copy chunk.
    pub target_chunk: std::time::Duration,
    /// Pause the copy while the server's `Threads_running` is above this.
    pub max_threads_running: Option<u64>,
    /// Replicas whose lag throttles the copy (URLs), and the lag limit.
    pub replica_urls: Vec<String>,
    pub max_replica_lag: std::time::Duration,
}

impl Default for OnlineOptions {
    fn default() -> Self {
        OnlineOptions {
            postpone_cutover: false,
            lock_timeout: std::time::Duration::from_secs(1),
            lock_retry_for: std::time::Duration::from_secs(600),
            target_chunk: std::time::Duration::from_millis(200),
            max_threads_running: None,
            replica_urls: vec![],
            max_replica_lag: std::time::Duration::from_secs(1),
        }
    }
}

/// What an online ALTER did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct OnlineReport {
    /// "instant", "inplace" or "copy".
    pub path: String,
    pub rows_copied: i64,
    pub seconds: f64,
    /// True when the copy is verified and waits for `sluice cutover`.
    pub cutover_pending: bool,
    /// How long the cut-over held client writes (drain + RENAME), in milliseconds.
    pub cutover_hold_ms: u64,
}

#[async_trait]
pub trait Engine: Send {
    fn target(&self) -> Target;

    /// The connection URL with the password redacted.
    fn url(&self) -> String;

    /// True when DDL can run inside a transaction and roll back (PostgreSQL).
    fn transactional_ddl(&self) -> bool {
        self.target().transactional_ddl()
    }

    /// True when this statement must run outside any transaction block.
    fn needs_own_transaction(&self, stmt: &SqlStatement) -> bool {
        self.target().needs_own_transaction(stmt)
    }

    /// Try once, without waiting, to take the run lock on a session of its own.
    async fn try_run_lock(&mut self, me: &LockHolder) -> Result<LockAttempt>;
    async fn release_run_lock(&mut self) -> Result<()>;

    /// Creates sluice's history tables when missing (call only while holding the run lock).
    async fn ensure_history(&mut self) -> Result<()>;
    /// Every recorded migration, by version; empty when the history tables do not exist yet.
    async fn history(&mut self) -> Result<Vec<HistoryRow>>;
    async fn events(&mut self, limit: i64) -> Result<Vec<EventRow>>;
    async fn upsert_migration(&mut self, row: &HistoryRow) -> Result<()>;
    async fn delete_migration(&mut self, version: i64) -> Result<()>;
    async fn append_event(&mut self, event: &Event) -> Result<()>;
    async fn save_snapshot(&mut self, version: Option<i64>, schema: &Schema) -> Result<()>;
    async fn latest_snapshot(&mut self) -> Result<Option<Snapshot>>;

    /// The live schema, sluice's own objects excluded.
    async fn introspect(&mut self) -> Result<Schema>;

    /// Row count estimate and total size of every table, keyed by name (and `schema.name` on PostgreSQL).
    async fn table_stats(
        &mut self,
    ) -> Result<std::collections::HashMap<String, crate::analysis::TableStats>> {
        Ok(std::collections::HashMap::new())
    }

    /// SQL that changes schema `from` into schema `to` (used to capture drift as a migration).
    fn render_diff_sql(&self, from: &Schema, to: &Schema) -> String;

    /// How long each following statement of the work session may wait for a lock.
    async fn set_lock_timeout(&mut self, _timeout: std::time::Duration) -> Result<()> {
        Ok(())
    }

    /// How long each following statement of the work session may run (0: no limit). Set inside
    /// the transaction of the statement it bounds, so a rollback undoes it.
    async fn set_statement_timeout(
        &mut self,
        _timeout: std::time::Duration,
    ) -> std::result::Result<(), ServerError> {
        Ok(())
    }

    /// The sessions holding locks on `table` (or, without a table, blocking the work session), one
    /// line each: pid, state, transaction age, query. For the log when a lock wait times out.
    async fn describe_blockers(&mut self, _table: Option<&str>) -> Result<Vec<String>> {
        Ok(vec![])
    }

    /// The live type of a column (as the server prints it), None when there is no such column.
    async fn column_type(&mut self, _table: &str, _column: &str) -> Result<Option<String>> {
        Ok(None)
    }

    /// Drops `index` when a failed concurrent build left it INVALID; true when it did.
    async fn drop_invalid_index(&mut self, _index: &str) -> Result<bool> {
        Ok(false)
    }

    /// Runs a batched backfill (see [`BackfillSpec`]), checkpointing after every batch.
    async fn backfill(
        &mut self,
        _spec: &BackfillSpec,
        _say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<BackfillReport> {
        Err(crate::Error::usage(
            format!(
                "sluice backfill is not available on {} yet",
                self.target().engine
            ),
            "run the UPDATE in batches by primary key by hand, or use PostgreSQL",
        ))
    }

    /// Runs one ALTER TABLE statement the engine's own online way when running it as written would
    /// block writes (MariaDB/MySQL: the explicit INSTANT or INPLACE/LOCK=NONE form when the server
    /// can, otherwise a shadow-table copy kept in sync by triggers, verified, then swapped by an
    /// atomic RENAME). `Ok(None)`: the engine leaves the statement to run as written.
    async fn alter_online(
        &mut self,
        _sql: &str,
        _opts: &OnlineOptions,
        _say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<Option<OnlineReport>> {
        Ok(None)
    }

    /// Checks, before any statement runs, that the user holds what `statements` need (as far as
    /// cheaply knowable); a lack is an [`crate::error::Error::Permission`] naming the GRANT.
    /// `online`: whether ALTERs take the engine's online path (not `--as-written`).
    async fn check_privileges(&mut self, _statements: &[String], _online: bool) -> Result<()> {
        Ok(())
    }

    /// What [`Engine::alter_online`] would do with this statement, one line per step, for `plan` and
    /// `up --dry-run`; None when it would run as written.
    async fn explain_online(&mut self, _sql: &str) -> Result<Option<Vec<String>>> {
        Ok(None)
    }

    async fn begin(&mut self) -> Result<()>;
    async fn commit(&mut self) -> Result<()>;
    async fn rollback(&mut self) -> Result<()>;
    /// Runs one statement of a migration on the work session.
    async fn execute(&mut self, sql: &str) -> std::result::Result<(), ServerError>;
}
