//! The clone: a scratch database with the source's schema (introspected, then rendered from an
//! empty schema by the engine's own `render_diff_sql`) and data sampled from the source or
//! synthesised from column types and statistics.
//!
//! Referential integrity: tables are created and filled without their foreign keys. A sampled child
//! row keeps its parent: missing parent rows are copied from the source (children first, so pulled
//! rows pull in their own parents). Rows still orphaned after that (multi-column keys, cycles,
//! synthetic keys) are deleted, repeated until nothing changes. Only then are the foreign keys
//! added, which the server validates.

use crate::db::{is_pg, my_err, pg_err, Session};
use futures_util::{SinkExt, StreamExt};
use mysql_async::prelude::Queryable;
use serde::Serialize;
use sluice_core::dburl::DbUrl;
use sluice_core::engine::Engine;
use sluice_core::error::{Error, Result};
use sluice_core::quote;
use sluice_core::schema::{Column, ConstraintKind, Schema};
use std::collections::BTreeMap;
use std::time::Instant;

/// How the clone gets its rows.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSpec {
    /// A random sample of every table: a fraction (1.0 = everything) of its rows.
    SampleFraction(f64),
    /// A random sample of at most this many rows per table.
    SampleRows(u64),
    /// Synthesised rows: exactly `rows` per table, or the source's count times `scale`.
    Synthetic { rows: Option<u64>, scale: f64 },
}

