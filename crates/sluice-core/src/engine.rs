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
#[derive(Debug, Clone, Default)]
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
    /// For a privilege error, the GRANT (or ownership change) that fixes it, when the server's
    /// message tells what was refused; empty otherwise.
    pub grant: String,
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
    /// The terminal display that gets every batch's count; without one, progress goes to the log
    /// (see [`crate::progress`]).
    pub progress: Option<Progress>,
    pub pacing: Pacing,
    /// The batches stand in for a DDL statement's rewrite (a staged ADD COLUMN, type change or
    /// rename), which fires none of the table's triggers: the table's own UPDATE triggers must not
    /// fire for them either (an `updated_at` trigger would touch every row, an audit trigger log
    /// every row). False for `sluice backfill`, an UPDATE the user asked for.
    pub stands_for_ddl: bool,
    /// MariaDB/MySQL: the batches pause as the online copy's chunks do (`Threads_running` above
    /// `max_threads_running`, a replica more than `max_replica_lag` behind).
    pub online: OnlineOptions,
}

impl BackfillSpec {
    /// See [`backfill_checkpoint_key`].
    pub fn checkpoint_key(&self) -> String {
        backfill_checkpoint_key(&self.table, &self.set, self.filter.as_deref())
    }
}

/// The `sluice_meta` key (MariaDB/MySQL) of the checkpoint of a backfill standing in for a DDL
/// statement: the same table, SET list and filter give the same key, in the run that writes it
/// and in the plan that clears it when the column it fills is made afresh.
pub fn backfill_checkpoint_key(table: &str, set: &str, filter: Option<&str>) -> String {
    use sha2::{Digest, Sha256};
    let d = Sha256::digest(format!("{table}\n{set}\n{}", filter.unwrap_or("")).as_bytes());
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("backfill {hex}")
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

pub use crate::progress::Progress;

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
    /// Pace the copy on the server's commit latency: after each chunk a one-row commit is timed,
    /// and the copy pauses while it takes more than this many times its latency before the copy
    /// (clients' commits wait on the same redo writes; see the MariaDB copy's `CommitPace`).
    /// None: chunks back to back, paced only by `target_chunk` and the throttles.
    pub commit_factor: Option<f64>,
    /// Pause the copy while the server's `Threads_running` is above this.
    pub max_threads_running: Option<u64>,
    /// Replicas whose lag throttles the copy (URLs), and the lag limit.
    pub replica_urls: Vec<String>,
    pub max_replica_lag: std::time::Duration,
    /// A table with fewer rows than this is altered as written, not copied (0: never). The copy
    /// exists to keep a big table writable; on a small one the plain ALTER takes milliseconds.
    pub as_written_below_rows: u64,
    /// The terminal display of the copy's and catch-up's progress; without one, progress goes to
    /// the log (see [`crate::progress`]). The runner sets it from [`crate::runner::RunContext`].
    pub progress: Option<Progress>,
}

