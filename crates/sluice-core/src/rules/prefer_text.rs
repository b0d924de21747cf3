//! `prefer-text`: `varchar(n)` / `char(n)` columns (PostgreSQL).
//!
//! In PostgreSQL `text`, `varchar` and `varchar(n)` are stored the same way; the limit only adds a check
//! that is part of the type. Raising it later is catalog-only, but lowering it rewrites the table under
//! ACCESS EXCLUSIVE (verified on PostgreSQL 15), whereas `text` with a CHECK constraint can be changed
//! either way without a rewrite (new CHECK ... NOT VALID, VALIDATE, drop the old one). `char(n)` also pads
//! with blanks and changing it to anything rewrites. Unbounded `varchar` is not reported. Applies to
//! CREATE TABLE and ADD COLUMN alike.

use super::alter_column_type::parse_type;
use super::prefer_bigint::column_sites;
use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "prefer-text",
    severity: Severity::Info,
    engines: Engines::Postgres,
    summary: "a varchar(n) or char(n) column: prefer text with a CHECK on its length",
    why: "the length limit is part of the type: lowering it (or leaving char(n)) later rewrites the table under \
          an ACCESS EXCLUSIVE lock; a CHECK (char_length(col) <= n) on a text column is replaced with NOT VALID + \
          VALIDATE without a rewrite or a long lock. char(n) also pads values with blanks",
    safe: "CREATE TABLE t (code text NOT NULL CHECK (char_length(code) <= 20));",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for site in column_sites(st, ctx.target.engine) {
        let c = site.column;
        let ty = parse_type(&c.data_type);
        let name = &c.name;
        let table = site.table;
        let limit = ty.args.first().copied();
        let text_with_check = |n: u32| {
            if ty.array {
                format!("{name} text[]")
            } else {
                format!("{name} text CHECK (char_length({name}) <= {n})")
            }
        };
        let (message, help) = match (ty.base.as_str(), limit) {
            ("varchar", Some(n)) => (
                format!(
                    "`{table}.{name}` is {}: lowering the limit later rewrites `{table}`; text with a CHECK on the length changes without a rewrite",
                    c.data_type
                ),
                text_with_check(n),
            ),
            ("bpchar", n) => (
                format!(
                    "`{table}.{name}` is {}: char(n) pads with blanks and any later change of it rewrites `{table}`",
                    c.data_type
                ),
                text_with_check(n.unwrap_or(1)),
            ),
            _ => continue,
        };
        out.push(Hit::new(message).help(help));
    }
}
