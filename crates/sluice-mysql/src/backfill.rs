//! The batched backfill on MariaDB/MySQL (`UPDATE t SET <set> WHERE <filter>` by primary-key
//! ranges), as the two-phase rename's expand phase runs it.
//!
//! Each batch is one autocommitted UPDATE over a key range found first by a plain read (no
//! shared locks), so a batch holds its row locks for milliseconds and never locks rows outside
//! its range. The batch size adapts to the target batch duration. A batch that waits on a row
//! lock or loses a deadlock is retried (sluice's own work is the one retried, never a
//! client's); a batch that runs past its bound (MariaDB `max_statement_time`) is retried at half
//! the size. No checkpoint is kept: a rerun walks the keys again and the filter skips the rows
//! already done.

use super::MySqlEngine;
use mysql_async::prelude::Queryable;
use mysql_async::{Params, Row, Value};
use sluice_core::engine::{BackfillReport, BackfillSpec};
use sluice_core::error::{Error, Result};
use sluice_core::quote::mysql::ident;
use std::time::{Duration, Instant};

/// Error codes of a batch that is retried: lock wait timeout, deadlock, statement time exceeded.
const RETRIED: [u16; 3] = [1205, 1213, 1969];

pub(crate) async fn run(
    e: &mut MySqlEngine,
    spec: &BackfillSpec,
    say: &(dyn for<'s> Fn(&'s str) + Send + Sync),
) -> Result<BackfillReport> {
    let clock = Instant::now();
    let keys: Vec<Row> = e
        .work
        .query(format!(
            "SHOW KEYS FROM {} WHERE Key_name = 'PRIMARY'",
            spec.table
        ))
        .await
        .map_err(|x| e.err("reading the primary key", x))?;
    let mut pk: Vec<(u64, String)> = keys
        .into_iter()
        .map(|mut r| {
            (
                r.take::<u64, _>("Seq_in_index").unwrap_or(0),
                r.take::<String, _>("Column_name").unwrap_or_default(),
            )
        })
        .collect();
    if pk.is_empty() {
        return Err(Error::usage(
            format!("{} has no primary key to batch the backfill by", spec.table),
            "add a primary key first",
        ));
    }
    pk.sort();
    let cols = pk
        .iter()
        .map(|(_, c)| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let marks = vec!["?"; pk.len()].join(", ");
    let (tuple, row) = if pk.len() == 1 {
        (cols.clone(), marks.clone())
    } else {
        (format!("({cols})"), format!("({marks})"))
    };
    let filter = spec
        .filter
        .as_deref()
        .map(|f| format!(" AND ({f})"))
        .unwrap_or_default();
    let mariadb = e.flavour.is_mariadb();
    let target = spec.target_batch.max(Duration::from_millis(5));
    // A batch that runs ten times its target is cut off (MariaDB) and retried smaller.
    let bound = (target * 10).max(Duration::from_secs(2)).as_secs_f64();
    let mut size: u64 = spec.batch_rows.map(|n| n.max(1) as u64).unwrap_or(1000);
    let mut last: Option<Vec<Value>> = None;
    let mut report = BackfillReport {
        pacing: format!(
            "batch duration target {} ms{}",
            target.as_millis(),
            if spec.pause.is_zero() {
                String::new()
            } else {
                format!(", {} ms pause", spec.pause.as_millis())
            }
        ),
        ..Default::default()
    };
    let mut attempts = 0u32;
    loop {
        let after = last
            .as_ref()
            .map(|_| format!("{tuple} > {row}"))
            .unwrap_or_else(|| "TRUE".into());
        let mut params: Vec<Value> = last.clone().unwrap_or_default();
        let upper: Option<Row> = e
            .work
            .exec_first(
                format!(
                    "SELECT {cols} FROM {} WHERE {after} ORDER BY {cols} LIMIT 1 OFFSET {}",
                    spec.table,
                    size - 1
                ),
                Params::Positional(params.clone()),
            )
            .await
            .map_err(|x| e.err("finding the next backfill batch", x))?;
        let upper: Option<Vec<Value>> = upper.map(|r| r.unwrap());
        let range = match &upper {
            Some(u) => {
                params.extend(u.iter().cloned());
                format!("{after} AND {tuple} <= {row}")
            }
            None => after,
        };
        let update = format!(
            "UPDATE {} SET {} WHERE {range}{filter}",
            spec.table, spec.set
        );
        let update = if mariadb {
            format!("SET STATEMENT max_statement_time = {bound} FOR {update}")
        } else {
            update
        };
        let started = Instant::now();
        let outcome = e
            .work
            .exec_drop(update.as_str(), Params::Positional(params))
            .await;
        match outcome {
            Ok(()) => {
                report.rows += e.work.affected_rows() as i64;
                report.batches += 1;
                attempts = 0;
            }
            Err(mysql_async::Error::Server(se)) if RETRIED.contains(&se.code) && attempts < 20 => {
                attempts += 1;
                if se.code == 1969 {
                    size = (size / 2).max(1);
                }
                tokio::time::sleep(Duration::from_millis(20 * u64::from(attempts))).await;
                continue;
            }
            Err(x) => return Err(e.err("backfilling", x)),
        }
        let took = started.elapsed();
        // Aim the next batch at the target duration, changing the size by at most 2x a batch.
        let ratio = target.as_secs_f64() / took.as_secs_f64().max(1e-4);
        size = ((size as f64) * ratio.clamp(0.5, 2.0))
            .round()
            .clamp(1.0, 50_000.0) as u64;
        match upper {
            None => break,
            Some(u) => last = Some(u),
        }
        if !spec.pause.is_zero() {
            tokio::time::sleep(spec.pause).await;
        }
    }
    report.seconds = clock.elapsed().as_secs_f64();
    say(&format!(
        "backfilled {} row(s) of {} in {} batch(es), {:.1} s",
        report.rows, spec.table, report.batches, report.seconds
    ));
    Ok(report)
}

/// The parts of a table name as SQL (`` `db`.`t` ``, `` `t` ``, `t`), unquoted.
fn name_parts(sql: &str) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = sql.trim().chars().peekable();
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '`' if quoted && chars.peek() == Some(&'`') => {
                chars.next();
                parts.last_mut().expect("a part").push('`');
            }
            '`' => quoted = !quoted,
            '.' if !quoted => parts.push(String::new()),
            c => parts.last_mut().expect("a part").push(c),
        }
    }
    parts
}

