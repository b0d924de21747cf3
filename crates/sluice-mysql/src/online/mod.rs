//! Online ALTER TABLE on MariaDB/MySQL.
//!
//! For each ALTER TABLE, `path.rs` predicts the cheapest algorithm from the flavour, version and the
//! live table. Instant and in-place changes run with the algorithm written out (`ALGORITHM=INSTANT`,
//! `ALGORITHM=NOCOPY, LOCK=NONE`, `ALGORITHM=INPLACE, LOCK=NONE`) so that the server refuses instead
//! of silently copying under a lock; a refusal moves on to the next form and finally to the online
//! copy (`copy.rs`, `cutover.rs`).
//!
//! Progress of a copy lives in `sluice_online` (one row per table): the statement, the state
//! (`setup` → `copying` → `copied` → `swapped`) and the last copied key, so a killed run resumes.

mod copy;
mod cutover;
mod defer;
mod replicas;
pub use replicas::CREATE_HEARTBEAT;
pub mod names;
pub mod parse;
pub mod path;
pub mod table;

use crate::quote::ident;
use crate::MySqlEngine;
use copy::{db, Job, Key, Say};
use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use names::Names;
use parse::{AlterTable, ClauseKind};
use path::Algo;
use sluice_core::engine::{OnlineOptions, OnlineReport};
use sluice_core::error::{Error, Result};
use std::time::{Duration, Instant};

pub const CREATE_STATE: &str = "CREATE TABLE IF NOT EXISTS `sluice_online` (\
    `table_name` VARCHAR(64) NOT NULL PRIMARY KEY, \
    `statement` MEDIUMTEXT NOT NULL, \
    `state` VARCHAR(16) NOT NULL, \
    `last_key` MEDIUMTEXT NULL, \
    `rows_copied` BIGINT NOT NULL DEFAULT 0, \
    `started_at` DATETIME(6) NOT NULL, \
    `updated_at` DATETIME(6) NOT NULL, \
    `deferred` MEDIUMTEXT NULL) ENGINE=InnoDB";

/// Creates `sluice_online`, or adds what an older sluice's table lacks.
async fn ensure_state(conn: &mut Conn) -> Result<()> {
    conn.query_drop(CREATE_STATE)
        .await
        .map_err(|err| db("creating sluice_online", err))?;
    let has: Option<i64> = conn
        .query_first(
            "SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'sluice_online' AND COLUMN_NAME = 'deferred'",
        )
        .await
        .map_err(|err| db("reading sluice_online", err))?;
    if has.unwrap_or(0) == 0 {
        conn.query_drop("ALTER TABLE `sluice_online` ADD COLUMN `deferred` MEDIUMTEXT NULL")
            .await
            .map_err(|err| db("updating sluice_online", err))?;
    }
    Ok(())
}

/// ER_ALTER_OPERATION_NOT_SUPPORTED and ..._REASON: the server refuses the requested algorithm.
const REFUSED: &[u16] = &[1845, 1846];

#[derive(Debug, Clone)]
struct StateRow {
    statement: String,
    state: String,
    last_key: Option<String>,
    rows_copied: i64,
}

/// Why a statement runs as written rather than online.
fn as_written(a: &AlterTable, db: &str) -> Option<&'static str> {
    if a.modifiers {
        return Some("ALTER ONLINE/IGNORE");
    }
    if a.schema.as_deref().is_some_and(|s| s != db) {
        return Some("a table of another database");
    }
    for c in &a.clauses {
        match c.kind {
            ClauseKind::AlgorithmOrLock => {
                return Some("the statement names its own ALGORITHM/LOCK")
            }
            ClauseKind::RenameTable => return Some("RENAME TO"),
            ClauseKind::Partition => return Some("a partition operation"),
            _ => {}
        }
    }
    None
}

fn renames(a: &AlterTable) -> Vec<(String, String)> {
    a.clauses
        .iter()
        .filter_map(|c| match &c.kind {
            ClauseKind::ChangeColumn { from, to, .. } if from != to => {
                Some((from.clone(), to.clone()))
            }
            ClauseKind::RenameColumn { from, to } => Some((from.clone(), to.clone())),
            _ => None,
        })
        .collect()
}

async fn database(conn: &mut Conn) -> Result<String> {
    let d: Option<Option<String>> = conn
        .query_first("SELECT DATABASE()")
        .await
        .map_err(|e| db("reading the current database", e))?;
    Ok(d.flatten().unwrap_or_default())
}

async fn exists(conn: &mut Conn, table: &str) -> Result<bool> {
    let n: Option<i64> = conn
        .exec_first(
            "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
            (table,),
        )
        .await
        .map_err(|e| db("looking up a table", e))?;
    Ok(n.unwrap_or(0) > 0)
}

async fn read_state(conn: &mut Conn, table: &str) -> Result<Option<StateRow>> {
    let r: Option<(String, String, Option<String>, i64)> = conn
        .exec_first(
            "SELECT `statement`, `state`, `last_key`, `rows_copied` FROM `sluice_online` WHERE `table_name` = ?",
            (table,),
        )
        .await
        .map_err(|e| db("reading sluice_online", e))?;
    Ok(r.map(|(statement, state, last_key, rows_copied)| StateRow {
        statement,
        state,
        last_key,
        rows_copied,
    }))
}

