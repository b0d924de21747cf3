//! `rename-table`: `ALTER TABLE ... RENAME TO` / MySQL `RENAME TABLE` of an existing table.
//!
//! Severity Error, as for `rename-column`: instant for the database, an outage for every running
//! instance of the old code. Exempt: tables created earlier in the same part, and a rename followed in
//! the same part by `CREATE VIEW <old name>` (old code keeps working through the view; simple
//! single-table views are updatable on both engines). On PostgreSQL that pair runs in one transaction
//! and is invisible to other sessions; on MariaDB/MySQL each statement commits on its own, so queries
//! on the old name fail between the two: reported as a Warning there.

use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql};
use sqlparser::ast::Statement;

pub const RULE: Rule = Rule {
    id: "rename-table",
    severity: Severity::Error,
    engines: Engines::All,
    summary: "renames an existing table",
    why: "the rename is instant for the database, but every query of the running application that names the \
          old table fails from that moment: an outage for all old code until the new version is everywhere. \
          Keep the old name working with a view until no code uses it",
    safe: "ALTER TABLE old_name RENAME TO new_name;\n\
           CREATE VIEW old_name AS SELECT * FROM new_name;  -- same migration; drop it once no code uses old_name",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::RenameTable { from, to } = a else {
            continue;
        };
        if ctx.is_new_table(from) {
            continue;
        }
        let view_later = ctx.statements[st.index + 1..].iter().any(|s| {
            matches!(s.ast.as_deref(), Some(Statement::CreateView(v))
                if crate::analysis::ir::qname(ctx.target.engine, &v.name).matches(from))
        });
        let e = ctx.target.engine;
        let to_full = match (&from.schema, &to.schema) {
            (Some(s), None) => QName {
                schema: Some(s.clone()),
                name: to.name.clone(),
            },
            _ => to.clone(),
        };
        let (fq, tq) = (name_sql(e, from), name_sql(e, &to_full));
        if view_later {
            if ctx.is_postgres() {
                continue;
            }
            out.push(
                Hit::new(format!(
                    "renames `{from}` to `{to}` and recreates `{from}` as a view: each statement commits on \
                     its own on {}, so queries on `{from}` fail between the two",
                    ctx.target.engine
                ))
                .severity(Severity::Warning)
                .help("-- acceptable for most apps (milliseconds); otherwise deploy code that uses the new name first"),
            );
            continue;
        }
        let rename = if ctx.is_postgres() {
            format!("ALTER TABLE {fq} RENAME TO {};", ident_sql(e, &to.name))
        } else {
            format!("RENAME TABLE {fq} TO {tq};")
        };
        out.push(
            Hit::new(format!(
                "renames `{from}` to `{to}`: every running app instance that still uses `{from}` fails from this moment on"
            ))
            .help(if ctx.is_postgres() {
                format!(
                    "{rename}\nCREATE VIEW {fq} AS SELECT * FROM {tq};  -- old code keeps working; drop the view in a later migration"
                )
            } else {
                // A rename then CREATE VIEW leaves a moment without the old name here; sluice's
                // two phases do not.
                format!(
                    "{rename}  -- alone in its migration: `sluice up` makes a view {fq} first and swaps it in with the table in one atomic RENAME TABLE (old code keeps working, no moment without {fq}); `sluice complete` drops the view once the new code runs everywhere"
                )
            }),
        );
    }
}
