//! The batched backfill on MariaDB/MySQL (`UPDATE t SET <set> WHERE <filter>` by primary-key
//! ranges), as the two-phase rename's expand phase runs it.
//!
//! Each batch is one autocommitted UPDATE over a key range found first by a plain read (no
//! shared locks), so a batch holds its row locks for milliseconds and never locks rows outside
//! its range. The batch size adapts to the target batch duration. A batch that waits on a row
//! lock or loses a deadlock is retried (sluice's own work is the one retried, never a
//! client's); a batch that runs past its bound (MariaDB `max_statement_time`) is retried at half
//! the size. Before each batch the backfill waits as the online copy does before each chunk (the
//! same throttle: `Threads_running`, replica lag).
//!
//! A backfill standing in for a DDL statement (the two-phase rename) keeps a checkpoint in
//! `sluice_meta`, where the other MariaDB state of a two-phase migration lives: each batch's
//! UPDATE and the key it ended at commit in one transaction, so a killed run's rerun goes on after
//! the last committed range instead of reading every key from the first again. The last batch
//! deletes the checkpoint with its rows; the plan deletes it whenever it adds the column afresh,
//! so a checkpoint never outlives the column it filled. `sluice backfill` (the user's UPDATE)
//! keeps none: its rerun walks the keys again and the filter skips the rows already done.

use super::MySqlEngine;
use crate::online::throttle::Throttle;
use mysql_async::prelude::Queryable;
use mysql_async::{Params, Row, Value};
use sluice_core::engine::{BackfillReport, BackfillSpec};
use sluice_core::error::{Error, Result};
use sluice_core::quote::mysql::ident;
use std::time::{Duration, Instant};

/// Error codes of a batch that is retried: lock wait timeout, deadlock, statement time exceeded.
const RETRIED: [u16; 3] = [1205, 1213, 1969];

/// `sluice_meta`.`v` holds 255 characters: a longer checkpoint (a long text key) is not written,
/// and the one before it stays, which is behind and so still safe to resume from.
const CHECKPOINT_MAX: usize = 255;