async fn set_state(conn: &mut Conn, table: &str, state: &str) -> Result<()> {
    conn.exec_drop(
        "UPDATE `sluice_online` SET `state` = ?, `updated_at` = NOW(6) WHERE `table_name` = ?",
        (state, table),
    )
    .await
    .map_err(|e| db("updating sluice_online", e))
}

enum DdlError {
    /// The server refused the requested algorithm.
    Refused(String),
    /// Any other server error, with its code.
    Server(Error),
    Failed(Error),
}

/// Runs one DDL statement on the work session with a short lock_wait_timeout; a lock timeout steps
/// back (so queries do not queue behind the DDL's pending metadata lock) and retries with growing,
/// jittered pauses up to `lock_retry_for`, naming who blocks it.
async fn ddl(
    e: &mut MySqlEngine,
    table: &str,
    sql: &str,
    opts: &OnlineOptions,
    say: Say<'_>,
) -> std::result::Result<(), DdlError> {
    let secs = opts.lock_timeout.as_millis().div_ceil(1000).max(1);
    e.work
        .query_drop(format!("SET SESSION lock_wait_timeout = {secs}"))
        .await
        .map_err(|err| DdlError::Failed(db("setting lock_wait_timeout", err)))?;
    let started = Instant::now();
    let mut attempt: u32 = 0;
    loop {
        let err = match e.work.query_drop(sql).await {
            Ok(()) => return Ok(()),
            Err(err) => err,
        };
        let code = copy::code(&err);
        let message = e.url.scrub(&err.to_string());
        match code {
            Some(c) if REFUSED.contains(&c) => return Err(DdlError::Refused(message)),
            Some(1205) => {}
            Some(_) => {
                return Err(DdlError::Server(Error::database(
                    format!("running `{}`", first_line(sql)),
                    message,
                )))
            }
            None => return Err(DdlError::Failed(db("running the ALTER", err))),
        }
        attempt += 1;
        let blockers = sluice_core::engine::Engine::describe_blockers(e, Some(table))
            .await
            .unwrap_or_default();
        let who = if blockers.is_empty() {
            "unknown sessions".to_string()
        } else {
            blockers.join("; ")
        };
        if started.elapsed() >= opts.lock_retry_for {
            return Err(DdlError::Failed(Error::database(
                format!("running `{}`", first_line(sql)),
                format!(
                    "{message} (gave up after {attempt} attempt(s) over {} s; blocked by {who})",
                    started.elapsed().as_secs()
                ),
            )));
        }
        let base = 250u64.saturating_mul(1 << attempt.min(7)).min(30_000);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let delay = Duration::from_millis(base / 2 + (nanos as u64 % base.max(1)))
            .min(opts.lock_retry_for.saturating_sub(started.elapsed()));
        say(&format!(
            "`{}` waited {} ms for its lock on {table} and stepped back so queries do not queue behind it; blocked by {who}; retry {attempt} in {} ms",
            first_line(sql),
            opts.lock_timeout.as_millis(),
            delay.as_millis()
        ));
        tokio::time::sleep(delay).await;
    }
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or("")
}

/// What runs: the path and one line per clause.
struct Decision {
    algo: Algo,
    lines: Vec<String>,
}

fn decide(e: &MySqlEngine, a: &AlterTable, live: &table::LiveTable) -> Decision {
    let kinds: Vec<ClauseKind> = a.clauses.iter().map(|c| c.kind.clone()).collect();
    let (algo, preds) = path::plan(e.flavour, live, &kinds);
    let lines = a
        .clauses
        .iter()
        .zip(&preds)
        .map(|(c, p)| format!("  {}: {} ({})", c.text, p.algo.name(), p.why))
        .collect();
    Decision { algo, lines }
}

/// Reasons the online copy cannot run on this table (exit 2 with the options).
fn refuse_copy(a: &AlterTable, live: &table::LiveTable, names: &Names) -> Option<Error> {
    let t = &live.name;
    if live.copy_key().is_none() {
        return Some(copy::no_key(t));
    }
    if !live.fks_in.is_empty() {
        return Some(Error::usage(
            format!(
                "foreign keys point at `{t}` ({}): after an online copy they would reference the old table",
                live.fks_in.join(", ")
            ),
            "drop those foreign keys for the change and re-add them after, or run this ALTER with `sluice up --as-written` in a maintenance window",
        ));
    }
    if !live.fks_out.is_empty()
        || a.clauses
            .iter()
            .any(|c| matches!(c.kind, ClauseKind::AddForeignKey))
    {
        return Some(Error::usage(
            format!("`{t}` has or gets foreign keys: sluice's online copy does not carry them over"),
            "drop the foreign keys for the change and re-add them after (ADD FOREIGN KEY runs in place with foreign_key_checks=0), or use `sluice up --as-written`",
        ));
    }
    let foreign: Vec<&String> = live
        .triggers
        .iter()
        .filter(|n| !names.triggers.contains(n))
        .collect();
    if !foreign.is_empty() {
        return Some(Error::usage(
            format!(
                "`{t}` has triggers ({}): the online copy needs the table's AFTER triggers for itself",
                foreign.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            ),
            "drop the triggers for the change and re-create them after, or use `sluice up --as-written`",
        ));
    }
    None
}