/// A backfill that stands in for a DDL statement (the two-phase rename's expand): the statement
/// as written fires no trigger, but every batch is an UPDATE, which fires the table's own UPDATE
/// triggers once per row, and MariaDB/MySQL cannot turn them off for one session. What to say
/// before the first batch (None: the table has none besides sluice's).
pub(crate) async fn trigger_warning(e: &mut MySqlEngine, table: &str) -> Result<Option<String>> {
    let parts = name_parts(table);
    let (schema, name) = match parts.as_slice() {
        [s, n] => (Some(s.clone()), n.clone()),
        [n] => (None, n.clone()),
        _ => return Ok(None),
    };
    let names: Vec<String> = e
        .work
        .exec(
            "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS
              WHERE EVENT_OBJECT_SCHEMA = COALESCE(?, DATABASE()) AND EVENT_OBJECT_TABLE = ?
                AND EVENT_MANIPULATION = 'UPDATE'
                AND TRIGGER_NAME NOT LIKE '%\\_sluice\\_ins' AND TRIGGER_NAME NOT LIKE '%\\_sluice\\_upd'
              ORDER BY TRIGGER_NAME",
            (schema, name),
        )
        .await
        .map_err(|x| e.err("reading the table's triggers", x))?;
    if names.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "warning: the backfill of {table} stands in for the statement as written, which fires no trigger, but its batches fire {table}'s UPDATE trigger(s) {} once for every row (MariaDB/MySQL cannot turn a table's triggers off for one session); if a trigger writes elsewhere (an audit log) or changes the row (a timestamp), run the statement with `sluice up --as-written` once no running version uses the old name, or make the trigger skip rows whose only change is the new column",
        names.join(", ")
    )))
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_names_unquote() {
        assert_eq!(super::name_parts("`t`"), ["t"]);
        assert_eq!(super::name_parts("`my db`.`a``b.c`"), ["my db", "a`b.c"]);
        assert_eq!(super::name_parts("t"), ["t"]);
    }
}
