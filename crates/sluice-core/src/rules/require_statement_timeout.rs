//! `require-statement-timeout` (PostgreSQL): the first lock-taking statement of a part on an existing
//! table with no `SET statement_timeout` before it. Same statements and the same "at most once per
//! part" convention as `require-lock-timeout` (see `require_lock_timeout::lock_taking`); `0`,
//! `DEFAULT`, `RESET` switch it off, and `SET LOCAL` counts only when the part runs in one transaction.

use super::prelude::*;
use super::require_lock_timeout::{first_unprotected, Timeout};

pub const RULE: Rule = Rule {
    id: "require-statement-timeout",
    severity: Severity::Warning,
    engines: Engines::Postgres,
    summary: "a lock-taking statement on an existing table with no statement_timeout set before it",
    why: "once it holds its lock, a statement that turns out slow (a rewrite, a validation scan, an index \
          build on a table larger than expected) keeps reads and writes of the table waiting for as long as \
          it runs; a statement_timeout bounds that outage, the statement is cancelled and rolled back, and \
          `sluice up` can be run again after a fix. Reset it (`SET statement_timeout = 0`) before a long \
          CREATE INDEX CONCURRENTLY: cancelling one leaves an INVALID index behind",
    safe: "SET statement_timeout = '1min';  -- at the top of the migration",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some(locked) = first_unprotected(st, ctx, Timeout::Statement) else {
        return;
    };
    let on = locked
        .table
        .as_ref()
        .map(|t| format!(" on `{t}`"))
        .unwrap_or_default();
    out.push(
        Hit::new(format!(
            "{}{on} runs without a statement_timeout: once it holds its lock, nothing bounds how long \
             the queries it blocks wait for it",
            locked.what
        ))
        .help("SET statement_timeout = '1min';  -- before this statement"),
    );
}