/// The table `sql` would copy online (the live table allows no INSTANT or INPLACE form), for the
/// privilege check before `up` runs anything; None for any other path.
pub async fn copies(e: &mut MySqlEngine, sql: &str) -> Result<Option<String>> {
    let Some(a) = parse::parse(sql) else {
        return Ok(None);
    };
    let dbname = database(&mut e.work).await?;
    if as_written(&a, &dbname).is_some() {
        return Ok(None);
    }
    let Some(live) = table::read(&mut e.work, &a.table)
        .await
        .map_err(|err| db("reading the table definition", err))?
    else {
        return Ok(None);
    };
    let d = decide(e, &a, &live);
    Ok(d.algo.clause(e.flavour).is_none().then_some(a.table))
}

pub async fn explain(e: &mut MySqlEngine, sql: &str) -> Result<Option<Vec<String>>> {
    let Some(a) = parse::parse(sql) else {
        return Ok(None);
    };
    let dbname = database(&mut e.work).await?;
    if let Some(why) = as_written(&a, &dbname) {
        return Ok(Some(vec![format!("runs as written: {why}")]));
    }
    let live = table::read(&mut e.work, &a.table)
        .await
        .map_err(|err| db("reading the table definition", err))?;
    let Some(live) = live else {
        return Ok(Some(vec![format!(
            "`{}` does not exist yet: sluice picks the online path when the statement runs",
            a.table
        )]));
    };
    let d = decide(e, &a, &live);
    let names = Names::of(&a.table);
    let mut out = Vec::new();
    match d.algo.clause(e.flavour) {
        Some(clause) => out.push(format!(
            "online: {} — runs with `{clause}` appended, so the server refuses rather than copying under a lock (then sluice tries the next form, finally the online copy)",
            d.algo.name()
        )),
        None => {
            out.push(format!(
                "online copy: shadow {}, change log {} fed by triggers, chunked copy by {} checksummed as it goes, secondary indexes built after the copy, atomic RENAME; old table kept as {} until `sluice cleanup`",
                ident(&names.shadow),
                ident(&names.chg),
                live.copy_key().map(|k| k.columns.join(", ")).unwrap_or_else(|| "?".into()),
                ident(&names.old)
            ));
            if let Some(err) = refuse_copy(&a, &live, &names) {
                out.push(format!("refused: {err}"));
            }
        }
    }
    out.extend(d.lines);
    Ok(Some(out))
}

pub async fn alter(
    e: &mut MySqlEngine,
    sql: &str,
    opts: &OnlineOptions,
    say: Say<'_>,
) -> Result<Option<OnlineReport>> {
    let Some(a) = parse::parse(sql) else {
        return Ok(None);
    };
    let dbname = database(&mut e.work).await?;
    if as_written(&a, &dbname).is_some() {
        return Ok(None);
    }
    let started = Instant::now();
    let statement = sql.trim().to_string();
    let names = Names::of(&a.table);
    ensure_state(&mut e.work).await?;
    let state = read_state(&mut e.work, &a.table).await?;
    if let Some(st) = &state {
        if st.statement == statement {
            if st.state == "swapped" {
                return Ok(Some(OnlineReport {
                    path: "copy".into(),
                    rows_copied: st.rows_copied,
                    ..Default::default()
                }));
            }
            return copy_path(e, &a, &statement, opts, say, Some(st.clone()), started)
                .await
                .map(Some);
        }
        if st.state != "swapped" {
            // Any change to the table now would have to be replayed on the shadow as well.
            return Err(Error::usage(
                format!(
                    "another online change of `{}` is in progress: {}",
                    a.table, st.statement
                ),
                "finish it (`sluice cutover`) or abandon it (`sluice cleanup --abort`) first",
            ));
        }
    }
    let live = table::read(&mut e.work, &a.table)
        .await
        .map_err(|err| db("reading the table definition", err))?;
    let Some(live) = live else {
        return Ok(None);
    };
    let d = decide(e, &a, &live);
    if d.algo < Algo::Copy {
        for step in d.algo.ladder(e.flavour) {
            let clause = step.clause(e.flavour).expect("fast paths have a clause");
            let stmt = format!("ALTER TABLE {} {}, {clause}", ident(&a.table), a.rest);
            match ddl(e, &a.table, &stmt, opts, say).await {
                Ok(()) => {
                    say(&format!("`{}`: ran with {clause}", a.table));
                    return Ok(Some(OnlineReport {
                        path: step.name().into(),
                        seconds: started.elapsed().as_secs_f64(),
                        ..Default::default()
                    }));
                }
                Err(DdlError::Refused(msg)) => {
                    say(&format!(
                        "`{}`: the server refused {clause}: {msg}",
                        a.table
                    ));
                }
                // Not about the algorithm (a typo, a duplicate column...): the statement as written
                // fails the same way before doing any work, and the runner reports it with the
                // server's code and position.
                Err(DdlError::Server(_)) => return Ok(None),
                Err(DdlError::Failed(err)) => return Err(err),
            }
        }
    }
    if state.is_some() {
        // An earlier, finished swap of this table kept its old table under the name this copy
        // needs: a newer change supersedes it.
        if exists(&mut e.work, &names.old).await? {
            say(&format!(
                "dropping {} (kept by the earlier online change of `{}`) for this one",
                names.old, a.table
            ));
            e.work
                .query_drop(format!("DROP TABLE {}", ident(&names.old)))
                .await
                .map_err(|err| db("dropping the old table", err))?;
        }
        e.work
            .exec_drop(
                "DELETE FROM `sluice_online` WHERE `table_name` = ?",
                (&a.table,),
            )
            .await
            .map_err(|err| db("updating sluice_online", err))?;
    }
    copy_path(e, &a, &statement, opts, say, None, started)
        .await
        .map(Some)
}