/// A key value as the checkpoint keeps it, typed so that it binds back as it was read: `i`/`u`
/// integers, `x` bytes in hex, `s` the text of a temporal or floating value, `n` NULL.
fn encode(v: &Value) -> String {
    match v {
        Value::NULL => "n".into(),
        Value::Int(i) => format!("i{i}"),
        Value::UInt(u) => format!("u{u}"),
        Value::Bytes(b) => format!(
            "x{}",
            b.iter().map(|c| format!("{c:02x}")).collect::<String>()
        ),
        Value::Float(f) => format!("s{f}"),
        Value::Double(d) => format!("s{d}"),
        Value::Date(y, mo, d, h, mi, s, us) => {
            format!("s{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        Value::Time(neg, d, h, mi, s, us) => format!(
            "s{}{}:{mi:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            u64::from(*d) * 24 + u64::from(*h)
        ),
    }
}

fn decode(s: &str) -> Option<Value> {
    let (kind, rest) = s.split_at_checked(1)?;
    Some(match kind {
        "n" => Value::NULL,
        "i" => Value::Int(rest.parse().ok()?),
        "u" => Value::UInt(rest.parse().ok()?),
        "x" => Value::Bytes(
            (0..rest.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(rest.get(i..i + 2)?, 16).ok())
                .collect::<Option<Vec<u8>>>()?,
        ),
        "s" => Value::Bytes(rest.as_bytes().to_vec()),
        _ => return None,
    })
}

/// Where a killed backfill stopped: the last key of its last committed batch, and what it had
/// done by then.
#[derive(Debug, PartialEq)]
struct Checkpoint {
    key: Vec<Value>,
    rows: i64,
    batches: i64,
}

impl Checkpoint {
    fn to_text(&self) -> String {
        serde_json::json!({
            "key": self.key.iter().map(encode).collect::<Vec<_>>(),
            "rows": self.rows,
            "batches": self.batches,
        })
        .to_string()
    }

    fn parse(text: &str) -> Option<Checkpoint> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        Some(Checkpoint {
            key: v["key"]
                .as_array()?
                .iter()
                .map(|k| decode(k.as_str()?))
                .collect::<Option<Vec<_>>>()?,
            rows: v["rows"].as_i64()?,
            batches: v["batches"].as_i64()?,
        })
    }
}

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
    // The checkpoint's key; None: no checkpoint kept.
    let key = spec.stands_for_ddl.then(|| spec.checkpoint_key());
    let (mut rows_before, mut batches_before) = (0i64, 0i64);
    if let Some(k) = &key {
        let text: Option<String> = e
            .work
            .exec_first("SELECT `v` FROM `sluice_meta` WHERE `k` = ?", (k,))
            .await
            .map_err(|x| e.err("reading the backfill checkpoint", x))?;
        if let Some(cp) = text.as_deref().and_then(Checkpoint::parse) {
            if cp.key.len() == pk.len() {
                say(&format!(
                    "resuming the backfill of {} after its checkpoint: an earlier run did {} row(s) in {} batch(es)",
                    spec.table, cp.rows, cp.batches
                ));
                (rows_before, batches_before) = (cp.rows, cp.batches);
                report.resumed = true;
                last = Some(cp.key);
            }
        }
    }
    let mut throttle = Throttle::open(&mut e.work, &e.url, &spec.online, say).await?;
    let what = format!("backfill of {}", spec.table);
    let mut attempts = 0u32;
    loop {
        let paused = throttle.wait(&mut e.work, &what, say).await?;
        report.throttled_seconds += paused.as_secs_f64();
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
        // With a checkpoint, the batch and the key it ends at commit together: a kill loses both
        // or neither.
        let tx = key.is_some();
        // What this batch writes into sluice_meta once its UPDATE changed `changed` rows; None:
        // nothing (the checkpoint would not fit).
        let checkpoint = |changed: u64| -> Option<(&str, Vec<Value>)> {
            let k = key.as_ref()?;
            let Some(u) = &upper else {
                return Some((
                    "DELETE FROM `sluice_meta` WHERE `k` = ?",
                    vec![Value::from(k.as_str())],
                ));
            };
            let text = Checkpoint {
                key: u.clone(),
                rows: rows_before + report.rows + changed as i64,
                batches: batches_before + report.batches + 1,
            }
            .to_text();
            (text.chars().count() <= CHECKPOINT_MAX).then(|| {
                (
                    "INSERT INTO `sluice_meta` (`k`, `v`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `v` = VALUES(`v`)",
                    vec![Value::from(k.as_str()), Value::from(text)],
                )
            })
        };
        let outcome: std::result::Result<u64, mysql_async::Error> = async {
            if tx {
                e.work.query_drop("START TRANSACTION").await?;
            }
            e.work
                .exec_drop(update.as_str(), Params::Positional(params))
                .await?;
            let changed = e.work.affected_rows();
            if let Some((sql, params)) = checkpoint(changed) {
                e.work.exec_drop(sql, Params::Positional(params)).await?;
            }
            if tx {
                e.work.query_drop("COMMIT").await?;
            }
            Ok(changed)
        }
        .await;
        if outcome.is_err() && tx {
            let _ = e.work.query_drop("ROLLBACK").await;
        }
        match outcome {
            Ok(changed) => {
                report.rows += changed as i64;
                report.batches += 1;
                attempts = 0;
                sluice_core::crash_point("backfill-batch");
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
    let paused = if report.throttled_seconds > 0.0 {
        format!(
            ", {:.1} s of it paused by the throttle",
            report.throttled_seconds
        )
    } else {
        String::new()
    };
    say(&format!(
        "backfilled {} row(s) of {} in {} batch(es), {:.1} s{paused}",
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
    fn checkpoints_read_back_as_written() {
        use super::{Checkpoint, Value};
        for key in [
            vec![Value::Int(-7)],
            vec![
                Value::UInt(u64::MAX),
                Value::Bytes(b"a`b\x00\xff'\"".to_vec()),
            ],
            vec![Value::Bytes(vec![])],
        ] {
            let cp = Checkpoint {
                key,
                rows: 12,
                batches: 3,
            };
            assert_eq!(Checkpoint::parse(&cp.to_text()), Some(cp));
        }
        let cp = Checkpoint {
            key: vec![
                Value::Date(2020, 1, 2, 3, 4, 5, 6),
                Value::Time(true, 1, 2, 3, 4, 5),
            ],
            rows: 1,
            batches: 1,
        };
        let back = Checkpoint::parse(&cp.to_text()).unwrap();
        assert_eq!(
            back.key,
            [
                Value::Bytes(b"2020-01-02 03:04:05.000006".to_vec()),
                Value::Bytes(b"-26:03:04.000005".to_vec())
            ]
        );
        assert_eq!(
            Checkpoint::parse("{\"key\": [\"q1\"], \"rows\": 1, \"batches\": 1}"),
            None
        );
    }

    #[test]
    fn table_names_unquote() {
        assert_eq!(super::name_parts("`t`"), ["t"]);
        assert_eq!(super::name_parts("`my db`.`a``b.c`"), ["my db", "a`b.c"]);
        assert_eq!(super::name_parts("t"), ["t"]);
    }
}
