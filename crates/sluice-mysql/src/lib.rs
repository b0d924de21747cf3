//! MariaDB/MySQL engine for sluice: connection (with TLS), the run lock, history tables, execution,
//! introspection and drift SQL.
//!
//! Two sessions per engine: the work session runs migrations and sluice's bookkeeping; the lock
//! session only holds the run lock (`GET_LOCK`), so the lock lives exactly as long as that
//! connection and a crashed run releases it by disconnecting.

mod alter_progress;
mod backfill;
mod connect;
pub mod history;
pub mod introspect;
pub mod online;
pub mod privileges;
pub mod quote;
pub mod render;
pub mod tls;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use history::{truncate, HISTORY_FORMAT, MIGRATION_COLUMNS};
use introspect::Flavour;
use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{Conn, Params, Row, Value};
use sluice_core::dburl::DbUrl;
use sluice_core::engine::{
    Backfill, BackfillReport, BackfillSpec, Execution, HistoryStore, Introspection, LockAttempt,
    LockHolder, OnlineAlter, ServerError, UnnamedIndex,
};
use sluice_core::error::{Error, Result};
use sluice_core::history::{Event, EventRow, HistoryRow, Snapshot};
use sluice_core::schema::Schema;
use sluice_core::sql::SqlStatement;
use sluice_core::target::Target;
use tls::ConnParams;

/// TEXT columns hold at most 65,535 bytes; longer error texts are cut.
const TEXT_MAX: usize = 65_000;

/// MySQL's limit on user lock names.
const LOCK_NAME_MAX: usize = 64;

pub struct MySqlEngine {
    url: DbUrl,
    work: Conn,
    lock: Conn,
    flavour: Flavour,
    lock_name: String,
    /// `GET_LOCK` nests within a session; sluice takes it once and releases it once.
    lock_held: bool,
    /// Set when the server is a node of a Galera cluster (`wsrep_on`).
    galera: Option<Galera>,
}

/// A Galera cluster node, as the server reported it at connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Galera {
    pub cluster_size: u64,
    /// `wsrep_OSU_method` of sluice's session: TOI (every node runs a DDL at the same point in
    /// the replication order, stalling writes cluster-wide meanwhile) or RSU (this node only).
    pub osu_method: String,
    /// `wsrep_local_state_comment`: Synced, Donor/Desynced, Joining, ...
    pub local_state: String,
}

impl std::fmt::Display for Galera {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Galera cluster of {} nodes, OSU method {} (this node: {})",
            self.cluster_size, self.osu_method, self.local_state
        )
    }
}

impl Galera {
    /// Reads the wsrep settings; None on a server that is no Galera node (MySQL has no such
    /// variables, MariaDB reports `wsrep_on` OFF).
    async fn read(conn: &mut Conn) -> std::result::Result<Option<Galera>, mysql_async::Error> {
        let vars: Vec<(String, String)> = conn
            .query("SHOW VARIABLES WHERE Variable_name IN ('wsrep_on', 'wsrep_OSU_method')")
            .await?;
        let var = |n: &str| {
            vars.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        if !var("wsrep_on").is_some_and(|v| v.eq_ignore_ascii_case("ON")) {
            return Ok(None);
        }
        let status: Vec<(String, String)> = conn
            .query(
                "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_cluster_size', 'wsrep_local_state_comment')",
            )
            .await?;
        let stat = |n: &str| {
            status
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(n))
                .map(|(_, v)| v.clone())
        };
        Ok(Some(Galera {
            cluster_size: stat("wsrep_cluster_size")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            osu_method: var("wsrep_OSU_method").unwrap_or_else(|| "TOI".into()),
            local_state: stat("wsrep_local_state_comment").unwrap_or_default(),
        }))
    }

    /// Whether the user opted in to the lock-free Galera copy (`SLUICE_GALERA_COPY=1`). It is
    /// experimental, not the default: each of its four short DDLs on the table under TOI (three
    /// CREATE TRIGGERs, the RENAME) can abort an autocommit client's statement and then the
    /// server's one re-run of it too, a 1213 for the client (`bench/galera_toi_aborts.sh` shows the
    /// same for trigger DDLs without sluice). Any other value than 1 or 0 is an error, not a silent no.
    pub fn copy_opted_in() -> Result<bool> {
        match std::env::var("SLUICE_GALERA_COPY").as_deref() {
            Err(_) | Ok("") | Ok("0") => Ok(false),
            Ok("1") => Ok(true),
            Ok(other) => Err(Error::usage(
                format!(
                    "SLUICE_GALERA_COPY is {:?}: it takes 1 (use the experimental lock-free online copy on a Galera node) or 0",
                    sluice_core::redact::label(other, 40)
                ),
                "set SLUICE_GALERA_COPY=1 or unset it",
            )),
        }
    }