/// The copy's own session: READ COMMITTED (consistent reads take no locks) and the work session's
/// sql_mode (strict mode turns a value the new type cannot hold into an error, as the ALTER would).
async fn copy_session(e: &mut MySqlEngine) -> Result<Conn> {
    let mode: Option<String> = e
        .work
        .query_first("SELECT @@SESSION.sql_mode")
        .await
        .map_err(|err| db("reading sql_mode", err))?;
    let mut c = Conn::new(e.work.opts().clone())
        .await
        .map_err(|err| db("opening the copy session", err))?;
    c.exec_drop("SET SESSION sql_mode = ?", (mode.unwrap_or_default(),))
        .await
        .map_err(|err| db("preparing the copy session", err))?;
    c.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        .await
        .map_err(|err| db("preparing the copy session", err))?;
    // READ COMMITTED writes can only be logged row by row: with statement-based binary logging
    // the copy would fail on its first chunk, so it logs its own writes as rows.
    let binlog: Option<(i64, String)> = c
        .query_first("SELECT @@GLOBAL.log_bin, @@SESSION.binlog_format")
        .await
        .map_err(|err| db("reading the binary log settings", err))?;
    if let Some((1, format)) = binlog {
        if format.eq_ignore_ascii_case("STATEMENT") {
            c.query_drop("SET SESSION binlog_format = 'ROW'")
                .await
                .map_err(|err| Error::Database {
                    context: "preparing the copy session".into(),
                    message: format!("binlog_format is STATEMENT and sluice may not change it for its session: {err}"),
                    help: "grant the migration user BINLOG ADMIN (MariaDB) or SYSTEM_VARIABLES_ADMIN (MySQL), or set binlog_format to ROW or MIXED".into(),
                })?;
        }
    }
    Ok(c)
}

async fn drop_objects(conn: &mut Conn, names: &Names, tables: bool) {
    for t in &names.triggers {
        let _ = conn
            .query_drop(format!("DROP TRIGGER IF EXISTS {}", ident(t)))
            .await;
    }
    let _ = conn
        .query_drop(format!("DROP TABLE IF EXISTS {}", ident(&names.chg)))
        .await;
    if tables {
        let _ = conn
            .query_drop(format!("DROP TABLE IF EXISTS {}", ident(&names.shadow)))
            .await;
    }
}

