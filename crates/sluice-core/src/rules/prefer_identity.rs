//! `prefer-identity`: `serial` / `bigserial` / `smallserial` columns (PostgreSQL 10+).
//!
//! A serial column is an integer with a `nextval()` default on a separately owned sequence: grants,
//! ownership and copies (`CREATE TABLE ... (LIKE ...)`) must handle the sequence by hand, and nothing stops
//! writes of explicit ids that later collide with the sequence. `GENERATED ... AS IDENTITY` (PostgreSQL 10+)
//! ties the sequence to the column and, with ALWAYS, rejects explicit values.
//!
//! Applies to CREATE TABLE and ADD COLUMN; stays quiet on an ADD COLUMN to an existing table, where
//! `add-serial-or-identity` (an error: the rewrite) already reports the column and shows the safe form.
//! Not reported before PostgreSQL 10 (no identity columns there).

use super::alter_column_type::parse_type;
use super::prefer_bigint::column_sites;
use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "prefer-identity",
    severity: Severity::Info,
    engines: Engines::Postgres,
    summary: "a serial/bigserial/smallserial column: prefer GENERATED ... AS IDENTITY",
    why: "serial is an integer plus a separately owned sequence and a nextval() default: permissions, ownership \
          and table copies must handle the sequence by hand, and explicit ids are accepted and later collide \
          with the sequence; an identity column owns its sequence and can refuse explicit values",
    safe: "CREATE TABLE t (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY);",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    if !ctx.target.at_least(10, 0) {
        return;
    }
    for site in column_sites(st, ctx.target.engine) {
        let c = site.column;
        if !c.serial {
            continue;
        }
        if site.added && !ctx.is_new_table(site.table) {
            continue; // add-serial-or-identity reports it
        }
        let ty = match parse_type(&c.data_type).base.as_str() {
            "smallserial" => "smallint",
            _ => "bigint", // serial is 32-bit: see prefer-bigint
        };
        let name = &c.name;
        out.push(
            Hit::new(format!(
                "`{}.{name}` is {}: use an identity column",
                site.table, c.data_type
            ))
            .help(format!("{name} {ty} GENERATED ALWAYS AS IDENTITY")),
        );
    }
}
