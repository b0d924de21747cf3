//! Synthetic rows, generated inside the server in one `INSERT … SELECT` per table (PostgreSQL:
//! `generate_series`, MariaDB: the Sequence engine's `seq_1_to_N`), so nothing crosses the wire.
//!
//! PostgreSQL columns follow the source's `pg_stats` where it has them: `null_frac`, the most common
//! values (picked with their combined frequency, uniformly among them), otherwise the histogram
//! bounds (an equi-depth histogram, so a uniformly picked bound follows the distribution), otherwise
//! `n_distinct`. Keys are unique (`g`), foreign keys point into the parent's generated key range.

use crate::clone::{ident, table_sql};
use crate::db::{pg_err, Session};
use sluice_core::error::Result;
use sluice_core::quote;
use sluice_core::schema::{Column, ConstraintKind, Table};
use std::collections::BTreeMap;

/// (child columns, parent table, parent columns).
pub type FkCols = (Vec<String>, String, Vec<String>);

struct Stats {
    null_frac: f64,
    n_distinct: f64,
    mcv: Option<String>,
    mcv_total: f64,
    histogram: Option<String>,
}

fn is_int(t: &str) -> bool {
    let t = t.to_lowercase();
    [
        "integer",
        "bigint",
        "smallint",
        "int",
        "tinyint",
        "mediumint",
    ]
    .iter()
    .any(|p| t == *p || t.starts_with(&format!("{p}(")) || t.starts_with(&format!("{p} ")))
}

/// Columns covered by a single-column primary key or unique constraint/index.
fn unique_columns(t: &Table) -> Vec<String> {
    let mut out: Vec<String> = t
        .indexes
        .values()
        .filter(|i| i.unique && !i.columns.is_empty())
        .map(|i| i.columns[0].clone())
        .collect();
    for c in t.constraints.values() {
        if matches!(c.kind, ConstraintKind::PrimaryKey | ConstraintKind::Unique) {
            if let Some(inner) = c.definition.split('(').nth(1) {
                let first = inner
                    .split([',', ')'])
                    .next()
                    .unwrap_or("")
                    .trim()
                    .trim_matches(['"', '`']);
                out.push(first.to_string());
            }
        }
    }
    out
}

fn skipped(c: &Column) -> bool {
    c.extra.as_deref().is_some_and(|e| {
        e.starts_with("identity")
            || e.starts_with("generated")
            || e.contains("auto_increment")
            || e.contains("VIRTUAL")
            || e.contains("STORED")
    }) || c.default.as_deref().is_some_and(|d| d.contains("nextval("))
}