    /// Why sluice does not copy `table` online on this cluster by default, and what the user can do.
    pub fn refuse_copy(&self, table: &str) -> Error {
        Error::usage(
            format!(
                "`{table}` needs sluice's online copy, which is not yet the default on a Galera cluster ({self}): \
                 the lock-free Galera form is experimental: each of its four short DDLs on the table under TOI (three \
                 CREATE TRIGGERs, the RENAME) can give an autocommit client on any node a deadlock error, 1213 \
                 (README \"Galera clusters\" has the benchmark's counts)"
            ),
            "choose `sluice up --as-written` (the ALTER replicates under TOI: writes on every node wait for its whole \
             duration, no client error for autocommit statements), or opt in to the experimental copy with \
             SLUICE_GALERA_COPY=1 (README \"Galera clusters\"), or apply it node by node in a Rolling Schema Upgrade \
             window (wsrep_OSU_method=RSU) yourself, for a change both the old and the new schema can replicate, with \
             each node's clients moved off it while its DDL runs",
        )
    }

    /// How the online copy runs on this cluster, and what clients see (plan prints it).
    pub fn copy_note(&self) -> String {
        format!(
            "on this Galera cluster ({self}) the copy takes no table lock: its three triggers are created one by \
             one, chunks and log applies are small transactions retried on certification conflicts, and the \
             cut-over sets a flag row that switches the triggers from logging to writing each change into the \
             shadow in the client's own transaction, drains the log, checksums both tables in one snapshot and \
             swaps them with one RENAME; the triggers are dropped after it, on the old table. The three CREATE \
             TRIGGERs and the RENAME run under TOI and abort the statements open on the table on every node: the \
             server re-runs an autocommit text statement once, and when a step aborts the re-run too the client \
             gets 1213 (deadlock; none in 7 benchmark runs with wsrep_retry_autocommit = 4, which re-runs it up to \
             4 times); server-side prepared statements and explicit transactions open on the table can get 1213 \
             at each step, as the ALTER as written gives them once"
        )
    }

    /// A copy of a table with foreign keys (its own or its children's): the cut-over re-points
    /// them with writes held under a table lock, which a Galera node cannot take safely.
    pub fn refuse_fk_copy(&self, table: &str) -> Error {
        Error::usage(
            format!(
                "`{table}` has foreign keys (its own or its children's) and needs sluice's online copy: on a Galera \
                 cluster ({self}) the copy runs without table locks, and re-pointing foreign keys at the new table \
                 needs writes held under one (a table lock on one node blocks its applier until flow control \
                 stalls every node)"
            ),
            "choose `sluice up --as-written` (the ALTER replicates under TOI: writes on every node wait for its whole \
             duration), or apply it node by node in a Rolling Schema Upgrade window (wsrep_OSU_method=RSU) \
             yourself, for a change both the old and the new schema can replicate, with each node's clients \
             moved off it while its DDL runs",
        )
    }
}

/// The run lock's name: user locks are server-wide, so it names the database.
pub fn lock_name(database: &str) -> String {
    let plain = format!("sluice:{database}");
    if plain.len() <= LOCK_NAME_MAX {
        plain
    } else {
        let hash = sluice_core::migration::checksum(database);
        format!("sluice:{}", &hash[..LOCK_NAME_MAX - "sluice:".len()])
    }
}

/// A value as the server prints it (the text protocol sends bytes; the binary one typed values).
fn value_text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

fn server_code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(se) => Some(se.code),
        _ => None,
    }
}

/// Table does not exist.
const ER_NO_SUCH_TABLE: u16 = 1146;

impl MySqlEngine {
    /// Connects (two sessions: work and lock) and reads the server flavour and version. The engine
    /// is what [`sluice_core::runner`] drives: `runner::up(&mut engine, ...)`.
    pub async fn connect(url: &DbUrl) -> Result<MySqlEngine> {
        if !url.kind().is_mysql_family() {
            return Err(Error::usage(
                format!("{} is not a MariaDB/MySQL URL", url.redacted()),
                "use mysql://user:password@host:3306/dbname or mariadb://...",
            ));
        }
        let params = ConnParams::from_url(url)?;
        let (mut work, opts) = connect::open_first(url, &params, true).await?;
        let mut lock = connect::open_again(url, &params, &opts).await?;
        // The lock session idles for the whole run; the server's idle timeout (wait_timeout, 8 hours
        // by default) must not end it, and the run lock with it, under a long migration.
        if let Err(e) = lock.query_drop("SET SESSION wait_timeout = 31536000").await {
            tracing::warn!(
                "could not raise wait_timeout on the lock session: {}",
                url.scrub(&e.to_string())
            );
        }
        let (version, account): (Option<String>, Option<String>) = work
            .query_first("SELECT VERSION(), CURRENT_USER()")
            .await
            .map_err(|e| db_err(url, "reading the server version", e))?
            .unwrap_or_default();
        if let Some(account) = account {
            privileges::set_account(&account);
        }
        let flavour = Flavour::from_version_string(&version.unwrap_or_default());
        let galera = Galera::read(&mut work)
            .await
            .map_err(|e| db_err(url, "reading the Galera (wsrep) settings", e))?;
        if flavour.kind != url.kind() {
            tracing::debug!(
                "the URL says {}, the server is {}",
                url.kind(),
                flavour.kind
            );
        }
        Ok(MySqlEngine {
            lock_name: lock_name(&url.database()),
            url: url.clone(),
            work,
            lock,
            flavour,
            lock_held: false,
            galera,
        })
    }