#[derive(Debug, Clone, Serialize)]
pub struct TableFill {
    pub table: String,
    pub source_rows: u64,
    /// Rows asked for (after --sample / --rows / --scale).
    pub requested_rows: u64,
    /// Rows copied because sampled child rows reference them.
    pub parents_pulled_in: u64,
    /// Rows deleted because their parent row was not in the clone.
    pub orphans_dropped: u64,
    pub rows: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct CloneReport {
    pub scratch_database: String,
    pub method: String,
    pub tables: Vec<TableFill>,
    /// Differences between the clone's schema and the source's (empty when faithful).
    pub schema_differences: Vec<String>,
    pub seconds: f64,
}

/// A foreign key, read from the source's catalog.
#[derive(Debug, Clone)]
struct Fk {
    child: String,
    parent: String,
    child_cols: Vec<String>,
    parent_cols: Vec<String>,
}

/// Marks sluice's own reads of the source, so `--workload pg_stat_statements` (which leaves
/// statements starting with a comment out) does not take them, from an earlier rehearsal, for the
/// application's.
pub const SOURCE_TAG: &str = "/* sluice */ ";

/// Quotes a model key (`schema.table` on PostgreSQL, `table` on MariaDB/MySQL).
pub fn table_sql(pg: bool, key: &str) -> String {
    if pg {
        match key.split_once('.') {
            Some((s, t)) => quote::pg::qualified(s, t),
            None => quote::pg::ident(key),
        }
    } else {
        quote::mysql::ident(key)
    }
}

pub fn ident(pg: bool, name: &str) -> String {
    if pg {
        quote::pg::ident(name)
    } else {
        quote::mysql::ident(name)
    }
}

fn is_generated(c: &Column) -> bool {
    c.extra.as_deref().is_some_and(|e| {
        e.starts_with("generated") || e.contains("VIRTUAL") || e.contains("STORED")
    })
}

fn has_sequence(c: &Column) -> bool {
    c.extra
        .as_deref()
        .is_some_and(|e| e.starts_with("identity") || e.contains("auto_increment"))
        || c.default.as_deref().is_some_and(|d| d.contains("nextval("))
}

/// Builds the clone in `scratch` and fills it.
pub async fn build(
    source: &DbUrl,
    src_engine: &mut dyn Engine,
    scratch: &DbUrl,
    spec: &DataSpec,
    say: &(dyn Fn(&str) + Send + Sync),
) -> Result<CloneReport> {
    let clock = Instant::now();
    let pg = is_pg(source);
    let schema = src_engine.introspect().await?;
    let mut dst_engine = crate::db::engine(scratch).await?;

    // The schema without foreign keys first; they are added once the data is consistent.
    let mut no_fk = schema.clone();
    for t in no_fk.tables.values_mut() {
        t.constraints
            .retain(|_, c| c.kind != ConstraintKind::ForeignKey);
    }
    let create = dst_engine.render_diff_sql(&Schema::default(), &no_fk);
    run_script(dst_engine.as_mut(), &create, pg).await?;

    let fks = foreign_keys(source).await?;
    let order = parents_first(&schema, &fks);
    let mut src = Session::open(source).await?;
    let mut dst = Session::open(scratch).await?;
    let mut fills: BTreeMap<String, TableFill> = BTreeMap::new();
    let mut loaded: BTreeMap<String, u64> = BTreeMap::new();
    for key in &order {
        let table = &schema.tables[key];
        let count: u64 = src
            .scalar(&format!(
                "{SOURCE_TAG}SELECT count(*) FROM {}",
                table_sql(pg, key)
            ))
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let requested = match spec {
            DataSpec::SampleFraction(f) => ((count as f64) * f.clamp(0.0, 1.0)).round() as u64,
            DataSpec::SampleRows(n) => (*n).min(count),
            DataSpec::Synthetic { rows: Some(n), .. } => *n,
            DataSpec::Synthetic { rows: None, scale } => ((count as f64) * scale).round() as u64,
        };
        let started = Instant::now();
        match spec {
            DataSpec::Synthetic { .. } => {
                let sql = if pg {
                    crate::synth::pg_insert(
                        &mut src,
                        key,
                        table,
                        &fks_of(&fks, key),
                        &loaded,
                        requested,
                    )
                    .await?
                } else {
                    crate::synth::my_insert(key, table, &fks_of(&fks, key), &loaded, requested)
                };
                if requested > 0 {
                    dst.batch(&sql).await.map_err(|e| {
                        Error::database(
                            format!("synthesising rows for {key}"),
                            format!("{} ({})", e.message, e.code),
                        )
                    })?;
                }
            }
            _ => {
                let rows = if requested >= count {
                    Rows::All
                } else {
                    Rows::Random(requested)
                };
                if pg {
                    copy_pg(&src, &dst, key, &table.columns, rows).await?;
                } else {
                    copy_my(&mut src, &mut dst, key, &table.columns, rows).await?;
                }
            }
        }
        tracing::debug!("filled {key} in {:?}", started.elapsed());
        loaded.insert(key.clone(), requested);
        fills.insert(
            key.clone(),
            TableFill {
                table: key.clone(),
                source_rows: count,
                requested_rows: requested,
                parents_pulled_in: 0,
                orphans_dropped: 0,
                rows: requested,
            },
        );
    }

    // Sampled child rows keep their parents: missing parent rows are copied from the source,
    // children first, so rows pulled into a table pull in their own parents in turn.
    if !matches!(spec, DataSpec::Synthetic { .. }) {
        for key in order.iter().rev() {
            for fk in fks
                .iter()
                .filter(|f| &f.child == key && f.parent != f.child)
            {
                let n = pull_parents(&mut src, &mut dst, pg, fk, &schema).await?;
                if let Some(f) = fills.get_mut(&fk.parent) {
                    f.parents_pulled_in += n;
                }
            }
        }
    }

    // Whatever is still orphaned (multi-column keys, cycles, synthetic keys out of range) is
    // deleted, until a pass deletes nothing.
    for _pass in 0..50 {
        let mut deleted_any = false;
        for fk in &fks {
            let n = delete_orphans(&mut dst, pg, fk).await?;
            if n > 0 {
                deleted_any = true;
                if let Some(f) = fills.get_mut(&fk.child) {
                    f.orphans_dropped += n;
                }
            }
        }
        if !deleted_any {
            break;
        }
    }
    let add_fks = dst_engine.render_diff_sql(&no_fk, &schema);
    run_script(dst_engine.as_mut(), &add_fks, pg).await?;
    for f in fills.values_mut() {
        f.rows = dst
            .scalar(&format!(
                "{SOURCE_TAG}SELECT count(*) FROM {}",
                table_sql(pg, &f.table)
            ))
            .await?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
    }
    if pg {
        reset_sequences(&dst, &schema).await?;
        dst.batch("ANALYZE").await.map_err(|e| {
            Error::database(
                "ANALYZE on the clone",
                format!("{} ({})", e.message, e.code),
            )
        })?;
    } else {
        for key in schema.tables.keys() {
            let _ = dst
                .batch(&format!("ANALYZE TABLE {}", table_sql(pg, key)))
                .await;
        }
    }
    copy_history(src_engine, dst_engine.as_mut()).await?;
    let cloned = dst_engine.introspect().await?;
    let schema_differences: Vec<String> = sluice_core::schema::diff(&schema, &cloned)
        .iter()
        .map(|d| d.to_string())
        .collect();
    for d in &schema_differences {
        say(&format!("clone differs from the source: {d}"));
    }
    src.close().await;
    dst.close().await;
    Ok(CloneReport {
        scratch_database: scratch.database(),
        method: match spec {
            DataSpec::SampleFraction(f) => format!("sample {}%", f * 100.0),
            DataSpec::SampleRows(n) => format!("sample of up to {n} rows per table"),
            DataSpec::Synthetic { rows: Some(n), .. } => format!("synthetic, {n} rows per table"),
            DataSpec::Synthetic { rows: None, scale } => {
                format!("synthetic, {scale}× the source's row counts")
            }
        },
        tables: fills.into_values().collect(),
        schema_differences,
        seconds: clock.elapsed().as_secs_f64(),
    })
}

fn fks_of(fks: &[Fk], key: &str) -> Vec<(Vec<String>, String, Vec<String>)> {
    fks.iter()
        .filter(|f| f.child == key)
        .map(|f| {
            (
                f.child_cols.clone(),
                f.parent.clone(),
                f.parent_cols.clone(),
            )
        })
        .collect()
}

/// Runs rendered DDL statement by statement (`-- MANUAL:` lines are comments and skipped).
async fn run_script(engine: &mut dyn Engine, sql: &str, pg: bool) -> Result<()> {
    let kind = if pg {
        sluice_core::target::EngineKind::Postgres
    } else {
        sluice_core::target::EngineKind::MariaDb
    };
    let stmts = sluice_core::sql::split(kind, sql)
        .map_err(|e| Error::database("splitting the rendered schema", format!("{e:?}")))?;
    for s in stmts {
        engine.execute(&s.sql).await.map_err(|e| {
            Error::database(
                format!(
                    "creating the clone's schema: {}",
                    s.sql.lines().next().unwrap_or("")
                ),
                e.to_string(),
            )
        })?;
    }
    Ok(())
}

/// Foreign keys of the source, from its catalog (column lists in key order).
async fn foreign_keys(source: &DbUrl) -> Result<Vec<Fk>> {
    let mut s = Session::open(source).await?;
    // Unit separator between names, which never occurs in them in practice.
    let rows = if is_pg(source) {
        s.rows(
            "SELECT n1.nspname || '.' || t1.relname, n2.nspname || '.' || t2.relname, \
               (SELECT string_agg(a.attname, chr(31) ORDER BY k.ord) FROM unnest(c.conkey) WITH ORDINALITY k(num, ord) \
                  JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.num), \
               (SELECT string_agg(a.attname, chr(31) ORDER BY k.ord) FROM unnest(c.confkey) WITH ORDINALITY k(num, ord) \
                  JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.num) \
             FROM pg_constraint c \
             JOIN pg_class t1 ON t1.oid = c.conrelid JOIN pg_namespace n1 ON n1.oid = t1.relnamespace \
             JOIN pg_class t2 ON t2.oid = c.confrelid JOIN pg_namespace n2 ON n2.oid = t2.relnamespace \
             WHERE c.contype = 'f' AND n1.nspname NOT IN ('sluice', 'pg_catalog', 'information_schema')",
        )
        .await?
    } else {
        s.rows(
            "SELECT TABLE_NAME, REFERENCED_TABLE_NAME, \
               GROUP_CONCAT(COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR 0x1f), \
               GROUP_CONCAT(REFERENCED_COLUMN_NAME ORDER BY ORDINAL_POSITION SEPARATOR 0x1f) \
             FROM information_schema.KEY_COLUMN_USAGE \
             WHERE TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_SCHEMA = DATABASE() \
               AND REFERENCED_TABLE_NAME IS NOT NULL \
             GROUP BY CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME",
        )
        .await?
    };
    s.close().await;
    let split = |v: &Option<String>| -> Vec<String> {
        v.as_deref()
            .unwrap_or("")
            .split('\u{1f}')
            .map(str::to_string)
            .collect()
    };
    Ok(rows
        .iter()
        .map(|r| Fk {
            child: r[0].clone().unwrap_or_default(),
            parent: r[1].clone().unwrap_or_default(),
            child_cols: split(&r[2]),
            parent_cols: split(&r[3]),
        })
        .collect())
}

/// Tables ordered so every parent comes before its children (cycles are broken arbitrarily).
fn parents_first(schema: &Schema, fks: &[Fk]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut left: Vec<String> = schema.tables.keys().cloned().collect();
    while !left.is_empty() {
        let ready: Vec<String> = left
            .iter()
            .filter(|t| {
                fks.iter().all(|f| {
                    f.child != **t
                        || f.parent == **t
                        || out.contains(&f.parent)
                        || !left.contains(&f.parent)
                })
            })
            .cloned()
            .collect();
        let take = if ready.is_empty() {
            vec![left[0].clone()]
        } else {
            ready
        };
        left.retain(|t| !take.contains(t));
        out.extend(take);
    }
    out
}

/// Copies the parent rows that sampled children of `fk` reference and the clone lacks (single-column
/// keys; others are left to orphan deletion). Returns how many rows it copied.
async fn pull_parents(
    src: &mut Session,
    dst: &mut Session,
    pg: bool,
    fk: &Fk,
    schema: &Schema,
) -> Result<u64> {
    let ([cc], [pc]) = (fk.child_cols.as_slice(), fk.parent_cols.as_slice()) else {
        return Ok(0);
    };
    let Some(parent) = schema.tables.get(&fk.parent) else {
        return Ok(0);
    };
    let Some(ty) = parent
        .columns
        .iter()
        .find(|c| &c.name == pc)
        .map(|c| c.data_type.clone())
    else {
        return Ok(0);
    };
    let (c, p) = (ident(pg, cc), ident(pg, pc));
    let (ct, pt) = (table_sql(pg, &fk.child), table_sql(pg, &fk.parent));
    let sql = if pg {
        format!(
            "SELECT DISTINCT c.{c}::text FROM {ct} c WHERE c.{c} IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM {pt} p WHERE p.{p} = c.{c})"
        )
    } else {
        format!(
            "SELECT DISTINCT c.{c} FROM {ct} c LEFT JOIN {pt} p ON p.{p} = c.{c} \
             WHERE c.{c} IS NOT NULL AND p.{p} IS NULL"
        )
    };
    let missing: Vec<String> = dst
        .rows(&sql)
        .await?
        .into_iter()
        .filter_map(|r| r.into_iter().next().flatten())
        .collect();
    let mut copied = 0;
    for chunk in missing.chunks(5000) {
        let rows = Rows::Keys {
            column: pc,
            ty: &ty,
            keys: chunk,
        };
        let before: u64 = count(dst, pg, &fk.parent).await?;
        if pg {
            copy_pg(src, dst, &fk.parent, &parent.columns, rows).await?;
        } else {
            copy_my(src, dst, &fk.parent, &parent.columns, rows).await?;
        }
        copied += count(dst, pg, &fk.parent).await?.saturating_sub(before);
    }
    Ok(copied)
}

async fn count(s: &mut Session, pg: bool, key: &str) -> Result<u64> {
    Ok(s.scalar(&format!(
        "{SOURCE_TAG}SELECT count(*) FROM {}",
        table_sql(pg, key)
    ))
    .await?
    .and_then(|v| v.parse().ok())
    .unwrap_or(0))
}

async fn delete_orphans(dst: &mut Session, pg: bool, fk: &Fk) -> Result<u64> {
    let c = "c";
    let p = "p";
    let not_null: Vec<String> = fk
        .child_cols
        .iter()
        .map(|col| format!("{c}.{} IS NOT NULL", ident(pg, col)))
        .collect();
    let join: Vec<String> = fk
        .child_cols
        .iter()
        .zip(&fk.parent_cols)
        .map(|(cc, pc)| format!("{p}.{} = {c}.{}", ident(pg, pc), ident(pg, cc)))
        .collect();
    // MATCH SIMPLE: a key with a NULL column references nothing and is always valid.
    let sql = if pg {
        format!(
            "DELETE FROM {} {c} WHERE {} AND NOT EXISTS (SELECT 1 FROM {} {p} WHERE {})",
            table_sql(pg, &fk.child),
            not_null.join(" AND "),
            table_sql(pg, &fk.parent),
            join.join(" AND ")
        )
    } else {
        // MariaDB cannot name the target table in a subquery of its own DELETE: use a join.
        format!(
            "DELETE {c} FROM {} {c} LEFT JOIN {} {p} ON {} WHERE {} AND {p}.{} IS NULL",
            table_sql(pg, &fk.child),
            table_sql(pg, &fk.parent),
            join.join(" AND "),
            not_null.join(" AND "),
            ident(pg, &fk.parent_cols[0])
        )
    };
    match dst {
        Session::Pg(e) => e
            .client()
            .execute(sql.as_str(), &[])
            .await
            .map_err(|e| pg_err(&sql, e)),
        Session::My(conn) => {
            conn.query_drop(sql.as_str())
                .await
                .map_err(|e| my_err(&sql, e))?;
            Ok(conn.affected_rows())
        }
    }
}

/// Which source rows to copy.
enum Rows<'a> {
    All,
    /// A uniform random sample of this many rows.
    Random(u64),
    /// The rows whose `column` (of type `ty`) is one of `keys` (text forms).
    Keys {
        column: &'a str,
        ty: &'a str,
        keys: &'a [String],
    },
}

