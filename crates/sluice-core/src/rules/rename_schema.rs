//! `rename-schema` (PostgreSQL): `ALTER SCHEMA ... RENAME TO` of a schema not created in the same part.
//! Severity Error, as for the other renames: every query, `search_path` setting and grant script that
//! names the old schema breaks at once.

use super::prelude::*;
use super::require_lock_timeout::ident_sql;
use sqlparser::ast::{SchemaName, Statement};

pub const RULE: Rule = Rule {
    id: "rename-schema",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "renames an existing schema",
    why: "instant for the database, but every query qualified with the old schema name, every role or \
          connection whose search_path lists it, fails from that moment: an outage for all old code",
    safe: "-- create the new schema, move objects with ALTER TABLE ... SET SCHEMA while code reads both\n\
           -- (search_path = new_schema, old_schema), then drop the old schema in a later migration",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::RenameSchema { from, to } = a else {
            continue;
        };
        if created_schema(ctx, st.index, from) {
            continue;
        }
        out.push(
            Hit::new(format!(
                "renames schema `{from}` to `{to}`: every query and search_path that names `{from}` fails from this moment on"
            ))
            .help(format!(
                "-- keep `{from}` working: move tables one by one (ALTER TABLE {fq}.t SET SCHEMA {tq};) while the app's \
                 search_path lists both schemas, then DROP SCHEMA {fq} in a later migration",
                fq = ident_sql(EngineKind::Postgres, from),
                tq = ident_sql(EngineKind::Postgres, to),
            )),
        );
    }
}

/// True when a `CREATE SCHEMA name` comes before statement `before` in the part.
pub(super) fn created_schema(ctx: &Ctx, before: usize, name: &str) -> bool {
    ctx.statements[..before]
        .iter()
        .any(|s| match s.ast.as_deref() {
            Some(Statement::CreateSchema { schema_name, .. }) => {
                let n = match schema_name {
                    SchemaName::Simple(n) | SchemaName::NamedAuthorization(n, _) => {
                        crate::analysis::ir::qname(ctx.target.engine, n).name
                    }
                    SchemaName::UnnamedAuthorization(i) => {
                        crate::analysis::ir::fold_ident(ctx.target.engine, i)
                    }
                };
                n == name
            }
            _ => false,
        })
}