    /// `sluice cutover`: swaps every verified online copy waiting for it.
    pub async fn online_cutover(
        &mut self,
        opts: &sluice_core::engine::OnlineOptions,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<Vec<String>> {
        online::cutover_all(self, opts, say).await
    }

    /// `sluice cleanup`: drops old tables kept by finished swaps (with `abort`, also unfinished copies).
    pub async fn online_cleanup(&mut self, abort: bool) -> Result<Vec<String>> {
        online::cleanup(self, abort).await
    }

    pub fn flavour(&self) -> Flavour {
        self.flavour
    }

    /// The Galera cluster this server belongs to, if any.
    pub fn galera(&self) -> Option<&Galera> {
        self.galera.as_ref()
    }

    fn err(&self, context: &str, e: mysql_async::Error) -> Error {
        db_err(&self.url, context, e)
    }

    /// Writes who holds the lock, for a waiting run to show. Best effort: the lock itself is the
    /// `GET_LOCK`, and a user without CREATE rights still gets to run.
    async fn record_holder(
        &mut self,
        me: &LockHolder,
    ) -> std::result::Result<(), mysql_async::Error> {
        self.lock.query_drop(history::CREATE_LOCK).await?;
        self.lock
            .exec_drop(
                "REPLACE INTO `sluice_lock` (`lock_name`, `connection_id`, `host`, `pid`, `since`) \
                 VALUES (?, CONNECTION_ID(), ?, ?, ?)",
                (
                    &self.lock_name,
                    &me.host,
                    me.pid,
                    me.since.map(|s| s.naive_utc()),
                ),
            )
            .await
    }

    async fn holder(&mut self) -> Result<Option<LockHolder>> {
        let used: Option<Option<u64>> = self
            .lock
            .exec_first("SELECT IS_USED_LOCK(?)", (&self.lock_name,))
            .await
            .map_err(|e| db_err(&self.url, "reading the run lock's holder", e))?;
        let Some(session) = used.flatten() else {
            return Ok(None);
        };
        let row: std::result::Result<Option<Row>, _> = self
            .lock
            .exec_first(
                "SELECT `connection_id`, `host`, `pid`, `since` FROM `sluice_lock` WHERE `lock_name` = ?",
                (&self.lock_name,),
            )
            .await;
        let row = match row {
            Ok(r) => r,
            Err(e) if server_code(&e) == Some(ER_NO_SUCH_TABLE) => None,
            Err(e) => return Err(self.err("reading the run lock's holder", e)),
        };
        let Some(mut row) = row else {
            return Ok(None);
        };
        let conn_id: Option<u64> = take(&mut row, 0);
        // A row left by an earlier holder (or written a moment before the lock was taken) describes
        // someone else: show it only when it names the session that holds the lock now.
        if conn_id != Some(session) {
            return Ok(None);
        }
        let since: Option<NaiveDateTime> = take(&mut row, 3);
        Ok(Some(LockHolder {
            host: take(&mut row, 1).unwrap_or_default(),
            pid: take::<u64>(&mut row, 2).unwrap_or(0) as u32,
            since: since.map(|s| s.and_utc()),
            session: Some(session.to_string()),
        }))
    }

    /// Runs a query that reads sluice's history, treating a missing table as "no history yet".
    async fn history_rows(
        &mut self,
        sql: &str,
        params: Params,
        context: &str,
    ) -> Result<Option<Vec<Row>>> {
        match self.work.exec::<Row, _, _>(sql, params).await {
            Ok(rows) => Ok(Some(rows)),
            Err(e) if server_code(&e) == Some(ER_NO_SUCH_TABLE) => Ok(None),
            Err(e) => Err(self.err(context, e)),
        }
    }

    async fn ensure_triggers(&mut self) -> Result<()> {
        let existing: Vec<String> = self
            .work
            .query(
                "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS \
                 WHERE TRIGGER_SCHEMA = DATABASE() AND EVENT_OBJECT_TABLE = 'sluice_events'",
            )
            .await
            .map_err(|e| self.err("reading the triggers of sluice_events", e))?;
        for (name, sql) in history::EVENT_TRIGGERS {
            if existing.iter().any(|e| e == name) {
                continue;
            }
            match self.work.query_drop(sql).await {
                Ok(()) => {}
                // Without the TRIGGER privilege (or with binary logging and no SUPER) the log stays
                // append-only by convention only: sluice never updates or deletes events.
                Err(e) if matches!(server_code(&e), Some(1142 | 1227 | 1419)) => {
                    tracing::warn!(
                        "could not protect sluice_events with trigger {name}: {}",
                        self.url.scrub(&e.to_string())
                    );
                }
                // Another run created it in between.
                Err(e) if server_code(&e) == Some(1359) => {}
                Err(e) => return Err(self.err("creating the triggers of sluice_events", e)),
            }
        }
        Ok(())
    }
}

/// Takes column `i` of `row` as `T`, None when NULL or not convertible.
fn take<T: FromValue>(row: &mut Row, i: usize) -> Option<T> {
    match row.take_opt::<Option<T>, usize>(i) {
        Some(Ok(v)) => v,
        _ => None,
    }
}

fn db_err(url: &DbUrl, context: &str, e: mysql_async::Error) -> Error {
    if let Some(denied) = privileges::denied(context, &e, &url.database(), &url.username()) {
        return denied;
    }
    let help = match server_code(&e) {
        _ if e.is_fatal() => {
            "the connection to the server was lost; check the server and run the command again"
                .into()
        }
        _ => String::new(),
    };
    Error::Database {
        context: context.to_string(),
        message: url.scrub(&e.to_string()),
        help,
    }
}

/// Opens one plain session on the URL's server, on its database when `with_database` (rehearse's
/// workload clients and data copy), connecting the way the engine does (TLS, socket, timeouts).
pub async fn open_session(url: &DbUrl, with_database: bool) -> Result<Conn> {
    let params = ConnParams::from_url(url)?;
    Ok(connect::open_first(url, &params, with_database).await?.0)
}

/// Creates the URL's database when it does not exist (`sluice up --create-database`).
pub async fn create_database_if_missing(url: &DbUrl) -> Result<()> {
    let params = ConnParams::from_url(url)?;
    let (mut conn, _) = connect::open_first(url, &params, false).await?;
    let db = url.database();
    conn.query_drop(format!(
        "CREATE DATABASE IF NOT EXISTS {}",
        quote::ident(&db)
    ))
    .await
    .map_err(|e| db_err(url, &format!("creating database `{db}`"), e))?;
    conn.disconnect().await.ok();
    Ok(())
}

fn history_row(mut r: Row) -> Result<HistoryRow> {
    let bad =
        |what: &str| Error::database("reading sluice_migrations", format!("unreadable {what}"));
    let state: String = take(&mut r, 3).ok_or_else(|| bad("state"))?;
    let hashes: String = take(&mut r, 11).unwrap_or_else(|| "[]".into());
    Ok(HistoryRow {
        version: take(&mut r, 0).ok_or_else(|| bad("version"))?,
        name: take(&mut r, 1).unwrap_or_default(),
        checksum: take(&mut r, 2).unwrap_or_default(),
        state: history::parse_state(&state).ok_or_else(|| {
            Error::database(
                "reading sluice_migrations",
                format!("unknown state `{state}`: the history was written by a newer sluice"),
            )
        })?,
        started_at: take::<NaiveDateTime>(&mut r, 4)
            .ok_or_else(|| bad("started_at"))?
            .and_utc(),
        finished_at: take::<NaiveDateTime>(&mut r, 5).map(|t| t.and_utc()),
        duration_ms: take(&mut r, 6),
        applied_by: take(&mut r, 7).unwrap_or_default(),
        sluice_version: take(&mut r, 8).unwrap_or_default(),
        app_version: take(&mut r, 9),
        statements_done: take(&mut r, 10).unwrap_or(0),
        statement_hashes: serde_json::from_str(&hashes).map_err(|e| {
            Error::database(
                "reading sluice_migrations",
                format!("unreadable statement_hashes: {e}"),
            )
        })?,
        error: take(&mut r, 12),
        failed_statement: take(&mut r, 13),
    })
}

fn naive(t: DateTime<Utc>) -> NaiveDateTime {
    t.naive_utc()
}

#[async_trait]
impl Execution for MySqlEngine {
    fn target(&self) -> Target {
        Target::new(
            self.flavour.kind,
            self.flavour.version.0,
            self.flavour.version.1,
        )
    }

