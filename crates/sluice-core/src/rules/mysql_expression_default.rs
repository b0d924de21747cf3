//! `mysql-expression-default` (MariaDB/MySQL): `ADD COLUMN ... DEFAULT (expr)` on an existing table.
//!
//! Verified on MariaDB 10.11: a default evaluated once per statement (`now()`, `current_user()`,
//! constants, `rand()`) is added INSTANT; one that must be computed per row (it references another
//! column, or calls `uuid()`, `uuid_short()`, `sysdate()`) needs ALGORITHM=COPY (INPLACE and NOCOPY are
//! refused), blocking writes: Error. `rand()` is INSTANT but every existing row gets the same value:
//! Warning. MySQL 8.0.13+ never adds a column with an expression default (any parenthesized DEFAULT)
//! INSTANT: it rebuilds the table (rebuild severity: Warning offline, Error on a large table, nothing on a
//! small one); MySQL before 8.0.13 rejects the syntax. Either engine: DDL replicates as a statement, so a
//! default calling `uuid()`, `uuid_short()` or `sysdate()` gives existing rows different values on each
//! replica: Error.

use super::mysql_table_rebuild::{mysql_at_least, online_rebuild_severity};
use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql};
use sqlparser::ast::{self, AlterTableOperation, ColumnOption, Expr, Statement};

pub const RULE: Rule = Rule {
    id: "mysql-expression-default",
    severity: Severity::Error,
    engines: Engines::MySqlFamily,
    summary: "ADD COLUMN with an expression DEFAULT (expr) on an existing table",
    why: "the existing rows need the expression's value. MariaDB computes a per-row expression (a column \
          reference, uuid(), sysdate()) by copying the table with writes blocked (ALGORITHM=COPY); MySQL never \
          adds a column with an expression default INSTANT and rebuilds the table. DDL replicates as a statement, \
          so uuid()/uuid_short()/sysdate() give each replica different values for the existing rows",
    safe: "ALTER TABLE t ADD COLUMN c CHAR(36) NULL, ALGORITHM=INSTANT;   -- no default: instant\n\
           ALTER TABLE t ALTER COLUMN c SET DEFAULT (uuid());            -- instant: new rows only\n\
           UPDATE t SET c = uuid() WHERE c IS NULL AND id BETWEEN 1 AND 10000;  -- backfill in batches",
    check,
};

/// How a default expression behaves when a column is added to an existing table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct ExprFacts {
    /// Must be computed per row: a column reference or a per-row function.
    pub per_row: Option<String>,
    /// Calls rand(): evaluated once for all existing rows on MariaDB.
    pub rand: bool,
    /// Gives each server its own value when the DDL replays on replicas.
    pub divergent: Option<String>,
}

const NILADIC: &[&str] = &[
    "CURRENT_TIMESTAMP",
    "CURRENT_DATE",
    "CURRENT_TIME",
    "LOCALTIME",
    "LOCALTIMESTAMP",
    "CURRENT_USER",
    "CURRENT_ROLE",
    "UTC_TIMESTAMP",
    "UTC_DATE",
    "UTC_TIME",
    "NULL",
    "TRUE",
    "FALSE",
];

