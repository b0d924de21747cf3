//! `drop-constraint`: `ALTER TABLE ... DROP CONSTRAINT` (PostgreSQL, MariaDB, MySQL 8.0.19+) and MySQL
//! `DROP FOREIGN KEY` on an existing table. Warning (data integrity): the database stops enforcing it.
//! Not reported: a constraint re-added under the same name on the same table later in the part (a
//! replacement), tables created in the same part, and MySQL `DROP PRIMARY KEY` (`mysql-primary-key-change`).
//! `CASCADE` (PostgreSQL) gets a sharper message.

use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql};
use sqlparser::ast::{AlterTableOperation, DropBehavior, Statement};

pub const RULE: Rule = Rule {
    id: "drop-constraint",
    severity: Severity::Warning,
    engines: Engines::All,
    summary: "drops a constraint (foreign key, unique, check) of an existing table",
    why: "the database stops enforcing it: orphaned references, duplicates or invalid values can be written \
          from now on, and a PRIMARY KEY or UNIQUE constraint takes its index with it (queries that used the \
          index scan the table). Putting it back later needs a validation scan and fails if bad rows slipped in",
    safe: "-- to change a constraint, add the new one first (PostgreSQL: NOT VALID, then VALIDATE CONSTRAINT),\n\
           -- then drop the old one:\nALTER TABLE t DROP CONSTRAINT c;",
    check,
};

fn cascade(st: &Stmt, name: &str) -> bool {
    match st.ast.as_deref() {
        Some(Statement::AlterTable(at)) => at.operations.iter().any(|o| {
            matches!(o, AlterTableOperation::DropConstraint {
                name: n,
                drop_behavior: Some(DropBehavior::Cascade),
                ..
            } if n.value.eq_ignore_ascii_case(name))
        }),
        _ => false,
    }
}

/// The same constraint name added to the same table later in the part.
fn readded(ctx: &Ctx, after: usize, table: &QName, name: &str) -> bool {
    ctx.statements[after..].iter().any(|s| {
        s.actions().iter().any(|a| {
            matches!(a, Action::AddConstraint { table: t, constraint }
                if t.matches(table) && constraint.name.as_deref().is_some_and(|n| n.eq_ignore_ascii_case(name)))
        })
    })
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let (table, name, fk) = match a {
            Action::DropConstraint { table, name } => (table, name.clone(), false),
            Action::DropKey { table, what } => match what.strip_prefix("FOREIGN KEY ") {
                Some(n) => (table, n.to_string(), true),
                None => continue,
            },
            _ => continue,
        };
        if ctx.is_new_table(table) || readded(ctx, st.index + 1, table, &name) {
            continue;
        }
        let kind = if fk { "foreign key" } else { "constraint" };
        let mut msg = format!(
            "drops {kind} `{name}` of `{table}`: the database stops enforcing it, and rows that violate it can be \
             written from now on"
        );
        if cascade(st, &name) {
            msg.push_str(
                "; CASCADE also drops the foreign keys of other tables that depend on it (a referenced PRIMARY KEY \
                 or UNIQUE), without listing them",
            );
        }
        let e = ctx.target.engine;
        let (tq, nq) = (name_sql(e, table), ident_sql(e, &name));
        let help = if fk {
            format!("-- once no code relies on it:\nALTER TABLE {tq} DROP FOREIGN KEY {nq};")
        } else {
            format!(
                "-- replacing it? add the new constraint first, then drop this one:\nALTER TABLE {tq} DROP CONSTRAINT {nq};"
            )
        };
        out.push(Hit::new(msg).help(help));
    }
}