    fn url(&self) -> String {
        self.url.redacted()
    }

    fn transactional_ddl(&self) -> bool {
        false
    }

    fn needs_own_transaction(&self, stmt: &SqlStatement) -> bool {
        stmt.mysql_implicit_commit()
    }

    async fn begin(&mut self) -> Result<()> {
        self.work
            .query_drop("START TRANSACTION")
            .await
            .map_err(|e| self.err("starting a transaction", e))
    }

    async fn commit(&mut self) -> Result<()> {
        self.work
            .query_drop("COMMIT")
            .await
            .map_err(|e| self.err("committing", e))
    }

    async fn rollback(&mut self) -> Result<()> {
        self.work
            .query_drop("ROLLBACK")
            .await
            .map_err(|e| self.err("rolling back", e))
    }

    async fn execute(&mut self, sql: &str) -> std::result::Result<(), ServerError> {
        let outcome = self.work.query_drop(sql).await;
        // A step that locks its table and fails before its own UNLOCK TABLES (the two-phase
        // rename's catalog steps, the first after forgetting a stale backfill checkpoint): the
        // lock goes at once, whatever happened.
        if outcome.is_err() && (sql.starts_with("LOCK TABLES ") || sql.contains("; LOCK TABLES ")) {
            let _ = self.work.query_drop("UNLOCK TABLES").await;
        }
        outcome.map_err(|e| match e {
            mysql_async::Error::Server(se) => ServerError {
                code: se.code.to_string(),
                message: self.url.scrub(&se.message),
                position: None,
                connection_lost: false,
                // ER_LOCK_WAIT_TIMEOUT: a metadata lock or row lock wait gave up.
                lock_timeout: se.code == 1205,
                grant: if sluice_core::error::is_privilege_code(&se.code.to_string()) {
                    privileges::grant_for_statement(
                        se.code,
                        &se.message,
                        &self.url.database(),
                        &self.url.username(),
                    )
                } else {
                    String::new()
                },
            },
            other => ServerError {
                code: String::new(),
                message: self.url.scrub(&other.to_string()),
                position: None,
                connection_lost: true,
                lock_timeout: false,
                grant: String::new(),
            },
        })
    }