pub async fn pg_insert(
    src: &mut Session,
    key: &str,
    table: &Table,
    fks: &[FkCols],
    loaded: &BTreeMap<String, u64>,
    rows: u64,
) -> Result<String> {
    let (sch, name) = key.split_once('.').unwrap_or(("public", key));
    let stat_rows = src
        .pg()
        .query(
            "SELECT attname::text, null_frac::float8, n_distinct::float8, most_common_vals::text, \
                    (SELECT sum(f)::float8 FROM unnest(most_common_freqs) f), histogram_bounds::text \
             FROM pg_stats WHERE schemaname = $1 AND tablename = $2",
            &[&sch, &name],
        )
        .await
        .map_err(|e| pg_err("reading pg_stats", e))?;
    let stats: BTreeMap<String, Stats> = stat_rows
        .iter()
        .map(|r| {
            (
                r.get::<_, String>(0),
                Stats {
                    null_frac: r.get::<_, Option<f64>>(1).unwrap_or(0.0),
                    n_distinct: r.get::<_, Option<f64>>(2).unwrap_or(0.0),
                    mcv: r.get(3),
                    mcv_total: r.get::<_, Option<f64>>(4).unwrap_or(0.0),
                    histogram: r.get(5),
                },
            )
        })
        .collect();
    let uniques = unique_columns(table);
    let mut cols = Vec::new();
    let mut exprs = Vec::new();
    let mut ctes: Vec<String> = Vec::new();
    let mut from = String::new();
    for c in table.columns.iter().filter(|c| !skipped(c)) {
        let ty = &c.data_type;
        let fk = fks.iter().find(|(cc, _, _)| cc.first() == Some(&c.name));
        let e = if let Some((_, parent, _)) = fk.filter(|_| is_int(ty)) {
            // The parent's keys are 1..n: generated as g, or by a fresh sequence.
            let n = loaded.get(parent).copied().unwrap_or(0).max(1);
            format!("(1 + floor(random() * {n}))::{ty}")
        } else if let Some((_, parent, pcols)) = fk.filter(|(cc, _, _)| cc.len() == 1) {
            // Other keys: one of the parent's (already synthesised) keys, read once into an array.
            let k = format!("k{}", ctes.len());
            ctes.push(format!(
                "{k} AS (SELECT array_agg({}) AS a FROM {})",
                quote::pg::ident(&pcols[0]),
                table_sql(true, parent)
            ));
            from.push_str(&format!(", {k}"));
            format!("({k}.a)[1 + floor(random() * cardinality({k}.a))::int]")
        } else if uniques.contains(&c.name) {
            pg_unique(ty)
        } else {
            let base = match stats.get(&c.name) {
                Some(s) => pg_from_stats(ty, s, rows),
                None => pg_by_type(ty, 1000),
            };
            match stats.get(&c.name) {
                Some(s) if c.nullable && s.null_frac > 0.0 => format!(
                    "CASE WHEN random() < {} THEN NULL ELSE {base} END",
                    s.null_frac
                ),
                _ => base,
            }
        };
        cols.push(quote::pg::ident(&c.name));
        exprs.push(e);
    }
    if cols.is_empty() {
        return Ok(format!(
            "INSERT INTO {} SELECT FROM generate_series(1, {rows})",
            table_sql(true, key)
        ));
    }
    let with = if ctes.is_empty() {
        String::new()
    } else {
        format!("WITH {} ", ctes.join(", "))
    };
    Ok(format!(
        "{with}INSERT INTO {} ({}) SELECT {} FROM generate_series(1, {rows}) AS s(g){from}",
        table_sql(true, key),
        cols.join(", "),
        exprs.join(", ")
    ))
}

fn pg_unique(ty: &str) -> String {
    let t = ty.to_lowercase();
    if is_int(&t) || t.starts_with("numeric") {
        format!("g::{ty}")
    } else if t == "uuid" {
        "gen_random_uuid()".into()
    } else {
        format!("('u' || g)::{ty}")
    }
}

fn pg_from_stats(ty: &str, s: &Stats, rows: u64) -> String {
    let rest = if let Some(h) = &s.histogram {
        format!(
            "({}::{ty}[])[1 + floor(random() * array_length({}::{ty}[], 1))::int]",
            quote::pg::literal(h),
            quote::pg::literal(h)
        )
    } else {
        let distinct = if s.n_distinct > 0.0 {
            s.n_distinct
        } else if s.n_distinct < 0.0 {
            -s.n_distinct * rows as f64
        } else {
            1000.0
        };
        pg_by_type(ty, distinct.max(1.0) as u64)
    };
    // Frequencies count NULLs too; this expression only makes the non-NULL values.
    let p = s.mcv_total / (1.0 - s.null_frac).max(1e-9);
    match &s.mcv {
        Some(m) if s.mcv_total > 0.0 => format!(
            "CASE WHEN random() < {p} THEN ({}::{ty}[])[1 + floor(random() * array_length({}::{ty}[], 1))::int] ELSE {rest} END",
            quote::pg::literal(m),
            quote::pg::literal(m)
        ),
        _ => rest,
    }
}

