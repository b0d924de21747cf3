//! `truncate-cascade` (PostgreSQL): `TRUNCATE ... CASCADE`.
//!
//! Verified on PostgreSQL 15: `TRUNCATE p CASCADE` also empties every table with a foreign key to `p`
//! (`NOTICE: truncate cascades to table "c1"`), recursively, taking ACCESS EXCLUSIVE on all of them.
//! Without CASCADE the server refuses (`cannot truncate a table referenced in a foreign key
//! constraint`), so plain TRUNCATE never removes rows the statement does not name.
//!
//! Scope: only CASCADE. A plain TRUNCATE of an existing table is a deliberate, instant data operation;
//! its brief ACCESS EXCLUSIVE lock is what `require-lock-timeout` guards, and reporting it here too
//! would cry wolf on every intentional cleanup. Exempt: when every truncated table was created earlier in
//! the migration and no table that existed before got a foreign key to one of them in it (only then can
//! the cascade not reach existing rows). PostgreSQL only (MySQL's TRUNCATE has no CASCADE).

use super::prelude::*;
use super::require_concurrent_reindex::qname_sql;

pub const RULE: Rule = Rule {
    id: "truncate-cascade",
    severity: Severity::Warning,
    engines: Engines::Postgres,
    summary: "TRUNCATE ... CASCADE",
    why: "CASCADE silently empties every table that has a foreign key to the truncated ones, and the tables \
          referencing those, recursively: tables the statement never names lose all their rows, under ACCESS \
          EXCLUSIVE locks",
    safe: "-- name every table to empty; without CASCADE PostgreSQL refuses if another table still references one:\n\
           TRUNCATE orders, order_items;",
    check,
};

/// True when an earlier statement of the part gave a table that existed before the migration a foreign
/// key to `target`.
fn referenced_from_existing(ctx: &Ctx, before: usize, target: &QName) -> bool {
    ctx.statements.iter().take(before).any(|st| {
        st.actions().iter().any(|a| match a {
            Action::AddConstraint { table, constraint } => {
                !ctx.is_new_table(table)
                    && constraint
                        .references
                        .as_ref()
                        .is_some_and(|r| r.matches(target))
            }
            Action::AddColumn { table, column, .. } => {
                !ctx.is_new_table(table)
                    && column
                        .references
                        .as_ref()
                        .is_some_and(|r| r.matches(target))
            }
            _ => false,
        })
    })
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::Truncate {
            tables,
            cascade: true,
        } = a
        else {
            continue;
        };
        let all_new = !tables.is_empty()
            && tables
                .iter()
                .all(|t| ctx.is_new_table(t) && !referenced_from_existing(ctx, st.index, t));
        if all_new {
            continue;
        }
        let listed = tables
            .iter()
            .map(|t| format!("`{t}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let names = tables.iter().map(qname_sql).collect::<Vec<_>>().join(", ");
        out.push(
            Hit::new(format!(
                "TRUNCATE {listed} CASCADE also empties every table with a foreign key to {listed} (and the \
                 tables referencing those): rows of tables this statement does not name are deleted"
            ))
            .help(format!(
                "-- list every table to empty (find them: SELECT conrelid::regclass FROM pg_constraint \
                 WHERE contype = 'f' AND confrelid = '{}'::regclass;)\n\
                 TRUNCATE {names}, <referencing tables>;  -- without CASCADE PostgreSQL refuses if one is missing",
                tables.first().map(qname_sql).unwrap_or_default()
            )),
        );
    }
}
