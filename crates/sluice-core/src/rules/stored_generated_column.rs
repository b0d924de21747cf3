//! `stored-generated-column`: adding a stored generated column to an existing table.
//!
//! PostgreSQL: `ADD COLUMN ... GENERATED ALWAYS AS (expr) STORED` computes the value for every row: a full
//! rewrite under ACCESS EXCLUSIVE (verified on PostgreSQL 15 with `pg_relation_filenode`).
//! MariaDB/MySQL: a `STORED` (MariaDB also `PERSISTENT`, which sluice reads as `STORED`) generated column
//! needs `ALGORITHM=COPY`: the table is copied while writes are blocked (verified on MariaDB 10.11: INSTANT,
//! NOCOPY and INPLACE are refused). A `VIRTUAL` one is instant — except that MariaDB 10.11 copies the
//! table when the virtual column is positioned (`FIRST`/`AFTER`) or added together with an ordinary
//! column in the same ALTER TABLE (verified: INSTANT/NOCOPY/INPLACE refused, "Try ALGORITHM=COPY").
//! Tables created earlier in the same migration are exempt.

use super::prelude::*;
use sqlparser::ast::{AlterTableOperation, ColumnOption, Statement};

pub const RULE: Rule = Rule {
    id: "stored-generated-column",
    severity: Severity::Error,
    engines: Engines::All,
    summary: "ADD COLUMN ... GENERATED ... STORED (or a generated column MariaDB must copy for) on an existing table",
    why: "the value is computed and written into every existing row: PostgreSQL rewrites the table under an \
          ACCESS EXCLUSIVE lock (reads and writes wait); MariaDB/MySQL copy the table (ALGORITHM=COPY) while \
          writes are blocked",
    safe: "-- PostgreSQL: a plain column filled by a trigger, backfilled in batches\n\
           ALTER TABLE t ADD COLUMN total numeric;\n\
           -- MariaDB/MySQL: a VIRTUAL column, added last and alone, is instant\n\
           ALTER TABLE t ADD COLUMN total DECIMAL(12,2) AS (price * qty) VIRTUAL, ALGORITHM=INSTANT;",
    check,
};

/// The generation expression of an added column, from the AST.
fn generation_expr(st: &Stmt, column: &str) -> Option<String> {
    let Some(Statement::AlterTable(at)) = st.ast.as_deref() else {
        return None;
    };
    at.operations.iter().find_map(|op| match op {
        AlterTableOperation::AddColumn { column_def, .. }
            if column_def.name.value.eq_ignore_ascii_case(column) =>
        {
            column_def.options.iter().find_map(|o| match &o.option {
                ColumnOption::Generated {
                    generation_expr: Some(e),
                    ..
                } => Some(format!("({e})")),
                _ => None,
            })
        }
        _ => None,
    })
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let added: Vec<&ColumnSpec> = st
        .actions()
        .iter()
        .filter_map(|a| match a {
            Action::AddColumn { column, .. } => Some(column),
            _ => None,
        })
        .collect();
    for a in st.actions() {
        let Action::AddColumn { table, column, .. } = a else {
            continue;
        };
        if ctx.is_new_table(table) {
            continue;
        }
        let c = &column.name;
        let ty = &column.data_type;
        let expr = generation_expr(st, c).unwrap_or_else(|| "(expr)".into());
        if column.generated_stored {
            if ctx.is_postgres() {
                out.push(
                    Hit::new(format!(
                        "adding the stored generated column `{table}.{c}` computes it for every row: PostgreSQL \
                         rewrites `{table}` under an ACCESS EXCLUSIVE lock while reads and writes wait"
                    ))
                    .help(format!(
                        "ALTER TABLE {table} ADD COLUMN {c} {ty};  -- catalog-only\n\
                         -- keep it filled with a BEFORE INSERT OR UPDATE trigger that sets NEW.{c} := {expr},\n\
                         -- backfill existing rows in batches: UPDATE {table} SET {c} = {expr} WHERE {c} IS NULL AND <batch>;\n\
                         -- or compute {expr} in the query or a view instead of storing it"
                    )),
                );
            } else {
                out.push(
                    Hit::new(format!(
                        "adding the stored generated column `{table}.{c}` copies `{table}` (ALGORITHM=COPY): \
                         writes wait until every row is copied"
                    ))
                    .help(format!(
                        "-- a VIRTUAL generated column is computed on read and added instantly:\n\
                         ALTER TABLE {table} ADD COLUMN {c} {ty} AS {expr} VIRTUAL, ALGORITHM=INSTANT;\n\
                         -- (index it separately if queries filter on it)"
                    )),
                );
            }
        } else if column.generated_virtual && ctx.target.engine == EngineKind::MariaDb {
            let with_others = added
                .iter()
                .any(|o| !o.generated_virtual && !o.generated_stored);
            if !column.positioned && !with_others {
                continue;
            }
            let why = if column.positioned {
                "it is positioned with FIRST/AFTER"
            } else {
                "it is added together with an ordinary column"
            };
            out.push(
                Hit::new(format!(
                    "adding the virtual column `{table}.{c}` copies `{table}` on MariaDB because {why}: \
                     writes wait until every row is copied"
                ))
                .help(format!(
                    "-- add the virtual column alone and last: MariaDB then adds it instantly\n\
                     ALTER TABLE {table} ADD COLUMN {c} {ty} AS {expr} VIRTUAL, ALGORITHM=INSTANT;"
                )),
            );
        }
    }
}