/// A value of the column's type with about `distinct` different values.
fn pg_by_type(ty: &str, distinct: u64) -> String {
    let t = ty.to_lowercase();
    let pick = format!("floor(random() * {distinct})");
    if is_int(&t) {
        format!("{pick}::{ty}")
    } else if t.starts_with("numeric") || t == "real" || t == "double precision" {
        format!("(random() * {distinct})::{ty}")
    } else if t == "boolean" {
        "random() < 0.5".into()
    } else if t.starts_with("timestamp") {
        format!("(now() - {pick} * interval '1 minute')::{ty}")
    } else if t == "date" {
        format!("(current_date - {pick}::int)")
    } else if t == "uuid" {
        "gen_random_uuid()".into()
    } else if t == "json" || t == "jsonb" {
        format!("json_build_object('v', {pick})::{ty}")
    } else if t == "bytea" {
        format!("decode(md5({pick}::text), 'hex')")
    } else {
        // Text-like and anything with a text input form; varchar(n) keeps the prefix of the md5.
        format!(
            "left(md5({pick}::text), {})::{ty}",
            varchar_len(&t).unwrap_or(32)
        )
    }
}

fn varchar_len(t: &str) -> Option<usize> {
    let open = t.find('(')?;
    t[open + 1..]
        .trim_end_matches(')')
        .split(',')
        .next()?
        .trim()
        .parse()
        .ok()
}

/// MariaDB: one INSERT … SELECT from the Sequence engine.
pub fn my_insert(
    key: &str,
    table: &Table,
    fks: &[FkCols],
    loaded: &BTreeMap<String, u64>,
    rows: u64,
) -> String {
    let uniques = unique_columns(table);
    let mut cols = Vec::new();
    let mut exprs = Vec::new();
    for c in table.columns.iter().filter(|c| !skipped(c)) {
        let t = c.data_type.to_lowercase();
        let fk = fks.iter().find(|(cc, _, _)| cc.first() == Some(&c.name));
        let e = if let Some((_, parent, _)) = fk.filter(|_| is_int(&t)) {
            let n = loaded.get(parent).copied().unwrap_or(0).max(1);
            format!("1 + FLOOR(RAND() * {n})")
        } else if uniques.contains(&c.name) {
            if is_int(&t) || t.starts_with("decimal") {
                "seq".to_string()
            } else {
                "CONCAT('u', seq)".to_string()
            }
        } else {
            my_by_type(&t, &c.data_type)
        };
        cols.push(ident(false, &c.name));
        exprs.push(e);
    }
    format!(
        "INSERT INTO {} ({}) SELECT {} FROM seq_1_to_{rows}",
        table_sql(false, key),
        cols.join(", "),
        exprs.join(", ")
    )
}

fn my_by_type(t: &str, original: &str) -> String {
    if t.starts_with("tinyint(1)") || t == "boolean" {
        "RAND() < 0.5".into()
    } else if is_int(t) {
        // Within the smallest integer type's range.
        "FLOOR(RAND() * 100)".into()
    } else if t.starts_with("decimal") || t.starts_with("double") || t.starts_with("float") {
        "ROUND(RAND() * 1000, 2)".into()
    } else if t.starts_with("datetime") || t.starts_with("timestamp") {
        "NOW() - INTERVAL FLOOR(RAND() * 31536000) SECOND".into()
    } else if t.starts_with("date") {
        "CURDATE() - INTERVAL FLOOR(RAND() * 365) DAY".into()
    } else if t.starts_with("enum(") {
        // The values as the server printed them (their case matters).
        let values = &original[5..];
        let n = values.matches("','").count() + 1;
        format!("ELT(1 + FLOOR(RAND() * {n}), {values}")
    } else if t.contains("json") {
        "JSON_OBJECT('v', FLOOR(RAND() * 1000))".into()
    } else if t.contains("blob") || t.contains("binary") {
        "UNHEX(MD5(RAND()))".into()
    } else {
        format!(
            "LEFT(MD5(RAND()), {})",
            varchar_len(t).unwrap_or(32).min(32)
        )
    }
}
