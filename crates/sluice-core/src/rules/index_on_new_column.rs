//! `index-on-new-column` (PostgreSQL, MariaDB/MySQL): an index on a column that an earlier statement of
//! the same migration added to an existing table.
//!
//! The column is still all NULL (or its default) when the index is built: the index build belongs after
//! the backfill, in its own step. Built first, every backfill UPDATE also has to write the index entry
//! (on PostgreSQL an UPDATE of an indexed column is never HOT, so it also touches every other index), and
//! the deploy step that adds the column now also waits for a full index build.
//!
//! Forms: `CREATE [UNIQUE] INDEX [CONCURRENTLY]` on both engines; on MariaDB/MySQL also
//! `ALTER TABLE ... ADD INDEX/KEY/UNIQUE/FULLTEXT`. Only columns added by an EARLIER statement count: a
//! column added and indexed by the same MariaDB/MySQL ALTER TABLE is `mysql-add-column-not-instant`'s
//! finding (the index turns the instant ADD COLUMN into a rebuild; verified on MariaDB 10.11: `ADD COLUMN d
//! INT, ADD INDEX (d)` refuses ALGORITHM=INSTANT and NOCOPY), and an AUTO_INCREMENT column indexed in its
//! own ADD COLUMN is filled when added, with no backfill to wait for.
//! A column added with a DEFAULT is reported too: the rule cannot tell a placeholder default that will be
//! backfilled from a final one, and the index build still lands in the ADD COLUMN's deploy step.
//!
//! Size-aware: offline (no table statistics) → Warning; connected and the table is large (see
//! `LARGE_TABLE_ROWS`) → Error; connected and small → no finding. Exempt: columns added to a table
//! created earlier in the migration.

use super::prelude::*;
use sqlparser::ast::{self, AlterTableOperation, Expr, Statement, TableConstraint};

pub const RULE: Rule = Rule {
    id: "index-on-new-column",
    severity: Severity::Warning,
    engines: Engines::All,
    summary: "an index on a column added earlier in the same migration",
    why: "the new column is not backfilled yet, so the index is built in the same deploy step as the ADD \
          COLUMN and before the backfill: every backfill UPDATE then also writes index entries (on PostgreSQL \
          such updates can no longer be HOT), and the step that adds the column waits for a full index build",
    safe: "-- migration 1: ALTER TABLE t ADD COLUMN c bigint;\n\
           -- backfill c in batches\n\
           -- migration 2 (PostgreSQL):\n\
           CREATE INDEX CONCURRENTLY IF NOT EXISTS t_c_idx ON t (c);\n\
           -- migration 2 (MariaDB/MySQL):\n\
           ALTER TABLE t ADD INDEX t_c_idx (c), ALGORITHM=INPLACE, LOCK=NONE;",
    check,
};

/// Column names an index key reads, folded as the engine folds them (identifiers, and for MySQL prefix
/// keys `name(10)` the name).
fn key_columns<'a>(engine: EngineKind, exprs: impl Iterator<Item = &'a Expr>) -> Vec<String> {
    let fold = |i: &ast::Ident| crate::analysis::ir::fold_ident(engine, i);
    let mut out = Vec::new();
    for e in exprs {
        let _ = ast::visit_expressions(e, |x: &Expr| {
            match x {
                Expr::Identifier(i) => out.push(fold(i)),
                Expr::CompoundIdentifier(parts) => {
                    if let Some(last) = parts.last() {
                        out.push(fold(last));
                    }
                }
                Expr::Function(f) => {
                    if let Some(last) = f.name.0.last().and_then(|p| p.as_ident()) {
                        out.push(fold(last));
                    }
                }
                _ => {}
            }
            std::ops::ControlFlow::<()>::Continue(())
        });
    }
    out
}

