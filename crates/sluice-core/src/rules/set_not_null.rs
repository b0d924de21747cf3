//! `set-not-null`: `ALTER COLUMN ... SET NOT NULL` on an existing PostgreSQL table.
//!
//! The statement takes ACCESS EXCLUSIVE (verified in `pg_locks`) and scans the whole table for NULLs
//! while holding it. From PostgreSQL 12 the scan is skipped when a VALID `CHECK (col IS NOT NULL)`
//! exists (verified on PostgreSQL 15 with `client_min_messages = debug1`: "existing constraints on column
//! ... are sufficient to prove that it does not contain nulls"; a NOT VALID check does not count).
//!
//! Not reported on 12+ when an earlier statement of the same part added such a check valid (its own scan
//! is `check-constraint-not-valid`'s business) or added it NOT VALID and validated it, and it was not
//! dropped since. A column added earlier in the same part on an existing table is still reported: the
//! scan reads every row of the populated table whatever the new column holds. Tables created earlier in
//! the same part are exempt.

use super::prelude::*;
use crate::plan::set_not_null::proven_by_check;

pub const RULE: Rule = Rule {
    id: "set-not-null",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "ALTER COLUMN ... SET NOT NULL on an existing table (full scan under ACCESS EXCLUSIVE)",
    why: "PostgreSQL scans every row to prove the column has no NULL while holding an ACCESS EXCLUSIVE lock: \
          all reads and writes on the table wait for the scan. From PostgreSQL 12 the scan is skipped when a \
          valid CHECK (col IS NOT NULL) constraint already proves it",
    safe: "ALTER TABLE t ADD CONSTRAINT t_col_not_null_check CHECK (col IS NOT NULL) NOT VALID;  -- brief lock, no scan\n\
           ALTER TABLE t VALIDATE CONSTRAINT t_col_not_null_check;  -- scans without blocking reads or writes (own transaction)\n\
           ALTER TABLE t ALTER COLUMN col SET NOT NULL;        -- PostgreSQL 12+: no scan, the check proves it\n\
           ALTER TABLE t DROP CONSTRAINT t_col_not_null_check;",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::SetNotNull { table, column } = a else {
            continue;
        };
        if ctx.is_new_table(table) {
            continue;
        }
        let pg12 = ctx.target.at_least(12, 0);
        if pg12 && proven_by_check(ctx.statements, st, table, column) {
            continue;
        }
        let n = format!("{}_{column}_not_null_check", table.name);
        let (message, help) = if pg12 {
            (
                format!(
                    "SET NOT NULL on `{table}.{column}` scans all of `{table}` under an ACCESS EXCLUSIVE lock: \
                     reads and writes wait for the scan (PostgreSQL 12+ skips it when a valid CHECK ({column} IS NOT NULL) exists)"
                ),
                format!(
                    "ALTER TABLE {table} ADD CONSTRAINT {n} CHECK ({column} IS NOT NULL) NOT VALID;\n\
                     ALTER TABLE {table} VALIDATE CONSTRAINT {n};  -- in its own transaction: reads and writes continue\n\
                     ALTER TABLE {table} ALTER COLUMN {column} SET NOT NULL;  -- no scan: the check proves it\n\
                     ALTER TABLE {table} DROP CONSTRAINT {n};"
                ),
            )
        } else {
            (
                format!(
                    "SET NOT NULL on `{table}.{column}` scans all of `{table}` under an ACCESS EXCLUSIVE lock: \
                     reads and writes wait for the scan (before PostgreSQL 12 no constraint can spare it)"
                ),
                format!(
                    "-- before PostgreSQL 12, enforce it with a check constraint instead of NOT NULL:\n\
                     ALTER TABLE {table} ADD CONSTRAINT {n} CHECK ({column} IS NOT NULL) NOT VALID;\n\
                     ALTER TABLE {table} VALIDATE CONSTRAINT {n};  -- in its own transaction: reads and writes continue\n\
                     -- (after upgrading to 12+, SET NOT NULL then skips the scan and the check can go)"
                ),
            )
        };
        out.push(Hit::new(message).help(help));
    }
}
