//! `foreign-key-not-valid` (PostgreSQL): a foreign key added to an existing table without NOT VALID.
//!
//! Verified on PostgreSQL 15 (2M-row table):
//! - `ALTER TABLE t ADD CONSTRAINT fk FOREIGN KEY (c) REFERENCES p (id)` takes SHARE ROW EXCLUSIVE on
//!   both `t` and `p` and validates every row of `t` (a full scan plus a lookup in `p`) while holding
//!   them: writes to both tables wait. With `NOT VALID` the ADD is instant (same locks, no scan) and
//!   `VALIDATE CONSTRAINT` scans under SHARE UPDATE EXCLUSIVE on `t` and ROW SHARE on `p`: reads and
//!   writes continue.
//! - `ADD COLUMN c int REFERENCES p (id)` with no DEFAULT does not scan: PostgreSQL knows the new
//!   column is all NULL and marks the key valid at once (seq_scan count unchanged, 0.3 ms), so it is
//!   not reported. With any DEFAULT (even `DEFAULT NULL`) it validates every row, under the ACCESS
//!   EXCLUSIVE lock of the ADD COLUMN: reported. A column constraint cannot be NOT VALID, so the fix
//!   is a separate ADD CONSTRAINT ... NOT VALID.
//! - A FOREIGN KEY on a column added by an earlier statement or clause does scan: reported.
//! - `VALIDATE CONSTRAINT` in the same transaction as its `ADD ... NOT VALID` (a part run as one
//!   transaction, or one BEGIN block) scans while the ADD's locks are still held: reported on the
//!   VALIDATE, since NOT VALID then buys nothing.
//!
//! Exempt: tables created earlier in the migration (empty: nothing to validate).

use super::prelude::*;
use super::require_concurrent_reindex::{ident_sql, qname_of, qname_sql, same_transaction};
use sqlparser::ast::{AlterTableOperation, ColumnOption, Statement, TableConstraint};

pub const RULE: Rule = Rule {
    id: "foreign-key-not-valid",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "a FOREIGN KEY added to an existing table without NOT VALID",
    why: "the new key is checked against every existing row while SHARE ROW EXCLUSIVE locks are held on both \
          the table and the table it references: INSERT, UPDATE and DELETE on both wait for the whole scan",
    safe: "ALTER TABLE t ADD CONSTRAINT t_p_id_fkey FOREIGN KEY (p_id) REFERENCES p (id) NOT VALID;\n\
           -- in a later migration: SHARE UPDATE EXCLUSIVE, reads and writes continue\n\
           ALTER TABLE t VALIDATE CONSTRAINT t_p_id_fkey;",
    check,
};

/// PostgreSQL's name for an unnamed foreign key: `<table>_<col>[_<col>...]_fkey`.
pub(super) fn default_fk_name(table: &str, columns: &[String]) -> String {
    crate::plan::pg_object_name(table, Some(&crate::plan::pg_name_addition(columns)), "fkey")
}

/// The constraints added NOT VALID by earlier statements of the part on `table`: (statement index,
/// name as PostgreSQL will call it, kind).
pub(super) fn added_not_valid(
    ctx: &Ctx,
    before: usize,
    table: &QName,
) -> Vec<(usize, String, ConstraintKind)> {
    let mut out = Vec::new();
    for (i, st) in ctx.statements.iter().enumerate().take(before + 1) {
        for a in st.actions() {
            if let Action::AddConstraint {
                table: t,
                constraint,
            } = a
            {
                if !constraint.not_valid || !t.matches(table) {
                    continue;
                }
                let name = match (&constraint.name, constraint.kind) {
                    (Some(n), _) => n.clone(),
                    (None, ConstraintKind::ForeignKey) => {
                        default_fk_name(&t.name, &constraint.columns)
                    }
                    (None, _) => continue,
                };
                out.push((i, name, constraint.kind));
            }
        }
    }
    out
}

