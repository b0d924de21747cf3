//! `mysql-lock-option` (MariaDB/MySQL): `LOCK=SHARED` or `LOCK=EXCLUSIVE` on an existing table.
//! `LOCK=SHARED` together with `ALGORITHM=COPY` is left to `mysql-copy-algorithm` (COPY cannot do less),
//! so one statement gets one finding; `LOCK=EXCLUSIVE` is always reported, it also blocks reads.

use super::mysql_copy_algorithm::options;
use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "mysql-lock-option",
    severity: Severity::Error,
    engines: Engines::MySqlFamily,
    summary: "LOCK=SHARED or LOCK=EXCLUSIVE on an existing table",
    why: "the lock is held for the whole ALTER, not just its start and end: LOCK=SHARED blocks every write to the \
          table, LOCK=EXCLUSIVE every read and write, for as long as the operation runs",
    safe: "ALTER TABLE t ..., ALGORITHM=INPLACE, LOCK=NONE;  -- the server refuses if it cannot run without blocking",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some(o) = options(st, ctx.target.engine) else {
        return;
    };
    let Some(lock) = o.lock.as_deref() else {
        return;
    };
    if o.table.as_ref().is_some_and(|t| ctx.is_new_table(t)) {
        return;
    }
    let on = o
        .table
        .as_ref()
        .map(|t| format!("`{t}`"))
        .unwrap_or_else(|| "the table".into());
    let blocked = match lock {
        "EXCLUSIVE" => "every read and write",
        "SHARED" if o.algorithm.as_deref() != Some("COPY") => "every write",
        _ => return,
    };
    out.push(
        Hit::new(format!(
            "LOCK={lock} blocks {blocked} of {on} for the whole ALTER, not only at its start and end"
        ))
        .help("-- use LOCK=NONE (with ALGORITHM=INPLACE or INSTANT): the server refuses if the change cannot run online"),
    );
}