/// Creates the change log, the shadow table with the ALTER applied and the triggers.
async fn setup(
    e: &mut MySqlEngine,
    a: &AlterTable,
    live: &table::LiveTable,
    conn: Conn,
    opts: &OnlineOptions,
    say: Say<'_>,
) -> Result<Job> {
    let names = Names::of(&a.table);
    let t = ident(&a.table);
    drop_objects(&mut e.work, &names, true).await;
    let fail = |m: String, err: mysql_async::Error| Error::Database {
        context: m,
        message: err.to_string(),
        help: String::new(),
    };
    e.work
        .query_drop(format!("CREATE TABLE {} LIKE {t}", ident(&names.shadow)))
        .await
        .map_err(|err| fail("creating the shadow table".into(), err))?;
    if let Err(err) = e
        .work
        .query_drop(format!("ALTER TABLE {} {}", ident(&names.shadow), a.rest))
        .await
    {
        drop_objects(&mut e.work, &names, true).await;
        return Err(fail(
            format!("running the ALTER on the shadow table {}", names.shadow),
            err,
        ));
    }
    let shadow = table::read(&mut e.work, &names.shadow)
        .await
        .map_err(|err| db("reading the shadow table", err))?
        .ok_or_else(|| Error::database("creating the shadow table", "it vanished"))?;
    let job = match Job::build(conn, live, &shadow, &renames(a)) {
        Ok(j) => j,
        Err(err) => {
            drop_objects(&mut e.work, &names, true).await;
            return Err(err);
        }
    };
    if let Err(err) = defer_indexes(e, &job, &shadow).await {
        drop_objects(&mut e.work, &names, true).await;
        return Err(err);
    }
    // The change log holds only keys: `k0, k1...` typed like the key columns.
    let mut cols =
        vec!["`_sluice_id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY".to_string()];
    for k in &job.key {
        let c = live.column(&k.orig).expect("key column");
        let mut ty = c.column_type.clone();
        if let (Some(cs), Some(coll)) = (&c.charset, &c.collation) {
            ty.push_str(&format!(
                " CHARACTER SET {} COLLATE {}",
                ident(cs),
                ident(coll)
            ));
        }
        cols.push(format!("{} {ty} NOT NULL", ident(&k.chg)));
    }
    let kcols: Vec<String> = job.key.iter().map(|k| ident(&k.chg)).collect();
    cols.push(format!("KEY `k` ({})", kcols.join(", ")));
    e.work
        .query_drop(format!(
            "CREATE TABLE {} ({}) ENGINE=InnoDB",
            ident(&names.chg),
            cols.join(", ")
        ))
        .await
        .map_err(|err| fail("creating the change log table".into(), err))?;
    let vals = |row: &str| -> String {
        job.key
            .iter()
            .map(|k| format!("{row}.{}", ident(&k.orig)))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let log = |row: &str| {
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            ident(&names.chg),
            kcols.join(", "),
            vals(row)
        )
    };
    let same_key: Vec<String> = job
        .key
        .iter()
        .map(|k| format!("OLD.{0} <=> NEW.{0}", ident(&k.orig)))
        .collect();
    let triggers = [
        format!(
            "CREATE TRIGGER {} AFTER INSERT ON {t} FOR EACH ROW {}",
            ident(&names.triggers[0]),
            log("NEW")
        ),
        format!(
            "CREATE TRIGGER {} AFTER UPDATE ON {t} FOR EACH ROW BEGIN {}; IF NOT ({}) THEN {}; END IF; END",
            ident(&names.triggers[1]),
            log("OLD"),
            same_key.join(" AND "),
            log("NEW")
        ),
        format!(
            "CREATE TRIGGER {} AFTER DELETE ON {t} FOR EACH ROW {}",
            ident(&names.triggers[2]),
            log("OLD")
        ),
    ];
    for sql in &triggers {
        match ddl(e, &a.table, sql, opts, say).await {
            Ok(()) => {}
            Err(DdlError::Refused(m)) => {
                drop_objects(&mut e.work, &names, true).await;
                return Err(Error::database("creating the copy triggers", m));
            }
            Err(DdlError::Failed(err)) | Err(DdlError::Server(err)) => {
                drop_objects(&mut e.work, &names, true).await;
                return Err(err);
            }
        }
    }
    Ok(job)
}

/// Records the shadow's secondary indexes in `sluice_online` and drops them, so the copy does not
/// maintain them row by row (see `defer.rs`); the key the copy walks stays.
async fn defer_indexes(e: &mut MySqlEngine, job: &Job, shadow: &table::LiveTable) -> Result<()> {
    let key: Vec<String> = job.key.iter().map(|k| k.shadow.to_lowercase()).collect();
    let keep: Vec<String> = shadow
        .indexes
        .iter()
        .filter(|i| {
            i.name == "PRIMARY"
                || (i.unique
                    && i.columns
                        .iter()
                        .map(|c| c.to_lowercase())
                        .collect::<Vec<_>>()
                        == key)
        })
        .map(|i| i.name.clone())
        .collect();
    let ddl = defer::show_create(&mut e.work, &job.names.shadow)
        .await
        .map_err(|err| db("reading the shadow table", err))?;
    let deferred = defer::deferrable(&ddl, &keep);
    let text = serde_json::to_string(&deferred).expect("index definitions serialise");
    e.work
        .exec_drop(
            "UPDATE `sluice_online` SET `deferred` = ?, `updated_at` = NOW(6) WHERE `table_name` = ?",
            (text, &job.table),
        )
        .await
        .map_err(|err| db("recording the deferred indexes", err))?;
    defer::drop_from(&mut e.work, &job.names.shadow, &deferred)
        .await
        .map_err(|err| db("deferring the shadow's secondary indexes", err))
}

/// Builds the deferred indexes the shadow lacks, after the change log is applied. A duplicate
/// over a new UNIQUE index can be a stale row whose change is still in the log: apply and retry;
/// one that stays is real and fails the copy, as the ALTER as written would.
async fn build_deferred(e: &mut MySqlEngine, job: &mut Job, say: Say<'_>) -> Result<()> {
    let text: Option<Option<String>> = e
        .work
        .exec_first(
            "SELECT `deferred` FROM `sluice_online` WHERE `table_name` = ?",
            (&job.table,),
        )
        .await
        .map_err(|err| db("reading sluice_online", err))?;
    let deferred: Vec<defer::Deferred> = match text.flatten() {
        Some(t) => serde_json::from_str(&t)
            .map_err(|err| Error::database("reading the deferred indexes", err.to_string()))?,
        None => return Ok(()),
    };
    let t0 = Instant::now();
    for attempt in 0..3 {
        // The log down to a few entries first: a UNIQUE build over rows some of which are stale
        // can meet a duplicate the log would remove.
        job.apply_backlog().await?;
        match defer::add_missing(&mut job.conn, &job.names.shadow, &deferred).await {
            Ok(0) => return Ok(()),
            Ok(n) => {
                say(&format!(
                    "built {n} secondary index(es) of {} in {:.1} s",
                    job.names.shadow,
                    t0.elapsed().as_secs_f64()
                ));
                return Ok(());
            }
            Err(err) if copy::code(&err) == Some(1062) && attempt < 2 => continue,
            Err(err) => {
                return Err(Error::database(
                    format!("building the secondary indexes of {}", job.names.shadow),
                    err.to_string(),
                ))
            }
        }
    }
    Ok(())
}

