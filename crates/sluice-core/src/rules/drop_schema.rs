//! `drop-schema` (PostgreSQL): `DROP SCHEMA` of a schema not created in the same part. Warning; with
//! `CASCADE` an Error: it drops every table, view, function and type in the schema, with their data.
//! (On MariaDB/MySQL `DROP SCHEMA` is `DROP DATABASE`: see `drop-database`.)

use super::prelude::*;
use super::require_lock_timeout::ident_sql;

pub const RULE: Rule = Rule {
    id: "drop-schema",
    severity: Severity::Warning,
    engines: Engines::Postgres,
    summary: "drops an existing schema",
    why: "without CASCADE it fails unless the schema is empty, and code whose search_path or queries name it \
          breaks; with CASCADE it silently drops every table (with its data), view, sequence, function and \
          type in it",
    safe: "-- drop the schema's objects explicitly, each after a deploy in which no code uses it, then:\n\
           DROP SCHEMA s;  -- RESTRICT (the default) refuses if anything is left",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::DropSchema { names, cascade } = a else {
            continue;
        };
        let old: Vec<&String> = names
            .iter()
            .filter(|n| !super::rename_schema::created_schema(ctx, st.index, n))
            .collect();
        if old.is_empty() {
            continue;
        }
        let list = old
            .iter()
            .map(|n| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let plain = old
            .iter()
            .map(|n| ident_sql(EngineKind::Postgres, n))
            .collect::<Vec<_>>()
            .join(", ");
        if *cascade {
            out.push(
                Hit::new(format!(
                    "DROP SCHEMA {list} CASCADE drops every table in it with its data, and every view, sequence, \
                     function and type, without listing them"
                ))
                .severity(Severity::Error)
                .help(format!(
                    "-- drop what must go explicitly (DROP TABLE ..., DROP VIEW ...), then:\nDROP SCHEMA {plain};"
                )),
            );
        } else {
            out.push(
                Hit::new(format!(
                    "drops schema {list}: code whose queries or search_path name it fails"
                ))
                .help(format!(
                    "-- first deploy code that no longer uses {plain}, then:\nDROP SCHEMA {plain};"
                )),
            );
        }
    }
}
