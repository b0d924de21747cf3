//! `constraint-without-prebuilt-index` (PostgreSQL): ADD PRIMARY KEY / ADD UNIQUE on an existing table
//! that builds its index inside the ALTER TABLE (no `USING INDEX`).
//!
//! Verified on PostgreSQL 15 (2M-row table): `ALTER TABLE t ADD CONSTRAINT u UNIQUE (a)` and
//! `ADD PRIMARY KEY (id)` hold ACCESS EXCLUSIVE on `t` (plus SHARE) for the whole index build (0.4 s
//! here): reads and writes wait. So does `ADD COLUMN c int UNIQUE` / `PRIMARY KEY` (0.8 s). With an
//! index built first by `CREATE UNIQUE INDEX CONCURRENTLY`, `ADD CONSTRAINT ... USING INDEX` holds
//! ACCESS EXCLUSIVE for about a millisecond and does not scan, provided for a PRIMARY KEY that its
//! columns are already NOT NULL (a nullable column made the USING INDEX scan the table under ACCESS
//! EXCLUSIVE; a validated `CHECK (col IS NOT NULL)` let the NOT NULL be set without a scan, PG 12+).
//! Exempt: tables created earlier in the migration.

use super::prelude::*;
use super::require_concurrent_reindex::{ident_sql, qname_of, qname_sql};
use sqlparser::ast::{AlterTableOperation, ColumnOption, Statement, TableConstraint};

pub const RULE: Rule = Rule {
    id: "constraint-without-prebuilt-index",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "ADD PRIMARY KEY / UNIQUE on an existing table without a prebuilt index (USING INDEX)",
    why: "the ALTER TABLE builds the unique index itself while holding an ACCESS EXCLUSIVE lock on the table: \
          every read and write waits for the whole index build",
    safe: "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS t_email_key ON t (email);  -- outside a transaction\n\
           ALTER TABLE t ADD CONSTRAINT t_email_key UNIQUE USING INDEX t_email_key;",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some(Statement::AlterTable(at)) = st.ast.as_deref() else {
        return;
    };
    let table = qname_of(&at.name);
    if ctx.is_new_table(&table) {
        return;
    }
    let fold = |i: &sqlparser::ast::Ident| crate::analysis::ir::fold_ident(EngineKind::Postgres, i);
    for op in &at.operations {
        match op {
            AlterTableOperation::AddConstraint { constraint, .. } => {
                let (primary, name, columns, nulls_not_distinct) = match constraint {
                    TableConstraint::PrimaryKey(pk) => (
                        true,
                        pk.name.as_ref().map(fold),
                        pk.columns.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
                        false,
                    ),
                    TableConstraint::Unique(u) => (
                        false,
                        u.name.as_ref().map(fold),
                        u.columns.iter().map(|c| c.to_string()).collect(),
                        u.to_string().contains("NULLS NOT DISTINCT"),
                    ),
                    _ => continue,
                };
                let name = name.unwrap_or_else(|| default_name(&table.name, primary, &columns));
                out.push(hit(
                    &table,
                    primary,
                    &name,
                    &columns,
                    nulls_not_distinct,
                    None,
                    ctx,
                ));
            }
            AlterTableOperation::AddColumn { column_def, .. } => {
                let mut found: Option<(bool, Option<String>)> = None;
                for o in &column_def.options {
                    match &o.option {
                        ColumnOption::PrimaryKey(_) => {
                            found = Some((true, o.name.as_ref().map(fold)))
                        }
                        ColumnOption::Unique(_) if found.is_none() => {
                            found = Some((false, o.name.as_ref().map(fold)))
                        }
                        _ => {}
                    }
                }
                let Some((primary, name)) = found else {
                    continue;
                };
                let column = fold(&column_def.name);
                let columns = vec![ident_sql(&column)];
                let name = name.unwrap_or_else(|| {
                    default_name(&table.name, primary, std::slice::from_ref(&column))
                });
                let mut bare = column_def.clone();
                bare.options.retain(|o| {
                    !matches!(
                        o.option,
                        ColumnOption::PrimaryKey(_) | ColumnOption::Unique(_)
                    )
                });
                out.push(hit(
                    &table,
                    primary,
                    &name,
                    &columns,
                    false,
                    Some(format!("{bare}")),
                    ctx,
                ));
            }
            _ => {}
        }
    }
}

/// PostgreSQL's index name for an unnamed constraint: `<table>_pkey`, `<table>_<cols>_key`.
fn default_name(table: &str, primary: bool, columns: &[String]) -> String {
    if primary {
        let mut base = table.to_string();
        while base.len() > 63 - "_pkey".len() {
            base.pop();
        }
        format!("{base}_pkey")
    } else {
        let cols: Vec<String> = columns
            .iter()
            .map(|c| c.trim_matches('"').to_lowercase())
            .collect();
        crate::plan::pg_object_name(table, Some(&crate::plan::pg_name_addition(&cols)), "key")
    }
}

fn hit(
    table: &QName,
    primary: bool,
    name: &str,
    columns: &[String],
    nulls_not_distinct: bool,
    new_column: Option<String>,
    ctx: &Ctx,
) -> Hit {
    let kind = if primary { "PRIMARY KEY" } else { "UNIQUE" };
    let tq = qname_sql(table);
    let n = ident_sql(name);
    let cols = columns.join(", ");
    let mut help = Vec::new();
    if let Some(col) = &new_column {
        help.push(format!("ALTER TABLE {tq} ADD COLUMN {col};"));
    }
    help.push(format!(
        "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {n} ON {tq} ({cols}){};  -- outside a transaction block",
        if nulls_not_distinct { " NULLS NOT DISTINCT" } else { "" }
    ));
    if primary {
        if ctx.target.at_least(12, 0) {
            help.push(format!(
                "-- a PRIMARY KEY needs NOT NULL columns, or the ADD CONSTRAINT below scans {tq} under ACCESS \
                 EXCLUSIVE;\n-- for each column not yet NOT NULL (PostgreSQL 12+ then sets NOT NULL without a scan):"
            ));
            for c in columns {
                let bare = c.trim_matches('"').to_lowercase();
                let check = ident_sql(&crate::plan::helper_name(
                    &table.name,
                    &bare,
                    "not_null_check",
                ));
                help.push(format!(
                    "--   ALTER TABLE {tq} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID;\n\
                     --   ALTER TABLE {tq} VALIDATE CONSTRAINT {check};\n\
                     --   ALTER TABLE {tq} ALTER COLUMN {c} SET NOT NULL;"
                ));
            }
        } else {
            help.push(format!(
                "-- a PRIMARY KEY needs NOT NULL columns: before PostgreSQL 12 setting NOT NULL always scans \
                 {tq} under ACCESS EXCLUSIVE, so do that at a quiet time"
            ));
        }
    }
    help.push(format!(
        "ALTER TABLE {tq} ADD CONSTRAINT {n} {kind} USING INDEX {n};"
    ));
    let what = match &new_column {
        Some(_) => format!("ADD COLUMN with {kind}"),
        None => format!("ADD {kind}"),
    };
    Hit::new(format!(
        "{what} on `{table}` builds index `{name}` while holding an ACCESS EXCLUSIVE lock on `{table}`: \
         reads and writes wait for the whole index build"
    ))
    .help(help.join("\n"))
}