    // No server view reports an ALTER's progress here: the online copy reports its own.
    async fn execute_watched(
        &mut self,
        sql: &str,
        _progress: Option<&sluice_core::progress::Progress>,
        _say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> std::result::Result<(), ServerError> {
        self.execute(sql).await
    }

    async fn set_lock_timeout(&mut self, timeout: std::time::Duration) -> Result<()> {
        // Both accept whole seconds only: round up, at least 1 s.
        let secs = timeout.as_millis().div_ceil(1000).max(1);
        self.work
            .query_drop(format!(
                "SET SESSION lock_wait_timeout = {secs}, SESSION innodb_lock_wait_timeout = {secs}"
            ))
            .await
            .map_err(|e| self.err("setting lock_wait_timeout", e))
    }

    /// Not supported: ALTERs run online or as the server's INSTANT/INPLACE form, and the runner
    /// bounds only PostgreSQL's ACCESS EXCLUSIVE steps.
    async fn set_statement_timeout(
        &mut self,
        _timeout: std::time::Duration,
    ) -> std::result::Result<(), ServerError> {
        Ok(())
    }

    async fn describe_blockers(&mut self, table: Option<&str>) -> Result<Vec<String>> {
        // Without the metadata_lock_info plugin MariaDB cannot say who holds a table's metadata
        // lock; the open transactions touching InnoDB are the usual suspects.
        let _ = table;
        let rows: Vec<(u64, String, String, Option<String>, i64, String)> = self
            .work
            .query(
                "SELECT p.ID, p.USER, p.COMMAND, p.STATE, COALESCE(TIMESTAMPDIFF(SECOND, t.trx_started, NOW()), p.TIME), \
                        COALESCE(p.INFO, '') \
                   FROM information_schema.PROCESSLIST p LEFT JOIN information_schema.INNODB_TRX t ON t.trx_mysql_thread_id = p.ID \
                  WHERE p.ID <> CONNECTION_ID() AND p.DB = DATABASE() AND (t.trx_id IS NOT NULL OR p.INFO IS NOT NULL) \
                  ORDER BY 5 DESC LIMIT 5",
            )
            .await
            .map_err(|e| self.err("reading who holds the lock", e))?;
        // The query is another session's: its literals may be secrets (`SET PASSWORD`, `ALTER
        // USER ... IDENTIFIED BY`), and this text is printed and stored in the history. MariaDB
        // reports no application name without the performance schema.
        Ok(rows
            .into_iter()
            .map(|(id, user, cmd, state, age, info)| {
                let state = match state.filter(|s| !s.is_empty()) {
                    Some(s) => format!("{cmd}, {s}"),
                    None => cmd,
                };
                sluice_core::redact::lock_holder(
                    "connection",
                    id as i64,
                    &user,
                    None,
                    &state,
                    age,
                    None,
                    &info,
                    sluice_core::redact::Dialect::MySql,
                )
            })
            .collect())
    }

    /// No concurrent index builds, so never an INVALID leftover.
    async fn drop_invalid_index(&mut self, _index: &str) -> Result<bool> {
        Ok(false)
    }

    async fn before_unnamed_index(
        &mut self,
        _slot: &str,
        _table: &str,
        _probe: &str,
        _sql: &str,
    ) -> Result<UnnamedIndex> {
        Ok(UnnamedIndex::Build(vec![]))
    }

    async fn after_unnamed_index(&mut self, _slot: &str, _table: &str, _probe: &str) -> Result<()> {
        Ok(())
    }
}

#[async_trait]
impl HistoryStore for MySqlEngine {
    async fn try_run_lock(&mut self, me: &LockHolder) -> Result<LockAttempt> {
        if self.lock_held {
            return Ok(LockAttempt::Acquired);
        }
        // Timeout 0: the runner polls, so no session ever waits inside the server.
        let got: Option<Option<i64>> = self
            .lock
            .exec_first("SELECT GET_LOCK(?, 0)", (&self.lock_name,))
            .await
            .map_err(|e| self.err("taking the run lock", e))?;
        match got.flatten() {
            Some(1) => {
                self.lock_held = true;
                if let Err(e) = self.record_holder(me).await {
                    tracing::warn!(
                        "could not record the run lock's holder in sluice_lock: {}",
                        self.url.scrub(&e.to_string())
                    );
                }
                Ok(LockAttempt::Acquired)
            }
            Some(_) => Ok(LockAttempt::Busy(self.holder().await?)),
            None => Err(Error::database(
                "taking the run lock",
                format!("GET_LOCK('{}') failed on the server", self.lock_name),
            )),
        }
    }

