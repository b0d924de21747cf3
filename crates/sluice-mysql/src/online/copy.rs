//! The online copy of one table: a shadow table with the ALTER applied, a change log fed by triggers
//! on the original, a chunked copy by key, and checksums of each copied chunk, taken on a second
//! session (the verifier) while the copy goes on.
//!
//! Why a change log instead of triggers that write the shadow table directly: a trigger that
//! REPLACEs into the shadow makes every client write take row locks that the copy's chunk
//! transaction also takes, and when the two wait on each other InnoDB rolls back the transaction
//! with fewer changed rows: the client. Here clients only append keys to `_t_chg` (an insert that
//! never waits on sluice), sluice alone writes the shadow, and it reads the original with plain
//! consistent reads (READ COMMITTED: no shared locks on the original). No lock is ever shared
//! between a client and the copy, so a client cannot become a deadlock victim of it. Sluice applies
//! the log by replacing the shadow rows of logged keys with their current rows, read in one
//! snapshot with the log itself (see `Job::apply`), so the order in which client transactions
//! commit does not matter, nor how they moved unique values between rows. The price is one drain
//! under a short write lock at cut-over (see `cutover.rs`).

use super::names::Names;
use super::path::normalise_type;
use super::table::{LiveColumn, LiveTable};
use super::throttle::{CommitPace, Throttle, PACED_CHUNK};
use crate::quote::ident;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Row, Value};
use sluice_core::engine::OnlineOptions;
use sluice_core::error::{Error, Result};
use sluice_core::progress::Meter;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub type Say<'a> = &'a (dyn for<'s> Fn(&'s str) + Send + Sync);

/// Deadlock and lock wait timeout: retried when sluice's own statement gets them.
const ER_LOCK_DEADLOCK: u16 = 1213;
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;
const ER_WSREP_NOT_READY: u16 = 1047;
/// Duplicate entry for a unique key.
const ER_DUP_ENTRY: u16 = 1062;

/// Up to this many keys of one checksum range with changes pending in the log are left out by
/// key; beyond it, by a join against the log.
const PENDING_BY_KEY: usize = 2_000;

/// The catch-up's progress: a [`Meter`] counting log entries applied across calls.
pub struct LogMeter<'a> {
    meter: Meter<'a>,
    applied: u64,
}

/// Part of the message of a verification that found rows still differing after re-copying.
pub const STILL_DIFFERS: &str = "still differs";

/// Rows per checksum range.
const VERIFY_ROWS: i64 = 50_000;

/// Keys applied from the log are remembered for re-verification up to this many; beyond it the
/// whole table is verified again instead (bounded memory on a long copy under heavy writes).
const TOUCHED_MAX: usize = 1_000_000;

/// Ranges the copy has committed, sent to the verifier.
pub type Ranges = tokio::sync::mpsc::UnboundedSender<(Option<Key>, Option<Key>)>;

/// The copied ranges waiting for their checksum, in key order. The verifier takes them while the
/// copy goes on; once the copy is done its session takes them too (see [`verify_queue`]).
pub type Queue =
    Arc<tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<(Option<Key>, Option<Key>)>>>;

/// Verifies copied ranges on its own session while the copy goes on, and applies the change log
/// between them: the checksums are reads, so they run on the server's other core instead of adding
/// to the copy's time. Returns the job (with the keys it applied itself) and how many chunks it
/// verified. On an error the queue is closed, so the copy stops at its next chunk.
pub async fn verifier(mut job: Job, queue: Queue) -> Result<(Job, usize)> {
    let r = verify_and_apply(&mut job, &queue).await;
    job.recheck_upto = None;
    job.bound = None;
    match r {
        Ok(chunks) => Ok((job, chunks)),
        Err(e) => {
            queue.lock().await.close();
            Err(e)
        }
    }
}

async fn verify_and_apply(job: &mut Job, queue: &Queue) -> Result<usize> {
    let mut chunks = 0;
    // Ranges come in key order. With a single integer key, a key applied from the log beyond the
    // ranges verified so far is checked by a later range's checksum anyway (taken after the
    // apply), so only keys at or below the verified end need checking again (until a second
    // session verifies too: see `keep_all`).
    let integer = job.key.len() == 1 && job.key[0].integer;
    if integer {
        job.recheck_upto = Some(i128::MIN);
    }
    loop {
        let next = queue.lock().await.recv().await;
        let Some((lo, hi)) = next else {
            return Ok(chunks);
        };
        // Set before the range is checked: a re-copy inside the check applies the log too, and
        // keys of this range it applies after their part was compared must be checked again.
        if integer {
            job.recheck_upto = hi.as_ref().and_then(|k| k[0].parse::<i128>().ok());
        }
        chunks += job.verify_range(lo.as_ref(), hi.as_ref()).await?;
        // The log is applied here too, so the copy session only copies; only keys up to the
        // verified end while the copy goes on (see `Job::bound`).
        job.bound = hi;
        job.apply(5_000).await?;
    }
}

/// Verifies queued ranges on the copy's own session once the copy is done, beside the verifier:
/// the verifier falls behind while the copy runs (on 1M rows under load the copy ended at 4.3 s
/// and the last checksum at 7.0 s), and the copy's share of the server is free now. It applies no
/// log itself (only a re-copy's retry does, as the verifier's).
pub async fn verify_queue(job: &mut Job, queue: &Queue) -> Result<usize> {
    let mut chunks = 0;
    loop {
        let next = queue.lock().await.recv().await;
        let Some((lo, hi)) = next else {
            return Ok(chunks);
        };
        chunks += job.verify_range(lo.as_ref(), hi.as_ref()).await?;
    }
}

/// The key a duplicate-entry error names: MariaDB says `for key 'PRIMARY'`, MySQL 8 qualifies it
/// with the table (`for key 'acc.PRIMARY'`).
fn dup_key_name(message: &str) -> Option<&str> {
    let rest = &message[message.rfind("for key '")? + "for key '".len()..];
    let name = &rest[..rest.find('\'')?];
    Some(name.rsplit_once('.').map_or(name, |(_, k)| k))
}

pub fn code(e: &mysql_async::Error) -> Option<u16> {
    match e {
        mysql_async::Error::Server(se) => Some(se.code),
        _ => None,
    }
}

pub fn db(context: &str, e: mysql_async::Error) -> Error {
    if let Some(denied) = crate::privileges::denied(context, &e, "", "") {
        return denied;
    }
    Error::database(context.to_string(), e.to_string())
}

/// One column of the copy key, named in the original, the shadow and the change log.
#[derive(Debug, Clone)]
pub struct KeyCol {
    pub orig: String,
    pub shadow: String,
    pub chg: String,
    /// Binary values travel hex-encoded.
    pub binary: bool,
    /// Integer values are bound as integers: compared with a string, an integer column is
    /// compared as DOUBLE and the server stops using the index for `IN (...)`.
    pub integer: bool,
}

impl KeyCol {
    fn bind(&self, v: &str) -> Value {
        if self.integer {
            if let Ok(i) = v.parse::<i64>() {
                return Value::Int(i);
            }
            if let Ok(u) = v.parse::<u64>() {
                return Value::UInt(u);
            }
        }
        Value::from(v)
    }
}

/// A copied column: original name, shadow name, and whether its type changed.
#[derive(Debug, Clone)]
pub struct CopyCol {
    pub orig: String,
    /// DATA_TYPE of the original column.
    pub from: String,
    pub shadow: String,
    pub new: LiveColumn,
    pub changed: bool,
}

pub type Key = Vec<String>;