impl Default for OnlineOptions {
    fn default() -> Self {
        OnlineOptions {
            postpone_cutover: false,
            lock_timeout: std::time::Duration::from_secs(1),
            lock_retry_for: std::time::Duration::from_secs(600),
            target_chunk: std::time::Duration::from_millis(200),
            commit_factor: None,
            max_threads_running: None,
            replica_urls: vec![],
            max_replica_lag: std::time::Duration::from_secs(1),
            as_written_below_rows: 0,
            progress: None,
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

// The contract is split by concern, and no method has a default body: an engine, or a wrapper
// such as rehearse's timing engine, must write every method out, so adding a method or wrapping
// an engine cannot silently drop one (a missing forward is a compile error, not a rehearsal
// that quietly runs without `up`'s statement timeout). An engine without a capability
// implements the method explicitly with the documented "not supported" result.

/// The engine traits, for code that calls their methods on a concrete engine type
/// (`use sluice_core::engine::prelude::*;`).
pub mod prelude {
    pub use super::{Backfill, Engine, Execution, HistoryStore, Introspection, OnlineAlter};
}

/// Everything the runner needs from an engine: the five concerns together.
pub trait Engine: Execution + HistoryStore + Introspection + Backfill + OnlineAlter {}

impl<T: Execution + HistoryStore + Introspection + Backfill + OnlineAlter + ?Sized> Engine for T {}

/// The work session: transactions, statements and the lock discipline around them.
#[async_trait]
pub trait Execution: Send {
    fn target(&self) -> Target;

    /// The connection URL with the password redacted.
    fn url(&self) -> String;

    /// True when DDL can run inside a transaction and roll back (PostgreSQL); an engine answers
    /// `self.target().transactional_ddl()` unless it knows better.
    fn transactional_ddl(&self) -> bool;

    /// True when this statement must run outside any transaction block; an engine answers
    /// `self.target().needs_own_transaction(stmt)` unless it knows better.
    fn needs_own_transaction(&self, stmt: &SqlStatement) -> bool;

    async fn begin(&mut self) -> Result<()>;
    async fn commit(&mut self) -> Result<()>;
    async fn rollback(&mut self) -> Result<()>;
    /// Runs one statement of a migration on the work session.
    async fn execute(&mut self, sql: &str) -> std::result::Result<(), ServerError>;

    /// Runs one statement of a migration as [`Execution::execute`] does, reporting how far it is
    /// while it runs where the server tells (PostgreSQL: an index build, from
    /// `pg_stat_progress_create_index`). Watching never fails the statement: a watch that fails
    /// just stops reporting. An engine with nothing to watch runs `execute`.
    async fn execute_watched(
        &mut self,
        sql: &str,
        progress: Option<&Progress>,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> std::result::Result<(), ServerError>;

    /// How long each following statement of the work session may wait for a lock.
    async fn set_lock_timeout(&mut self, timeout: std::time::Duration) -> Result<()>;

    /// How long each following statement of the work session may run (0: no limit). Set inside
    /// the transaction of the statement it bounds, so a rollback undoes it. Not supported:
    /// `Ok(())` (the step runs unbounded).
    async fn set_statement_timeout(
        &mut self,
        timeout: std::time::Duration,
    ) -> std::result::Result<(), ServerError>;

    /// The sessions holding locks on `table` (or, without a table, blocking the work session), one
    /// line each: pid, state, transaction age, query. For the log when a lock wait times out.
    async fn describe_blockers(&mut self, table: Option<&str>) -> Result<Vec<String>>;

    /// Drops `index` when a failed concurrent build left it INVALID; true when it did. Not
    /// supported (no concurrent builds): `Ok(false)`.
    async fn drop_invalid_index(&mut self, index: &str) -> Result<bool>;

    /// Before an unnamed concurrent index build on `table` (`probe` creates the same index on
    /// `pg_temp.sluice_probe`, an empty copy of the table, to learn its definition). On the first
    /// attempt: records the table's indexes. On a later one (after a kill, a lost connection, a
    /// failure), what an earlier attempt built is known by being new and of the same definition:
    /// waits while another session runs `sql` or builds an index on the table (a killed run's
    /// backend goes on), drops an INVALID one (so the server picks the name it
    /// would have picked the first time, not a second), and reports a valid one as built.
    /// `slot` says which step of which statement of which migration this is: the record is kept
    /// per slot, so two identical statements never take each other's index for their own.
    /// Not supported: `Ok(UnnamedIndex::Build(vec![]))`.
    async fn before_unnamed_index(
        &mut self,
        slot: &str,
        table: &str,
        probe: &str,
        sql: &str,
    ) -> Result<UnnamedIndex>;

    /// Once the statement's progress is recorded: forgets what `before_unnamed_index` recorded
    /// for `slot` (nothing when it recorded nothing). Not supported: `Ok(())`.
    async fn after_unnamed_index(&mut self, slot: &str, table: &str, probe: &str) -> Result<()>;
}

/// The run lock and sluice's own history tables.
#[async_trait]
pub trait HistoryStore: Send {
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
}

/// Logical replication around this database, by `schema.table`.
#[derive(Debug, Clone, Default)]
pub struct LogicalReplication {
    /// Published tables and the publications that publish them.
    pub published: std::collections::BTreeMap<String, Vec<String>>,
    /// Subscribed tables and the subscription that feeds each.
    pub subscribed: std::collections::BTreeMap<String, String>,
    /// `(table, publication)` pairs where the publication sends a column list (PostgreSQL 15+):
    /// a column added to the table is not sent through it.
    pub column_lists: std::collections::BTreeSet<(String, String)>,
}

/// A subscriber of this publisher, as read on it (`--subscriber-url`).
#[derive(Debug, Clone, Default)]
pub struct SubscriberView {
    /// Its subscriptions that take this database's publications (same publication names, a slot
    /// of this database, and where readable a connection to this database and port).
    pub subscriptions: Vec<String>,
    /// The publications those subscriptions take.
    pub publications: Vec<String>,
    /// Each subscription it has that does not (name and why), to say so.
    pub others: Vec<String>,
    /// The asked tables it subscribes to through `subscriptions`: each column and its type (as
    /// the server prints it).
    pub tables: std::collections::BTreeMap<String, Vec<(String, String)>>,
    /// The asked type names as the subscriber spells them (None: not a type there).
    pub types: std::collections::BTreeMap<String, Option<String>>,
}

/// What the live database looks like, read without changing it.
#[async_trait]
pub trait Introspection: Send {
    /// The live schema, sluice's own objects excluded.
    async fn introspect(&mut self) -> Result<Schema>;

    /// Row count estimate and total size of every table, keyed by name (and `schema.name` on
    /// PostgreSQL). Not supported: an empty map.
    async fn table_stats(
        &mut self,
    ) -> Result<std::collections::HashMap<String, crate::analysis::TableStats>>;

    /// SQL that changes schema `from` into schema `to` (used to capture drift as a migration).
    fn render_diff_sql(&self, from: &Schema, to: &Schema) -> String;

    /// The live type of a column (as the server prints it), None when there is no such column
    /// (or the engine cannot read it).
    /// `table` is SQL (quoted, maybe qualified), as in [`Engine::column_catalog`].
    async fn column_type(&mut self, table: &str, column: &str) -> Result<Option<String>>;

    /// The exact row count of `table` when it is below `limit` (counting stops at `limit`, so a big
    /// table costs `limit` rows read); None when it has `limit` rows or more, or cannot be read.
    /// `table` is SQL (quoted, maybe qualified).
    async fn rows_below(&mut self, table: &str, limit: u64) -> Result<Option<u64>>;

    /// What the live catalog holds for one column (PostgreSQL), for staging a type change: its
    /// type, NOT NULL, default, identity or owned sequence, indexes, checks and the dependants a
    /// staged change cannot move. `table` is SQL (quoted, maybe qualified); None: no such column
    /// (and the answer of an engine that stages no type change).
    async fn column_catalog(&mut self, table: &str, column: &str) -> Result<Option<ColumnCatalog>>;

    /// What a staged backfill of `table` (SQL) says before its first batch when its batches will
    /// fire the table's own UPDATE triggers (PostgreSQL: the role may not set
    /// session_replication_role, or a trigger is enabled ALWAYS or REPLICA), so `plan` and `up
    /// --dry-run` can say it first. None: they fire none, or the engine cannot tell.
    async fn backfill_trigger_warning(&mut self, _table: &str) -> Result<Option<String>> {
        Ok(None)
    }

    /// The work session's time zone setting (PostgreSQL `SHOW timezone`), which decides whether
    /// timestamp ↔ timestamptz rewrites the table. Not read: `Ok(None)`.
    async fn session_time_zone(&mut self) -> Result<Option<String>>;

    /// Logical replication (PostgreSQL): which publications publish each table and which
    /// subscription feeds it. An engine without it: nothing.
    async fn logical_replication(&mut self) -> Result<LogicalReplication> {
        Ok(LogicalReplication::default())
    }

    /// The columns the publisher's `table` has now, read through `subscription`'s connection
    /// (PostgreSQL shows a subscription's connection to superusers only). `Ok(Err(why))` when
    /// it cannot be read.
    async fn publisher_columns(
        &mut self,
        subscription: &str,
        table: &str,
    ) -> Result<std::result::Result<Vec<String>, String>> {
        let _ = (subscription, table);
        Ok(Err("not supported on this engine".into()))
    }

    /// Reads the subscriber at `url` (logical replication, PostgreSQL): which of its
    /// subscriptions take this publisher's publications, the columns of `tables` there, and how
    /// it spells `types`. `Ok(Err(why))` when it cannot be reached or read.
    async fn subscriber(
        &mut self,
        url: &crate::dburl::DbUrl,
        tables: &[String],
        types: &[String],
    ) -> Result<std::result::Result<SubscriberView, String>> {
        let _ = (url, tables, types);
        Ok(Err("not supported on this engine".into()))
    }

    /// Checks, before any statement runs, that the user holds what `statements` need (as far as
    /// cheaply knowable); a lack is an [`crate::error::Error::Permission`] naming the GRANT.
    /// `online`: whether ALTERs take the engine's online path (not `--as-written`).
    async fn check_privileges(&mut self, statements: &[String], online: bool) -> Result<()>;

    /// Every row of a read-only query, each value as the server prints it as text (NULL: None).
    /// Used to read other tools' history tables, whose column types differ by engine.
    async fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>>;
}

/// Batched data migrations.
#[async_trait]
pub trait Backfill: Send {
    /// Runs a batched backfill (see [`BackfillSpec`]), checkpointing after every batch. Not
    /// supported: [`backfill_not_supported`].
    async fn backfill(
        &mut self,
        spec: &BackfillSpec,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<BackfillReport>;
}

/// The usage error of an engine that has no batched backfill.
pub fn backfill_not_supported(target: Target) -> crate::Error {
    crate::Error::usage(
        format!("sluice backfill is not available on {} yet", target.engine),
        "run the UPDATE in batches by primary key by hand, or use PostgreSQL",
    )
}

/// The engine's own online ALTER (MariaDB/MySQL shadow-table copy).
#[async_trait]
pub trait OnlineAlter: Send {
    /// Runs one ALTER TABLE statement the engine's own online way when running it as written would
    /// block writes (MariaDB/MySQL: the explicit INSTANT or INPLACE/LOCK=NONE form when the server
    /// can, otherwise a shadow-table copy kept in sync by triggers, verified, then swapped by an
    /// atomic RENAME). `Ok(None)`: the engine leaves the statement to run as written (also the
    /// answer of an engine without an online path).
    async fn alter_online(
        &mut self,
        sql: &str,
        opts: &OnlineOptions,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<Option<OnlineReport>>;

    /// What [`OnlineAlter::alter_online`] would do with this statement, one line per step, for
    /// `plan` and `up --dry-run`; None when it would run as written.
    /// `as_written_below_rows` as in [`OnlineOptions`].
    async fn explain_online(
        &mut self,
        sql: &str,
        as_written_below_rows: u64,
    ) -> Result<Option<Vec<String>>>;

    /// How the server runs this statement as written (MariaDB/MySQL: the algorithm and lock level
    /// of the same prediction the online path makes, from the live table), for `plan`'s as-written
    /// line: the table and the impact. None: the plan's own model applies (PostgreSQL; a table
    /// that does not exist yet).
    async fn as_written_impact(
        &mut self,
        sql: &str,
    ) -> Result<Option<(String, crate::plan::Impact)>>;
}

/// One column as the live catalog has it ([`Introspection::column_catalog`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ColumnCatalog {
    /// The table's schema and name, as stored (unquoted).
    pub schema: String,
    pub table: String,
    pub column: String,
    /// `format_type` of the column.
    pub data_type: String,
    pub not_null: bool,
    /// The default expression as the server prints it (`pg_get_expr`), not for identity.
    pub default: Option<String>,
    /// The default of the column's type when it is a domain that has one (what an INSERT that
    /// leaves the column out gets when the column has no default of its own).
    pub domain_default: Option<String>,
    /// An identity column's sequence (the server drops it with the column).
    pub identity: Option<SequenceFacts>,
    /// A sequence owned by the column (`serial`, `OWNED BY`): schema and name.
    pub owned_sequence: Option<(String, String)>,
    /// `SET STATISTICS` when set (None: the default).
    pub statistics: Option<i32>,
    pub comment: Option<String>,
    /// Every index that uses the column (key, INCLUDE, expression or predicate).
    pub indexes: Vec<IndexFacts>,
    /// Every CHECK constraint that uses the column.
    pub checks: Vec<CheckFacts>,
    /// Every foreign key the column is in, on either side (referencing or referenced).
    pub foreign_keys: Vec<ForeignKeyFacts>,
    /// Table-level facts and dependants a staged change cannot carry over (views, foreign keys,
    /// triggers naming the column, generated columns, policies, partitioning, inheritance,
    /// column privileges, ...), each described by the server.
    pub blockers: Vec<String>,
    /// The server's version, as `server_version_num` (e.g. 150004).
    pub server_version: i32,
    /// The table's BEFORE INSERT or UPDATE row triggers (they fire by name).
    pub before_triggers: Vec<String>,
    /// The column's collation when it is not its type's default, as SQL (`"public"."C"`).
    pub collation: Option<String>,
    /// A generated column (`GENERATED ALWAYS AS (...) STORED`): nobody writes it.
    pub generated: bool,
    /// The table is partitioned, a partition, or has inheritance parents or children.
    pub inheritance: bool,
    /// What `DROP COLUMN` removes with the column (indexes, constraints, views, sequences, ...,
    /// also what depends on those in turn), each described by the server.
    pub dependents: Vec<Dependent>,
    /// The views and policies among `blockers` that a migration may drop before the type change
    /// and re-create after it: a staged change then runs the drop and the re-create in its swap.
    pub movable: Vec<Movable>,
    /// Every view over the column, directly or through other views (a DROP VIEW of one fails
    /// while a view over it stays, as written too).
    pub views: Vec<ViewFacts>,
}

/// A view or policy that uses the column (one of [`ColumnCatalog::blockers`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Movable {
    /// The blocker's text, as pushed to `blockers`.
    pub blocker: String,
    /// `v` a view, `p` a policy.
    pub kind: char,
    /// The view's schema and name, or the policy's table's schema and the policy's name.
    pub schema: String,
    pub name: String,
    /// A policy's table (empty for a view).
    pub table: String,
}

/// A view over the column (directly or through another view).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ViewFacts {
    pub schema: String,
    pub name: String,
    pub materialized: bool,
    /// It reads the column itself (else through another view).
    pub direct: bool,
}

/// An object dropped together with a column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dependent {
    /// `pg_describe_object`: `view v`, `index t_a_idx`, `constraint t_a_check on table t`.
    pub described: String,
    /// Dropping the column without CASCADE fails because of it (a normal dependency: views,
    /// another table's foreign key, policies); without: it is dropped silently (indexes, checks).
    pub needs_cascade: bool,
}

/// An identity column's sequence.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SequenceFacts {
    pub schema: String,
    pub name: String,
    /// GENERATED ALWAYS (else BY DEFAULT).
    pub always: bool,
    /// The sequence's type (`format_type`).
    pub data_type: String,
    pub start: i64,
    pub increment: i64,
    pub min: i64,
    pub max: i64,
    pub cache: i64,
    pub cycle: bool,
}

/// An index that uses the column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IndexFacts {
    pub name: String,
    /// `pg_get_indexdef`.
    pub definition: String,
    /// The constraint it backs: (name, kind `p`/`u`/`x`, DEFERRABLE, INITIALLY DEFERRED).
    pub constraint: Option<(String, char, bool, bool)>,
    pub clustered: bool,
    pub replica_identity: bool,
}