    async fn release_run_lock(&mut self) -> Result<()> {
        if !self.lock_held {
            return Ok(());
        }
        let _ = self
            .lock
            .exec_drop(
                "DELETE FROM `sluice_lock` WHERE `lock_name` = ? AND `connection_id` = CONNECTION_ID()",
                (&self.lock_name,),
            )
            .await;
        let released: Option<Option<i64>> = self
            .lock
            .exec_first("SELECT RELEASE_LOCK(?)", (&self.lock_name,))
            .await
            .map_err(|e| self.err("releasing the run lock", e))?;
        self.lock_held = false;
        if released.flatten() != Some(1) {
            tracing::warn!(
                "the run lock {} was not held any more when released",
                self.lock_name
            );
        }
        Ok(())
    }

    async fn ensure_history(&mut self) -> Result<()> {
        for sql in [
            history::CREATE_META,
            history::CREATE_MIGRATIONS,
            history::CREATE_EVENTS,
            history::CREATE_SNAPSHOTS,
        ] {
            self.work
                .query_drop(sql)
                .await
                .map_err(|e| self.err("creating sluice's history tables", e))?;
        }
        self.work
            .exec_drop(
                "INSERT IGNORE INTO `sluice_meta` (`k`, `v`) VALUES ('history_format', ?)",
                (HISTORY_FORMAT,),
            )
            .await
            .map_err(|e| self.err("writing sluice_meta", e))?;
        let format: Option<String> = self
            .work
            .query_first("SELECT `v` FROM `sluice_meta` WHERE `k` = 'history_format'")
            .await
            .map_err(|e| self.err("reading sluice_meta", e))?;
        if format.as_deref() != Some(HISTORY_FORMAT) {
            return Err(Error::Database {
                context: "reading sluice_meta".into(),
                message: format!(
                    "the history in this database has format {}, this sluice knows format {HISTORY_FORMAT}",
                    format.unwrap_or_default()
                ),
                help: "upgrade sluice to the version that manages this database".into(),
            });
        }
        self.ensure_triggers().await
    }

    async fn history(&mut self) -> Result<Vec<HistoryRow>> {
        let sql = format!("SELECT {MIGRATION_COLUMNS} FROM `sluice_migrations` ORDER BY `version`");
        let Some(rows) = self
            .history_rows(&sql, Params::Empty, "reading sluice_migrations")
            .await?
        else {
            return Ok(vec![]);
        };
        rows.into_iter().map(history_row).collect()
    }

    async fn events(&mut self, limit: i64) -> Result<Vec<EventRow>> {
        let sql = "SELECT `id`, `at`, `kind`, `version`, `name`, `checksum`, `actor`, `app_version`, \
                   `sluice_version`, `detail` FROM (SELECT * FROM `sluice_events` ORDER BY `id` DESC LIMIT ?) e \
                   ORDER BY `id`";
        let Some(rows) = self
            .history_rows(
                sql,
                Params::Positional(vec![Value::from(limit.max(0))]),
                "reading sluice_events",
            )
            .await?
        else {
            return Ok(vec![]);
        };
        rows.into_iter()
            .map(|mut r| {
                let kind: String = take(&mut r, 2).unwrap_or_default();
                Ok(EventRow {
                    id: take(&mut r, 0).unwrap_or(0),
                    at: take::<NaiveDateTime>(&mut r, 1)
                        .map(|t| t.and_utc())
                        .unwrap_or_default(),
                    event: Event {
                        kind: history::parse_event_kind(&kind).ok_or_else(|| {
                            Error::database(
                                "reading sluice_events",
                                format!("unknown event kind `{kind}`: the history was written by a newer sluice"),
                            )
                        })?,
                        version: take(&mut r, 3),
                        name: take(&mut r, 4),
                        checksum: take(&mut r, 5),
                        actor: take(&mut r, 6).unwrap_or_default(),
                        app_version: take(&mut r, 7),
                        sluice_version: take(&mut r, 8).unwrap_or_default(),
                        detail: take(&mut r, 9).unwrap_or_default(),
                    },
                })
            })
            .collect()
    }

