//! `rename-column`: `ALTER TABLE ... RENAME COLUMN` (and MySQL `CHANGE old new ...`) on an existing
//! column of an existing table.
//!
//! Severity Error: the rename itself is instant (catalog only) on both engines, but from that moment
//! every running instance of the application that still uses the old name fails, and during a rolling
//! deploy (or while any old code runs) there always is one. There is no order of "migrate, then deploy"
//! that avoids it. Exempt: tables created and columns added earlier in the same part.

use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql};

pub const RULE: Rule = Rule {
    id: "rename-column",
    severity: Severity::Error,
    engines: Engines::All,
    summary: "renames a column of an existing table",
    why: "the rename is instant for the database, but every query of the running application that names the \
          old column fails from that moment: an outage for all old code until the new version is everywhere. \
          Rename in steps instead: add the new column, write both, backfill, switch reads, drop the old one",
    safe: "ALTER TABLE t ADD COLUMN new_name <type>;      -- 1. expand; the app writes both columns\n\
           UPDATE t SET new_name = old_name WHERE ...;     -- 2. backfill in batches\n\
           -- 3. deploy code that uses new_name only\n\
           ALTER TABLE t DROP COLUMN old_name;             -- 4. contract, in a later migration",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::RenameColumn { table, from, to } = a else {
            continue;
        };
        if ctx.is_new_table(table) || ctx.is_new_column(table, from) {
            continue;
        }
        // MariaDB/MySQL compare column names case-insensitively: a letter-case-only rename breaks
        // no query of either version.
        if ctx.target.engine != crate::target::EngineKind::Postgres && from.eq_ignore_ascii_case(to)
        {
            continue;
        }
        let ty = ctx.column_type(table, from).unwrap_or("<type>");
        let e = ctx.target.engine;
        let (tq, fq, toq) = (name_sql(e, table), ident_sql(e, from), ident_sql(e, to));
        let hit = Hit::new(format!(
            "renames `{table}`.`{from}` to `{to}`: every running app instance that still uses `{from}` \
             fails from this moment on"
        ));
        // A lone RENAME COLUMN (on MariaDB/MySQL: not a CHANGE that also redefines it).
        if e == crate::target::EngineKind::Postgres || st.actions().len() == 1 {
            // `sluice up` runs it in two phases (issue 14): the help says how to use them.
            out.push(hit.help(format!(
                "`sluice up` runs this rename in two phases when it is the migration's only statement:\n\
                 1. `sluice up` (expand): adds {toq} beside {fq}, keeps both equal with triggers both ways, backfills; both names work\n\
                 2. deploy the application version that uses `{to}`\n\
                 3. `sluice complete` (contract): drops {fq}; or `sluice rollback` undoes step 1\n\
                 `sluice plan` shows both phases; `sluice up --as-written` renames in one step (old code breaks)"
            )));
            continue;
        }
        out.push(
            hit.help(format!(
                "ALTER TABLE {tq} ADD COLUMN {toq} {ty};   -- 1. expand; the app writes both columns\n\
                 UPDATE {tq} SET {toq} = {fq} WHERE {toq} IS NULL;  -- 2. backfill, in batches on a large table\n\
                 -- 3. deploy code that reads and writes `{to}` only\n\
                 ALTER TABLE {tq} DROP COLUMN {fq};  -- 4. contract, in a later migration"
            )),
        );
    }
}
