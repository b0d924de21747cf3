//! `volatile-default`: `ADD COLUMN ... DEFAULT <expr>` that makes PostgreSQL rewrite the table.
//!
//! PostgreSQL 11+ stores a non-volatile default in the catalog and leaves existing rows alone (verified on
//! PostgreSQL 15 with `pg_relation_filenode`: constants and `now()` keep the file; `random()`,
//! `gen_random_uuid()` and `clock_timestamp()` rewrite it). A volatile default (or a function sluice does
//! not know, treated as volatile) is evaluated once per existing row: a full rewrite under ACCESS
//! EXCLUSIVE. Before PostgreSQL 11 every non-null default rewrites the table.
//!
//! `ALTER COLUMN ... SET DEFAULT` only changes the catalog (verified, even for a volatile expression): not
//! reported. Tables created earlier in the same migration are exempt.

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "volatile-default",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "ADD COLUMN with a DEFAULT that rewrites the table (volatile default, or any default before PostgreSQL 11)",
    why: "a volatile default (random(), gen_random_uuid(), clock_timestamp(), nextval(), unknown functions) is \
          computed for every existing row, so PostgreSQL rewrites the whole table and its indexes under an \
          ACCESS EXCLUSIVE lock: every read and write waits until it finishes. Before PostgreSQL 11 any \
          non-null default does this",
    safe: "ALTER TABLE t ADD COLUMN col uuid;                             -- catalog-only\n\
           ALTER TABLE t ALTER COLUMN col SET DEFAULT gen_random_uuid();  -- new rows only: catalog-only\n\
           -- backfill existing rows in batches:\n\
           -- UPDATE t SET col = gen_random_uuid() WHERE col IS NULL AND <batch>;",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::AddColumn { table, column, .. } = a else {
            continue;
        };
        let Some(default) = &column.default else {
            continue;
        };
        if default.text.trim().eq_ignore_ascii_case("NULL") || ctx.is_new_table(table) {
            continue;
        }
        let c = &column.name;
        let d = &default.text;
        let message = if !ctx.target.at_least(11, 0) {
            format!(
                "adding `{table}.{c}` with DEFAULT {d} rewrites `{table}` under an ACCESS EXCLUSIVE lock: before \
                 PostgreSQL 11 every non-null default is written into each existing row"
            )
        } else {
            match default.volatility {
                Volatility::Constant | Volatility::Stable => continue,
                Volatility::Volatile => format!(
                    "adding `{table}.{c}` with the volatile DEFAULT {d} rewrites `{table}` under an ACCESS \
                     EXCLUSIVE lock: the default is computed for every existing row while reads and writes wait"
                ),
                Volatility::Unknown => format!(
                    "adding `{table}.{c}` with DEFAULT {d} rewrites `{table}` under an ACCESS EXCLUSIVE lock unless \
                     every function in it is immutable or stable (sluice does not know it, so treats it as volatile)"
                ),
            }
        };
        let ty = &column.data_type;
        let mut help = format!(
            "ALTER TABLE {table} ADD COLUMN {c} {ty};  -- catalog-only\n\
             ALTER TABLE {table} ALTER COLUMN {c} SET DEFAULT {d};  -- new rows only, catalog-only\n\
             -- backfill existing rows in batches:\n\
             -- UPDATE {table} SET {c} = {d} WHERE {c} IS NULL AND <batch>;"
        );
        if column.not_null {
            help.push_str(&format!(
                "\n-- then enforce NOT NULL without a long lock (PostgreSQL 12+):\n\
                 ALTER TABLE {table} ADD CONSTRAINT {n}_{c}_not_null_check CHECK ({c} IS NOT NULL) NOT VALID;\n\
                 ALTER TABLE {table} VALIDATE CONSTRAINT {n}_{c}_not_null_check;\n\
                 ALTER TABLE {table} ALTER COLUMN {c} SET NOT NULL;\n\
                 ALTER TABLE {table} DROP CONSTRAINT {n}_{c}_not_null_check;",
                n = table.name
            ));
        }
        out.push(Hit::new(message).help(help));
    }
}