async fn copy_pg(
    src: &Session,
    dst: &Session,
    key: &str,
    columns: &[Column],
    rows: Rows<'_>,
) -> Result<()> {
    let cols: Vec<String> = columns
        .iter()
        .filter(|c| !is_generated(c))
        .map(|c| quote::pg::ident(&c.name))
        .collect();
    if cols.is_empty() || matches!(rows, Rows::Random(0)) {
        return Ok(());
    }
    let list = cols.join(", ");
    let t = table_sql(true, key);
    let select = match rows {
        Rows::All => format!("SELECT {list} FROM {t}"),
        // ORDER BY random() LIMIT n is a top-n heap sort: one scan, exact size, uniform sample.
        Rows::Random(n) => format!("SELECT {list} FROM {t} ORDER BY random() LIMIT {n}"),
        // COPY takes no parameters: the keys go in as one array literal, cast to the key's type
        // so the index on it serves the lookup.
        Rows::Keys { column, ty, keys } => {
            let items: Vec<String> = keys
                .iter()
                .map(|k| format!("\"{}\"", k.replace('\\', "\\\\").replace('"', "\\\"")))
                .collect();
            format!(
                "SELECT {list} FROM {t} WHERE {} = ANY({}::{ty}[])",
                quote::pg::ident(column),
                quote::pg::literal(&format!("{{{}}}", items.join(",")))
            )
        }
    };
    let out = src
        .pg()
        .copy_out(&format!("COPY ({select}) TO STDOUT (FORMAT binary)"))
        .await
        .map_err(|e| pg_err(&select, e))?;
    let sink = dst
        .pg()
        .copy_in::<_, bytes::Bytes>(&format!("COPY {t} ({list}) FROM STDIN (FORMAT binary)"))
        .await
        .map_err(|e| pg_err("COPY FROM STDIN", e))?;
    futures_util::pin_mut!(out);
    futures_util::pin_mut!(sink);
    while let Some(chunk) = out.next().await {
        let chunk = chunk.map_err(|e| pg_err("COPY TO STDOUT", e))?;
        sink.send(chunk)
            .await
            .map_err(|e| pg_err("COPY FROM STDIN", e))?;
    }
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| pg_err("COPY FROM STDIN", e))?;
    Ok(())
}