/// Reports a VALIDATE CONSTRAINT that runs in the transaction of its own ADD ... NOT VALID.
pub(super) fn validate_in_same_transaction(
    st: &Stmt,
    ctx: &Ctx,
    kind: ConstraintKind,
    out: &mut Vec<Hit>,
) {
    for a in st.actions() {
        let Action::ValidateConstraint { table, name } = a else {
            continue;
        };
        if ctx.is_new_table(table) {
            continue;
        }
        let tq = qname_sql(table);
        let Some((i, _, _)) = added_not_valid(ctx, st.index, table)
            .into_iter()
            .find(|(_, n, k)| n == name && *k == kind)
        else {
            continue;
        };
        if i != st.index && !same_transaction(ctx, i, st.index) {
            continue;
        }
        let locks = match kind {
            ConstraintKind::ForeignKey => format!(
                "the SHARE ROW EXCLUSIVE locks it took on `{table}` and the referenced table are still held \
                 while VALIDATE scans `{table}`: writes to both wait as if NOT VALID had not been used"
            ),
            _ => format!(
                "the ACCESS EXCLUSIVE lock it took on `{table}` is still held while VALIDATE scans it: reads \
                 and writes wait as if NOT VALID had not been used"
            ),
        };
        let added_at = if i == st.index {
            "in this same statement".to_string()
        } else {
            format!("at line {}", ctx.statements[i].line)
        };
        out.push(
            Hit::new(format!(
                "VALIDATE CONSTRAINT `{name}` runs in the same transaction as its ADD ... NOT VALID ({added_at}): {locks}"
            ))
            .help(format!(
                "-- keep the ADD ... NOT VALID here and validate in a later migration (or run this part with\n\
                 -- `-- sluice:transaction per-statement` so that each statement commits on its own):\n\
                 ALTER TABLE {tq} VALIDATE CONSTRAINT {};",
                ident_sql(name)
            )),
        );
    }
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    validate_in_same_transaction(st, ctx, ConstraintKind::ForeignKey, out);
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
                constraint: TableConstraint::ForeignKey(fk),
                not_valid: false,
            } => {
                let columns: Vec<String> = fk
                    .columns
                    .iter()
                    .map(|c| crate::analysis::ir::fold_ident(EngineKind::Postgres, c))
                    .collect();
                let name = fk
                    .name
                    .as_ref()
                    .map(|n| crate::analysis::ir::fold_ident(EngineKind::Postgres, n))
                    .unwrap_or_else(|| default_fk_name(&table.name, &columns));
                let mut named = fk.clone();
                named.name = Some(sqlparser::ast::Ident::new(ident_sql(&name)));
                let referenced = qname_of(&fk.foreign_table);
                out.push(
                    Hit::new(format!(
                        "FOREIGN KEY `{name}` on `{table}` is validated against every existing row of \
                         `{table}` while SHARE ROW EXCLUSIVE locks are held on `{table}` and `{referenced}`: \
                         writes to both tables wait for the whole scan"
                    ))
                    .help(format!(
                        "ALTER TABLE {tq} ADD {named} NOT VALID;\n\
                         -- in a later migration: SHARE UPDATE EXCLUSIVE on {tq}, reads and writes continue\n\
                         ALTER TABLE {tq} VALIDATE CONSTRAINT {};",
                        ident_sql(&name)
                    )),
                );
            }
            AlterTableOperation::AddColumn { column_def, .. } => {
                let has_default = column_def
                    .options
                    .iter()
                    .any(|o| matches!(o.option, ColumnOption::Default(_)));
                let Some((opt_name, fk)) =
                    column_def.options.iter().find_map(|o| match &o.option {
                        ColumnOption::ForeignKey(fk) => Some((o.name.clone(), fk)),
                        _ => None,
                    })
                else {
                    continue;
                };
                if !has_default {
                    // All NULL: PostgreSQL marks the key valid without scanning.
                    continue;
                }
                let column =
                    crate::analysis::ir::fold_ident(EngineKind::Postgres, &column_def.name);
                let name = opt_name
                    .or_else(|| fk.name.clone())
                    .map(|n| crate::analysis::ir::fold_ident(EngineKind::Postgres, &n))
                    .unwrap_or_else(|| default_fk_name(&table.name, std::slice::from_ref(&column)));
                let mut bare = column_def.clone();
                bare.options
                    .retain(|o| !matches!(o.option, ColumnOption::ForeignKey(_)));
                let mut named = fk.clone();
                named.name = Some(sqlparser::ast::Ident::new(ident_sql(&name)));
                named.columns = vec![column_def.name.clone()];
                let referenced = qname_of(&fk.foreign_table);
                out.push(
                    Hit::new(format!(
                        "ADD COLUMN `{column}` with a DEFAULT and REFERENCES `{referenced}`: the default is \
                         checked against `{referenced}` for every existing row of `{table}`, under the ACCESS \
                         EXCLUSIVE lock of the ADD COLUMN (reads and writes of `{table}` wait) and a SHARE ROW \
                         EXCLUSIVE lock on `{referenced}` (its writes wait)"
                    ))
                    .help(format!(
                        "ALTER TABLE {tq} ADD COLUMN {bare};\n\
                         ALTER TABLE {tq} ADD {named} NOT VALID;\n\
                         -- in a later migration: SHARE UPDATE EXCLUSIVE on {tq}, reads and writes continue\n\
                         ALTER TABLE {tq} VALIDATE CONSTRAINT {};",
                        ident_sql(&name)
                    )),
                );
            }
            _ => {}
        }
    }
}