    async fn upsert_migration(&mut self, row: &HistoryRow) -> Result<()> {
        let hashes = serde_json::to_string(&row.statement_hashes).expect("strings serialise");
        let params: Vec<Value> = vec![
            row.version.into(),
            row.name.clone().into(),
            row.checksum.clone().into(),
            row.state.as_str().into(),
            naive(row.started_at).into(),
            row.finished_at.map(naive).into(),
            row.duration_ms.into(),
            row.applied_by.clone().into(),
            row.sluice_version.clone().into(),
            row.app_version.clone().into(),
            row.statements_done.into(),
            hashes.into(),
            // The history is read by anyone with access to the database: no secret goes into it.
            row.error
                .as_deref()
                .map(|e| truncate(&sluice_core::redact::secrets(e), TEXT_MAX))
                .into(),
            row.failed_statement.clone().into(),
        ];
        let placeholders = vec!["?"; params.len()].join(", ");
        // REPLACE is delete + insert: fine for a table nothing references.
        self.work
            .exec_drop(
                format!("REPLACE INTO `sluice_migrations` ({MIGRATION_COLUMNS}) VALUES ({placeholders})"),
                Params::Positional(params),
            )
            .await
            .map_err(|e| self.err("recording the migration in sluice_migrations", e))
    }

    async fn delete_migration(&mut self, version: i64) -> Result<()> {
        self.work
            .exec_drop(
                "DELETE FROM `sluice_migrations` WHERE `version` = ?",
                (version,),
            )
            .await
            .map_err(|e| self.err("removing the migration from sluice_migrations", e))
    }

    async fn append_event(&mut self, event: &Event) -> Result<()> {
        let params: Vec<Value> = vec![
            naive(Utc::now()).into(),
            event.kind.as_str().into(),
            event.version.into(),
            event.name.clone().into(),
            event.checksum.clone().into(),
            event.actor.clone().into(),
            event.app_version.clone().into(),
            event.sluice_version.clone().into(),
            truncate(
                &sluice_core::redact::secrets(&sluice_core::session::event_detail(
                    event,
                    self.url.session(),
                )),
                TEXT_MAX,
            )
            .into(),
        ];
        self.work
            .exec_drop(
                "INSERT INTO `sluice_events` (`at`, `kind`, `version`, `name`, `checksum`, `actor`, \
                 `app_version`, `sluice_version`, `detail`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                Params::Positional(params),
            )
            .await
            .map_err(|e| self.err("appending to sluice_events", e))
    }

    async fn save_snapshot(&mut self, version: Option<i64>, schema: &Schema) -> Result<()> {
        let json = serde_json::to_string(schema).expect("schema serialises");
        self.work
            .exec_drop(
                "INSERT INTO `sluice_snapshots` (`taken_at`, `version`, `schema_json`, `fingerprint`) \
                 VALUES (?, ?, ?, ?)",
                (naive(Utc::now()), version, json, schema.fingerprint()),
            )
            .await
            .map_err(|e| self.err("saving the schema snapshot", e))
    }

    async fn latest_snapshot(&mut self) -> Result<Option<Snapshot>> {
        let Some(rows) = self
            .history_rows(
                "SELECT `version`, `taken_at`, `schema_json` FROM `sluice_snapshots` ORDER BY `id` DESC LIMIT 1",
                Params::Empty,
                "reading sluice_snapshots",
            )
            .await?
        else {
            return Ok(None);
        };
        let Some(mut r) = rows.into_iter().next() else {
            return Ok(None);
        };
        let json: String = take(&mut r, 2).unwrap_or_default();
        let schema: Schema = serde_json::from_str(&json).map_err(|e| {
            Error::database(
                "reading sluice_snapshots",
                format!("unreadable schema snapshot: {e}"),
            )
        })?;
        Ok(Some(Snapshot {
            version: take(&mut r, 0),
            taken_at: take::<NaiveDateTime>(&mut r, 1)
                .map(|t| t.and_utc())
                .unwrap_or_default(),
            schema,
        }))
    }
}

#[async_trait]
impl Introspection for MySqlEngine {
    async fn query_text(&mut self, sql: &str) -> Result<Vec<Vec<Option<String>>>> {
        let rows: Vec<Row> = self
            .work
            .query(sql)
            .await
            .map_err(|e| self.err("reading another tool's history table", e))?;
        Ok(rows
            .into_iter()
            .map(|r| r.unwrap().into_iter().map(value_text).collect())
            .collect())
    }