async fn copy_my(
    src: &mut Session,
    dst: &mut Session,
    key: &str,
    columns: &[Column],
    rows: Rows<'_>,
) -> Result<()> {
    let cols: Vec<String> = columns
        .iter()
        .filter(|c| !is_generated(c))
        .map(|c| quote::mysql::ident(&c.name))
        .collect();
    if cols.is_empty() || matches!(rows, Rows::Random(0)) {
        return Ok(());
    }
    let list = cols.join(", ");
    let t = table_sql(false, key);
    let (select, params): (String, Vec<mysql_async::Value>) = match rows {
        Rows::All => (format!("SELECT {list} FROM {t}"), vec![]),
        Rows::Random(n) => (
            format!("SELECT {list} FROM {t} ORDER BY RAND() LIMIT {n}"),
            vec![],
        ),
        Rows::Keys { column, keys, .. } => (
            format!(
                "SELECT {list} FROM {t} WHERE {} IN ({})",
                quote::mysql::ident(column),
                vec!["?"; keys.len()].join(", ")
            ),
            keys.iter()
                .map(|k| mysql_async::Value::from(k.as_str()))
                .collect(),
        ),
    };
    // Multi-row INSERTs of up to 500 rows, within the 65,535 placeholders a statement may have.
    let per = (60_000 / cols.len()).clamp(1, 500);
    let row_ph = format!("({})", vec!["?"; cols.len()].join(", "));
    let mut batch: Vec<mysql_async::Value> = Vec::with_capacity(per * cols.len());
    let mut rows_in_batch = 0;
    let dst_conn = dst.my();
    // The scratch session must not re-check foreign keys row by row: they are added at the end.
    dst_conn
        .query_drop("SET SESSION foreign_key_checks = 0, SESSION unique_checks = 0")
        .await
        .map_err(|e| my_err("SET foreign_key_checks", e))?;
    let params = if params.is_empty() {
        mysql_async::Params::Empty
    } else {
        mysql_async::Params::Positional(params)
    };
    let mut result = src
        .my()
        .exec_iter(select.as_str(), params)
        .await
        .map_err(|e| my_err(&select, e))?;
    loop {
        let row: Option<mysql_async::Row> = result.next().await.map_err(|e| my_err(&select, e))?;
        let done = row.is_none();
        if let Some(r) = row {
            batch.extend(r.unwrap());
            rows_in_batch += 1;
        }
        if rows_in_batch > 0 && (rows_in_batch == per || done) {
            let sql = format!(
                "INSERT INTO {t} ({list}) VALUES {}",
                vec![row_ph.as_str(); rows_in_batch].join(", ")
            );
            dst_conn
                .exec_drop(sql.as_str(), std::mem::take(&mut batch))
                .await
                .map_err(|e| my_err(&format!("INSERT INTO {t}"), e))?;
            rows_in_batch = 0;
        }
        if done {
            break;
        }
    }
    Ok(())
}

/// Sequences (serial and identity columns) continue after the copied keys, so the workload's
/// inserts do not collide with them.
async fn reset_sequences(dst: &Session, schema: &Schema) -> Result<()> {
    for (key, t) in &schema.tables {
        for c in t.columns.iter().filter(|c| has_sequence(c)) {
            let sql = format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), COALESCE((SELECT max({}) FROM {}), 0) + 1, false)",
                quote::pg::ident(&c.name),
                table_sql(true, key)
            );
            dst.pg()
                .query(sql.as_str(), &[&table_sql(true, key), &c.name])
                .await
                .map_err(|e| pg_err(&sql, e))?;
        }
    }
    Ok(())
}

/// The source's migration history, so only its pending migrations run on the clone.
async fn copy_history(src: &mut dyn Engine, dst: &mut dyn Engine) -> Result<()> {
    let rows = src.history().await?;
    if rows.is_empty() {
        return Ok(());
    }
    dst.ensure_history().await?;
    for r in &rows {
        dst.upsert_migration(r).await?;
    }
    if let Some(s) = src.latest_snapshot().await? {
        dst.save_snapshot(s.version, &s.schema).await?;
    }
    Ok(())
}
