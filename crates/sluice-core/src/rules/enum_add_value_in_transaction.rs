//! `enum-add-value-in-transaction`: `ALTER TYPE ... ADD VALUE` and the transaction around it (PostgreSQL).
//!
//! Before PostgreSQL 12, `ADD VALUE` cannot run inside a transaction block ("ALTER TYPE ... ADD cannot run
//! inside a transaction block") unless the enum type was created in that same transaction: reported when
//! the part runs as one transaction (`-- sluice:transaction single`) or the statement sits inside a
//! BEGIN written in the file. Without either, sluice runs such a part statement by statement.
//!
//! From PostgreSQL 12 it may run in a transaction, but the new label cannot be used until that transaction
//! commits (verified on PostgreSQL 15: INSERT, UPDATE, a cast, a column DEFAULT and a CREATE TABLE default
//! naming the label all fail with "unsafe use of new value"; this holds even when the type was created in
//! the same transaction). Reported on the later statement of the same transaction that mentions the new
//! label as a string literal.

use super::prelude::*;
use sqlparser::ast::{self, AlterTypeOperation, Expr, Statement, Value};

pub const RULE: Rule = Rule {
    id: "enum-add-value-in-transaction",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "ALTER TYPE ... ADD VALUE in a transaction block before PostgreSQL 12, or the new value used in the same transaction",
    why: "before PostgreSQL 12 the server refuses ADD VALUE inside a transaction block; from 12 on it accepts it, \
          but any statement of the same transaction that uses the new label fails with \"unsafe use of new value\", \
          so the migration fails and rolls back",
    safe: "-- migration 1 (its own transaction, or `-- sluice:transaction per-statement`):\n\
           ALTER TYPE status ADD VALUE IF NOT EXISTS 'archived';\n\
           -- migration 2, after it committed:\n\
           UPDATE items SET status = 'archived' WHERE archived_at IS NOT NULL;",
    check,
};

/// The label an `ALTER TYPE ... ADD VALUE` statement adds, with its type.
fn added_label(st: &Stmt) -> Option<(QName, String)> {
    let Some(Statement::AlterType(at)) = st.ast.as_deref() else {
        return None;
    };
    let AlterTypeOperation::AddValue(v) = &at.operation else {
        return None;
    };
    let type_name = st.actions().iter().find_map(|a| match a {
        Action::AddEnumValue { type_name, .. } => Some(type_name.clone()),
        _ => None,
    })?;
    Some((type_name, v.value.value.clone()))
}

/// True when the statement mentions `label` as a string literal.
fn mentions(st: &Stmt, label: &str) -> bool {
    match st.ast.as_deref() {
        Some(a) => {
            let mut found = false;
            let _ = ast::visit_expressions(a, |e: &Expr| {
                if let Expr::Value(v) = e {
                    if let Value::SingleQuotedString(s)
                    | Value::EscapedStringLiteral(s)
                    | Value::DollarQuotedString(ast::DollarQuotedString { value: s, .. }) =
                        &v.value
                    {
                        if s == label {
                            found = true;
                            return std::ops::ControlFlow::Break(());
                        }
                    }
                }
                std::ops::ControlFlow::Continue(())
            });
            found
        }
        None => st.sql.contains(&format!("'{}'", label.replace('\'', "''"))),
    }
}

/// Name of an enum type created by the statement.
fn created_type(st: &Stmt) -> Option<String> {
    match st.ast.as_deref() {
        Some(Statement::CreateType { name, .. }) => {
            name.0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| match i.quote_style {
                    Some(_) => i.value.clone(),
                    None => i.value.to_lowercase(),
                })
        }
        _ => None,
    }
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    // Only parts that add an enum value, at or before this statement, are concerned.
    if ctx.enum_value_adds.first().is_none_or(|&i| i > st.index) {
        return;
    }
    let tx = ctx.tx_groups;
    let my_tx = tx.get(st.index).copied();
    let in_tx_block = ctx.mode == TxMode::Single || ctx.in_explicit_transaction;
    if let Some((type_name, label)) = added_label(st) {
        if ctx.target.at_least(12, 0) || !in_tx_block {
            return;
        }
        // Before 12 allowed when the type itself was created in the same transaction.
        let created_here = ctx.statements.iter().take(st.index).any(|s| {
            tx.get(s.index).copied() == my_tx && created_type(s).as_deref() == Some(&type_name.name)
        });
        if created_here {
            return;
        }
        out.push(
            Hit::new(format!(
                "ALTER TYPE {type_name} ADD VALUE '{label}' fails inside a transaction block before PostgreSQL 12{}",
                if ctx.in_explicit_transaction {
                    " (it follows a BEGIN)"
                } else {
                    " (this part runs as a single transaction)"
                }
            ))
            .help(format!(
                "-- put it in its own migration without a transaction directive (sluice then runs it outside a transaction block):\n\
                 ALTER TYPE {type_name} ADD VALUE IF NOT EXISTS '{label}';"
            )),
        );
        return;
    }
    if !ctx.target.at_least(12, 0) {
        return; // the ADD VALUE itself is the problem there, reported above
    }
    for prev in ctx
        .enum_value_adds
        .iter()
        .take_while(|&&i| i < st.index)
        .map(|&i| &ctx.statements[i])
    {
        let Some((type_name, label)) = added_label(prev) else {
            continue;
        };
        if tx.get(prev.index).copied() != my_tx || !mentions(st, &label) {
            continue;
        }
        out.push(
            Hit::new(format!(
                "uses '{label}', added to {type_name} earlier in the same transaction: PostgreSQL refuses it \
                 (\"unsafe use of new value\") until that transaction commits"
            ))
            .help(format!(
                "-- commit the new value first: move this statement to a later migration, or mark this part\n\
                 -- sluice:transaction per-statement\n\
                 -- so that ALTER TYPE {type_name} ADD VALUE '{label}' commits before it runs"
            )),
        );
        break;
    }
}