pub struct Job {
    pub table: String,
    pub names: Names,
    pub key: Vec<KeyCol>,
    pub key_index: String,
    /// The shadow's unique keys that hold every column of the copy key (its own copy included,
    /// e.g. a new `PRIMARY KEY (v, id)` over a table copied by `UNIQUE (id)`): a duplicate on one of
    /// them is a duplicate of the copy key, which the server may name by either.
    pub race_keys: Vec<String>,
    pub cols: Vec<CopyCol>,
    /// New NOT NULL columns without a default, and the value the ALTER as written gives them.
    pub fills: Vec<(String, &'static str)>,
    /// The copy's own session: READ COMMITTED, so reads of the original take no locks.
    pub conn: Conn,
    /// Keys applied from the change log since the last verification.
    pub touched: BTreeSet<Key>,
    /// More keys were applied than `touched` holds: the whole table must be verified again.
    pub overflowed: bool,
    /// While the verifier walks a single integer key: keys above this are verified by a later
    /// range, so they are not kept in `touched`; None keeps every key.
    pub recheck_upto: Option<i128>,
    /// Set once another session verifies ranges out of order beside this one: from then on every
    /// key applied is kept for re-verification (`recheck_upto` assumes ranges checked in order).
    /// Read when the keys are kept, after the apply committed: an apply that committed before the
    /// flag was set is seen by every checksum the other session takes after setting it.
    pub keep_all: Option<Arc<AtomicBool>>,
    /// While the copy runs, the verifier applies the log only for keys up to the end it has
    /// verified: a key beyond it may be in the copy's open chunk, and the apply's delete of its
    /// shadow row waited for that chunk's row locks (3.5 s over 55 applies on 1M rows under load,
    /// the verifier's checksums stalled meanwhile). Entries beyond it stay in the log until the
    /// verified end passes them (the checksums leave pending keys out). None: the whole log.
    pub bound: Option<Key>,
    pub rows_copied: i64,
    /// The new table continues the original's AUTO_INCREMENT counter; false when the ALTER sets
    /// the counter itself.
    pub carry_counter: bool,
    /// The stage table (see `apply`) exists.
    stage_ready: bool,
    /// The foreign keys of the swap, set up with writes held (see `fks.rs`).
    pub fks: super::fks::Swap,
}

fn is_binary(c: &LiveColumn) -> bool {
    matches!(
        c.data_type.as_str(),
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "bit"
    )
}

fn text(v: Value) -> String {
    match v {
        Value::NULL => String::new(),
        Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
        Value::Int(i) => i.to_string(),
        Value::UInt(u) => u.to_string(),
        other => other.as_sql(true).trim_matches('\'').to_string(),
    }
}

fn keys_of(rows: Vec<Row>) -> Vec<Key> {
    rows.into_iter()
        .map(|r| r.unwrap().into_iter().map(text).collect())
        .collect()
}

/// How a value is compared in the checksum: both sides read as the value the new column holds,
/// then as bytes. The original's value goes through the conversion the copy's INSERT makes (so
/// `5` INT and `5` BIGINT, a re-encoded string, `01:02:03` and `01:02:03.000` TIME(3), `0x01`
/// BINARY(4) and its zero-padded BINARY(8) agree); the shadow's value, already of the new type,
/// comes out of the same expression unchanged. `from` is the DATA_TYPE of the column `expr` reads.
fn conv(expr: &str, from: &str, new: &LiveColumn, changed: bool) -> String {
    if !changed {
        return format!("CAST({expr} AS BINARY)");
    }
    let t = normalise_type(&new.column_type);
    let unsigned = t.contains("unsigned");
    // `(p)` or `(p,s)` of the new type, as written in the catalog (digits and a comma only).
    let args = t
        .split_once('(')
        .and_then(|(_, r)| r.split_once(')'))
        .map(|(a, _)| format!("({a})"))
        .filter(|a| a.chars().all(|c| c.is_ascii_digit() || "(,)".contains(c)))
        .unwrap_or_default();
    let numeric_from = is_numeric(from);
    let inner = if ["tinyint", "smallint", "mediumint", "int", "bigint"]
        .iter()
        .any(|p| t.starts_with(p))
    {
        format!(
            "CAST({expr} AS {})",
            if unsigned { "UNSIGNED" } else { "SIGNED" }
        )
    } else if t.starts_with("decimal") {
        format!("CAST({expr} AS DECIMAL{args})")
    } else if t == "float" || t == "float unsigned" {
        // Single precision: a DOUBLE read back from a FLOAT column has lost digits.
        format!("CAST({expr} AS FLOAT)")
    } else if t.starts_with("double") || t.starts_with("float") || t.starts_with("real") {
        format!("CAST({expr} AS DOUBLE)")
    } else if t == "date" {
        format!("CAST({expr} AS DATE)")
    } else if t.starts_with("datetime") || t.starts_with("timestamp") {
        format!("CAST({expr} AS DATETIME{args})")
    } else if t.starts_with("time") {
        format!("CAST({expr} AS TIME{args})")
    } else if t.starts_with("year") {
        // A number 1-69 is 2001-2069 and 70-99 is 1970-1999 (MAKEDATE reads two-digit years
        // the same way); the number 0 is year 0000, where the string '0' is 2000.
        if numeric_from || from == "year" {
            format!("IF({expr} = 0, 0, YEAR(MAKEDATE({expr}, 1)))")
        } else {
            format!("YEAR(MAKEDATE({expr}, 1))")
        }
    } else if t.starts_with("bit") {
        // BIT(n) reads as ceil(n/8) bytes: the number its bytes make is what compares. A string
        // stored into BIT keeps its bytes, which HEX reads the same way.
        format!("CONV(HEX({expr}), 16, 10)")
    } else if t.starts_with("binary") {
        // BINARY(n) pads with zero bytes.
        format!("CAST({expr} AS BINARY{args})")
    } else if let Some(members) = t.strip_prefix("set(").and_then(set_members) {
        if numeric_from {
            // A number stored into a SET is the mask of its members.
            format!("CAST({expr} AS UNSIGNED)")
        } else {
            // Members read in the order of the new definition: compared as a mask of that order.
            let bits: Vec<String> = members
                .iter()
                .enumerate()
                .map(|(i, m)| {
                    format!(
                        "((FIND_IN_SET({}, CONVERT({expr} USING utf8mb4)) > 0) << {i})",
                        utf8_literal(m)
                    )
                })
                .collect();
            format!("IF({expr} IS NULL, NULL, {})", bits.join(" | "))
        }
    } else if let Some(members) = t.strip_prefix("enum(").and_then(set_members) {
        if numeric_from {
            // A number stored into an ENUM is the position of its member.
            let labels: Vec<String> = members.iter().map(|m| utf8_literal(m)).collect();
            format!("ELT({expr}, {})", labels.join(", "))
        } else {
            format!("CONVERT({expr} USING utf8mb4)")
        }
    } else if let Some(cs) = &new.charset {
        // Only the charset name reaches SQL text here, as an identifier-like word from the catalog.
        let cs: String = cs
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        format!("CONVERT({expr} USING {cs})")
    } else {
        expr.to_string()
    };
    format!("CAST({inner} AS BINARY)")
}

fn is_numeric(data_type: &str) -> bool {
    matches!(
        data_type,
        "tinyint"
            | "smallint"
            | "mediumint"
            | "int"
            | "bigint"
            | "decimal"
            | "float"
            | "double"
            | "bit"
    )
}

/// A string as a utf8mb4 literal that no sql_mode reads differently.
fn utf8_literal(s: &str) -> String {
    let hex: String = s.bytes().map(|x| format!("{x:02X}")).collect();
    format!("CONVERT(X'{hex}' USING utf8mb4)")
}

/// The members of `set('a','b''c')` after its `set(`, unquoted; None if it does not read so.
fn set_members(rest: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    loop {
        if chars.next()? != '\'' {
            return None;
        }
        let mut m = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    m.push('\'');
                }
                '\'' => break,
                c => m.push(c),
            }
        }
        out.push(m);
        match chars.next()? {
            ',' => continue,
            ')' => return Some(out),
            _ => return None,
        }
    }
}

/// The value the ALTER as written gives a new NOT NULL column without a default in existing rows
/// (MariaDB fills the type's implicit default whatever the sql_mode); None for a column that has
/// a default, may be NULL, or is filled by the server itself.
fn implicit_default(c: &LiveColumn) -> Option<&'static str> {
    if c.nullable || c.generated || c.auto_increment || c.default.is_some() {
        return None;
    }
    Some(match c.data_type.as_str() {
        "tinyint" | "smallint" | "mediumint" | "int" | "bigint" | "decimal" | "float"
        | "double" | "bit" | "year" => "0",
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "binary"
        | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" | "set" | "json" => "''",
        // An ENUM's first member.
        "enum" => "1",
        // Under NO_ZERO_DATE in strict mode the ALTER fails on these, and so does the INSERT.
        "date" => "'0000-00-00'",
        "datetime" | "timestamp" => "'0000-00-00 00:00:00'",
        "time" => "'00:00:00'",
        "uuid" => "'00000000-0000-0000-0000-000000000000'",
        "inet6" => "'::'",
        "inet4" => "'0.0.0.0'",
        _ => return None,
    })
}

impl Job {
    /// Builds the job from the live original and shadow tables.
    pub fn build(
        conn: Conn,
        table: &LiveTable,
        shadow: &LiveTable,
        columns: &[(String, String)],
    ) -> Result<Job> {
        let names = Names::of(&table.name);
        // `columns` lists every column that continues (see mod.rs `column_map`): one not listed
        // was dropped, even if a new column took its name.
        let mapped = |orig: &str| -> Option<String> {
            columns
                .iter()
                .find(|(f, _)| f.eq_ignore_ascii_case(orig))
                .map(|(_, t)| t.clone())
        };
        let key_index = table.copy_key().ok_or_else(|| no_key(&table.name))?;
        let mut key = Vec::new();
        for (i, k) in key_index.columns.iter().enumerate() {
            let col = table.column(k).expect("key column exists");
            // An approximate value read back as text does not find its row again.
            if matches!(col.data_type.as_str(), "float" | "double" | "real") {
                return Err(Error::usage(
                    format!(
                        "`{}` is keyed by the floating-point column `{k}`: sluice cannot address its rows exactly",
                        table.name
                    ),
                    "key the table by an exact type first, or run this ALTER with `sluice up --as-written` in a maintenance window",
                ));
            }
            key.push(KeyCol {
                orig: k.clone(),
                // A dropped key column matches no index below: refused as a key change.
                shadow: mapped(k).unwrap_or_default(),
                chg: format!("k{i}"),
                binary: is_binary(col),
                integer: matches!(
                    col.data_type.as_str(),
                    "tinyint" | "smallint" | "mediumint" | "int" | "bigint"
                ),
            });
        }
        // The shadow must be unique on the same key, or the copy could not address its rows.
        let shadow_key: Vec<String> = key.iter().map(|k| k.shadow.to_lowercase()).collect();
        let keeps_key = shadow.indexes.iter().any(|i| {
            i.unique
                && i.columns
                    .iter()
                    .map(|c| c.to_lowercase())
                    .collect::<Vec<_>>()
                    == shadow_key
        });
        let race_keys: Vec<String> = shadow
            .indexes
            .iter()
            .filter(|i| {
                i.unique
                    && shadow_key
                        .iter()
                        .all(|k| i.columns.iter().any(|c| c.to_lowercase() == *k))
            })
            .map(|i| i.name.clone())
            .collect();
        if !keeps_key {
            return Err(Error::usage(
                format!(
                    "the ALTER changes the key ({}) sluice copies `{}` by",
                    key_index.columns.join(", "),
                    table.name
                ),
                "split the statement: change the key in a migration of its own run with `sluice up --as-written` (in a maintenance window), or keep the old key unique",
            ));
        }
        let mut cols = Vec::new();
        for c in &table.columns {
            if c.generated {
                continue;
            }
            let Some(target) = mapped(&c.name) else {
                continue;
            };
            let Some(new) = shadow.column(&target) else {
                continue;
            };
            if new.generated {
                continue;
            }
            let changed = normalise_type(&c.column_type) != normalise_type(&new.column_type)
                || c.charset != new.charset;
            cols.push(CopyCol {
                orig: c.name.clone(),
                from: c.data_type.clone(),
                shadow: new.name.clone(),
                new: new.clone(),
                changed,
            });
        }
        // Columns of the shadow no original column continues into: without a default, a NOT NULL
        // one needs the value the ALTER gives it, or the copy's INSERT fails with 1364.
        let mut fills = Vec::new();
        for c in shadow.columns.iter().filter(|c| {
            !columns
                .iter()
                .any(|(_, target)| target.eq_ignore_ascii_case(&c.name))
        }) {
            match implicit_default(c) {
                Some(v) => fills.push((c.name.clone(), v)),
                None if !(c.nullable || c.generated || c.auto_increment || c.default.is_some()) => {
                    // A type whose implicit value no INSERT takes (a geometry: the ALTER leaves
                    // an empty, unreadable value): the copy cannot give the same result.
                    return Err(Error::usage(
                        format!(
                            "the new column {} ({}) is NOT NULL without a default: the ALTER as written fills `{}`'s existing rows with an empty value of that type, which no INSERT can write",
                            ident(&c.name),
                            c.column_type,
                            table.name
                        ),
                        "give the column a default or let it be NULL, then run `sluice up` again",
                    ));
                }
                None => {}
            }
        }
        Ok(Job {
            table: table.name.clone(),
            names,
            key,
            key_index: key_index.name.clone(),
            race_keys,
            cols,
            fills,
            conn,
            touched: BTreeSet::new(),
            overflowed: false,
            recheck_upto: None,
            keep_all: None,
            bound: None,
            rows_copied: 0,
            carry_counter: true,
            stage_ready: false,
            fks: Default::default(),
        })
    }