async fn copy_path(
    e: &mut MySqlEngine,
    a: &AlterTable,
    statement: &str,
    opts: &OnlineOptions,
    say: Say<'_>,
    state: Option<StateRow>,
    started: Instant,
) -> Result<OnlineReport> {
    let names = Names::of(&a.table);
    let t = a.table.clone();
    replicas::parse_urls(&opts.replica_urls)?;
    // A crash between the RENAME and recording it: the shadow is gone and the old table is there.
    if let Some(st) = &state {
        if st.state != "setup"
            && !exists(&mut e.work, &names.shadow).await?
            && exists(&mut e.work, &names.old).await?
        {
            say(&format!(
                "`{t}` was swapped by an earlier run that stopped before recording it; recording the swap"
            ));
            late_changes(e, &t, &names).await?;
            return finish_swap(e, &t, &names, st.rows_copied, started, Duration::ZERO).await;
        }
    }
    let live = table::read(&mut e.work, &t)
        .await
        .map_err(|err| db("reading the table definition", err))?
        .ok_or_else(|| Error::database("online copy", format!("table `{t}` is gone")))?;
    if let Some(err) = refuse_copy(a, &live, &names) {
        return Err(err);
    }
    crate::privileges::check_online_copy(&mut e.work, &t).await?;
    let conn = copy_session(e).await?;
    let conn_opts = e.work.opts().clone();
    let resume = state
        .as_ref()
        .filter(|s| s.state == "copying" || s.state == "copied");
    let triggers_there = names.triggers.iter().all(|n| live.triggers.contains(n));
    let (mut job, last, copied) = match resume {
        Some(st) if triggers_there && exists(&mut e.work, &names.shadow).await? => {
            let shadow = table::read(&mut e.work, &names.shadow)
                .await
                .map_err(|err| db("reading the shadow table", err))?
                .ok_or_else(|| Error::database("online copy", "the shadow table is gone"))?;
            let mut job = Job::build(conn, &live, &shadow, &renames(a))?;
            job.rows_copied = st.rows_copied;
            let last = st.last_key.clone();
            say(&format!(
                "resuming the online copy of `{t}` ({} rows copied before)",
                st.rows_copied
            ));
            (job, last, st.state == "copied")
        }
        _ => {
            if exists(&mut e.work, &names.old).await? {
                return Err(Error::usage(
                    format!(
                        "{} exists (kept by an earlier online change)",
                        ident(&names.old)
                    ),
                    "run `sluice cleanup` to drop it, then `sluice up` again",
                ));
            }
            e.work
                .exec_drop(
                    "REPLACE INTO `sluice_online` (`table_name`, `statement`, `state`, `last_key`, `rows_copied`, \
                     `started_at`, `updated_at`) VALUES (?, ?, 'setup', NULL, 0, NOW(6), NOW(6))",
                    (&t, statement),
                )
                .await
                .map_err(|err| db("recording the online copy", err))?;
            let job = match setup(e, a, &live, conn, opts, say).await {
                Ok(j) => j,
                Err(err) => {
                    let _ = e
                        .work
                        .exec_drop("DELETE FROM `sluice_online` WHERE `table_name` = ?", (&t,))
                        .await;
                    return Err(err);
                }
            };
            set_state(&mut e.work, &t, "copying").await?;
            say(&format!(
                "copying `{t}` online into {} (triggers log changes to {})",
                names.shadow, names.chg
            ));
            (job, None, false)
        }
    };
    if !copied {
        let done = last.as_deref() == Some("\"done\"");
        let last: Option<Key> =
            match &last {
                Some(s) if !done => Some(serde_json::from_str(s).map_err(|err| {
                    Error::database("reading the copy checkpoint", err.to_string())
                })?),
                _ => None,
            };
        // The verifier checks each committed chunk on its own session while the copy goes on;
        // what an earlier, killed run copied is checked first.
        let (ranges, rx) = tokio::sync::mpsc::unbounded_channel();
        let vjob = job.sibling(copy_session(e).await?);
        let verifier = tokio::spawn(copy::verifier(vjob, rx));
        if done {
            let _ = ranges.send((None, None));
        } else if last.is_some() {
            let _ = ranges.send((None, last.clone()));
        }
        let t0 = Instant::now();
        let copied = if done {
            Ok(())
        } else {
            job.copy(last, opts, say, &ranges).await
        };
        drop(ranges);
        let verified = match verifier.await {
            Ok(r) => r,
            Err(err) => Err(Error::database(
                "verifying the online copy",
                err.to_string(),
            )),
        };
        let chunks = match (copied, verified) {
            (_, Err(err)) | (Err(err), _) => return Err(abandon(e, &names, &t, err).await),
            (Ok(()), Ok((mut vjob, chunks))) => {
                job.absorb(&mut vjob);
                let _ = vjob.conn.disconnect().await;
                chunks
            }
        };
        say(&format!(
            "copied and verified `{t}` in {:.1} s ({chunks} checksum chunk(s) match)",
            t0.elapsed().as_secs_f64()
        ));
        if let Err(err) = build_deferred(e, &mut job, say).await {
            return Err(abandon(e, &names, &t, err).await);
        }
        let t0 = Instant::now();
        let n = match job.drain(100, false).await {
            Ok(n) => n,
            Err(err) => return Err(abandon(e, &names, &t, err).await),
        };
        let keys = job.touched.len();
        let checked = if job.overflowed {
            job.verify(say).await
        } else {
            job.verify_touched(false).await
        };
        if let Err(err) = checked {
            return Err(abandon(e, &names, &t, err).await);
        }
        say(&format!(
            "applied {n} logged change(s) and verified {keys} changed key(s) in {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
        set_state(&mut e.work, &t, "copied").await?;
    }
    let rows: Option<i64> = e
        .work
        .exec_first(
            "SELECT `rows_copied` FROM `sluice_online` WHERE `table_name` = ?",
            (&t,),
        )
        .await
        .map_err(|err| db("reading sluice_online", err))?;
    let rows = rows.unwrap_or(0);
    if opts.postpone_cutover {
        let _ = job.conn.disconnect().await;
        say(&format!(
            "`{t}`: copy verified; the swap waits for `sluice cutover` (triggers keep {} in sync)",
            names.shadow
        ));
        return Ok(OnlineReport {
            path: "copy".into(),
            rows_copied: rows,
            seconds: started.elapsed().as_secs_f64(),
            cutover_pending: true,
            ..Default::default()
        });
    }
    let held = cutover::swap(&mut job, opts, &conn_opts, say).await?;
    cutover::crash_point("cutover-renamed");
    let _ = job.conn.disconnect().await;
    late_changes(e, &t, &names).await?;
    say(&format!(
        "`{t}` swapped with its online copy (writes held {} ms); old table kept as {} until `sluice cleanup`",
        held.as_millis(),
        names.old
    ));
    finish_swap(e, &t, &names, rows, started, held).await
}

/// A copy that failed on the data (a value the new type cannot hold, duplicates for a new unique
/// key, rows that still differ) is removed, so the table is left as a failed as-written ALTER
/// leaves it. Any other failure (a lost or killed session, a server restart) keeps the copy,
/// its checkpoint and its triggers, so the next `sluice up` resumes it.
async fn abandon(e: &mut MySqlEngine, names: &Names, t: &str, err: Error) -> Error {
    if !is_data_failure(&err) {
        return match err {
            Error::Database {
                context, message, ..
            } => Error::Database {
                context,
                message: format!(
                    "{message} (the online copy of `{t}` is kept, its triggers keep it in sync)"
                ),
                help: "run `sluice up` again to resume it where it stopped, or `sluice cleanup --abort` to remove it".into(),
            },
            other => other,
        };
    }
    drop_objects(&mut e.work, names, true).await;
    let _ = e
        .work
        .exec_drop("DELETE FROM `sluice_online` WHERE `table_name` = ?", (t,))
        .await;
    match err {
        Error::Database {
            context,
            message,
            help,
        } => Error::Database {
            context,
            message: format!(
                "{message} (the online copy of `{t}` was removed; `{t}` is unchanged)"
            ),
            help,
        },
        other => other,
    }
}

/// Whether a failed copy failed on the data: the verification found rows that still differ
/// (sluice's own error), or the server refused a value with SQLSTATE class 22 (data exception)
/// or 23 (integrity constraint violation), which the driver writes as `ERROR n (22003): ...`.
fn is_data_failure(err: &Error) -> bool {
    let Error::Database { message, .. } = err else {
        // Usage and other errors are not about the rows: keep what was copied.
        return false;
    };
    if message.contains(copy::STILL_DIFFERS) {
        return true;
    }
    message.match_indices("ERROR ").any(|(i, _)| {
        let rest = &message[i + 6..];
        let code_end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(0);
        rest[code_end..].starts_with(" (22") || rest[code_end..].starts_with(" (23")
    })
}

/// Writes that reached the old table after the final drain would be logged by its triggers:
/// there must be none. Should there be any, keep the log, say so and stop, rather than drop it.
async fn late_changes(e: &mut MySqlEngine, t: &str, names: &Names) -> Result<()> {
    if !exists(&mut e.work, &names.chg).await? {
        return Ok(());
    }
    let late: Option<i64> = e
        .work
        .query_first(format!("SELECT COUNT(*) FROM {}", ident(&names.chg)))
        .await
        .map_err(|err| db("checking the change log after the swap", err))?;
    let late = late.unwrap_or(0);
    if late == 0 {
        return Ok(());
    }
    set_state(&mut e.work, t, "swapped").await?;
    for trig in &names.triggers {
        let _ = e
            .work
            .query_drop(format!("DROP TRIGGER IF EXISTS {}", ident(trig)))
            .await;
    }
    Err(Error::database(
        format!("swapping `{t}`"),
        format!(
            "{late} change(s) reached {} after the final drain and are not in the new `{t}`; they are listed in {}",
            names.old, names.chg
        ),
    ))
}

async fn finish_swap(
    e: &mut MySqlEngine,
    t: &str,
    names: &Names,
    rows: i64,
    started: Instant,
    held: Duration,
) -> Result<OnlineReport> {
    set_state(&mut e.work, t, "swapped").await?;
    drop_objects(&mut e.work, names, false).await;
    Ok(OnlineReport {
        path: "copy".into(),
        rows_copied: rows,
        seconds: started.elapsed().as_secs_f64(),
        cutover_pending: false,
        cutover_hold_ms: held.as_millis() as u64,
    })
}

/// `sluice cutover`: finishes every online copy waiting for its swap. Returns one line per table.
pub async fn cutover_all(
    e: &mut MySqlEngine,
    opts: &OnlineOptions,
    say: Say<'_>,
) -> Result<Vec<String>> {
    let rows = pending(e).await?;
    let mut out = Vec::new();
    let mut opts = opts.clone();
    opts.postpone_cutover = false;
    for (table, statement, _) in rows {
        let r = alter(e, &statement, &opts, say).await?;
        out.push(format!(
            "`{table}` swapped ({} rows copied); run `sluice up` to record the migration",
            r.map(|r| r.rows_copied).unwrap_or(0)
        ));
    }
    Ok(out)
}

/// Online copies not yet swapped: (table, statement, state).
pub async fn pending(e: &mut MySqlEngine) -> Result<Vec<(String, String, String)>> {
    ensure_state(&mut e.work).await?;
    e.work
        .query(
            "SELECT `table_name`, `statement`, `state` FROM `sluice_online` WHERE `state` <> 'swapped' ORDER BY `table_name`",
        )
        .await
        .map_err(|err| db("reading sluice_online", err))
}

/// `sluice cleanup`: drops the old tables of finished swaps; with `abort`, also removes unfinished
/// copies (triggers, change log, shadow). Returns one line per action.
pub async fn cleanup(e: &mut MySqlEngine, abort: bool) -> Result<Vec<String>> {
    ensure_state(&mut e.work).await?;
    let rows: Vec<(String, String)> = e
        .work
        .query("SELECT `table_name`, `state` FROM `sluice_online` ORDER BY `table_name`")
        .await
        .map_err(|err| db("reading sluice_online", err))?;
    let mut out = Vec::new();
    for (table, state) in rows {
        let names = Names::of(&table);
        if state == "swapped" {
            e.work
                .query_drop(format!("DROP TABLE IF EXISTS {}", ident(&names.old)))
                .await
                .map_err(|err| db("dropping the old table", err))?;
            out.push(format!(
                "dropped {} (the table before its online change)",
                names.old
            ));
        } else if abort {
            drop_objects(&mut e.work, &names, true).await;
            out.push(format!(
                "abandoned the online change of `{table}`: dropped its triggers, {} and {}",
                names.chg, names.shadow
            ));
        } else {
            out.push(format!(
                "`{table}`: online change in progress ({state}); finish it with `sluice cutover` or remove it with `sluice cleanup --abort`"
            ));
            continue;
        }
        e.work
            .exec_drop(
                "DELETE FROM `sluice_online` WHERE `table_name` = ?",
                (&table,),
            )
            .await
            .map_err(|err| db("updating sluice_online", err))?;
    }
    Ok(out)
}

/// The tables of online copies (shadow, old, change log), left out of the schema model.
pub async fn aux_tables(conn: &mut Conn) -> Vec<String> {
    let tables: Vec<String> = conn
        .query("SELECT `table_name` FROM `sluice_online`")
        .await
        .unwrap_or_default();
    tables
        .iter()
        .flat_map(|t| {
            let n = Names::of(t);
            [n.shadow, n.old, n.chg]
        })
        .collect()
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[test]
    fn data_failures_are_told_from_lost_sessions() {
        let e = |m: &str| Error::database("copying `t` online", m);
        assert!(is_data_failure(&e(
            "Server error: `ERROR 1264 (22003): Out of range value for column 'b' at row 1'"
        )));
        assert!(is_data_failure(&e(
            "Server error: `ERROR 1062 (23000): Duplicate entry 'x' for key 'u'"
        )));
        assert!(is_data_failure(&e(&format!(
            "the shadow table _t_new {} from the original",
            copy::STILL_DIFFERS
        ))));
        assert!(!is_data_failure(&e(
            "Server error: `ERROR 1927 (70100): Connection was killed'"
        )));
        assert!(!is_data_failure(&e("Input/output error: broken pipe")));
        assert!(!is_data_failure(&e(
            "Server error: `ERROR 1205 (HY000): Lock wait timeout exceeded'"
        )));
    }
}
