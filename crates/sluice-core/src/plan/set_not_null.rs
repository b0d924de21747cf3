//! SET NOT NULL: through a CHECK (col IS NOT NULL) NOT VALID, validated without blocking, after which
//! PostgreSQL 12+ sets NOT NULL without scanning.
//!
//! Everything about how SET NOT NULL becomes safe on PostgreSQL is here: what `sluice plan` prints
//! ([`plan`]), the steps `sluice up` runs with their locks ([`staged`]), and the proof by an earlier
//! valid check that lint's `set-not-null` rule, the plan and the staged form all ask
//! ([`proven_by_check`]).

use super::staged::{plain_alter, About, Rewrite, Step as RStep};
use super::*;
use sqlparser::ast::{AlterTableOperation, BinaryOperator, Expr, Statement, TableConstraint};

pub fn plan(a: &Action, st: &Stmt, ctx: &Ctx) -> OpPlan {
    let Action::SetNotNull { table, column } = a else {
        unreachable!()
    };
    let as_written = impact(
        "ACCESS EXCLUSIVE",
        Effect::Scan,
        Blocks::ReadsAndWrites,
        "every row is scanned while all queries wait",
    );
    if !ctx.target.at_least(12, 0) {
        return OpPlan {
            impact: as_written,
            safe_steps: vec![],
            refused: Some("before PostgreSQL 12 SET NOT NULL always scans under ACCESS EXCLUSIVE; keep a validated CHECK (col IS NOT NULL) instead".into()),
            staged: false,
        };
    }
    // An earlier statement left a valid check that proves it: no scan, nothing to stage.
    if proven_by_check(ctx.statements, st, table, column) {
        return OpPlan::safe_as_written(impact(
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "a valid CHECK (column IS NOT NULL) from an earlier statement proves it: no scan",
        ));
    }
    // Through a validated check: the steps are the rewrite's.
    OpPlan::staged(as_written)
}

/// What `up` runs on PostgreSQL 12+: `CHECK (col IS NOT NULL) NOT VALID`, VALIDATE (reads and
/// writes continue), then SET NOT NULL, which the valid check spares its scan, and the check
/// dropped. None: as written (before 12, or already proven by a valid check of an earlier
/// statement of `part`).
pub(super) fn staged(target: Target, st: &Stmt, part: &[Stmt]) -> Option<Rewrite> {
    let (Some(Statement::AlterTable(at)), [Action::SetNotNull { table, column }]) =
        (st.ast.as_deref(), st.actions())
    else {
        return None;
    };
    // A validated check spares SET NOT NULL its scan only from PostgreSQL 12.
    // Already proven by a valid check of an earlier statement: SET NOT NULL does not scan.
    if at.operations.len() != 1
        || !plain_alter(at)
        || !target.at_least(12, 0)
        || proven_by_check(part, st, table, column)
    {
        return None;
    }
    // A validated CHECK (col IS NOT NULL) lets SET NOT NULL skip its scan (PostgreSQL 12+).
    let check = crate::quote::pg::ident(&super::helper_name(&table.name, column, "not_null_check"));
    let c = crate::quote::pg::ident(column);
    let t = &at.name;
    Some(Rewrite {
        sql: format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID"),
        note: "NOT NULL through a CHECK: validated without blocking writes, then SET NOT NULL skips its scan".into(),
        builds_index: None,
        unnamed_index: None,
        then: vec![
            RStep::Sql(format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}")),
            RStep::Sql(format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL; ALTER TABLE {t} DROP CONSTRAINT {check}")),
        ],
        precheck: None,
        answers: &["set-not-null"],
        undo: vec![format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check}")],
        about: vec![
            About::catalog("add the check without scanning"),
            About::validate("validate it (reads and writes continue)"),
            About::catalog("set NOT NULL (the valid check spares the scan), drop the helper check"),
        ],
    })
}

fn fold(i: &sqlparser::ast::Ident) -> String {
    match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_lowercase(),
    }
}

/// Columns a check expression proves NOT NULL: `col IS NOT NULL`, possibly among AND-ed terms.
fn not_null_columns(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Nested(inner) => not_null_columns(inner, out),
        Expr::IsNotNull(inner) => match inner.as_ref() {
            Expr::Identifier(i) => out.push(fold(i)),
            Expr::Nested(x) => {
                if let Expr::Identifier(i) = x.as_ref() {
                    out.push(fold(i))
                }
            }
            _ => {}
        },
        Expr::BinaryOp {
            left,
            op: BinaryOperator::And,
            right,
        } => {
            not_null_columns(left, out);
            not_null_columns(right, out);
        }
        _ => {}
    }
}

/// True when an earlier statement of the part (`statements`) left a valid `CHECK (column IS NOT
/// NULL)` on the table. Lint, plan and the rewrite `up` runs all ask this one function.
pub(crate) fn proven_by_check(
    statements: &[Stmt],
    st: &Stmt,
    table: &crate::analysis::ir::QName,
    column: &str,
) -> bool {
    // (constraint name, valid) of the checks on `table` that prove `column` NOT NULL.
    let mut checks: Vec<(Option<String>, bool)> = Vec::new();
    for s in statements.iter().filter(|s| s.index <= st.index) {
        let Some(Statement::AlterTable(at)) = s.ast.as_deref() else {
            continue;
        };
        let Some(t) = s.actions().iter().find_map(|a| match a {
            Action::AddConstraint { table, .. }
            | Action::ValidateConstraint { table, .. }
            | Action::DropConstraint { table, .. }
            | Action::SetNotNull { table, .. } => Some(table.clone()),
            _ => None,
        }) else {
            continue;
        };
        if !t.matches(table) {
            continue;
        }
        for op in &at.operations {
            match op {
                AlterTableOperation::AddConstraint {
                    constraint: TableConstraint::Check(c),
                    not_valid,
                } => {
                    let mut cols = Vec::new();
                    not_null_columns(&c.expr, &mut cols);
                    if cols.iter().any(|c| c == column) {
                        checks.push((c.name.as_ref().map(fold), !not_valid));
                    }
                }
                AlterTableOperation::ValidateConstraint { name } => {
                    let n = fold(name);
                    for c in checks.iter_mut() {
                        if c.0.as_deref() == Some(n.as_str()) {
                            c.1 = true;
                        }
                    }
                }
                AlterTableOperation::DropConstraint { name, .. } => {
                    let n = fold(name);
                    checks.retain(|c| c.0.as_deref() != Some(n.as_str()));
                }
                _ => {}
            }
            // Only what comes before the SET NOT NULL in this very statement counts.
            if s.index == st.index {
                if let AlterTableOperation::AlterColumn { column_name, .. } = op {
                    if fold(column_name) == column {
                        break;
                    }
                }
            }
        }
    }
    checks.iter().any(|c| c.1)
}