    /// The same job on another session (for the verifier), with nothing applied yet.
    pub fn sibling(&self, conn: Conn) -> Job {
        Job {
            table: self.table.clone(),
            names: self.names.clone(),
            key: self.key.clone(),
            key_index: self.key_index.clone(),
            race_keys: self.race_keys.clone(),
            cols: self.cols.clone(),
            fills: self.fills.clone(),
            conn,
            touched: BTreeSet::new(),
            overflowed: false,
            recheck_upto: None,
            keep_all: None,
            bound: None,
            rows_copied: 0,
            carry_counter: self.carry_counter,
            stage_ready: false,
            fks: Default::default(),
        }
    }

    /// Takes over the keys another job applied.
    pub fn absorb(&mut self, other: &mut Job) {
        self.overflowed |= other.overflowed;
        self.touched.append(&mut other.touched);
        self.cap_touched();
    }

    fn cap_touched(&mut self) {
        if self.touched.len() > TOUCHED_MAX {
            self.touched.clear();
            self.overflowed = true;
        }
    }

    /// After a failed transaction of the copy session: rolls it back and, for a deadlock or a lock
    /// wait timeout (a client holding the rows a moment), waits a little longer each time and says
    /// to try again, up to 20 attempts.
    /// A duplicate-entry error over the copy key, by its name or one of the shadow's unique keys
    /// that hold it.
    fn on_copy_key(&self, e: &mysql_async::Error) -> bool {
        dup_key_name(&e.to_string())
            .is_some_and(|k| k == self.key_index || self.race_keys.iter().any(|r| r == k))
    }

    async fn again(&mut self, e: &mysql_async::Error, attempt: &mut u64) -> bool {
        let _ = self.conn.query_drop("ROLLBACK").await;
        *attempt += 1;
        // 1047: a Galera node not ready for a moment (it left the primary component briefly).
        if matches!(
            code(e),
            Some(ER_LOCK_DEADLOCK | ER_LOCK_WAIT_TIMEOUT | ER_WSREP_NOT_READY)
        ) && *attempt < 20
        {
            tokio::time::sleep(Duration::from_millis(50 * *attempt)).await;
            return true;
        }
        false
    }