/// A CHECK constraint that uses the column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckFacts {
    pub name: String,
    /// `pg_get_constraintdef`: `CHECK (...)` [NO INHERIT] [NOT VALID].
    pub definition: String,
    pub validated: bool,
}

/// A foreign key the column is in: the table's own (the column references) or another's (or the
/// table's own, self-referencing) that references the column.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ForeignKeyFacts {
    pub name: String,
    /// The referencing table (the constraint's), as stored.
    pub schema: String,
    pub table: String,
    /// The referenced table, as stored.
    pub ref_schema: String,
    pub ref_table: String,
    /// `pg_get_constraintdef`: `FOREIGN KEY (...) REFERENCES t(...) ... [NOT VALID]`.
    pub definition: String,
    pub validated: bool,
    /// The column is among the referencing columns (`conkey`).
    pub referencing: bool,
    /// The column is among the referenced columns (`confkey`).
    pub referenced: bool,
    /// How the server describes it (`constraint c_t_id_fkey on table c`).
    pub described: String,
    /// When the key references the column: the referencing column paired with it (same position
    /// in the key) and that column's type (`format_type`). A staged widening of the column widens
    /// it too (issue 13 point 2).
    pub paired: Option<(String, String)>,
}

/// What an earlier attempt of an unnamed index build left, as [`Execution::before_unnamed_index`]
/// finds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnnamedIndex {
    /// Build it; the names are the invalid leftovers dropped first.
    Build(Vec<String>),
    /// An earlier attempt built it: the index's name.
    Built(String),
}
