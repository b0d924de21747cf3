//! `prefer-jsonb`: `json` columns (PostgreSQL).
//!
//! `json` stores the text as written and re-parses it on every access; it has no equality operator (so no
//! DISTINCT, GROUP BY, UNIQUE or B-tree index) and no GIN indexing. `jsonb` is parsed once, compares, and
//! indexes. Converting later rewrites the table. Applies to CREATE TABLE and ADD COLUMN.

use super::alter_column_type::parse_type;
use super::prefer_bigint::column_sites;
use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "prefer-jsonb",
    severity: Severity::Info,
    engines: Engines::Postgres,
    summary: "a json column: prefer jsonb",
    why: "json is re-parsed on every access, has no equality operator (no DISTINCT, GROUP BY or UNIQUE) and \
          cannot use GIN indexes; switching to jsonb later rewrites the table under an ACCESS EXCLUSIVE lock",
    safe: "CREATE TABLE t (payload jsonb NOT NULL DEFAULT '{}');",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for site in column_sites(st, ctx.target.engine) {
        let c = site.column;
        let ty = parse_type(&c.data_type);
        if ty.base != "json" {
            continue;
        }
        let name = &c.name;
        out.push(
            Hit::new(format!(
                "`{}.{name}` is {}: use jsonb",
                site.table, c.data_type
            ))
            .help(format!("{name} jsonb{}", if ty.array { "[]" } else { "" })),
        );
    }
}