    /// The original's copied columns: what the stage table holds (the fills' values are added on
    /// the way into the shadow, by `ocols`).
    fn orig_cols(&self) -> String {
        self.cols
            .iter()
            .map(|c| ident(&c.orig))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// What the copy selects from the original: its columns, then the fills' values.
    fn ocols(&self) -> String {
        self.cols
            .iter()
            .map(|c| ident(&c.orig))
            .chain(self.fills.iter().map(|(_, v)| v.to_string()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn scols(&self) -> String {
        self.cols
            .iter()
            .map(|c| ident(&c.shadow))
            .chain(self.fills.iter().map(|(n, _)| ident(n)))
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn key_names(&self, side: Side) -> Vec<String> {
        self.key.iter().map(|k| ident(side.name(k))).collect()
    }

    /// Key values as text (hex for binary columns), for reading boundaries and logged keys.
    fn key_select(&self, side: Side) -> String {
        self.key
            .iter()
            .map(|k| {
                if k.binary {
                    format!("HEX({})", ident(side.name(k)))
                } else {
                    format!("CAST({} AS CHAR)", ident(side.name(k)))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn placeholder(k: &KeyCol) -> &'static str {
        if k.binary {
            "UNHEX(?)"
        } else {
            "?"
        }
    }

    /// `key > v` (strict) or `key <= v`, expanded column by column for composite keys.
    fn cmp(&self, side: Side, v: &Key, greater: bool, params: &mut Vec<Value>) -> String {
        let n = self.key.len();
        let mut ors = Vec::new();
        for i in 0..n {
            let mut ands = Vec::new();
            for (k, val) in self.key[..i].iter().zip(v) {
                ands.push(format!(
                    "{} = {}",
                    ident(side.name(k)),
                    Self::placeholder(k)
                ));
                params.push(k.bind(val));
            }
            let k = &self.key[i];
            let op = match (greater, i == n - 1) {
                (true, _) => ">",
                (false, true) => "<=",
                (false, false) => "<",
            };
            ands.push(format!(
                "{} {op} {}",
                ident(side.name(k)),
                Self::placeholder(k)
            ));
            params.push(k.bind(&v[i]));
            ors.push(format!("({})", ands.join(" AND ")));
        }
        format!("({})", ors.join(" OR "))
    }

    fn range(
        &self,
        side: Side,
        lo: Option<&Key>,
        hi: Option<&Key>,
        params: &mut Vec<Value>,
    ) -> String {
        let mut parts = vec!["1 = 1".to_string()];
        if let Some(lo) = lo {
            parts.push(self.cmp(side, lo, true, params));
        }
        if let Some(hi) = hi {
            parts.push(self.cmp(side, hi, false, params));
        }
        parts.join(" AND ")
    }

    fn key_in(&self, side: Side, keys: &[Key], params: &mut Vec<Value>) -> String {
        if self.key.len() == 1 {
            let k = &self.key[0];
            let ph = vec![Self::placeholder(k); keys.len()].join(", ");
            params.extend(keys.iter().map(|v| k.bind(&v[0])));
            return format!("{} IN ({ph})", ident(side.name(k)));
        }
        let mut ors = Vec::new();
        for v in keys {
            let ands: Vec<String> = self
                .key
                .iter()
                .zip(v)
                .map(|(k, val)| {
                    params.push(k.bind(val));
                    format!("{} = {}", ident(side.name(k)), Self::placeholder(k))
                })
                .collect();
            ors.push(format!("({})", ands.join(" AND ")));
        }
        format!("({})", ors.join(" OR "))
    }

    /// The key that ends a chunk of `n` rows after `after` and not beyond `upto` (None: fewer rows
    /// remain).
    async fn boundary(
        &mut self,
        after: Option<&Key>,
        upto: Option<&Key>,
        n: i64,
    ) -> Result<Option<Key>> {
        let mut params = Vec::new();
        let range = self.range(Side::Orig, after, upto, &mut params);
        let order = self.key_names(Side::Orig).join(", ");
        let sql = format!(
            "SELECT {} FROM {} FORCE INDEX ({}) WHERE {range} ORDER BY {order} LIMIT 1 OFFSET {}",
            self.key_select(Side::Orig),
            ident(&self.table),
            ident(&self.key_index),
            (n - 1).max(0)
        );
        let rows: Vec<Row> = self
            .conn
            .exec(sql, Params::Positional(params))
            .await
            .map_err(|e| db("finding the next chunk", e))?;
        Ok(keys_of(rows).into_iter().next())
    }

    /// Runs `sqls` in one transaction, retrying sluice's own deadlocks and lock wait timeouts;
    /// returns the rows the first one affected.
    async fn tx(&mut self, sqls: Vec<(String, Vec<Value>)>) -> Result<u64> {
        self.try_tx(&sqls)
            .await
            .map_err(|e| db(&format!("copying `{}` online", self.table), e))
    }

    /// `tx` with the server's error as it came (the caller tells a duplicate from the rest).
    async fn try_tx(
        &mut self,
        sqls: &[(String, Vec<Value>)],
    ) -> std::result::Result<u64, mysql_async::Error> {
        let mut attempt = 0;
        loop {
            let r: std::result::Result<u64, mysql_async::Error> = async {
                self.conn.query_drop("START TRANSACTION").await?;
                let mut affected = None;
                for (sql, params) in sqls {
                    self.conn
                        .exec_drop(sql.as_str(), Params::Positional(params.clone()))
                        .await?;
                    affected.get_or_insert(self.conn.affected_rows());
                }
                self.conn.query_drop("COMMIT").await?;
                Ok(affected.unwrap_or(0))
            }
            .await;
            match r {
                Ok(n) => return Ok(n),
                Err(e) if self.again(&e, &mut attempt).await => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn copy_sql(&self, verb: &str, range: &str) -> String {
        format!(
            "{verb} INTO {} ({}) SELECT {} FROM {} FORCE INDEX ({}) WHERE {range}",
            ident(&self.names.shadow),
            self.scols(),
            self.ocols(),
            ident(&self.table),
            ident(&self.key_index)
        )
    }

    /// Copies every chunk after `last`, checkpointing each and handing it to the verifier (which
    /// also applies the change log meanwhile); returns when the table is copied.
    pub async fn copy(
        &mut self,
        mut last: Option<Key>,
        opts: &OnlineOptions,
        say: Say<'_>,
        ranges: &Ranges,
        discovered: Vec<sluice_core::dburl::DbUrl>,
    ) -> Result<()> {
        let mut n: i64 = 500;
        // The server's row estimate: for the progress percentage and the key density.
        let total: Option<Option<u64>> = self
            .conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (&self.table,),
            )
            .await
            .map_err(|e| db("reading the table size", e))?;
        let total = total.flatten().unwrap_or(0) as i64;
        let mut meter = Meter::new(
            format!("copy of `{}`", self.table),
            "rows",
            opts.progress.as_ref(),
            say,
        )
        .approximate();
        meter.update(self.rows_copied.max(0) as u64, total as u64, "");
        let dense = self.dense_integer_key(total).await?;
        let mut throttle = Throttle::with(&mut self.conn, opts, discovered).await?;
        let what = format!("copy of `{}`", self.table);
        // A row the log already brought over is left as it is: it was read later than a chunk
        // reads it, and any change since is logged. Not REPLACE: on a conflict over another unique
        // key it would delete a row of a chunk already verified; not IGNORE: it turns errors (a
        // value out of range) into warnings. A row left out over another unique key makes its
        // chunk's checksum differ, and the re-copy reports it.
        let first = format!(
            "{}.{}",
            ident(&self.names.shadow),
            ident(&self.key[0].shadow)
        );
        let keep_existing = format!("ON DUPLICATE KEY UPDATE {first} = {first}");
        let mut pace = match opts.commit_factor {
            Some(f) => {
                let p = CommitPace::start(&mut self.conn, &self.table, f).await?;
                say(&format!("{what}: {}", p.describe()));
                Some(p)
            }
            None => None,
        };
        let target = match pace {
            Some(_) => opts.target_chunk.min(PACED_CHUNK),
            None => opts.target_chunk,
        };
        loop {
            throttle.wait(&mut self.conn, &what, say).await?;
            let hi = match dense {
                // A chunk of n key values holds at most n rows (the key is unique): no need to
                // walk the index to find where n rows end.
                Some((min, max)) => {
                    let lo = match &last {
                        Some(k) => k[0].parse::<i128>().unwrap_or(min - 1),
                        None => min - 1,
                    };
                    let end = lo + n as i128;
                    (end < max).then(|| vec![end.to_string()])
                }
                None => self.boundary(last.as_ref(), None, n).await?,
            };
            let mut params = Vec::new();
            let range = self.range(Side::Orig, last.as_ref(), hi.as_ref(), &mut params);
            let copy = format!("{} {keep_existing}", self.copy_sql("INSERT", &range));
            let checkpoint = match &hi {
                Some(k) => serde_json::to_string(k).expect("strings serialise"),
                None => "\"done\"".to_string(),
            };
            let started = Instant::now();
            let copied = self
                .tx(
                    vec![
                        (copy, params),
                        (
                            "UPDATE `sluice_online` SET `last_key` = ?, `rows_copied` = `rows_copied` + ROW_COUNT(), \
                             `updated_at` = NOW(6) WHERE `table_name` = ?"
                                .into(),
                            vec![checkpoint.into(), self.table.clone().into()],
                        ),
                    ],
                )
                .await?;
            self.rows_copied += copied as i64;
            if ranges.send((last.clone(), hi.clone())).is_err() {
                // The verifier stopped on a difference it could not repair: its error tells.
                return Err(Error::database(
                    format!("copying `{}` online", self.table),
                    "the verification stopped",
                ));
            }
            // Aim each chunk at the target duration, changing the size by at most 2x per step.
            let took = started.elapsed().as_secs_f64().max(0.001);
            let ideal = n as f64 * target.as_secs_f64() / took;
            n = (ideal.clamp(n as f64 / 2.0, n as f64 * 2.0) as i64).clamp(10, 100_000);
            meter.update(
                self.rows_copied.max(0) as u64,
                total as u64,
                &format!(", chunk {n} rows"),
            );
            let Some(k) = hi else {
                if let Some(p) = &pace {
                    say(&format!(
                        "{what}: paused {:.1} s in all after {} chunk(s) whose commit probe was over {:.1} ms",
                        p.paused.as_secs_f64(),
                        p.slow,
                        p.budget_ms()
                    ));
                }
                return Ok(());
            };
            last = Some(k);
            if let Some(p) = pace.as_mut() {
                p.after_chunk(&mut self.conn, &self.table, started.elapsed())
                    .await?;
            }
        }
    }

    /// (min, max) of a single integer copy key whose values are dense enough (at least one row per
    /// five key values) to chunk by arithmetic ranges; None otherwise.
    async fn dense_integer_key(&mut self, rows: i64) -> Result<Option<(i128, i128)>> {
        if self.key.len() != 1 || !self.key[0].integer {
            return Ok(None);
        }
        let k = ident(&self.key[0].orig);
        let row: Option<(Option<String>, Option<String>)> = self
            .conn
            .query_first(format!(
                "SELECT CAST(MIN({k}) AS CHAR), CAST(MAX({k}) AS CHAR) FROM {}",
                ident(&self.table)
            ))
            .await
            .map_err(|e| db("reading the key range", e))?;
        let Some((Some(min), Some(max))) = row else {
            return Ok(None);
        };
        let (Ok(min), Ok(max)) = (min.parse::<i128>(), max.parse::<i128>()) else {
            return Ok(None);
        };
        Ok((rows as i128 * 5 > max - min).then_some((min, max)))
    }

    /// Reads up to `limit` entries of the change log (None: all of it), oldest first: their ids
    /// and the distinct keys they name.
    async fn read_log(&mut self, limit: Option<usize>) -> Result<(Vec<u64>, Vec<Key>)> {
        let mut params = Vec::new();
        let bound = self.bounded(&mut params);
        let sql = format!(
            "SELECT `_sluice_id`, {} FROM {} WHERE 1 = 1{bound} ORDER BY `_sluice_id`{}",
            self.key_select(Side::Chg),
            ident(&self.names.chg),
            limit.map(|n| format!(" LIMIT {n}")).unwrap_or_default()
        );
        let rows: Vec<Row> = self
            .conn
            .exec(sql, Params::Positional(params))
            .await
            .map_err(|e| db("reading the change log", e))?;
        let mut ids = Vec::with_capacity(rows.len());
        let mut keys = BTreeSet::new();
        for r in rows {
            let mut vals = r.unwrap().into_iter();
            let id = text(vals.next().unwrap_or(Value::NULL));
            ids.push(id.parse::<u64>().unwrap_or(0));
            keys.insert(vals.map(text).collect::<Key>());
        }
        Ok((ids, keys.into_iter().collect()))
    }

    /// Applies up to `limit` logged changes; returns how many log entries it consumed.
    ///
    /// The logged keys are replaced, never upserted: in one transaction their shadow rows are
    /// deleted, their current rows inserted again and their log entries removed. So the apply only
    /// ever changes rows of logged keys (an upsert that meets another row over a second unique key
    /// updates that row: two rows merged into one), and a kill leaves either the change applied and
    /// its entry gone, or neither.
    ///
    /// Rows that exchanged unique values (two users swapping emails, a reordered list) must arrive
    /// as of one moment: the rows are read together with the log, in one statement (one snapshot),
    /// into the stage table, and only then are the shadow rows of every key logged by that moment
    /// removed (see `replace`). The shadow then holds the original as it was at that moment, minus
    /// rows whose changes are still logged: a duplicate left is one the original itself held then.
    /// Such a duplicate is read again (a client may have fixed it meanwhile); met again over the
    /// same log, it is real, and fails as the ALTER as written would.
    pub async fn apply(&mut self, limit: usize) -> Result<usize> {
        self.apply_log(Some(limit), false).await
    }

    /// Applies the whole log with every logged key's shadow row removed first, so that the shadow
    /// holds exactly the original as of one moment, minus rows changed since: what a UNIQUE index
    /// built now must accept.
    pub async fn settle(&mut self) -> Result<usize> {
        self.apply_log(None, true).await
    }

    async fn apply_log(&mut self, limit: Option<usize>, settle: bool) -> Result<usize> {
        let mut failed: Option<(Vec<u64>, mysql_async::Error)> = None;
        let mut tries = 0;
        for _ in 0..12 {
            let (ids, keys) = self.read_log(limit).await?;
            if ids.is_empty() {
                return Ok(0);
            }
            if let Some((before, _)) = &failed {
                if *before == ids {
                    break;
                }
            }
            match self.replace(&ids, settle).await {
                Ok(()) => {
                    self.remember(keys);
                    return Ok(ids.len());
                }
                // On the copy key: another session inserted a row of the batch after the delete.
                // Again: the delete now finds it. While the copy runs the bound keeps its chunks
                // clear of the batch (see `Job::bound`); after it, the copy's session re-copies
                // ranges it verifies beside the verifier, and two applies may meet. Retried after
                // a pause that grows: 12 quick tries all met the same chunk still being copied
                // once (bench/mariadb_osc.py, 1M rows under load, before the bound).
                Err(e) if code(&e) == Some(ER_DUP_ENTRY) && self.on_copy_key(&e) => {
                    failed = Some((Vec::new(), e));
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(25 * tries)).await;
                }
                Err(e) if code(&e) == Some(ER_DUP_ENTRY) => failed = Some((ids, e)),
                Err(e) => return Err(db(&format!("copying `{}` online", self.table), e)),
            }
        }
        // The same duplicate over the same log, or clients kept writing for 12 tries: report the
        // duplicate rather than go on forever; the copy is removed and the table unchanged.
        let (_, err) = failed.expect("the loop ends on a duplicate");
        Err(db(&format!("copying `{}` online", self.table), err))
    }

    /// ` AND key <= bound` on the change log while `bound` is set (see [`Job::bound`]).
    fn bounded(&self, params: &mut Vec<Value>) -> String {
        match &self.bound {
            Some(b) => format!(" AND {}", self.cmp(Side::Chg, b, false, params)),
            None => String::new(),
        }
    }

    /// Keys applied, kept for re-verification.
    fn remember(&mut self, keys: Vec<Key>) {
        if self.overflowed {
            return;
        }
        let all = self
            .keep_all
            .as_ref()
            .is_some_and(|f| f.load(Ordering::SeqCst));
        match self.recheck_upto.filter(|_| !all) {
            Some(upto) => self.touched.extend(
                keys.into_iter()
                    .filter(|k| k[0].parse::<i128>().map_or(true, |v| v <= upto)),
            ),
            None => self.touched.extend(keys),
        }
        self.cap_touched();
    }

    /// Creates the stage table once per job: the copied columns of the original, typed as there
    /// (so the insert into the shadow converts exactly as one from the original), without keys.
    async fn stage(&mut self) -> std::result::Result<(), mysql_async::Error> {
        if self.stage_ready {
            return Ok(());
        }
        self.conn
            .query_drop(format!(
                "CREATE TABLE IF NOT EXISTS {} ENGINE=InnoDB AS SELECT {} FROM {} LIMIT 0",
                ident(&self.names.stage),
                self.orig_cols(),
                ident(&self.table)
            ))
            .await?;
        self.stage_ready = true;
        Ok(())
    }

    /// The distinct keys logged now, a consistent read: those of a batch (entries up to `upto`,
    /// within the bound, as `read_log` took them), or all.
    async fn logged_keys(
        &mut self,
        upto: Option<u64>,
    ) -> std::result::Result<Vec<Key>, mysql_async::Error> {
        let mut params = upto.map(|u| vec![Value::UInt(u)]).unwrap_or_default();
        let filter = match upto {
            Some(_) => format!(" WHERE `_sluice_id` <= ?{}", self.bounded(&mut params)),
            None => String::new(),
        };
        let sql = format!(
            "SELECT DISTINCT {} FROM {}{filter}",
            self.key_select(Side::Chg),
            ident(&self.names.chg),
        );
        let rows: Vec<Row> = self.conn.exec(sql, Params::Positional(params)).await?;
        Ok(keys_of(rows))
    }

    async fn delete_shadow(&mut self, keys: &[Key]) -> std::result::Result<(), mysql_async::Error> {
        for batch in keys.chunks(2_500) {
            let mut params = Vec::new();
            let cond = self.key_in(Side::Shadow, batch, &mut params);
            self.conn
                .exec_drop(
                    format!("DELETE FROM {} WHERE {cond}", ident(&self.names.shadow)),
                    Params::Positional(params),
                )
                .await?;
        }
        Ok(())
    }

    /// In one transaction: the log entries `ids` applied and removed. Retries sluice's own
    /// deadlocks and lock wait timeouts; any other error comes back as the server gave it.
    async fn replace(
        &mut self,
        ids: &[u64],
        settle: bool,
    ) -> std::result::Result<(), mysql_async::Error> {
        self.stage().await?;
        let mut attempt = 0;
        loop {
            self.conn.query_drop("START TRANSACTION").await?;
            match self.replace_once(ids, settle).await {
                Ok(()) => return Ok(()),
                Err(e) if self.again(&e, &mut attempt).await => continue,
                Err(e) => return Err(e),
            }
        }
    }

    /// The body of `replace`, inside its transaction (READ COMMITTED: each read is a consistent
    /// read of its own moment, taking no lock a client could wait for).
    ///
    /// 1. One statement reads the log entries up to the batch's last id and the current rows of
    ///    their keys into the stage: log and rows of one moment, M.
    /// 2. The shadow rows of the keys logged up to that id are deleted (read after M, so they
    ///    include every staged key). Every other shadow row is the original's row at M unless its
    ///    key has an entry after that id (a change after M, or one further down the log).
    /// 3. The staged rows go into the shadow. A duplicate over another unique key there can only
    ///    be with such a row: the shadow rows of every key logged now (read after M: all of them)
    ///    are deleted too and the insert runs again. Their entries stay in the log, so a later
    ///    batch brings them back. A duplicate now is one the original held at M. `settle` deletes
    ///    every logged key's row before the first insert.
    /// 4. The batch's entries are removed and the stage is emptied.
    async fn replace_once(
        &mut self,
        ids: &[u64],
        settle: bool,
    ) -> std::result::Result<(), mysql_async::Error> {
        let upto = ids.iter().copied().max().unwrap_or(0);
        let stage = ident(&self.names.stage);
        let on: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("`_x`.{} = `_c`.{}", ident(&k.orig), ident(&k.chg)))
            .collect();
        let xcols: Vec<String> = self
            .cols
            .iter()
            .map(|c| format!("`_x`.{}", ident(&c.orig)))
            .collect();
        let mut params = vec![Value::UInt(upto)];
        let bound = self.bounded(&mut params);
        // The derived log table first, then the original by its key: one lookup per logged key.
        let fill = format!(
            "INSERT INTO {stage} ({}) SELECT STRAIGHT_JOIN {} FROM (SELECT DISTINCT {} FROM {} WHERE `_sluice_id` <= ?{bound}) AS `_c` \
             JOIN {} AS `_x` FORCE INDEX ({}) ON {}",
            self.orig_cols(),
            xcols.join(", "),
            self.key.iter().map(|k| ident(&k.chg)).collect::<Vec<_>>().join(", "),
            ident(&self.names.chg),
            ident(&self.table),
            ident(&self.key_index),
            on.join(" AND ")
        );
        self.conn
            .exec_drop(fill, Params::Positional(params))
            .await?;
        let doomed = self
            .logged_keys(if settle { None } else { Some(upto) })
            .await?;
        self.delete_shadow(&doomed).await?;
        // Test hook: the shadow rows of the logged keys are deleted, the batch's insert not run.
        // The copy goes on meanwhile.
        sluice_core::pause_point_async("online-apply-deleted").await;
        let put = format!(
            "INSERT INTO {} ({}) SELECT {} FROM {stage}",
            ident(&self.names.shadow),
            self.scols(),
            self.ocols()
        );
        match self.conn.query_drop(&put).await {
            Ok(()) => {}
            Err(e) if !settle && code(&e) == Some(ER_DUP_ENTRY) && !self.on_copy_key(&e) => {
                // A failed statement is undone alone; the transaction and the stage stay.
                let done: BTreeSet<Key> = doomed.into_iter().collect();
                let rest: Vec<Key> = self
                    .logged_keys(None)
                    .await?
                    .into_iter()
                    .filter(|k| !done.contains(k))
                    .collect();
                self.delete_shadow(&rest).await?;
                self.conn.query_drop(&put).await?;
            }
            Err(e) => return Err(e),
        }
        for batch in ids.chunks(10_000) {
            let ph = vec!["?"; batch.len()].join(", ");
            self.conn
                .exec_drop(
                    format!(
                        "DELETE FROM {} WHERE `_sluice_id` IN ({ph})",
                        ident(&self.names.chg)
                    ),
                    Params::Positional(batch.iter().map(|&i| Value::UInt(i)).collect()),
                )
                .await?;
        }
        // Empty again for the next apply (of this session or another): never committed with rows.
        self.conn.query_drop(format!("DELETE FROM {stage}")).await?;
        self.conn.query_drop("COMMIT").await
    }

    /// Applies up to `limit` logged changes as [`Job::apply`] does, counting them on `meter`.
    async fn apply_metered(
        &mut self,
        limit: usize,
        meter: Option<&mut LogMeter<'_>>,
    ) -> Result<usize> {
        let n = self.apply(limit).await?;
        if let Some(m) = meter {
            m.applied += n as u64;
            if m.meter.due() {
                // The log holds only what is not applied yet; its id span bounds that from above
                // at the cost of two index lookups (a count would read the whole backlog).
                let span: Option<Option<i64>> = self
                    .conn
                    .query_first(format!(
                        "SELECT CAST(MAX(`_sluice_id`) - MIN(`_sluice_id`) + 1 AS SIGNED) FROM {}",
                        ident(&self.names.chg)
                    ))
                    .await
                    .unwrap_or(None);
                let backlog = span.flatten().unwrap_or(0).max(0) as u64;
                m.meter.update(
                    m.applied,
                    m.applied + backlog,
                    &format!(", backlog ~{backlog}"),
                );
            }
        }
        Ok(n)
    }

    /// Follows applying the change log: entries applied, the backlog left, rate and time left.
    pub fn log_meter<'a>(&self, opts: &OnlineOptions, say: Say<'a>) -> LogMeter<'a> {
        LogMeter {
            meter: Meter::new(
                format!("catch-up of `{}`", self.table),
                "log entries",
                opts.progress.as_ref(),
                say,
            )
            .approximate(),
            applied: 0,
        }
    }

    /// Applies the change log until a batch finds it nearly empty (it never empties while clients
    /// write), or for about five seconds; returns how many entries it applied.
    pub async fn apply_backlog(&mut self, meter: &mut LogMeter<'_>) -> Result<usize> {
        let mut total = 0;
        let started = Instant::now();
        loop {
            let n = self.apply_metered(5_000, Some(meter)).await?;
            total += n;
            // Nearly empty: caught up. After a few seconds the caller gets control back either
            // way, to report progress and bound its rounds: clients logging changes faster than
            // they are applied would otherwise keep the run here, silently, for ever.
            if n < 1_000 || started.elapsed() > Duration::from_secs(5) {
                return Ok(total);
            }
        }
    }

    /// Applies the change log until it is empty (or `max_rounds` batches were applied).
    pub async fn drain(
        &mut self,
        max_rounds: usize,
        mut meter: Option<&mut LogMeter<'_>>,
    ) -> Result<usize> {
        let mut total = 0;
        for _ in 0..max_rounds {
            let n = self.apply_metered(5_000, meter.as_deref_mut()).await?;
            total += n;
            if n == 0 {
                break;
            }
        }
        Ok(total)
    }

    fn row_hash(&self, side: Side) -> String {
        let (exprs, nulls): (Vec<String>, Vec<String>) = self
            .cols
            .iter()
            .map(|c| {
                let (name, from) = match side {
                    Side::Orig => (ident(&c.orig), c.from.as_str()),
                    _ => (ident(&c.shadow), c.new.data_type.as_str()),
                };
                let e = conv(&name, from, &c.new, c.changed);
                // An unchanged column's bytes are NULL exactly when it is: its NULL mark reads
                // the column, not the cast again (a fifth of the checksum's CPU on 1M rows). A
                // conversion may turn a value into NULL, so a changed column's mark reads that.
                let null = match c.changed {
                    false => format!("ISNULL({name})"),
                    true => format!("ISNULL({e})"),
                };
                (e, null)
            })
            .unzip();
        // CRC32 is linear: XORed over rows, the same change made to two rows cancels out. The
        // outer CRC32 over the inner one's decimal digits is not, so such pairs no longer hide.
        format!(
            "COALESCE(BIT_XOR(CRC32(CRC32(CONCAT_WS('|', {}, CONCAT({}))))), 0)",
            exprs.join(", "),
            nulls.join(", ")
        )
    }

    /// (rows, checksum) of both tables over one set of keys, leaving out keys with changes pending
    /// in the log (they differ legitimately until applied, and are verified after they are), read
    /// in one snapshot.
    ///
    /// The pending keys are read first, by an index range on the log, and left out by key: a
    /// per-row NOT EXISTS against the log made verification several times dearer than the
    /// checksums themselves (2.8 s against about 0.6 s on 1M rows). Only when very many keys of
    /// one range are pending does it fall back to that.
    async fn compare(&mut self, which: &Which<'_>) -> Result<((i64, u64), (i64, u64))> {
        let mut out = Vec::new();
        self.conn
            .query_drop("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(|e| db("starting the checksum", e))?;
        self.conn
            .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(|e| db("starting the checksum", e))?;
        let r: std::result::Result<(), mysql_async::Error> = async {
            let mut params = Vec::new();
            let cond = match which {
                Which::Range(lo, hi) => self.range(Side::Chg, *lo, *hi, &mut params),
                Which::Keys(all) => self.key_in(Side::Chg, all, &mut params),
            };
            let pending: Vec<Row> = self
                .conn
                .exec(
                    format!(
                        "SELECT DISTINCT {} FROM {} WHERE {cond} LIMIT {}",
                        self.key_select(Side::Chg),
                        ident(&self.names.chg),
                        PENDING_BY_KEY + 1
                    ),
                    Params::Positional(params),
                )
                .await?;
            let pending: Vec<Key> = keys_of(pending);
            let by_join = pending.len() > PENDING_BY_KEY;
            let mut keys: Vec<Key> = Vec::new();
            if let Which::Keys(all) = which {
                let pending: BTreeSet<&Key> = pending.iter().collect();
                keys = all
                    .iter()
                    .filter(|k| !pending.contains(*k))
                    .cloned()
                    .collect();
                if keys.is_empty() {
                    out = vec![(0, 0), (0, 0)];
                    return Ok(());
                }
            }
            for side in [Side::Orig, Side::Shadow] {
                let mut params = Vec::new();
                let mut cond = match which {
                    Which::Range(lo, hi) => self.range(side, *lo, *hi, &mut params),
                    Which::Keys(_) => self.key_in(side, &keys, &mut params),
                };
                let table = match side {
                    Side::Orig => &self.table,
                    _ => &self.names.shadow,
                };
                if matches!(which, Which::Range(..)) && !pending.is_empty() {
                    if by_join {
                        let same: Vec<String> = self
                            .key
                            .iter()
                            .map(|k| {
                                format!("`_c`.{} = `_x`.{}", ident(&k.chg), ident(side.name(k)))
                            })
                            .collect();
                        cond = format!(
                            "{cond} AND NOT EXISTS (SELECT 1 FROM {} AS `_c` WHERE {})",
                            ident(&self.names.chg),
                            same.join(" AND ")
                        );
                    } else {
                        let not = self.key_in(side, &pending, &mut params);
                        cond = format!("{cond} AND NOT ({not})");
                    }
                }
                let sql = format!(
                    "SELECT COUNT(*), {} FROM {} AS `_x` WHERE {cond}",
                    self.row_hash(side),
                    ident(table)
                );
                let row: Option<(i64, u64)> = self
                    .conn
                    .exec_first(sql, Params::Positional(params))
                    .await?;
                out.push(row.unwrap_or((0, 0)));
            }
            Ok(())
        }
        .await;
        let _ = self.conn.query_drop("COMMIT").await;
        r.map_err(|e| db("computing checksums", e))?;
        Ok((out[0], out[1]))
    }

    /// Copies the rows of a set of keys again from scratch.
    async fn recopy(&mut self, which: &Which<'_>) -> Result<()> {
        let mut p1 = Vec::new();
        let mut p2 = Vec::new();
        let (c1, c2) = match which {
            Which::Range(lo, hi) => (
                self.range(Side::Shadow, *lo, *hi, &mut p1),
                self.range(Side::Orig, *lo, *hi, &mut p2),
            ),
            Which::Keys(keys) => (
                self.key_in(Side::Shadow, keys, &mut p1),
                self.key_in(Side::Orig, keys, &mut p2),
            ),
        };
        let sqls = vec![
            (
                format!("DELETE FROM {} WHERE {c1}", ident(&self.names.shadow)),
                p1,
            ),
            (self.copy_sql("INSERT", &c2), p2),
        ];
        self.tx(sqls).await.map(|_| ())
    }

    /// Checks one set of keys, re-copying it while it differs.
    async fn check(&mut self, which: Which<'_>) -> Result<()> {
        for recopied in 0..3 {
            let (a, b) = self.compare(&which).await?;
            if a == b {
                return Ok(());
            }
            if recopied == 2 {
                break;
            }
            if let Err(e) = self.recopy(&which).await {
                // A unique conflict with a stale row outside the range that the log will fix:
                // drain and retry once; a real one (duplicates the new key refuses) stays. The
                // stale row may lie beyond the verified end: the whole log.
                let bound = self.bound.take();
                let drained = self.drain(4, None).await;
                self.bound = bound;
                drained?;
                if recopied == 1 {
                    return Err(e);
                }
            }
        }
        let (a, b) = self.compare(&which).await?;
        Err(Error::Database {
            context: format!("verifying the online copy of `{}`", self.table),
            message: format!(
                "the shadow table {} {STILL_DIFFERS} from the original after re-copying ({} vs {} rows{})",
                self.names.shadow,
                a.0,
                b.0,
                match &which {
                    Which::Range(lo, _) => format!(", keys after {lo:?}"),
                    Which::Keys(k) => format!(", keys like {:?}", k.first()),
                }
            ),
            help: "sluice did not swap the tables. The ALTER probably cannot convert these rows the way the copy does \
                   (e.g. a new UNIQUE key over duplicate values). Check the rows, then `sluice cleanup --abort` and fix the migration"
                .into(),
        })
    }

    /// Verifies the whole table chunk by chunk; keys applied meanwhile are re-verified after.
    /// Reports chunks verified of the server's estimate of the table's chunks.
    pub async fn verify(&mut self, opts: &OnlineOptions, say: Say<'_>) -> Result<()> {
        self.touched.clear();
        self.overflowed = false;
        let rows: Option<Option<u64>> = self
            .conn
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (&self.table,),
            )
            .await
            .map_err(|e| db("reading the table size", e))?;
        let total = rows
            .flatten()
            .unwrap_or(0)
            .div_ceil(VERIFY_ROWS as u64)
            .max(1);
        let mut meter = Meter::new(
            format!("verification of `{}`", self.table),
            "chunks",
            opts.progress.as_ref(),
            say,
        )
        .approximate();
        meter.update(0, total, "");
        let chunks = self
            .verify_chunks(None, None, Some((&mut meter, total)))
            .await?;
        meter.finish();
        self.verify_touched().await?;
        say(&format!(
            "verified `{}` against {}: {chunks} chunk(s) match",
            self.table, self.names.shadow
        ));
        Ok(())
    }

    /// Verifies the keys in (`lo`, `hi`] in chunks of at most `VERIFY_ROWS` rows; returns how many
    /// chunks it checked.
    pub async fn verify_range(&mut self, lo: Option<&Key>, hi: Option<&Key>) -> Result<usize> {
        self.verify_chunks(lo, hi, None).await
    }

    async fn verify_chunks(
        &mut self,
        lo: Option<&Key>,
        hi: Option<&Key>,
        mut meter: Option<(&mut Meter<'_>, u64)>,
    ) -> Result<usize> {
        let mut lo: Option<Key> = lo.cloned();
        let mut chunks = 0;
        loop {
            let end = self.boundary(lo.as_ref(), hi, VERIFY_ROWS).await?;
            let upto = end.as_ref().or(hi);
            self.check(Which::Range(lo.as_ref(), upto)).await?;
            chunks += 1;
            if let Some((m, estimate)) = meter.as_mut() {
                // The estimate may be short: while chunks remain the total stays ahead of the
                // count, and the last chunk makes it exact.
                let done = chunks as u64;
                let last = !matches!(&end, Some(h) if Some(h) != hi);
                let total = if last {
                    done
                } else {
                    (*estimate).max(done + 1)
                };
                m.update(done, total, "");
            }
            match end {
                Some(h) if Some(&h) != hi => lo = Some(h),
                _ => return Ok(chunks),
            }
        }
    }

    /// The copy's triggers on a Galera node: each writes the change log while the control table's
    /// flag row (`names.ctl`) says 0; once it says 1 (`cutover::galera_swap`, a row update that
    /// replicates as a row, not a DDL) it writes the change straight into the shadow instead, by
    /// key, converted the way the copy converts (the same columns and fills; the triggers keep the
    /// sql_mode of the session that creates them, the copy's), in the client's own transaction.
    /// So the cut-over needs no second set of triggers, nor a drop of these, while `t` is written:
    /// the only DDLs on it are these three CREATEs and the RENAME.
    ///
    /// Each row change is logged or written directly, never neither: a client transaction that
    /// read the flag before it was set (on another node, or before this node applied the update)
    /// logs its change, which the cut-over drains before its checksum. (The flag's read is
    /// usually a locking read, InnoDB's rule for a table read by a data change, so the update
    /// waits for, or on other nodes aborts, the client statements holding it.) REPLACE, not INSERT: a
    /// shadow row still holding an older value of a unique column (its change logged, not yet
    /// applied) gives way instead of failing the client's write; the log drain then brings that
    /// row back as it is now. `LOW_PRIORITY` (no effect on InnoDB) marks these statements in the
    /// process list as a client's (`in_trigger`).
    pub fn galera_triggers(&self) -> [String; 3] {
        let t = ident(&self.table);
        let s = ident(&self.names.shadow);
        let put = |row: &str| {
            let vals: Vec<String> = self
                .cols
                .iter()
                .map(|c| format!("{row}.{}", ident(&c.orig)))
                .chain(self.fills.iter().map(|(_, v)| v.to_string()))
                .collect();
            format!(
                "REPLACE LOW_PRIORITY INTO {s} ({}) VALUES ({})",
                self.scols(),
                vals.join(", ")
            )
        };
        let del = |row: &str| {
            let on: Vec<String> = self
                .key
                .iter()
                .map(|k| format!("{} = {row}.{}", ident(&k.shadow), ident(&k.orig)))
                .collect();
            format!("DELETE LOW_PRIORITY FROM {s} WHERE {}", on.join(" AND "))
        };
        let log = |row: &str| {
            let kcols: Vec<String> = self.key.iter().map(|k| ident(&k.chg)).collect();
            let vals: Vec<String> = self
                .key
                .iter()
                .map(|k| format!("{row}.{}", ident(&k.orig)))
                .collect();
            format!(
                "INSERT INTO {} ({}) VALUES ({})",
                ident(&self.names.chg),
                kcols.join(", "),
                vals.join(", ")
            )
        };
        let same_key: Vec<String> = self
            .key
            .iter()
            .map(|k| format!("OLD.{0} <=> NEW.{0}", ident(&k.orig)))
            .collect();
        let same_key = same_key.join(" AND ");
        let direct = format!(
            "(SELECT `direct` FROM {} WHERE `id` = 1) = 1",
            ident(&self.names.ctl)
        );
        let n = &self.names.triggers;
        [
            format!(
                "CREATE TRIGGER {} AFTER INSERT ON {t} FOR EACH ROW BEGIN IF {direct} THEN {}; ELSE {}; END IF; END",
                ident(&n[0]),
                put("NEW"),
                log("NEW")
            ),
            format!(
                "CREATE TRIGGER {} AFTER UPDATE ON {t} FOR EACH ROW BEGIN IF {direct} THEN \
                 IF NOT ({same_key}) THEN {}; END IF; {}; \
                 ELSE {}; IF NOT ({same_key}) THEN {}; END IF; END IF; END",
                ident(&n[1]),
                del("OLD"),
                put("NEW"),
                log("OLD"),
                log("NEW")
            ),
            format!(
                "CREATE TRIGGER {} AFTER DELETE ON {t} FOR EACH ROW BEGIN IF {direct} THEN {}; ELSE {}; END IF; END",
                ident(&n[2]),
                del("OLD"),
                log("OLD")
            ),
        ]
    }

    /// In one consistent snapshot: the change log's entries, and (rows, checksum) of the whole
    /// original and the whole shadow. Once the triggers write both tables in each client's
    /// transaction (`galera_triggers`) and the log is empty, a snapshot sees them equal, or the copy is wrong.
    pub async fn snapshot_sums(&mut self) -> Result<(i64, (i64, u64), (i64, u64))> {
        self.conn
            .query_drop("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            .await
            .map_err(|e| db("starting the final checksum", e))?;
        self.conn
            .query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
            .await
            .map_err(|e| db("starting the final checksum", e))?;
        let r: std::result::Result<_, mysql_async::Error> = async {
            let pending: Option<i64> = self
                .conn
                .query_first(format!("SELECT COUNT(*) FROM {}", ident(&self.names.chg)))
                .await?;
            let mut sums = Vec::new();
            for (side, table) in [
                (Side::Orig, self.table.clone()),
                (Side::Shadow, self.names.shadow.clone()),
            ] {
                let row: Option<(i64, u64)> = self
                    .conn
                    .query_first(format!(
                        "SELECT COUNT(*), {} FROM {} AS `_x`",
                        self.row_hash(side),
                        ident(&table)
                    ))
                    .await?;
                sums.push(row.unwrap_or((0, 0)));
            }
            Ok((pending.unwrap_or(0), sums[0], sums[1]))
        }
        .await;
        let _ = self.conn.query_drop("COMMIT").await;
        r.map_err(|e| db("computing the final checksum", e))
    }

    /// Verifies the keys applied since the last verification.
    pub async fn verify_touched(&mut self) -> Result<()> {
        for _ in 0..5 {
            if self.touched.is_empty() {
                return Ok(());
            }
            let keys: Vec<Key> = std::mem::take(&mut self.touched).into_iter().collect();
            for batch in keys.chunks(2_000) {
                self.check(Which::Keys(batch)).await?;
            }
        }
        Ok(())
    }
}

#[derive(Clone, Copy)]
pub enum Side {
    Orig,
    Shadow,
    Chg,
}

impl Side {
    fn name(self, k: &KeyCol) -> &str {
        match self {
            Side::Orig => &k.orig,
            Side::Shadow => &k.shadow,
            Side::Chg => &k.chg,
        }
    }
}

pub enum Which<'a> {
    Range(Option<&'a Key>, Option<&'a Key>),
    Keys(&'a [Key]),
}

pub fn no_key(table: &str) -> Error {
    Error::usage(
        format!("`{table}` has no primary key or unique key over NOT NULL columns: sluice cannot copy it online"),
        "add a primary key first (e.g. `ALTER TABLE t ADD COLUMN id BIGINT AUTO_INCREMENT PRIMARY KEY`, itself an online change on MariaDB), \
         or run this ALTER with `sluice up --as-written` in a maintenance window",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn rows(
        c: &mut Conn,
        t: &str,
        upto: Option<i64>,
    ) -> Vec<(i64, Option<i64>, Option<String>)> {
        let cond = upto
            .map(|u| format!(" WHERE id <= {u}"))
            .unwrap_or_default();
        c.query(format!(
            "SELECT id, v, s FROM {}{cond} ORDER BY id",
            ident(t)
        ))
        .await
        .unwrap()
    }

    /// The verifier's apply while the copy runs (`Job::bound`): every kind of change logged for
    /// keys on both sides of the bound (inserts, updates, deletes, a key moved across it, NULLs,
    /// several entries of one key in one batch). Keys up to the bound come over as the original
    /// has them now and their entries go; keys beyond it are left alone, shadow rows and log
    /// entries, until an apply without a bound brings them.
    #[tokio::test]
    async fn a_bounded_apply_takes_only_keys_up_to_the_bound_and_leaves_the_rest_logged() {
        let db = sluice_testkit::TestDb::mariadb().await;
        let mut c = db.my().await;
        let names = Names::of("t");
        for sql in [
            "CREATE TABLE t (id INT PRIMARY KEY, v INT NULL, s VARCHAR(10) NULL)".to_string(),
            "INSERT INTO t SELECT seq, seq * 10, CONCAT('s', seq) FROM seq_1_to_10".into(),
            format!("CREATE TABLE {} LIKE t", ident(&names.shadow)),
            format!("ALTER TABLE {} MODIFY v BIGINT NULL", ident(&names.shadow)),
            format!("INSERT INTO {} SELECT * FROM t", ident(&names.shadow)),
            format!(
                "CREATE TABLE {} (`_sluice_id` BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY, \
                 `k0` INT NOT NULL, KEY `k` (`k0`))",
                ident(&names.chg)
            ),
        ] {
            c.query_drop(sql).await.unwrap();
        }
        let before_shadow = rows(&mut c, &names.shadow, None).await;
        // (what a client does, the keys its triggers log)
        let changes: &[(&str, &[i64])] = &[
            ("UPDATE t SET v = v + 1 WHERE id = 2", &[2]),
            ("INSERT INTO t VALUES (11, 110, 's11')", &[11]),
            ("DELETE FROM t WHERE id = 3", &[3]),
            ("UPDATE t SET id = 40 WHERE id = 4", &[4, 40]),
            ("UPDATE t SET v = NULL, s = NULL WHERE id = 5", &[5]),
            ("UPDATE t SET v = 7 WHERE id = 8", &[8]),
            ("UPDATE t SET v = NULL WHERE id = 8", &[8]),
            ("INSERT INTO t VALUES (12, NULL, NULL)", &[12]),
            ("DELETE FROM t WHERE id = 12", &[12]),
            ("DELETE FROM t WHERE id = 1", &[1]),
            ("INSERT INTO t VALUES (1, NULL, 'again')", &[1]),
            ("UPDATE t SET v = 60 WHERE id = 6", &[6]),
        ];
        for (sql, keys) in changes {
            c.query_drop(*sql).await.unwrap();
            for k in *keys {
                c.query_drop(format!(
                    "INSERT INTO {} (k0) VALUES ({k})",
                    ident(&names.chg)
                ))
                .await
                .unwrap();
            }
        }
        let live = super::super::table::read(&mut c, "t")
            .await
            .unwrap()
            .unwrap();
        let shadow = super::super::table::read(&mut c, &names.shadow)
            .await
            .unwrap()
            .unwrap();
        let cols: Vec<(String, String)> = ["id", "v", "s"]
            .iter()
            .map(|n| (n.to_string(), n.to_string()))
            .collect();
        let mut job = Job::build(db.my().await, &live, &shadow, &cols).unwrap();
        let bound = 5;
        job.bound = Some(vec![bound.to_string()]);
        let logged: usize = changes.iter().map(|(_, k)| k.len()).sum();
        let below = changes
            .iter()
            .flat_map(|(_, k)| k.iter())
            .filter(|&&k| k <= bound)
            .count();
        assert_eq!(job.apply(5_000).await.unwrap(), below);
        let left: Vec<i64> = c
            .query(format!(
                "SELECT k0 FROM {} ORDER BY _sluice_id",
                ident(&names.chg)
            ))
            .await
            .unwrap();
        let want_left: Vec<i64> = changes
            .iter()
            .flat_map(|(_, k)| k.iter().copied())
            .filter(|&k| k > bound)
            .collect();
        assert_eq!(left, want_left, "entries beyond the bound stay logged");
        assert_eq!(
            rows(&mut c, &names.shadow, Some(bound)).await,
            rows(&mut c, "t", Some(bound)).await,
            "keys up to the bound are applied"
        );
        let beyond = |r: Vec<(i64, Option<i64>, Option<String>)>| {
            r.into_iter().filter(|x| x.0 > bound).collect::<Vec<_>>()
        };
        assert_eq!(
            beyond(rows(&mut c, &names.shadow, None).await),
            beyond(before_shadow),
            "shadow rows beyond the bound are untouched"
        );
        let applied: BTreeSet<Key> = job.touched.iter().cloned().collect();
        assert!(
            applied
                .iter()
                .all(|k| k[0].parse::<i64>().unwrap() <= bound),
            "{applied:?}"
        );
        job.bound = None;
        assert_eq!(job.apply(5_000).await.unwrap(), logged - below);
        assert_eq!(
            rows(&mut c, &names.shadow, None).await,
            rows(&mut c, "t", None).await
        );
        let _ = job.conn.disconnect().await;
    }

    #[test]
    fn duplicate_entry_errors_name_their_key() {
        for (msg, want) in [
            (
                "Duplicate entry '885164' for key 'PRIMARY'",
                Some("PRIMARY"),
            ),
            (
                "Duplicate entry '885164' for key '_acc_new.PRIMARY'",
                Some("PRIMARY"),
            ),
            ("Duplicate entry 'a' for key 'uk_email'", Some("uk_email")),
            ("Duplicate entry 'for key ' for key 't.uk'", Some("uk")),
            ("Deadlock found", None),
        ] {
            assert_eq!(dup_key_name(msg), want, "{msg}");
        }
    }

    #[test]
    fn set_members_read_quoted_lists() {
        for (rest, want) in [
            ("'x','y','z')", Some(vec!["x", "y", "z"])),
            ("'it''s','a,b')", Some(vec!["it's", "a,b"])),
            ("'')", Some(vec![""])),
            ("'x'", None),
            ("x)", None),
            ("'x';", None),
        ] {
            let want = want.map(|w| w.into_iter().map(String::from).collect::<Vec<_>>());
            assert_eq!(set_members(rest), want, "{rest}");
        }
    }

    #[test]
    fn implicit_defaults_only_for_not_null_columns_without_one() {
        let col = |data_type: &str, nullable: bool, default: Option<&str>| LiveColumn {
            name: "d".into(),
            column_type: data_type.into(),
            data_type: data_type.into(),
            nullable,
            default: default.map(String::from),
            ..Default::default()
        };
        for (ty, want) in [
            ("int", Some("0")),
            ("decimal", Some("0")),
            ("bit", Some("0")),
            ("year", Some("0")),
            ("varchar", Some("''")),
            ("longtext", Some("''")),
            ("blob", Some("''")),
            ("set", Some("''")),
            ("enum", Some("1")),
            ("date", Some("'0000-00-00'")),
            ("timestamp", Some("'0000-00-00 00:00:00'")),
            ("time", Some("'00:00:00'")),
            ("uuid", Some("'00000000-0000-0000-0000-000000000000'")),
            ("point", None),
        ] {
            assert_eq!(implicit_default(&col(ty, false, None)), want, "{ty}");
            assert_eq!(implicit_default(&col(ty, true, None)), None, "{ty} NULL");
            assert_eq!(
                implicit_default(&col(ty, false, Some("5"))),
                None,
                "{ty} DEFAULT"
            );
        }
        let auto = LiveColumn {
            auto_increment: true,
            ..col("int", false, None)
        };
        assert_eq!(implicit_default(&auto), None);
    }

    #[test]
    fn checksums_read_both_sides_as_the_new_type() {
        let new = |column_type: &str, data_type: &str| LiveColumn {
            name: "c".into(),
            column_type: column_type.into(),
            data_type: data_type.into(),
            ..Default::default()
        };
        for (from, to, data_type, want) in [
            (
                "time",
                "time(3)",
                "time",
                "CAST(CAST(`c` AS TIME(3)) AS BINARY)",
            ),
            (
                "binary",
                "binary(8)",
                "binary",
                "CAST(CAST(`c` AS BINARY(8)) AS BINARY)",
            ),
            (
                "bit",
                "bit(16)",
                "bit",
                "CAST(CONV(HEX(`c`), 16, 10) AS BINARY)",
            ),
            (
                "double",
                "float",
                "float",
                "CAST(CAST(`c` AS FLOAT) AS BINARY)",
            ),
            (
                "decimal",
                "decimal(12,5)",
                "decimal",
                "CAST(CAST(`c` AS DECIMAL(12,5)) AS BINARY)",
            ),
            (
                "datetime",
                "datetime(6)",
                "datetime",
                "CAST(CAST(`c` AS DATETIME(6)) AS BINARY)",
            ),
            (
                "smallint",
                "year(4)",
                "year",
                "CAST(IF(`c` = 0, 0, YEAR(MAKEDATE(`c`, 1))) AS BINARY)",
            ),
            (
                "varchar",
                "year(4)",
                "year",
                "CAST(YEAR(MAKEDATE(`c`, 1)) AS BINARY)",
            ),
        ] {
            assert_eq!(
                conv("`c`", from, &new(to, data_type), true),
                want,
                "{from} -> {to}"
            );
        }
        let set = conv("`c`", "set", &new("set('z','x')", "set"), true);
        assert_eq!(
            set,
            "CAST(IF(`c` IS NULL, NULL, ((FIND_IN_SET(CONVERT(X'7A' USING utf8mb4), CONVERT(`c` USING utf8mb4)) > 0) << 0) \
             | ((FIND_IN_SET(CONVERT(X'78' USING utf8mb4), CONVERT(`c` USING utf8mb4)) > 0) << 1)) AS BINARY)"
        );
        assert_eq!(
            conv("`c`", "int", &new("set('z','x')", "set"), true),
            "CAST(CAST(`c` AS UNSIGNED) AS BINARY)"
        );
        assert_eq!(
            conv("`c`", "tinyint", &new("enum('a','b')", "enum"), true),
            "CAST(ELT(`c`, CONVERT(X'61' USING utf8mb4), CONVERT(X'62' USING utf8mb4)) AS BINARY)"
        );
        assert_eq!(
            conv("`c`", "enum", &new("enum('a','b')", "enum"), true),
            "CAST(CONVERT(`c` USING utf8mb4) AS BINARY)"
        );
        assert_eq!(
            conv("`c`", "int", &new("int(11)", "int"), false),
            "CAST(`c` AS BINARY)"
        );
    }
}
