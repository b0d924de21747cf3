//! `check-constraint-not-valid` (PostgreSQL): a CHECK constraint added to an existing table without
//! NOT VALID.
//!
//! Verified on PostgreSQL 15 (2M-row table): `ALTER TABLE t ADD CONSTRAINT c CHECK (...)` holds ACCESS
//! EXCLUSIVE on `t` while it scans every row (110 ms here, hours on a big table): reads and writes wait.
//! `... NOT VALID` is instant; `VALIDATE CONSTRAINT` then scans under SHARE UPDATE EXCLUSIVE only.
//! `ADD COLUMN c int CHECK (...)` also scans the whole table under its ACCESS EXCLUSIVE lock, even with
//! no default (seq_scan count +1): reported too, the fix being a separate ADD CONSTRAINT ... NOT VALID.
//! A VALIDATE in the same transaction as its ADD ... NOT VALID scans while the ACCESS EXCLUSIVE lock of
//! the ADD is held: reported on the VALIDATE.
//! Exempt: tables created earlier in the migration. MariaDB/MySQL have no NOT VALID: not this rule.

use super::foreign_key_not_valid::validate_in_same_transaction;
use super::prelude::*;
use super::require_concurrent_reindex::{ident_sql, qname_of, qname_sql};
use sqlparser::ast::{AlterTableOperation, ColumnOption, Expr, Statement, TableConstraint};

pub const RULE: Rule = Rule {
    id: "check-constraint-not-valid",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "a CHECK constraint added to an existing table without NOT VALID",
    why: "PostgreSQL checks every existing row while holding an ACCESS EXCLUSIVE lock on the table: every read \
          and write of the table waits for the whole scan",
    safe: "ALTER TABLE t ADD CONSTRAINT t_amount_check CHECK (amount > 0) NOT VALID;\n\
           -- in a later migration: SHARE UPDATE EXCLUSIVE, reads and writes continue\n\
           ALTER TABLE t VALIDATE CONSTRAINT t_amount_check;",
    check,
};

/// PostgreSQL's name for an unnamed CHECK: `<table>_<column>_check` when the expression reads exactly
/// one column, else `<table>_check`.
fn default_check_name(table: &str, expr: &Expr) -> String {
    let mut cols: Vec<String> = Vec::new();
    let _ = sqlparser::ast::visit_expressions(expr, |e: &Expr| {
        if let Expr::Identifier(i) = e {
            let c = crate::analysis::ir::fold_ident(EngineKind::Postgres, i);
            if !cols.contains(&c) {
                cols.push(c);
            }
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
    match cols.as_slice() {
        [one] => crate::plan::pg_object_name(table, Some(one), "check"),
        _ => {
            let mut base = table.to_string();
            while base.len() > 63 - "_check".len() {
                base.pop();
            }
            format!("{base}_check")
        }
    }
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    validate_in_same_transaction(st, ctx, ConstraintKind::Check, out);
    let Some(Statement::AlterTable(at)) = st.ast.as_deref() else {
        return;
    };
    let table = qname_of(&at.name);
    if ctx.is_new_table(&table) {
        return;
    }
    let tq = qname_sql(&table);
    for op in &at.operations {
        match op {
            AlterTableOperation::AddConstraint {
                constraint: TableConstraint::Check(ck),
                not_valid: false,
            } => {
                let name = ck
                    .name
                    .as_ref()
                    .map(|n| crate::analysis::ir::fold_ident(EngineKind::Postgres, n))
                    .unwrap_or_else(|| default_check_name(&table.name, &ck.expr));
                out.push(
                    Hit::new(format!(
                        "CHECK `{name}` on `{table}` scans every existing row under an ACCESS EXCLUSIVE lock: \
                         reads and writes of `{table}` wait for the whole scan"
                    ))
                    .help(format!(
                        "ALTER TABLE {tq} ADD CONSTRAINT {n} CHECK ({}) NOT VALID;\n\
                         -- in a later migration: SHARE UPDATE EXCLUSIVE, reads and writes continue\n\
                         ALTER TABLE {tq} VALIDATE CONSTRAINT {n};",
                        ck.expr,
                        n = ident_sql(&name)
                    )),
                );
            }
            AlterTableOperation::AddColumn { column_def, .. } => {
                let checks: Vec<(Option<String>, &Expr)> = column_def
                    .options
                    .iter()
                    .filter_map(|o| match &o.option {
                        ColumnOption::Check(ck) => Some((
                            o.name
                                .as_ref()
                                .or(ck.name.as_ref())
                                .map(|n| crate::analysis::ir::fold_ident(EngineKind::Postgres, n)),
                            ck.expr.as_ref(),
                        )),
                        _ => None,
                    })
                    .collect();
                if checks.is_empty() {
                    continue;
                }
                let column =
                    crate::analysis::ir::fold_ident(EngineKind::Postgres, &column_def.name);
                let mut bare = column_def.clone();
                bare.options
                    .retain(|o| !matches!(o.option, ColumnOption::Check(_)));
                let mut help = vec![format!("ALTER TABLE {tq} ADD COLUMN {bare};")];
                let mut validates = Vec::new();
                for (name, expr) in checks {
                    let n = ident_sql(&name.unwrap_or_else(|| {
                        crate::plan::pg_object_name(&table.name, Some(&column), "check")
                    }));
                    help.push(format!(
                        "ALTER TABLE {tq} ADD CONSTRAINT {n} CHECK ({expr}) NOT VALID;"
                    ));
                    validates.push(format!("ALTER TABLE {tq} VALIDATE CONSTRAINT {n};"));
                }
                help.push(
                    "-- in a later migration: SHARE UPDATE EXCLUSIVE, reads and writes continue"
                        .into(),
                );
                help.extend(validates);
                out.push(
                    Hit::new(format!(
                        "ADD COLUMN `{column}` with a CHECK scans every existing row of `{table}` to test it, \
                         under the ACCESS EXCLUSIVE lock of the ADD COLUMN: reads and writes of `{table}` wait \
                         for the whole scan"
                    ))
                    .help(help.join("\n")),
                );
            }
            _ => {}
        }
    }
}