/// An index found on new columns.
struct Found {
    table: QName,
    index: String,
    unique: bool,
    /// The key as written.
    keys: Vec<String>,
    /// The new columns it uses.
    new_columns: Vec<String>,
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let engine = ctx.target.engine;
    let pg = engine == EngineKind::Postgres;
    // The columns added by earlier statements that the key reads, as they were added.
    let new_columns = |table: &QName, keys: &[String]| -> Vec<String> {
        let mut cols: Vec<String> = Vec::new();
        for k in keys {
            let hit = ctx.added_columns.iter().find(|(t, c)| {
                // MariaDB/MySQL column names are case-insensitive.
                t.matches(table)
                    && if pg {
                        c == k
                    } else {
                        c.eq_ignore_ascii_case(k)
                    }
            });
            if let Some((_, c)) = hit {
                if !cols.contains(c) {
                    cols.push(c.clone());
                }
            }
        }
        cols
    };
    let mut found: Vec<Found> = Vec::new();
    match st.ast.as_deref() {
        Some(Statement::CreateIndex(ci)) => {
            let Some(Action::CreateIndex {
                table,
                name,
                unique,
                ..
            }) = st
                .actions()
                .iter()
                .find(|a| matches!(a, Action::CreateIndex { .. }))
            else {
                return;
            };
            if ctx.is_new_table(table) {
                return;
            }
            let keys = key_columns(engine, ci.columns.iter().map(|c| &c.column.expr));
            let cols = new_columns(table, &keys);
            if !cols.is_empty() {
                found.push(Found {
                    table: table.clone(),
                    index: name
                        .clone()
                        .unwrap_or_else(|| format!("{}_{}_idx", table.name, cols.join("_"))),
                    unique: *unique,
                    keys: ci.columns.iter().map(|c| c.to_string()).collect(),
                    new_columns: cols,
                });
            }
        }
        Some(Statement::AlterTable(at)) if !pg => {
            let Some(table) = st.actions().iter().find_map(|a| match a {
                Action::AddConstraint { table, .. } => Some(table.clone()),
                _ => None,
            }) else {
                return;
            };
            if ctx.is_new_table(&table) {
                return;
            }
            for op in &at.operations {
                let AlterTableOperation::AddConstraint { constraint, .. } = op else {
                    continue;
                };
                let (name, columns, unique) = match constraint {
                    TableConstraint::Index(c) => (c.name.clone(), &c.columns, false),
                    TableConstraint::Unique(c) => (
                        c.index_name.clone().or_else(|| c.name.clone()),
                        &c.columns,
                        true,
                    ),
                    TableConstraint::FulltextOrSpatial(c) => {
                        (c.opt_index_name.clone(), &c.columns, false)
                    }
                    _ => continue,
                };
                let keys = key_columns(engine, columns.iter().map(|c| &c.column.expr));
                let cols = new_columns(&table, &keys);
                if !cols.is_empty() {
                    found.push(Found {
                        table: table.clone(),
                        index: name.map(|n| n.value).unwrap_or_else(|| cols[0].clone()),
                        unique,
                        keys: columns.iter().map(|c| c.to_string()).collect(),
                        new_columns: cols,
                    });
                }
            }
        }
        _ => {}
    }
    for f in found {
        let severity = match ctx.is_large(&f.table) {
            Some(false) => continue,
            Some(true) => Some(Severity::Error),
            None => None,
        };
        let table = &f.table;
        let idx = &f.index;
        let listed = f
            .new_columns
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let size = match ctx.table_stats(table) {
            Some(s) => format!(" ({} rows)", s.rows),
            None => String::new(),
        };
        let u = if f.unique { "UNIQUE " } else { "" };
        let add = if pg {
            format!(
                "CREATE {u}INDEX CONCURRENTLY IF NOT EXISTS {idx} ON {table} ({});",
                f.keys.join(", ")
            )
        } else {
            format!(
                "ALTER TABLE {table} ADD {u}INDEX {idx} ({}), ALGORITHM=INPLACE, LOCK=NONE;",
                f.keys.join(", ")
            )
        };
        let mut hit = Hit::new(format!(
            "index `{idx}` on `{table}`{size} uses {listed}, added earlier in this migration: it is built \
             before the column is backfilled, in the same deploy step, and every backfill UPDATE then also \
             writes the index{}",
            if pg {
                " (and can no longer be a HOT update)"
            } else {
                ""
            }
        ))
        .help(format!(
            "-- this migration: only the ADD COLUMN\n\
             -- then backfill {listed} in batches\n\
             -- then, in a later migration:\n{add}"
        ));
        if let Some(s) = severity {
            hit = hit.severity(s);
        }
        out.push(hit);
    }
}