    async fn introspect(&mut self) -> Result<Schema> {
        introspect::introspect(&mut self.work, self.flavour)
            .await
            .map_err(|e| db_err(&self.url, "reading the schema from information_schema", e))
    }

    async fn table_stats(
        &mut self,
    ) -> Result<std::collections::HashMap<String, sluice_core::analysis::TableStats>> {
        // TABLE_ROWS is InnoDB's estimate: enough to tell a hot table from an empty one. Its
        // statistics lag a freshly filled table (0 rows in pages of data), so then the data length
        // over a row's declared width stands in; an empty InnoDB table has one 16 KiB page.
        let rows: Vec<(String, Option<u64>, Option<u64>)> = self
            .work
            .query(
                "SELECT TABLE_NAME, \
                        IF(TABLE_ROWS > 0 OR DATA_LENGTH <= 16384, TABLE_ROWS, DATA_LENGTH DIV (20 + COALESCE(( \
                           SELECT SUM(LEAST(COALESCE(CHARACTER_OCTET_LENGTH, NUMERIC_PRECISION DIV 2 + 1, 8), 64)) \
                             FROM information_schema.COLUMNS c \
                            WHERE c.TABLE_SCHEMA = t.TABLE_SCHEMA AND c.TABLE_NAME = t.TABLE_NAME), 0))), \
                        DATA_LENGTH + INDEX_LENGTH FROM information_schema.TABLES t \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE' AND TABLE_NAME NOT LIKE 'sluice\\_%'",
            )
            .await
            .map_err(|e| self.err("reading table sizes", e))?;
        Ok(rows
            .into_iter()
            .map(|(name, r, b)| {
                let stats = sluice_core::analysis::TableStats {
                    rows: r.unwrap_or(0) as i64,
                    bytes: b.unwrap_or(0) as i64,
                    has_default_partition: false,
                };
                (name, stats)
            })
            .collect())
    }

    fn render_diff_sql(&self, from: &Schema, to: &Schema) -> String {
        render::render(from, to, self.flavour)
    }

    /// Not read on MariaDB/MySQL (the PostgreSQL rewrite checks are its only user).
    async fn column_type(&mut self, _table: &str, _column: &str) -> Result<Option<String>> {
        Ok(None)
    }

    /// Not read on MariaDB/MySQL (the PostgreSQL rewrite checks are its only user).
    async fn session_time_zone(&mut self) -> Result<Option<String>> {
        Ok(None)
    }

    /// Not read here: the online path counts rows itself (`as_written_below_rows`).
    async fn rows_below(&mut self, _table: &str, _limit: u64) -> Result<Option<u64>> {
        Ok(None)
    }

    // The online copy carries type changes here; nothing is staged from the column's catalog.
    async fn column_catalog(
        &mut self,
        _table: &str,
        _column: &str,
    ) -> Result<Option<sluice_core::engine::ColumnCatalog>> {
        Ok(None)
    }

    async fn check_privileges(&mut self, statements: &[String], online: bool) -> Result<()> {
        // Only the online copy needs more than the statement itself (which the server refuses
        // before doing anything): check its grants now rather than after earlier statements ran.
        for sql in statements.iter().filter(|_| online) {
            if let Some(table) = online::copies(self, sql).await? {
                return privileges::check_online_copy(&mut self.work, &table).await;
            }
        }
        Ok(())
    }
}

#[async_trait]
impl Backfill for MySqlEngine {
    async fn backfill(
        &mut self,
        spec: &BackfillSpec,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<BackfillReport> {
        if spec.stands_for_ddl {
            if let Some(w) = backfill::trigger_warning(self, &spec.table).await? {
                say(&w);
            }
        }
        backfill::run(self, spec, say).await
    }
}

#[async_trait]
impl OnlineAlter for MySqlEngine {
    async fn alter_online(
        &mut self,
        sql: &str,
        opts: &sluice_core::engine::OnlineOptions,
        say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
    ) -> Result<Option<sluice_core::engine::OnlineReport>> {
        online::alter(self, sql, opts, say).await
    }

    async fn explain_online(
        &mut self,
        sql: &str,
        as_written_below_rows: u64,
    ) -> Result<Option<Vec<String>>> {
        online::explain(self, sql, as_written_below_rows).await
    }

    async fn as_written_impact(
        &mut self,
        sql: &str,
    ) -> Result<Option<(String, sluice_core::plan::Impact)>> {
        online::as_written_impact(self, sql).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_fit_the_server_limit() {
        assert_eq!(lock_name("app"), "sluice:app");
        let long = "d".repeat(64);
        let n = lock_name(&long);
        assert_eq!(n.len(), LOCK_NAME_MAX);
        assert!(n.starts_with("sluice:"));
        assert_ne!(n, lock_name(&"e".repeat(64)));
    }
}
