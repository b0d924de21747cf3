//! `rename-enum-value`: `ALTER TYPE ... RENAME VALUE` (PostgreSQL 10+).
//!
//! The rename itself only touches `pg_enum` (no table lock, verified on PostgreSQL 15: no relation lock on
//! a table using the type), but from that moment every running application version that writes or
//! compares the old label fails (`invalid input value for enum`) or silently matches nothing. A warning,
//! like other renames. Not reported for a type created earlier in the same part. Before PostgreSQL 10
//! the server has no RENAME VALUE: an error.

use super::prelude::*;
use sqlparser::ast::{AlterTypeOperation, Statement};

pub const RULE: Rule = Rule {
    id: "rename-enum-value",
    severity: Severity::Warning,
    engines: Engines::Postgres,
    summary: "ALTER TYPE ... RENAME VALUE: running application versions still use the old label",
    why: "the rename is instant, but every deployed application version that writes the old label starts failing \
          with \"invalid input value for enum\", and its queries comparing with the old label match nothing",
    safe: "-- expand/contract: add the new label, migrate the data and the code, retire the old label later\n\
           ALTER TYPE status ADD VALUE IF NOT EXISTS 'closed';\n\
           -- (after deploying code that writes and reads both labels)\n\
           UPDATE tickets SET status = 'closed' WHERE status = 'done';  -- in batches",
    check,
};

fn fold(i: &sqlparser::ast::Ident) -> String {
    match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_lowercase(),
    }
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::RenameEnumValue { type_name } = a else {
            continue;
        };
        let (from, to) = match st.ast.as_deref() {
            Some(Statement::AlterType(at)) => match &at.operation {
                AlterTypeOperation::RenameValue(r) => (r.from.value.clone(), r.to.value.clone()),
                _ => continue,
            },
            _ => continue,
        };
        let created_here = ctx
            .statements
            .iter()
            .take(st.index)
            .any(|s| match s.ast.as_deref() {
                Some(Statement::CreateType { name, .. }) => name
                    .0
                    .last()
                    .and_then(|p| p.as_ident())
                    .is_some_and(|i| fold(i) == type_name.name),
                _ => false,
            });
        if created_here {
            continue;
        }
        if !ctx.target.at_least(10, 0) {
            out.push(
                Hit::new(format!(
                    "ALTER TYPE {type_name} RENAME VALUE needs PostgreSQL 10 or later: this server refuses it"
                ))
                .severity(Severity::Error)
                .help(format!(
                    "ALTER TYPE {type_name} ADD VALUE '{to}';  -- outside a transaction block before PostgreSQL 12\n\
                     -- then move the data from '{from}' to '{to}' in batches"
                )),
            );
            continue;
        }
        out.push(
            Hit::new(format!(
                "renaming {type_name} value '{from}' to '{to}' breaks every running application version that \
                 still writes or compares '{from}'"
            ))
            .help(format!(
                "ALTER TYPE {type_name} ADD VALUE IF NOT EXISTS '{to}';\n\
                 -- deploy code that accepts both labels and writes '{to}', then (in a later migration):\n\
                 -- UPDATE ... SET <column> = '{to}' WHERE <column> = '{from}';  -- in batches"
            )),
        );
    }
}