fn facts(e: &Expr) -> ExprFacts {
    let mut f = ExprFacts {
        per_row: None,
        rand: false,
        divergent: None,
    };
    let _ = ast::visit_expressions(e, |x: &Expr| {
        match x {
            Expr::Function(func) => {
                let name = func.name.to_string().to_lowercase();
                let base = name.rsplit('.').next().unwrap_or(&name).trim_matches('`');
                match base {
                    "uuid" | "uuid_short" | "sysdate" => {
                        f.per_row.get_or_insert_with(|| format!("{base}()"));
                        f.divergent.get_or_insert_with(|| format!("{base}()"));
                    }
                    "nextval" | "lastval" => {
                        f.per_row.get_or_insert_with(|| format!("{base}()"));
                    }
                    "rand" => f.rand = true,
                    _ => {}
                }
            }
            Expr::Identifier(i)
                if i.quote_style.is_some()
                    || !NILADIC.contains(&i.value.to_uppercase().as_str()) =>
            {
                f.per_row
                    .get_or_insert_with(|| format!("it reads column `{}`", i.value));
            }
            Expr::CompoundIdentifier(parts) => {
                let n = parts
                    .iter()
                    .map(|p| p.value.clone())
                    .collect::<Vec<_>>()
                    .join(".");
                f.per_row
                    .get_or_insert_with(|| format!("it reads column `{n}`"));
            }
            _ => {}
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    f
}

/// The DEFAULT expression of column `column` in the statement's ADD COLUMN clauses.
fn default_of<'a>(st: &'a Stmt, engine: EngineKind, column: &str) -> Option<&'a Expr> {
    let Some(Statement::AlterTable(at)) = st.ast.as_deref() else {
        return None;
    };
    at.operations.iter().find_map(|o| match o {
        AlterTableOperation::AddColumn { column_def, .. }
            if crate::analysis::ir::fold_ident(engine, &column_def.name) == column =>
        {
            column_def.options.iter().find_map(|d| match &d.option {
                ColumnOption::Default(e) => Some(e),
                _ => None,
            })
        }
        _ => None,
    })
}

/// The finding for one added column, if its default is this rule's business.
pub(super) fn finding(st: &Stmt, ctx: &Ctx, table: &QName, column: &ColumnSpec) -> Option<Hit> {
    let default = column.default.as_ref()?;
    let expr = default_of(st, ctx.target.engine, &column.name)?;
    let f = facts(expr);
    let t = ctx.target;
    let (c, ty, text) = (&column.name, &column.data_type, &default.text);
    let backfill = match expr {
        Expr::Nested(inner) => inner.to_string(),
        e => e.to_string(),
    };
    let (tq, cq) = (name_sql(t.engine, table), ident_sql(t.engine, c));
    let help = format!(
        "ALTER TABLE {tq} ADD COLUMN {cq} {ty} NULL, ALGORITHM=INSTANT;  -- no default: instant\n\
         ALTER TABLE {tq} ALTER COLUMN {cq} SET DEFAULT ({backfill});  -- new rows only, instant\n\
         UPDATE {tq} SET {cq} = {backfill} WHERE {cq} IS NULL AND id BETWEEN 1 AND 10000;  -- backfill in batches"
    );
    let divergence = f
        .divergent
        .as_ref()
        .map(|d| {
            format!(
                "; and ALTER TABLE replicates as a statement, so each replica computes its own {d} for the existing rows: \
                 the column differs between primary and replicas"
            )
        })
        .unwrap_or_default();
    match t.engine {
        EngineKind::MySql => {
            if !default.parenthesized {
                return None;
            }
            if !mysql_at_least(t, 8, 0, 13) {
                return Some(Hit::new(format!(
                    "DEFAULT {text} on `{table}`.`{c}`: {t} rejects expression defaults (MySQL 8.0.13+)"
                ))
                .severity(Severity::Error)
                .help(format!("ALTER TABLE {tq} ADD COLUMN {cq} {ty} NULL;  -- then backfill in batches")));
            }
            let sev = if f.divergent.is_some() {
                Severity::Error
            } else {
                online_rebuild_severity(st, ctx, table)?
            };
            Some(
                Hit::new(format!(
                    "DEFAULT {text} is an expression default: MySQL cannot add `{c}` INSTANT and rebuilds `{table}` \
                     (if it cannot do that in place, ALGORITHM=COPY blocks writes){divergence}"
                ))
                .severity(sev)
                .help(help),
            )
        }
        EngineKind::MariaDb => {
            if !t.at_least(10, 2) {
                return Some(
                    Hit::new(format!(
                        "DEFAULT {text} on `{table}`.`{c}`: MariaDB {}.{} rejects expression defaults (10.2+)",
                        t.major, t.minor
                    ))
                    .severity(Severity::Error)
                    .help(format!("ALTER TABLE {tq} ADD COLUMN {cq} {ty} NULL;  -- then backfill in batches")),
                );
            }
            if let Some(why) = &f.per_row {
                let why = if why.ends_with("()") {
                    format!("it calls {why}")
                } else {
                    why.clone()
                };
                return Some(
                    Hit::new(format!(
                        "DEFAULT {text} must be computed for each existing row ({why}): MariaDB adds `{c}` to `{table}` \
                         with ALGORITHM=COPY, blocking writes for the whole copy{divergence}"
                    ))
                    .severity(Severity::Error)
                    .help(help),
                );
            }
            if f.rand && t.at_least(10, 3) {
                return Some(
                    Hit::new(format!(
                        "DEFAULT {text} is evaluated once when `{c}` is added INSTANT: every existing row of `{table}` \
                         gets the same value, only new rows get their own"
                    ))
                    .severity(Severity::Warning)
                    .help(help),
                );
            }
            None
        }
        EngineKind::Postgres => None,
    }
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::AddColumn { table, column, .. } = a else {
            continue;
        };
        if ctx.is_new_table(table) {
            continue;
        }
        if let Some(h) = finding(st, ctx, table, column) {
            out.push(h);
        }
    }
}
