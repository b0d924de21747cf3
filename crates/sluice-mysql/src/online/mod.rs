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
mod fks;
mod replicas;
pub(crate) mod throttle;
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
use sluice_core::runner::small_table_note;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const CREATE_STATE: &str = "CREATE TABLE IF NOT EXISTS `sluice_online` (\
    `table_name` VARCHAR(64) NOT NULL PRIMARY KEY, \
    `statement` MEDIUMTEXT NOT NULL, \
    `state` VARCHAR(16) NOT NULL, \
    `last_key` MEDIUMTEXT NULL, \
    `rows_copied` BIGINT NOT NULL DEFAULT 0, \
    `started_at` DATETIME(6) NOT NULL, \
    `updated_at` DATETIME(6) NOT NULL, \
    `deferred` MEDIUMTEXT NULL, \
    `def_before` MEDIUMTEXT NULL, \
    `def_after` MEDIUMTEXT NULL, \
    `fks` MEDIUMTEXT NULL) ENGINE=InnoDB";

/// Columns added to `sluice_online` after its first version.
const LATER_COLUMNS: &[&str] = &["deferred", "def_before", "def_after", "fks"];

/// Creates `sluice_online`, or adds what an older sluice's table lacks.
async fn ensure_state(conn: &mut Conn) -> Result<()> {
    conn.query_drop(CREATE_STATE)
        .await
        .map_err(|err| db("creating sluice_online", err))?;
    let has: Vec<String> = conn
        .query(
            "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'sluice_online'",
        )
        .await
        .map_err(|err| db("reading sluice_online", err))?;
    for col in LATER_COLUMNS {
        if !has.iter().any(|h| h.eq_ignore_ascii_case(col)) {
            conn.query_drop(format!(
                "ALTER TABLE `sluice_online` ADD COLUMN {} MEDIUMTEXT NULL",
                ident(col)
            ))
            .await
            .map_err(|err| db("updating sluice_online", err))?;
        }
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
    /// A fast-path statement's table definition before and after (normalised).
    def_before: Option<String>,
    def_after: Option<String>,
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

/// How each column of `live` continues in `shadow`, read from the ALTER's own clauses the way the
/// server applies them: a column named by a DROP is gone (an ADD of the same name, before or after
/// it, is a new column), CHANGE/MODIFY/RENAME COLUMN carry a column to its new name (so
/// `CHANGE a b, CHANGE b a` swaps), every other column keeps its name. (old, new) for each column
/// that continues. The reading is checked against the shadow the server built: the continuing and
/// the added columns must be exactly its columns, or sluice refuses rather than guess.
fn column_map(
    a: &AlterTable,
    live: &table::LiveTable,
    shadow: &table::LiveTable,
) -> Result<Vec<(String, String)>> {
    let lc = |s: &str| s.to_lowercase();
    let mut dropped = Vec::new();
    let mut moved: Vec<(String, String)> = Vec::new();
    let mut added = Vec::new();
    let unknown = |text: &str| {
        Error::usage(
            format!(
                "sluice cannot tell which column of `{}` the clause `{text}` makes of which, so it cannot copy the rows online",
                a.table
            ),
            "write the column change as ADD/DROP/CHANGE/MODIFY/RENAME COLUMN clauses, or run this ALTER with `sluice up --as-written` in a maintenance window",
        )
    };
    for c in &a.clauses {
        match &c.kind {
            ClauseKind::DropColumn { name } => dropped.push(lc(name)),
            ClauseKind::ChangeColumn { from, to, .. } | ClauseKind::RenameColumn { from, to } => {
                moved.push((lc(from), to.clone()))
            }
            ClauseKind::AddColumn { name, .. } => added.push(lc(name)),
            ClauseKind::Other => {
                let first = c.text.split_whitespace().next().unwrap_or("");
                if ["ADD", "DROP", "CHANGE", "MODIFY", "RENAME", "ALTER"]
                    .iter()
                    .any(|k| first.eq_ignore_ascii_case(k))
                {
                    return Err(unknown(&c.text));
                }
            }
            _ => {}
        }
    }
    let mut map = Vec::new();
    for col in &live.columns {
        let name = lc(&col.name);
        if dropped.contains(&name) {
            continue;
        }
        let to = moved
            .iter()
            .find(|(f, _)| *f == name)
            .map(|(_, t)| t.clone())
            .unwrap_or_else(|| col.name.clone());
        map.push((col.name.clone(), to));
    }
    let mut expect: Vec<String> = map.iter().map(|(_, t)| lc(t)).collect();
    expect.extend(added);
    expect.sort();
    let mut got: Vec<String> = shadow.columns.iter().map(|c| lc(&c.name)).collect();
    got.sort();
    if expect != got {
        return Err(Error::usage(
            format!(
                "sluice reads the ALTER of `{}` as giving the columns ({}), the server gave ({}): it cannot tell which old column each new one continues",
                a.table,
                expect.join(", "),
                got.join(", ")
            ),
            "split the statement into plainer ALTERs, or run it with `sluice up --as-written` in a maintenance window",
        ));
    }
    Ok(map)
}

/// The statement, read as the server of this session reads it (its version decides which
/// executable comments run, its sql_mode how quotes read).
async fn read_alter(e: &mut MySqlEngine, sql: &str) -> Result<Option<AlterTable>> {
    let mode: Option<String> = e
        .work
        .query_first("SELECT @@SESSION.sql_mode")
        .await
        .map_err(|err| db("reading sql_mode", err))?;
    let dialect = parse::Dialect::of(e.flavour, &mode.unwrap_or_default());
    parse::parse_as(sql, dialect).map_err(|parse::Unreadable(why)| {
        Error::usage(
            format!("sluice cannot read this ALTER TABLE exactly as the server would: {why}; nothing was run"),
            "close the quote or comment (the server rejects it as well), or write the clauses of nested executable comments out plainly",
        )
    })
}

/// `SHOW CREATE TABLE` with what differs between two tables of one definition left out: the
/// table's name, its AUTO_INCREMENT counter, and foreign keys (a `CREATE TABLE … LIKE` twin has
/// none).
pub fn normalise_definition(show: &str) -> String {
    let mut out = Vec::new();
    for (i, line) in show.lines().enumerate() {
        let t = line.trim_start();
        if i == 0 {
            out.push("CREATE TABLE (".to_string());
        } else if t.starts_with("CONSTRAINT ") && t.contains(" FOREIGN KEY ") {
            continue;
        } else if t.starts_with(')') {
            let kept: Vec<&str> = t
                .split(' ')
                .filter(|w| !w.starts_with("AUTO_INCREMENT="))
                .collect();
            out.push(kept.join(" "));
        } else {
            out.push(line.trim_end_matches(',').to_string());
        }
    }
    out.join("\n")
}

async fn definition(conn: &mut Conn, table: &str) -> Result<String> {
    let ddl = defer::show_create(conn, table)
        .await
        .map_err(|err| db("reading the table definition", err))?;
    Ok(normalise_definition(&ddl))
}

/// What the ALTER as written makes of the table.
struct Twin {
    /// The definition, normalised (foreign keys left out).
    def: String,
    /// Its foreign keys, named and pointing as `t`'s would be.
    fks: Vec<fks::Fk>,
    table: table::LiveTable,
}

/// What the ALTER as written makes of the table: the statement run on an empty twin
/// (`CREATE TABLE … LIKE`, given the table's foreign keys under temporary names, so that a clause
/// the keys forbid fails there as on the table). `Ok(Err(message))` when the statement as
/// written fails there: it fails on the table too, before any work.
async fn twin(
    e: &mut MySqlEngine,
    a: &AlterTable,
    names: &Names,
) -> Result<std::result::Result<Twin, String>> {
    let twin = ident(&names.twin);
    let drop = format!("DROP TABLE IF EXISTS {twin}");
    e.work
        .query_drop(&drop)
        .await
        .map_err(|err| db("dropping the twin table", err))?;
    e.work
        .query_drop(format!("CREATE TABLE {twin} LIKE {}", ident(&a.table)))
        .await
        .map_err(|err| db("creating a twin of the table", err))?;
    toi_settle(e).await;
    let originals = fks::outgoing(&mut e.work, &a.table)
        .await
        .map_err(|err| db("reading the table's foreign keys", err))?;
    let carried = fks::carry(&mut e.work, &originals, &a.table, &names.twin).await;
    let ran = match carried {
        Ok(()) => e.work.query_drop(a.on(&twin)).await,
        Err(err) => {
            let _ = e.work.query_drop(&drop).await;
            return Err(err);
        }
    };
    let out = match ran {
        Ok(()) => Ok(async {
            let def = definition(&mut e.work, &names.twin).await?;
            let got = fks::outgoing(&mut e.work, &names.twin)
                .await
                .map_err(|err| db("reading the twin's foreign keys", err))?;
            let table = table::read(&mut e.work, &names.twin)
                .await
                .map_err(|err| db("reading the twin table", err))?
                .ok_or_else(|| Error::database("reading the twin table", "it vanished"))?;
            Ok::<_, Error>(Twin {
                def,
                fks: fks::as_table(got, &originals, &a.table, &names.twin),
                table,
            })
        }
        .await),
        Err(err) if copy::code(&err).is_some() => Err(e.url.scrub(&err.to_string())),
        Err(err) => {
            let _ = e.work.query_drop(&drop).await;
            return Err(db("running the ALTER on a twin of the table", err));
        }
    };
    e.work
        .query_drop(&drop)
        .await
        .map_err(|err| db("dropping the twin table", err))?;
    match out {
        Ok(t) => Ok(Ok(t?)),
        Err(m) => Ok(Err(m)),
    }
}

/// A column that foreign keys of other tables reference, changed by the ALTER (type, character
/// set, collation, name or gone): `child.fk (column)`.
fn referenced_change(
    live: &table::LiveTable,
    after: &table::LiveTable,
    inbound: &[fks::Fk],
) -> Option<String> {
    for f in inbound {
        for c in &f.ref_columns {
            let before = live.column(c);
            let now = after.column(c);
            let same = match (before, now) {
                (Some(b), Some(n)) => {
                    b.column_type == n.column_type
                        && b.charset == n.charset
                        && b.collation == n.collation
                }
                _ => false,
            };
            if !same {
                return Some(format!("{} ({c})", f.describe()));
            }
        }
    }
    None
}

/// A killed run's statement on the copy's own objects goes on without its client: a CREATE TRIGGER
/// still waiting for its lock would add a trigger after the log it writes to was dropped, and every
/// client write would then fail (1146). In this database only a dead run can be using these names
/// (the run lock keeps live runs apart), so its statements are stopped, and waited for, before
/// anything is dropped.
async fn settle_dead_runs(conn: &mut Conn, names: &Names) {
    let mentions: Vec<String> = names
        .triggers
        .iter()
        .chain(&names.direct)
        .chain([&names.chg, &names.shadow, &names.stage])
        .map(|n| ident(n))
        .collect();
    for _ in 0..200 {
        let rows: Vec<(u64, String)> = conn
            .query(
                // This database only: other databases on the server have tables of the same names.
                "SELECT ID, INFO FROM information_schema.PROCESSLIST \
                 WHERE ID <> CONNECTION_ID() AND INFO IS NOT NULL AND DB = DATABASE()",
            )
            .await
            .unwrap_or_default();
        let dead: Vec<u64> = rows
            .into_iter()
            .filter(|(_, info)| mentions.iter().any(|m| info.contains(m.as_str())))
            .filter(|(_, info)| !in_trigger(info, names))
            .map(|(id, _)| id)
            .collect();
        if dead.is_empty() {
            return;
        }
        for id in dead {
            let _ = conn.query_drop(format!("KILL QUERY {id}")).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Whether a process list entry is a client's write running the copy's trigger: the server shows
/// the trigger's statement, in the trigger's database, as the session's INFO. Sluice itself never
/// writes the change log, so such a session is a client, whose write must not be stopped.
fn in_trigger(info: &str, names: &Names) -> bool {
    let info = info.trim_start();
    let log = format!("INSERT INTO {} ", ident(&names.chg));
    // The Galera cut-over's direct triggers (`Job::direct_triggers`).
    let put = format!("REPLACE LOW_PRIORITY INTO {} ", ident(&names.shadow));
    let del = format!("DELETE LOW_PRIORITY FROM {} ", ident(&names.shadow));
    [log, put, del].iter().any(|head| {
        info.get(..head.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(head))
    }) || info
        .get(..7)
        .is_some_and(|head| head.eq_ignore_ascii_case("IF NOT "))
}

/// Sessions other than this one running one of `stmts`: a killed run's DDL, which the server
/// finishes although its client is gone.
async fn running(conn: &mut Conn, stmts: &[String]) -> Result<Vec<u64>> {
    let rows: Vec<(u64, String)> = conn
        .query(
            // This database only: another database may run the same statement on its own table.
            "SELECT ID, INFO FROM information_schema.PROCESSLIST \
             WHERE ID <> CONNECTION_ID() AND INFO IS NOT NULL AND DB = DATABASE()",
        )
        .await
        .map_err(|err| db("reading the process list", err))?;
    Ok(rows
        .into_iter()
        .filter(|(_, info)| stmts.iter().any(|s| s == info))
        .map(|(id, _)| id)
        .collect())
}

/// The statements the fast paths send for `a`, one per algorithm.
fn fast_statements(e: &MySqlEngine, a: &AlterTable) -> Vec<String> {
    [Algo::Instant, Algo::NoCopy, Algo::Inplace]
        .iter()
        .filter_map(|s| s.clause(e.flavour))
        .map(|c| a.on_with(&ident(&a.table), c))
        .collect()
}

/// A fast-path statement recorded by an earlier run (`ddl`: sent; `done`: finished): did it
/// complete? Waits while a session of the killed run still runs it. True when the table already
/// has the definition the statement gives.
async fn earlier_ddl_done(
    e: &mut MySqlEngine,
    a: &AlterTable,
    st: &StateRow,
    say: Say<'_>,
) -> Result<bool> {
    let Some(after) = &st.def_after else {
        return Ok(false);
    };
    let stmts = fast_statements(e, a);
    let waited = Instant::now();
    let mut said = None::<Instant>;
    loop {
        // Sessions first: one that ends between the two reads has its effect in the definition.
        let ids = running(&mut e.work, &stmts).await?;
        let now = definition(&mut e.work, &a.table).await?;
        if now == *after {
            return Ok(true);
        }
        if ids.is_empty() {
            if st.def_before.as_deref() == Some(now.as_str()) {
                say(&format!(
                    "`{}`: the ALTER an earlier, stopped run sent did not complete; sending it again",
                    a.table
                ));
            }
            return Ok(false);
        }
        if said.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
            say(&format!(
                "`{}`: the ALTER an earlier, stopped run sent is still running on the server (session {}, {} s so far); waiting for it rather than sending it again",
                a.table,
                ids.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "),
                waited.elapsed().as_secs()
            ));
            said = Some(Instant::now());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
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
    type Row = (
        String,
        String,
        Option<String>,
        i64,
        Option<String>,
        Option<String>,
    );
    let r: Option<Row> = conn
        .exec_first(
            "SELECT `statement`, `state`, `last_key`, `rows_copied`, `def_before`, `def_after` \
             FROM `sluice_online` WHERE `table_name` = ?",
            (table,),
        )
        .await
        .map_err(|e| db("reading sluice_online", e))?;
    Ok(r.map(
        |(statement, state, last_key, rows_copied, def_before, def_after)| StateRow {
            statement,
            state,
            last_key,
            rows_copied,
            def_before,
            def_after,
        },
    ))
}

async fn set_state(conn: &mut Conn, table: &str, state: &str) -> Result<()> {
    conn.exec_drop(
        "UPDATE `sluice_online` SET `state` = ?, `updated_at` = NOW(6) WHERE `table_name` = ?",
        (state, table),
    )
    .await
    .map_err(|e| db("updating sluice_online", e))
}

/// Removes the table's row from `sluice_online`: nothing of an online change of it is pending.
/// The exact row count of `table` when below `limit` (the count stops there); None otherwise.
async fn rows_below(conn: &mut Conn, table: &str, limit: u64) -> Result<Option<u64>> {
    if limit == 0 {
        return Ok(None);
    }
    let n: Option<u64> = conn
        .query_first(format!(
            "SELECT COUNT(*) FROM (SELECT 1 FROM {} LIMIT {limit}) s",
            ident(table)
        ))
        .await
        .map_err(|e| db("counting a table's rows", e))?;
    Ok(n.filter(|&n| n < limit))
}

async fn forget(conn: &mut Conn, table: &str) -> Result<()> {
    conn.exec_drop(
        "DELETE FROM `sluice_online` WHERE `table_name` = ?",
        (table,),
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
        let blockers = sluice_core::engine::Execution::describe_blockers(e, Some(table))
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

/// The lines of `got` that differ from `want`, marked `-` (wanted) and `+` (found).
fn diff_lines(want: &str, got: &str) -> String {
    let w: Vec<&str> = want.lines().collect();
    let g: Vec<&str> = got.lines().collect();
    let mut out: Vec<String> = w
        .iter()
        .filter(|l| !g.contains(l))
        .map(|l| format!("- {}", l.trim()))
        .collect();
    out.extend(
        g.iter()
            .filter(|l| !w.contains(l))
            .map(|l| format!("+ {}", l.trim())),
    );
    if out.is_empty() {
        out.push("(the same lines in another order)".into());
    }
    out.join("\n")
}

fn first_line(sql: &str) -> &str {
    sql.lines().next().unwrap_or("")
}

/// What runs: the path and one line per clause.
struct Decision {
    algo: Algo,
    lines: Vec<String>,
    /// The ALTER builds an index or rebuilds the table (`path::reads_table`).
    reads_table: bool,
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
    let reads_table = path::reads_table(e.flavour, live, &kinds);
    Decision {
        algo,
        lines,
        reads_table,
    }
}

/// On a Galera node under TOI an ALTER that builds an index or rebuilds the table holds the
/// commits of every node until it ends (measured with bench/galera_toi_ddl.sh): said by plan and
/// up for a table of at least `limit` rows (any table when 0), as the small-table rule counts them.
async fn galera_toi_note(
    e: &mut MySqlEngine,
    table: &str,
    d: &Decision,
    limit: u64,
) -> Result<Option<String>> {
    let Some(g) = e.galera().cloned() else {
        return Ok(None);
    };
    if !g.osu_method.eq_ignore_ascii_case("TOI")
        || !d.reads_table
        || d.algo.clause(e.flavour).is_none()
    {
        return Ok(None);
    }
    if rows_below(&mut e.work, table, limit).await?.is_some() {
        return Ok(None);
    }
    let rows = if limit > 0 {
        format!(" (at least {limit} rows)")
    } else {
        String::new()
    };
    Ok(Some(format!(
        "`{table}`{rows}: this ALTER builds an index or rebuilds the table, and on a Galera cluster it runs \
         under TOI: commits on every node wait until it ends, however long the build takes (measured on a \
         3-node cluster: writes stood still 1.6-1.9 s on every node for one index on 300k rows); run it when \
         such a stall is acceptable, or node by node under RSU with each node's clients moved off it first \
         (README \"Galera clusters\")"
    )))
}

fn refuse_drop_fk(a: &AlterTable, t: &str) -> Option<Error> {
    a.clauses
        .iter()
        .any(|c| matches!(c.kind, ClauseKind::DropForeignKey))
        .then(|| {
            Error::usage(
                format!("the ALTER of `{t}` drops a foreign key and needs a copy of the table"),
                "run the DROP FOREIGN KEY as an ALTER of its own first (it changes only metadata), then the rest with `sluice up`; or the whole ALTER with `sluice up --as-written` in a maintenance window",
            )
        })
}

/// Reasons the online copy cannot run on this table (exit 2 with the options). `out`: the
/// table's own foreign keys.
fn refuse_copy(
    a: &AlterTable,
    live: &table::LiveTable,
    out: &[fks::Fk],
    names: &Names,
) -> Option<Error> {
    let t = &live.name;
    if live.copy_key().is_none() {
        return Some(copy::no_key(t));
    }
    let acting: Vec<String> = out
        .iter()
        .filter(|f| !f.inert())
        .map(|f| {
            format!(
                "{} (ON DELETE {} ON UPDATE {})",
                ident(&f.name),
                f.on_delete,
                f.on_update
            )
        })
        .collect();
    if !acting.is_empty() {
        return Some(Error::usage(
            format!(
                "`{t}`'s foreign keys {} change its rows when their parent rows change, and InnoDB fires no trigger for such cascaded changes: the online copy would miss them",
                acting.join(", ")
            ),
            "run this ALTER with `sluice up --as-written` in a maintenance window, or change those keys to RESTRICT / NO ACTION for the change",
        ));
    }
    if let Some(err) = refuse_drop_fk(a, t) {
        return Some(err);
    }
    // A key the ALTER adds is not enforced on `t` while the copy runs: a row written to `t`, or
    // a parent row deleted, after the shadow was checked for orphans would reach the new table
    // under a key added unchecked. The ALTER as written checks every row with `t` and the parent
    // held; the copy cannot hold the parent.
    if a.clauses
        .iter()
        .any(|c| matches!(c.kind, ClauseKind::AddForeignKey))
    {
        return Some(Error::usage(
            format!(
                "the ALTER of `{t}` adds a foreign key and needs a copy of the table: rows written to `{t}` or parent rows deleted while the copy runs could leave orphans under a key that never checked them"
            ),
            "run the rest of the ALTER with `sluice up` and add the key in an ALTER of its own with `sluice up --as-written` (MariaDB checks every row while it holds writes to the table); or run the whole ALTER with `sluice up --as-written` in a maintenance window",
        ));
    }
    let foreign: Vec<&String> = live
        .triggers
        .iter()
        .filter(|n| !names.triggers.contains(n) && !names.direct.contains(n))
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

/// What happens to the foreign keys of an online copy, one line each (`plan`, `up --dry-run`).
fn fk_plan(a: &AlterTable, own: &[fks::Fk], inbound: &[fks::Fk], names: &Names) -> Vec<String> {
    let mut out = Vec::new();
    let adds = a
        .clauses
        .iter()
        .any(|c| matches!(c.kind, ClauseKind::AddForeignKey));
    if !own.is_empty() || adds {
        let list: Vec<String> = own.iter().map(|f| ident(&f.name)).collect();
        out.push(format!(
            "foreign keys of `{}`{}{}: the shadow carries none while rows are copied; before the swap the copy is checked for rows without a parent (one fails the change as the ALTER as written fails, 1452, `{}` unchanged), then, with writes held, they are added to {} (foreign_key_checks=0: in place, metadata only) and keep their names through the swap",
            a.table,
            if list.is_empty() { String::new() } else { format!(" ({})", list.join(", ")) },
            if adds { ", and those the ALTER adds" } else { "" },
            a.table,
            ident(&names.shadow)
        ));
    }
    for f in inbound {
        out.push(format!(
            "foreign key {} of {} (ON DELETE {} ON UPDATE {}): with writes held and the log drained it is re-pointed at {} (in place, metadata only), the RENAME carries it to the new `{}` at once, then it gets its name back; it is enforced throughout",
            ident(&f.name),
            ident(&f.table),
            f.on_delete,
            f.on_update,
            ident(&names.shadow),
            a.table
        ));
    }
    out
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

pub async fn explain(
    e: &mut MySqlEngine,
    sql: &str,
    as_written_below_rows: u64,
) -> Result<Option<Vec<String>>> {
    let Some(a) = read_alter(e, sql).await? else {
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
    if d.algo.clause(e.flavour).is_none() {
        // The same refusal `up` gives, also for a small table (`up` judges it before counting rows).
        if let Some(rows) = rows_below(&mut e.work, &a.table, as_written_below_rows).await? {
            return Ok(Some(vec![small_table_note(rows, as_written_below_rows)]));
        }
    }
    match d.algo.clause(e.flavour) {
        Some(clause) => {
            out.push(format!(
                "online: {} — runs with `{clause}` appended, so the server refuses rather than copying under a lock (then sluice tries the next form, finally the online copy)",
                d.algo.name()
            ));
            // The exact statement `alter` sends first: plan and up print it from here.
            out.push(format!("sends: {}", a.on_with(&ident(&a.table), clause)));
            if let Some(w) = galera_toi_note(e, &a.table, &d, as_written_below_rows).await? {
                out.push(format!("warning: {w}"));
            }
        }
        None => {
            out.push(format!(
                "online copy: shadow {}, change log {} fed by triggers, chunked copy by {} checksummed as it goes, secondary indexes built after the copy, atomic RENAME; old table kept as {} until `sluice cleanup`",
                ident(&names.shadow),
                ident(&names.chg),
                live.copy_key().map(|k| k.columns.join(", ")).unwrap_or_else(|| "?".into()),
                ident(&names.old)
            ));
            // The ALTER the copy applies to the shadow table (`copy_path` sends this text).
            out.push(format!("shadow: {}", a.on(&ident(&names.shadow))));
            let own = fks::outgoing(&mut e.work, &a.table)
                .await
                .map_err(|err| db("reading the table's foreign keys", err))?;
            let inbound = fks::incoming(&mut e.work, &a.table)
                .await
                .map_err(|err| db("reading the foreign keys pointing at the table", err))?;
            match (refuse_copy(&a, &live, &own, &names), e.galera()) {
                (Some(err), _) => out.push(format!("refused: {err}")),
                (None, Some(g)) if !own.is_empty() || !inbound.is_empty() => {
                    out.push(format!("refused: {}", g.refuse_fk_copy(&a.table)))
                }
                (None, Some(g)) if !crate::Galera::copy_opted_in()? => {
                    out.push(format!("refused: {}", g.refuse_copy(&a.table)))
                }
                (None, Some(g)) => out.push(g.copy_note()),
                (None, None) => out.extend(fk_plan(&a, &own, &inbound, &names)),
            }
        }
    }
    out.extend(d.lines);
    Ok(Some(out))
}

/// The statement as written, from the same prediction as the online path (see
/// [`path::as_written`]); None when it is no ALTER TABLE sluice reads or the table does not exist
/// yet (the plan's offline model applies then).
pub async fn as_written_impact(
    e: &mut MySqlEngine,
    sql: &str,
) -> Result<Option<(String, sluice_core::plan::Impact)>> {
    // An ALTER sluice cannot read is reported by `explain`/`alter`; here the offline model stands.
    let Ok(Some(a)) = read_alter(e, sql).await else {
        return Ok(None);
    };
    // The prediction covers the clauses of one table of this database; RENAME TO and partition
    // operations are the offline model's.
    let dbname = database(&mut e.work).await?;
    if a.schema.as_deref().is_some_and(|s| s != dbname)
        || a.clauses
            .iter()
            .any(|c| matches!(c.kind, ClauseKind::RenameTable | ClauseKind::Partition))
    {
        return Ok(None);
    }
    let live = table::read(&mut e.work, &a.table)
        .await
        .map_err(|err| db("reading the table definition", err))?;
    let Some(live) = live else {
        return Ok(None);
    };
    let clauses: Vec<(ClauseKind, String)> = a
        .clauses
        .iter()
        .map(|c| (c.kind.clone(), c.text.clone()))
        .collect();
    Ok(Some((
        a.table.clone(),
        path::as_written(e.flavour, &live, &clauses),
    )))
}

pub async fn alter(
    e: &mut MySqlEngine,
    sql: &str,
    opts: &OnlineOptions,
    say: Say<'_>,
) -> Result<Option<OnlineReport>> {
    let Some(a) = read_alter(e, sql).await? else {
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
        let fast = st.state == "ddl" || st.state == "done";
        if st.statement == statement && fast {
            // MariaDB and MySQL finish a DDL whose client died: an earlier run's statement may
            // have completed (or still be running) without the run knowing.
            if earlier_ddl_done(e, &a, st, say).await? {
                say(&format!(
                    "`{}`: the ALTER was already completed by an earlier run; not sending it again",
                    a.table
                ));
                set_state(&mut e.work, &a.table, "done").await?;
                return Ok(Some(OnlineReport {
                    path: "done earlier".into(),
                    ..Default::default()
                }));
            }
        } else if st.statement == statement {
            if st.state == "swapped" {
                finish_swapped(e, &a.table, &names, say).await?;
                return Ok(Some(OnlineReport {
                    path: "copy".into(),
                    rows_copied: st.rows_copied,
                    ..Default::default()
                }));
            }
            return copy_path(e, &a, &statement, opts, say, Some(st.clone()), started)
                .await
                .map(Some);
        } else if st.state == "ddl" {
            // Another statement's DDL of a stopped run may still hold the table: wait for it.
            if let Some(other) = parse::parse_as(&st.statement, parse::Dialect::default())
                .ok()
                .flatten()
            {
                earlier_ddl_done(e, &other, st, say).await?;
            }
        } else if !fast && st.state != "swapped" {
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
    // The twin carries the keys under other names, so a DROP FOREIGN KEY would fail there: an
    // ALTER that drops one and needs a copy is refused first (the drop alone is in place).
    if decide(e, &a, &live).algo.clause(e.flavour).is_none() {
        if let Some(err) = refuse_drop_fk(&a, &a.table) {
            return Err(err);
        }
    }
    // What the ALTER as written gives, tried on an empty twin. Where it fails there it fails on
    // the table too, before changing anything: run it as written, so the server reports its own
    // error exactly as it would without sluice.
    let after = match twin(e, &a, &names).await? {
        Ok(tw) => tw,
        Err(message) => {
            say(&format!(
                "`{}`: the ALTER as written fails on an empty twin of the table ({message}); running it as written",
                a.table
            ));
            return Ok(None);
        }
    };
    // A column children reference, changed: InnoDB refuses the ALTER as written (1833) unless
    // foreign_key_checks=0, and then the children's keys no longer match and cannot be re-pointed.
    let inbound = fks::incoming(&mut e.work, &a.table)
        .await
        .map_err(|err| db("reading the foreign keys pointing at the table", err))?;
    if let Some(what) = referenced_change(&live, &after.table, &inbound) {
        if fks::checks_on(&mut e.work).await? {
            say(&format!(
                "`{}`: the ALTER changes a column the foreign key {what} references, which the ALTER as written refuses with foreign_key_checks=1; running it as written",
                a.table
            ));
            return Ok(None);
        }
        return Err(Error::usage(
            format!(
                "the ALTER changes a column of `{}` that the foreign key {what} references; with foreign_key_checks=0 the ALTER as written leaves that key between columns of different types, which sluice cannot re-point to the new table",
                a.table
            ),
            "change the referencing columns the same way first (each child on its own), then this column; or run the ALTER with `sluice up --as-written` in a maintenance window",
        ));
    }
    let after = after.def;
    let d = decide(e, &a, &live);
    if let Some(w) = galera_toi_note(e, &a.table, &d, opts.as_written_below_rows).await? {
        say(&format!("warning: {w}"));
    }
    if d.algo.clause(e.flavour).is_some() {
        // Recorded before the DDL is sent: a killed run's DDL completes on the server, and the
        // next run recognises it by the definition instead of sending it again.
        let before = definition(&mut e.work, &a.table).await?;
        e.work
            .exec_drop(
                "REPLACE INTO `sluice_online` (`table_name`, `statement`, `state`, `last_key`, `rows_copied`, \
                 `started_at`, `updated_at`, `def_before`, `def_after`) \
                 VALUES (?, ?, 'ddl', NULL, 0, NOW(6), NOW(6), ?, ?)",
                (&a.table, &statement, &before, &after),
            )
            .await
            .map_err(|err| db("recording the online ALTER", err))?;
        for step in d.algo.ladder(e.flavour) {
            let clause = step.clause(e.flavour).expect("fast paths have a clause");
            // The statement exactly as written (executable comments and all) with the algorithm
            // added, so nothing the server would run is left out.
            let stmt = a.on_with(&ident(&a.table), clause);
            match ddl(e, &a.table, &stmt, opts, say).await {
                Ok(()) => {
                    cutover::crash_point("online-ddl-ran");
                    let now = definition(&mut e.work, &a.table).await?;
                    if now != after {
                        let _ = forget(&mut e.work, &a.table).await;
                        return Err(Error::database(
                            format!("checking `{}` after its ALTER", a.table),
                            format!(
                                "the table's definition differs from what the ALTER as written gives on a twin:\n{}",
                                diff_lines(&after, &now)
                            ),
                        ));
                    }
                    set_state(&mut e.work, &a.table, "done").await?;
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
                // Not about the algorithm: the statement as written fails the same way before
                // doing any work, and the runner reports it with the server's code and position.
                Err(DdlError::Server(_)) => {
                    let _ = forget(&mut e.work, &a.table).await;
                    return Ok(None);
                }
                Err(DdlError::Failed(err)) => return Err(err),
            }
        }
    }
    // A copy keeps a big table writable; a small one is altered as written in milliseconds (and a
    // copy sluice would refuse, for foreign keys or triggers, is not needed at all).
    if let Some(rows) = rows_below(&mut e.work, &a.table, opts.as_written_below_rows).await? {
        // The fast forms the server refused left their 'ddl' record: the statement now runs as
        // written and the runner records it.
        if d.algo < Algo::Copy {
            let _ = forget(&mut e.work, &a.table).await;
        }
        say(&format!(
            "`{}`: {}",
            a.table,
            small_table_note(rows, opts.as_written_below_rows)
        ));
        return Ok(None);
    }
    if state.is_some() {
        // An earlier, finished swap of this table kept its old table under the name this copy
        // needs: a newer change supersedes it.
        if exists(&mut e.work, &names.old).await? {
            say(&format!(
                "dropping {} (kept by the earlier online change of `{}`) for this one",
                names.old, a.table
            ));
            drop_old(e, &a.table, &names).await?;
        }
        forget(&mut e.work, &a.table).await?;
    }
    copy_path(e, &a, &statement, opts, say, None, started)
        .await
        .map(Some)
}

/// The copy's own session: READ COMMITTED (consistent reads take no locks) and the work session's
/// sql_mode (strict mode turns a value the new type cannot hold into an error, as the ALTER would)
/// plus NO_AUTO_VALUE_ON_ZERO: the ALTER keeps a row whose AUTO_INCREMENT column is 0 as it is,
/// where an INSERT would give it a new value.
async fn copy_session(e: &mut MySqlEngine) -> Result<Conn> {
    let mode: Option<String> = e
        .work
        .query_first("SELECT @@SESSION.sql_mode")
        .await
        .map_err(|err| db("reading sql_mode", err))?;
    let mut mode = mode.unwrap_or_default();
    if !mode.split(',').any(|m| m == "NO_AUTO_VALUE_ON_ZERO") {
        if !mode.is_empty() {
            mode.push(',');
        }
        mode.push_str("NO_AUTO_VALUE_ON_ZERO");
    }
    let mut c = Conn::new(e.work.opts().clone())
        .await
        .map_err(|err| db("opening the copy session", err))?;
    c.exec_drop("SET SESSION sql_mode = ?", (mode,))
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

async fn drop_triggers(conn: &mut Conn, names: &Names) -> Result<()> {
    // The direct triggers (Galera cut-over) write into the shadow: gone before it can be.
    for t in names.direct.iter().chain(&names.triggers) {
        conn.query_drop(format!("DROP TRIGGER IF EXISTS {}", ident(t)))
            .await
            .map_err(|err| db("dropping the copy triggers", err))?;
    }
    Ok(())
}

/// After a recorded swap: drops the triggers and the change log an earlier sluice (which recorded
/// the swap first) may have left. A log holding changes that reached the old table late was
/// reported when the swap was recorded and stays, as evidence, until `sluice cleanup`.
async fn finish_swapped(e: &mut MySqlEngine, t: &str, names: &Names, say: Say<'_>) -> Result<()> {
    settle_fks(e, t).await?;
    drop_triggers(&mut e.work, names).await?;
    e.work
        .query_drop(format!("DROP TABLE IF EXISTS {}", ident(&names.stage)))
        .await
        .map_err(|err| db("dropping the apply's stage table", err))?;
    let Some(late) = logged_after_swap(e, names).await? else {
        return Ok(());
    };
    if late > 0 {
        say(&format!(
            "{} lists changes that reached {} after the swap; both stay until `sluice cleanup`",
            names.chg, names.old
        ));
        return Ok(());
    }
    e.work
        .query_drop(format!("DROP TABLE IF EXISTS {}", ident(&names.chg)))
        .await
        .map_err(|err| db("dropping the change log", err))
}

async fn drop_objects(conn: &mut Conn, names: &Names, tables: bool) {
    settle_dead_runs(conn, names).await;
    // Only the triggers there: on a Galera node even a DROP TRIGGER of none is a DDL under TOI.
    let there: Option<Vec<String>> = conn
        .query("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE()")
        .await
        .ok();
    let there = |t: &String| there.as_ref().is_none_or(|v| v.contains(t));
    // The direct triggers (Galera cut-over) first: they write into the shadow.
    for t in names
        .direct
        .iter()
        .chain(&names.triggers)
        .filter(|t| there(t))
    {
        // The work session keeps the short lock_wait_timeout of its DDL, so clients' writes do
        // not queue behind the drop for long: a lock failure under writers is retried, for up
        // to a minute, rather than leaving the copy behind (a failed 1264 copy once kept
        // `_t_upd`, `_t_del` and the log under the scenario writers).
        let mut dropped = false;
        let started = Instant::now();
        for attempt in 0u64.. {
            if started.elapsed() > Duration::from_secs(60) {
                break;
            }
            match conn
                .query_drop(format!("DROP TRIGGER IF EXISTS {}", ident(t)))
                .await
            {
                Ok(()) => {
                    dropped = true;
                    break;
                }
                // Lock wait timeout, or chosen as the victim of a lock deadlock.
                Err(err) if matches!(copy::code(&err), Some(1205 | 1213)) => {
                    tokio::time::sleep(Duration::from_millis(50 + 10 * attempt.min(15))).await;
                }
                Err(_) => break,
            }
        }
        // A trigger left without its change log (or shadow) would fail every client write
        // (1146): keep both while any trigger may still stand.
        if !dropped {
            return;
        }
    }
    let _ = conn
        .query_drop(format!("DROP TABLE IF EXISTS {}", ident(&names.chg)))
        .await;
    if tables {
        for t in [&names.shadow, &names.stage] {
            let _ = conn
                .query_drop(format!("DROP TABLE IF EXISTS {}", ident(t)))
                .await;
        }
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
    toi_settle(e).await;
    if let Err(err) = e.work.query_drop(a.on(&ident(&names.shadow))).await {
        drop_objects(&mut e.work, &names, true).await;
        return Err(fail(
            format!("running the ALTER on the shadow table {}", names.shadow),
            err,
        ));
    }
    // Keys the ALTER adds come back, with all the others, with writes held before the swap: on a
    // shadow that lags behind `t` they would refuse clients' valid changes of the parents.
    if let Err(err) = fks::undo(&mut e.work, &names, &a.table, &fks::Swap::default()).await {
        drop_objects(&mut e.work, &names, true).await;
        return Err(err);
    }
    let shadow = table::read(&mut e.work, &names.shadow)
        .await
        .map_err(|err| db("reading the shadow table", err))?
        .ok_or_else(|| Error::database("creating the shadow table", "it vanished"))?;
    let job = match column_map(a, live, &shadow).and_then(|m| Job::build(conn, live, &shadow, &m)) {
        Ok(j) => j,
        Err(err) => {
            drop_objects(&mut e.work, &names, true).await;
            return Err(err);
        }
    };
    if let Err(err) = refuse_checked_fills(e, &job).await {
        drop_objects(&mut e.work, &names, true).await;
        return Err(err);
    }
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
    let created = match e.galera() {
        Some(_) => create_triggers_toi(e, &a.table, &triggers, opts, say).await,
        None => create_triggers(e, &a.table, &triggers, opts, say).await,
    };
    if let Err(err) = created {
        drop_objects(&mut e.work, &names, true).await;
        return Err(err);
    }
    Ok(job)
}

/// Creates the three copy triggers at once, under `LOCK TABLES t WRITE`: client statements see
/// no trigger or all three. Created one by one, a client's prepared UPDATE re-prepared while only
/// the INSERT trigger stood did not lock the change log, then ran the UPDATE trigger added
/// meanwhile and failed with 1146 (`_t_chg` doesn't exist) on MariaDB 10.11. The lock is taken like
/// any DDL's (short wait, step back, retry) and held for the three catalog changes only.
async fn create_triggers(
    e: &mut MySqlEngine,
    table: &str,
    triggers: &[String],
    opts: &OnlineOptions,
    say: Say<'_>,
) -> Result<()> {
    let lock = format!("LOCK TABLES {} WRITE", ident(table));
    match ddl(e, table, &lock, opts, say).await {
        Ok(()) => {}
        Err(DdlError::Refused(m)) => {
            return Err(Error::database(
                "locking the table for the copy triggers",
                m,
            ))
        }
        Err(DdlError::Failed(err)) | Err(DdlError::Server(err)) => return Err(err),
    }
    let mut outcome = Ok(());
    for sql in triggers {
        if let Err(err) = e.work.query_drop(sql.as_str()).await {
            outcome = Err(Error::database(
                format!("running `{}`", first_line(sql)),
                e.url.scrub(&err.to_string()),
            ));
            break;
        }
    }
    // Whatever happened, the lock goes at once.
    let unlocked = e
        .work
        .query_drop("UNLOCK TABLES")
        .await
        .map_err(|err| db("unlocking the table after creating the copy triggers", err));
    outcome.and(unlocked)
}

/// On a Galera node, after a DDL that names the table (`CREATE TABLE … LIKE t` too): under TOI it
/// aborted the statements open on `t` on every node, which the server re-runs once; they finish
/// before the next DDL can abort them again (see `cutover::TOI_SETTLE`).
async fn toi_settle(e: &MySqlEngine) {
    if e.galera().is_some() {
        tokio::time::sleep(cutover::TOI_SETTLE).await;
    }
}

/// On a Galera node: the three copy triggers one by one, each its own DDL under TOI, with no table
/// lock (one node's lock would block its applier and, by flow control, every node). Correct
/// without the lock because the copy reads rows only after all three exist; the lock's reason,
/// prepared statements re-prepared between two of them (see `create_triggers`), concerns
/// binary-protocol clients, which any DDL under TOI aborts anyway (1213).
async fn create_triggers_toi(
    e: &mut MySqlEngine,
    table: &str,
    triggers: &[String],
    opts: &OnlineOptions,
    say: Say<'_>,
) -> Result<()> {
    for sql in triggers {
        match ddl(e, table, sql, opts, say).await {
            Ok(()) => tokio::time::sleep(cutover::TOI_SETTLE).await,
            Err(DdlError::Refused(m)) => {
                return Err(Error::database(format!("running `{}`", first_line(sql)), m))
            }
            Err(DdlError::Failed(err)) | Err(DdlError::Server(err)) => return Err(err),
        }
    }
    Ok(())
}

/// A new NOT NULL column without a default that has a CHECK of its own (JSON's `json_valid`): the
/// ALTER as written fills existing rows with the implicit default (`''`) unchecked, so every
/// later UPDATE of those rows fails the CHECK (4025). The copy's INSERT is checked and cannot
/// give that result: refused before anything is copied.
async fn refuse_checked_fills(e: &mut MySqlEngine, job: &Job) -> Result<()> {
    if job.fills.is_empty() {
        return Ok(());
    }
    let checked: Vec<String> = e
        .work
        .exec(
            "SELECT CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS \
             WHERE CONSTRAINT_SCHEMA = DATABASE() AND TABLE_NAME = ? AND LEVEL = 'Column'",
            (&job.names.shadow,),
        )
        .await
        .map_err(|err| db("reading the shadow's checks", err))?;
    let Some((col, value)) = job
        .fills
        .iter()
        .find(|(n, _)| checked.iter().any(|c| c.eq_ignore_ascii_case(n)))
    else {
        return Ok(());
    };
    Err(Error::usage(
        format!(
            "the new column {} is NOT NULL without a default and has a CHECK (JSON is checked by json_valid): \
             the ALTER as written fills `{}`'s existing rows with {value}, which the CHECK refuses, so every later UPDATE of them fails",
            ident(col),
            job.table
        ),
        "give the column a default the CHECK accepts (e.g. `DEFAULT '{}'` for JSON) or let it be NULL, then run `sluice up` again",
    ))
}

/// Records the shadow's secondary indexes in `sluice_online` and drops them, so the copy does not
/// maintain them row by row (see `defer.rs`); the key the copy walks stays. Without a primary key
/// every unique index stays: InnoDB clusters such a table by its first unique NOT NULL index in
/// the order the server keeps them, and one dropped and added again would come after the key.
async fn defer_indexes(e: &mut MySqlEngine, job: &Job, shadow: &table::LiveTable) -> Result<()> {
    let key: Vec<String> = job.key.iter().map(|k| k.shadow.to_lowercase()).collect();
    let no_primary = !shadow.indexes.iter().any(|i| i.name == "PRIMARY");
    let keep: Vec<String> = shadow
        .indexes
        .iter()
        .filter(|i| {
            i.name == "PRIMARY"
                || (no_primary && i.unique)
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
async fn build_deferred(
    e: &mut MySqlEngine,
    job: &mut Job,
    opts: &OnlineOptions,
    say: Say<'_>,
) -> Result<()> {
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
    let mut meter = job.log_meter(opts, say);
    // A UNIQUE build must see no stale row (a duplicate the log would remove fails it), and
    // InnoDB's online build reports even a passing duplicate among concurrent changes: the log is
    // applied in full first and not during it. Plain indexes build while the log is applied on
    // a session of its own, so the build's seconds are not left as a backlog for the catch-up.
    let unique = deferred.iter().any(|d| d.definition.starts_with("UNIQUE"));
    for attempt in 0..3 {
        job.apply_backlog(&mut meter).await?;
        if unique {
            job.settle().await?;
        }
        let mut follower = match unique {
            true => None,
            false => Some(job.sibling(copy_session(e).await?)),
        };
        // Followed from a connection of its own while it runs (see `alter_progress`).
        let (id, conn_opts) = (job.conn.id(), job.conn.opts().clone());
        let task = format!("index build of `{}`", job.names.shadow);
        let built = AtomicBool::new(false);
        let build = async {
            // Test hook: the build about to start, the log applied meanwhile.
            sluice_core::pause_point_async("online-index-build").await;
            let r = tokio::select! {
                r = defer::add_missing(&mut job.conn, &job.names.shadow, &deferred) => r,
                never = crate::alter_progress::watch(conn_opts, id, task, opts.progress.as_ref(), say) => match never {},
            };
            built.store(true, Ordering::Relaxed);
            r
        };
        let follow = async {
            let Some(f) = follower.as_mut() else {
                return Ok(0);
            };
            let mut applied = 0;
            // An error stops the applying, not the build: the ALTER is never cut off mid-way.
            while !built.load(Ordering::Relaxed) {
                let n = f.apply(5_000).await?;
                applied += n;
                if n < 1_000 {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
            Ok::<usize, Error>(applied)
        };
        let (added, followed) = tokio::join!(build, follow);
        if let Some(mut f) = follower {
            job.absorb(&mut f);
            let _ = f.conn.disconnect().await;
        }
        followed?;
        match added {
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
    // A run killed with writes held may have left the children pointing at the shadow.
    if state.is_some() && exists(&mut e.work, &names.shadow).await? {
        keys_back(e, &names, &t).await?;
    }
    let live = table::read(&mut e.work, &t)
        .await
        .map_err(|err| db("reading the table definition", err))?
        .ok_or_else(|| Error::database("online copy", format!("table `{t}` is gone")))?;
    let own = fks::outgoing(&mut e.work, &t)
        .await
        .map_err(|err| db("reading the table's foreign keys", err))?;
    if let Some(err) = refuse_copy(a, &live, &own, &names) {
        return Err(err);
    }
    if let Some(g) = e.galera().cloned() {
        if !crate::Galera::copy_opted_in()? {
            return Err(g.refuse_copy(&t));
        }
        let inbound = fks::incoming(&mut e.work, &t)
            .await
            .map_err(|err| db("reading the foreign keys pointing at the table", err))?;
        if !own.is_empty() || !inbound.is_empty() {
            return Err(g.refuse_fk_copy(&t));
        }
    }
    crate::privileges::check_online_copy(&mut e.work, &t).await?;
    let conn = copy_session(e).await?;
    let conn_opts = e.work.opts().clone();
    let resume = state
        .as_ref()
        .filter(|s| s.state == "copying" || s.state == "copied");
    // On a Galera node a cut-over killed after it dropped the log triggers leaves the direct
    // ones, which keep the shadow in sync just as well.
    let triggers_there = names.triggers.iter().all(|n| live.triggers.contains(n))
        || (e.galera().is_some() && names.direct.iter().all(|n| live.triggers.contains(n)));
    let (mut job, last, copied) = match resume {
        Some(st) if triggers_there && exists(&mut e.work, &names.shadow).await? => {
            let shadow = table::read(&mut e.work, &names.shadow)
                .await
                .map_err(|err| db("reading the shadow table", err))?
                .ok_or_else(|| Error::database("online copy", "the shadow table is gone"))?;
            let mut job = Job::build(conn, &live, &shadow, &column_map(a, &live, &shadow)?)?;
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
                    let _ = forget(&mut e.work, &t).await;
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
    job.carry_counter = !names_counter(a);
    if copied {
        // What an earlier run applied from the log after its verification was known only to
        // that run: verify the whole table again before it can be swapped.
        let t0 = Instant::now();
        let checked = async {
            let mut meter = job.log_meter(opts, say);
            job.drain(100, Some(&mut meter)).await?;
            job.verify(opts, say).await
        }
        .await;
        if let Err(err) = checked {
            return Err(abandon(e, &names, &t, err).await);
        }
        say(&format!(
            "re-verified the copy of `{t}` in {:.1} s",
            t0.elapsed().as_secs_f64()
        ));
    } else {
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
        let queue: copy::Queue = Arc::new(tokio::sync::Mutex::new(rx));
        let helping = Arc::new(AtomicBool::new(false));
        let mut vjob = job.sibling(copy_session(e).await?);
        vjob.keep_all = Some(helping.clone());
        let verifier = tokio::spawn(copy::verifier(vjob, queue.clone()));
        if done {
            let _ = ranges.send((None, None));
        } else if last.is_some() {
            let _ = ranges.send((None, last.clone()));
        }
        let t0 = Instant::now();
        let copied = if done {
            Ok(())
        } else {
            // Without --replica-url, the replicas the primary knows are watched.
            let discovered = if opts.replica_urls.is_empty() && !opts.max_replica_lag.is_zero() {
                replicas::discover(&mut e.work, &e.url, say).await
            } else {
                vec![]
            };
            job.copy(last, opts, say, &ranges, discovered).await
        };
        drop(ranges);
        // The copy's session then checks queued ranges too (see `copy::verify_queue`); set
        // before it takes one, so the verifier keeps every key it applies from then on.
        let helped = match copied {
            Ok(()) => {
                helping.store(true, Ordering::SeqCst);
                copy::verify_queue(&mut job, &queue).await
            }
            Err(err) => Err(err),
        };
        let verified = match verifier.await {
            Ok(r) => r,
            Err(err) => Err(Error::database(
                "verifying the online copy",
                err.to_string(),
            )),
        };
        let chunks = match (helped, verified) {
            (_, Err(err)) | (Err(err), _) => return Err(abandon(e, &names, &t, err).await),
            (Ok(mine), Ok((mut vjob, chunks))) => {
                job.absorb(&mut vjob);
                let _ = vjob.conn.disconnect().await;
                mine + chunks
            }
        };
        say(&format!(
            "copied and verified `{t}` in {:.1} s ({chunks} checksum chunk(s) match)",
            t0.elapsed().as_secs_f64()
        ));
        if let Err(err) = build_deferred(e, &mut job, opts, say).await {
            return Err(abandon(e, &names, &t, err).await);
        }
        let t0 = Instant::now();
        let mut meter = job.log_meter(opts, say);
        // Down to a short backlog, not to empty: clients keep the log from ever emptying, and the
        // cut-over applies the rest anyway (one batch of a few entries per round trip would
        // otherwise go on for a hundred rounds).
        let n = match job.apply_backlog(&mut meter).await {
            Ok(n) => n,
            Err(err) => return Err(abandon(e, &names, &t, err).await),
        };
        let keys = job.touched.len();
        let checked = if job.overflowed {
            job.verify(opts, say).await
        } else {
            job.verify_touched().await
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
    // The copy must end as the ALTER as written ends: the shadow's definition (secondary indexes
    // rebuilt after the copy included) against the statement run on an empty twin of `t`.
    let (want, out_fks) = match twin(e, a, &names).await? {
        Ok(tw) => (tw.def, tw.fks),
        Err(m) => (m, Vec::new()),
    };
    let got = definition(&mut e.work, &names.shadow).await?;
    if want != got {
        drop_objects(&mut e.work, &names, true).await;
        let _ = forget(&mut e.work, &t).await;
        return Err(Error::database(
            format!("checking the online copy of `{t}` before its swap"),
            format!(
                "its definition differs from what the ALTER as written gives on a twin, so it was removed and `{t}` is unchanged:\n{}",
                diff_lines(&want, &got)
            ),
        ));
    }
    // Every row of the copy has its parent, as the ALTER as written requires of the table's rows.
    // (`t` enforces the keys it has throughout; a key the ALTER adds is enforced from the swap on.)
    // The copy lags behind `t`: a row found without a parent may be one whose change (an
    // UPDATE or DELETE, logged when it committed) is not applied yet. Only the same row found
    // again after the whole log was applied is an orphan of the table's own.
    for f in &out_fks {
        let mut seen: Option<String> = None;
        let mut rounds = 0;
        let orphan = loop {
            let found = fks::orphan(&mut e.work, f, &names.shadow, &t).await?;
            match found {
                None => break None,
                Some(v) if seen.as_deref() == Some(v.as_str()) || rounds >= 20 => break Some(v),
                Some(v) => seen = Some(v),
            }
            rounds += 1;
            if let Err(err) = job.settle().await {
                return Err(abandon(e, &names, &t, err).await);
            }
        };
        if let Some(values) = orphan {
            drop_objects(&mut e.work, &names, true).await;
            let _ = forget(&mut e.work, &t).await;
            let dbname = database(&mut e.work).await?;
            return Err(Error::Rejected {
                context: format!("checking the online copy of `{t}` for its foreign key {}", ident(&f.name)),
                message: format!(
                    "{} (the online copy of `{t}` was removed; `{t}` is unchanged)",
                    fks::orphan_message(&dbname, &t, f, &values)
                ),
                help: "the ALTER as written fails on these rows the same way: add the missing parent rows or fix the referencing values, then run `sluice up` again".into(),
            });
        }
    }
    let inbound = fks::incoming(&mut e.work, &t)
        .await
        .map_err(|err| db("reading the foreign keys pointing at the table", err))?;
    let swap = fks::Swap {
        old: fks::outgoing(&mut e.work, &t)
            .await
            .map_err(|err| db("reading the table's foreign keys", err))?,
        new: out_fks,
        inbound,
        unchecked: false,
    };
    store_fks(&mut e.work, &t, &swap).await?;
    job.fks = swap;
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
    let swapped = match e.galera() {
        Some(_) => cutover::galera_swap(&mut job, opts, say).await,
        None => cutover::swap(&mut job, opts, &conn_opts, say).await,
    };
    let held = match swapped {
        Ok(held) => held,
        // Rows the new table refuses, found while catching up: nothing was swapped.
        Err(err) if is_data_failure(&err) => return Err(abandon(e, &names, &t, err).await),
        Err(err) => return Err(err),
    };
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

/// The foreign keys recorded for the swap of `t`: (the new table's, the children's).
async fn stored_fks(conn: &mut Conn, t: &str) -> Result<fks::Swap> {
    let text: Option<Option<String>> = conn
        .exec_first(
            "SELECT `fks` FROM `sluice_online` WHERE `table_name` = ?",
            (t,),
        )
        .await
        .map_err(|err| db("reading sluice_online", err))?;
    match text.flatten() {
        Some(text) => serde_json::from_str(&text)
            .map_err(|err| Error::database("reading the recorded foreign keys", err.to_string())),
        None => Ok(fks::Swap::default()),
    }
}

/// Records the keys around the swap of `t` in its `sluice_online` row.
async fn store_fks(conn: &mut Conn, t: &str, swap: &fks::Swap) -> Result<()> {
    let record = serde_json::to_string(swap).expect("foreign keys serialise");
    conn.exec_drop(
        "UPDATE `sluice_online` SET `fks` = ?, `updated_at` = NOW(6) WHERE `table_name` = ?",
        (record, t),
    )
    .await
    .map_err(|err| db("recording the foreign keys", err))
}

/// Before a copy of `t` an earlier run began goes on or is abandoned: the children's keys that
/// run may have left pointing at the shadow (killed with writes held) go back to `t`. While they
/// pointed there and no session held writes, deletes and key updates of `t` were checked
/// against the shadow, not the children (nor cascaded into them): that is recorded (`unchecked`,
/// before the keys are put back, so a refused or killed rerun checks again), and a child row left
/// without its parent is refused, naming it — the keys are back, but InnoDB does not check rows
/// that are already there.
async fn keys_back(e: &mut MySqlEngine, names: &Names, t: &str) -> Result<()> {
    let mut swap = stored_fks(&mut e.work, t).await?;
    if !swap.unchecked && fks::children_on_shadow(&mut e.work, &swap.inbound).await? {
        swap.unchecked = true;
        store_fks(&mut e.work, t, &swap).await?;
    }
    fks::undo(&mut e.work, names, t, &swap).await?;
    if !swap.unchecked {
        return Ok(());
    }
    let found = fks::orphans_of(&mut e.work, &swap.inbound, t).await?;
    if found.is_empty() {
        swap.unchecked = false;
        return store_fks(&mut e.work, t, &swap).await;
    }
    Err(Error::Rejected {
        context: format!("resuming the online change of `{t}`"),
        message: format!(
            "a run killed during the cut-over of `{t}` left the children's foreign keys on the copy while no session held writes, so deletes and key updates of `{t}` meanwhile were not checked against them (nor cascaded): rows without a parent in `{t}`: {}",
            found.join("; ")
        ),
        help: format!("the keys are back on `{t}`: fix those rows (delete them or restore their parents), then run the command again"),
    })
}

/// After the swap: the children's foreign keys get their own names back (see
/// `fks::after_rename`); again and again without harm.
async fn settle_fks(e: &mut MySqlEngine, t: &str) -> Result<()> {
    let swap = stored_fks(&mut e.work, t).await?;
    fks::after_rename(&mut e.work, &Names::of(t), t, &swap).await
}

/// Drops the old table of a swap, unless foreign keys still point at it (it would leave them
/// pointing at nothing): those are re-pointed first.
async fn drop_old(e: &mut MySqlEngine, t: &str, names: &Names) -> Result<()> {
    if exists(&mut e.work, &names.old).await? {
        settle_fks(e, t).await?;
        let still = fks::referencing(&mut e.work, &names.old).await?;
        if !still.is_empty() {
            return Err(Error::usage(
                format!(
                    "foreign keys still point at {} ({}): dropping it would leave them pointing at nothing",
                    ident(&names.old),
                    still.join(", ")
                ),
                format!("point them at `{t}` (ALTER TABLE … DROP FOREIGN KEY …, ADD CONSTRAINT … REFERENCES `{t}` …), then run this again"),
            ));
        }
    }
    e.work
        .query_drop(format!("DROP TABLE IF EXISTS {}", ident(&names.old)))
        .await
        .map_err(|err| db("dropping the old table", err))
}

/// Whether the ALTER sets the table's AUTO_INCREMENT counter itself: then the new table keeps
/// that value (raised past the largest id, as the server does) rather than the original's.
fn names_counter(a: &AlterTable) -> bool {
    a.clauses.iter().any(|c| match c.kind {
        ClauseKind::AutoIncrementValue => true,
        // Table options written one after the other (`ENGINE=InnoDB AUTO_INCREMENT=7`) are one
        // clause named after the first.
        ClauseKind::Rebuild | ClauseKind::TableComment | ClauseKind::Other => sets_counter(&c.text),
        _ => false,
    })
}

/// `AUTO_INCREMENT [=] <digits>` as a word somewhere in `text`.
fn sets_counter(text: &str) -> bool {
    let up = text.to_ascii_uppercase();
    up.match_indices("AUTO_INCREMENT").any(|(i, w)| {
        let before = up[..i].chars().next_back();
        if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == '`') {
            return false;
        }
        let rest = up[i + w.len()..].trim_start();
        let rest = rest.strip_prefix('=').unwrap_or(rest).trim_start();
        rest.starts_with(|c: char| c.is_ascii_digit())
    })
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
    let _ = forget(&mut e.work, t).await;
    match err {
        Error::Database {
            context,
            message,
            help,
        } => Error::Rejected {
            context,
            message: format!(
                "{message} (the online copy of `{t}` was removed; `{t}` is unchanged)"
            ),
            help: if help.is_empty() {
                "the ALTER as written fails on these rows the same way: fix the rows (or the statement), then run `sluice up` again".into()
            } else {
                help
            },
        },
        other => other,
    }
}

/// Whether a failed copy failed on the data: the verification found rows that still differ
/// (sluice's own error), or the server refused a value with SQLSTATE class 22 (data exception)
/// or 23 (integrity constraint violation), which the driver writes as `ERROR n (22003): ...`,
/// or with one of the conversion errors filed under another class.
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
        // 1265 Data truncated (01000), 1366 Incorrect value (HY000), 1364 no default (HY000),
        // 1411 Incorrect value for function (HY000): the same rows fail the ALTER as written.
        let conversion = matches!(
            rest[..code_end].parse::<u16>(),
            Ok(1265 | 1366 | 1364 | 1411)
        );
        conversion || rest[code_end..].starts_with(" (22") || rest[code_end..].starts_with(" (23")
    })
}

/// Entries in the change log after the swap; None when the log is gone.
async fn logged_after_swap(e: &mut MySqlEngine, names: &Names) -> Result<Option<i64>> {
    if !exists(&mut e.work, &names.chg).await? {
        return Ok(None);
    }
    let late: Option<i64> = e
        .work
        .query_first(format!("SELECT COUNT(*) FROM {}", ident(&names.chg)))
        .await
        .map_err(|err| db("checking the change log after the swap", err))?;
    Ok(Some(late.unwrap_or(0)))
}

/// Writes that reached the old table after the final drain would be logged by its triggers:
/// there must be none. Should there be any, keep the log, say so and stop, rather than drop it.
async fn late_changes(e: &mut MySqlEngine, t: &str, names: &Names) -> Result<()> {
    let Some(late) = logged_after_swap(e, names).await? else {
        return Ok(());
    };
    if late == 0 {
        return Ok(());
    }
    drop_triggers(&mut e.work, names).await?;
    set_state(&mut e.work, t, "swapped").await?;
    Err(Error::Database {
        context: format!("swapping `{t}`"),
        message: format!(
            "{late} change(s) reached {} after the final drain and are not in the new `{t}`; they are listed in {}",
            names.old, names.chg
        ),
        help: format!(
            "carry those rows over from {} by hand; `sluice cleanup` then drops both tables",
            names.old
        ),
    })
}

/// Removes the triggers (they moved with the old table: a revert by renaming it back must not
/// bring them along) and the change log, then records the swap, so that a run killed anywhere in
/// between finds the swap unrecorded and finishes it.
async fn finish_swap(
    e: &mut MySqlEngine,
    t: &str,
    names: &Names,
    rows: i64,
    started: Instant,
    held: Duration,
) -> Result<OnlineReport> {
    settle_fks(e, t).await?;
    cutover::crash_point("swap-fks-settled");
    drop_triggers(&mut e.work, names).await?;
    cutover::crash_point("swap-untriggered");
    for aux in [&names.chg, &names.stage] {
        e.work
            .query_drop(format!("DROP TABLE IF EXISTS {}", ident(aux)))
            .await
            .map_err(|err| db("dropping the change log", err))?;
    }
    cutover::crash_point("swap-unlogged");
    set_state(&mut e.work, t, "swapped").await?;
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
            "SELECT `table_name`, `statement`, `state` FROM `sluice_online` WHERE `state` NOT IN ('swapped', 'ddl', 'done') ORDER BY `table_name`",
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
        // `done`: a fast-path ALTER, which may have replaced the row of an earlier swap.
        if state == "swapped" || state == "done" {
            // With the old table go the triggers an earlier sluice left on it and its change log.
            drop_triggers(&mut e.work, &names).await?;
            drop_old(e, &table, &names).await?;
            for aux in [&names.chg, &names.stage] {
                e.work
                    .query_drop(format!("DROP TABLE IF EXISTS {}", ident(aux)))
                    .await
                    .map_err(|err| db("dropping the old table", err))?;
            }
            out.push(format!(
                "dropped {} (the table before its online change)",
                names.old
            ));
        } else if abort {
            // A run killed with writes held may have left the children's keys on the shadow:
            // they go back to the table before the shadow goes (dropped under them, the keys
            // would point at nothing and refuse every child write).
            keys_back(e, &names, &table).await?;
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
        forget(&mut e.work, &table).await?;
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
            [n.shadow, n.old, n.chg, n.twin, n.stage]
        })
        .collect()
}

#[cfg(test)]
mod failure_tests {
    use super::*;

    #[test]
    fn a_counter_set_by_the_alter_is_told_from_an_auto_increment_column() {
        for (sql, sets) in [
            ("ALTER TABLE t MODIFY v BIGINT, AUTO_INCREMENT = 7", true),
            ("ALTER TABLE t MODIFY v BIGINT, auto_increment 7", true),
            (
                "ALTER TABLE t ENGINE=InnoDB AUTO_INCREMENT=7, MODIFY v BIGINT",
                true,
            ),
            (
                "ALTER TABLE t MODIFY v BIGINT, COMMENT 'c' AUTO_INCREMENT=5",
                true,
            ),
            ("ALTER TABLE t MODIFY id BIGINT AUTO_INCREMENT", false),
            (
                "ALTER TABLE t ADD COLUMN n INT AUTO_INCREMENT UNIQUE",
                false,
            ),
            ("ALTER TABLE t MODIFY v BIGINT, ENGINE=InnoDB", false),
            (
                "ALTER TABLE t MODIFY v BIGINT, COMMENT 'no_auto_increment=5'",
                false,
            ),
        ] {
            let a = parse::parse(sql).unwrap();
            assert_eq!(names_counter(&a), sets, "{sql}");
        }
    }

    #[test]
    fn client_writes_running_the_copy_triggers_are_not_dead_runs() {
        let names = Names::of("t");
        for (info, trigger) in [
            ("INSERT INTO `_t_chg` (`k0`) VALUES (NEW.`id`)", true),
            ("insert into `_t_chg` (`k0`) VALUES (OLD.`id`)", true),
            ("IF NOT (OLD.`id` <=> NEW.`id`) THEN", true),
            ("CREATE TRIGGER `_t_ins` AFTER INSERT ON `t` FOR EACH ROW INSERT INTO `_t_chg` (`k0`) VALUES (NEW.`id`)", false),
            ("INSERT INTO `_t_new` (`id`) SELECT `id` FROM `t`", false),
            ("DELETE FROM `_t_chg` WHERE `_sluice_id` IN (1)", false),
        ] {
            assert_eq!(in_trigger(info, &names), trigger, "{info}");
        }
    }

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
        for (code, state, text) in [
            (1265, "01000", "Data truncated for column 'c' at row 1"),
            (
                1366,
                "HY000",
                "Incorrect integer value: 'x' for column `d`.`t`.`c` at row 1",
            ),
            (1364, "HY000", "Field 'd' doesn't have a default value"),
            (
                1292,
                "22007",
                "Incorrect datetime value: 'x' for column `d`.`t`.`c` at row 1",
            ),
            (1406, "22001", "Data too long for column 'c' at row 1"),
            (4025, "23000", "CONSTRAINT `ck` failed for `d`.`t`"),
        ] {
            assert!(
                is_data_failure(&e(&format!(
                    "Server error: `ERROR {code} ({state}): {text}'"
                ))),
                "{code}"
            );
        }
        assert!(!is_data_failure(&e(
            "Server error: `ERROR 1927 (70100): Connection was killed'"
        )));
        assert!(!is_data_failure(&e("Input/output error: broken pipe")));
        assert!(!is_data_failure(&e(
            "Server error: `ERROR 1205 (HY000): Lock wait timeout exceeded'"
        )));
    }
}
