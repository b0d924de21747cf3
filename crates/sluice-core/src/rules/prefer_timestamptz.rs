//! `prefer-timestamptz`: `timestamp` (without time zone) columns (PostgreSQL).
//!
//! `timestamp` stores wall-clock readings without a zone: the same instant written from sessions with
//! different TimeZone settings gets different values, and DST turns make some readings ambiguous.
//! `timestamptz` stores the instant (UTC internally) and converts on output. Converting later rewrites
//! the table unless the session TimeZone is UTC (PostgreSQL 12+). Applies to CREATE TABLE and ADD COLUMN.

use super::alter_column_type::parse_type;
use super::prefer_bigint::column_sites;
use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "prefer-timestamptz",
    severity: Severity::Info,
    engines: Engines::Postgres,
    summary: "a timestamp (without time zone) column: prefer timestamptz",
    why: "timestamp keeps no time zone: values depend on the writer's TimeZone setting and are ambiguous around \
          DST changes; converting the column later rewrites the table under an ACCESS EXCLUSIVE lock unless the \
          session TimeZone is UTC (PostgreSQL 12+)",
    safe: "CREATE TABLE t (created_at timestamptz NOT NULL DEFAULT now());",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for site in column_sites(st, ctx.target.engine) {
        let c = site.column;
        let ty = parse_type(&c.data_type);
        if ty.base != "timestamp" {
            continue;
        }
        let name = &c.name;
        let tz = match ty.args.first() {
            Some(p) => format!("timestamptz({p})"),
            None => "timestamptz".into(),
        };
        out.push(
            Hit::new(format!(
                "`{}.{name}` is {}: it stores no time zone; use {tz}",
                site.table, c.data_type
            ))
            .help(format!("{name} {tz}{}", if ty.array { "[]" } else { "" })),
        );
    }
}
