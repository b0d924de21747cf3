//! `concurrently-in-transaction` (PostgreSQL): a statement that cannot run inside a transaction block
//! (`CREATE INDEX CONCURRENTLY`, `DROP INDEX CONCURRENTLY`, `REINDEX ... CONCURRENTLY`,
//! `ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY`) placed where it would run in one: after a
//! `BEGIN` written in the file, or in a part forced to `-- sluice:transaction single`.
//!
//! Verified on PostgreSQL 15: each of the four fails with `ERROR: ... cannot run inside a transaction
//! block`. (`DETACH PARTITION ... FINALIZE` does run in a transaction block: not reported.)
//! Without a directive sluice already runs such a part statement by statement, so only the two cases
//! above can put these statements in a transaction. A CONCURRENTLY form the target version does not
//! have (REINDEX before 12, DETACH before 14) is reported by `require-concurrent-reindex` /
//! `detach-partition-without-concurrently`, not here.

use super::prelude::*;
use super::require_concurrent_reindex::parse_reindex;

pub const RULE: Rule = Rule {
    id: "concurrently-in-transaction",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "a CONCURRENTLY statement that would run inside a transaction block",
    why: "CREATE/DROP INDEX CONCURRENTLY, REINDEX CONCURRENTLY and DETACH PARTITION CONCURRENTLY commit \
          internally between their phases, so PostgreSQL refuses them inside a transaction block \
          (`ERROR: ... cannot run inside a transaction block`): the migration fails at this statement",
    safe: "-- remove `-- sluice:transaction single` and any BEGIN/COMMIT around it: sluice then runs the part\n\
           -- statement by statement, or move the statement to a migration of its own\n\
           CREATE INDEX CONCURRENTLY IF NOT EXISTS idx ON t (col);",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let single = ctx.mode == TxMode::Single;
    if !(ctx.in_explicit_transaction || single) {
        return;
    }
    // (what, the statement name in the server's error)
    let mut what: Option<(&str, &str)> = None;
    for a in st.actions() {
        match a {
            Action::CreateIndex {
                concurrently: true, ..
            } => what = Some(("CREATE INDEX CONCURRENTLY", "CREATE INDEX CONCURRENTLY")),
            Action::DropIndex {
                concurrently: true, ..
            } => what = Some(("DROP INDEX CONCURRENTLY", "DROP INDEX CONCURRENTLY")),
            Action::DetachPartition {
                concurrently: true, ..
            } if ctx.target.at_least(14, 0) => {
                what = Some((
                    "DETACH PARTITION CONCURRENTLY",
                    "ALTER TABLE ... DETACH CONCURRENTLY",
                ))
            }
            _ => {}
        }
    }
    if let Some(r) = parse_reindex(st) {
        if r.concurrently && ctx.target.at_least(12, 0) {
            what = Some(("REINDEX CONCURRENTLY", "REINDEX CONCURRENTLY"));
        }
    }
    let Some((what, server)) = what else {
        return;
    };
    let (place, help) = if ctx.in_explicit_transaction {
        (
            "after the BEGIN written in this migration, inside a transaction block",
            "-- remove the BEGIN/COMMIT around this statement: sluice runs a part with a CONCURRENTLY \
             statement statement by statement",
        )
    } else {
        (
            "in a part forced to `-- sluice:transaction single`, inside a transaction block",
            "-- remove `-- sluice:transaction single` (sluice then runs the part statement by statement),\n\
             -- or move this statement to a migration of its own",
        )
    };
    out.push(
        Hit::new(format!(
            "{what} runs {place}: PostgreSQL refuses it (`{server} cannot run inside a transaction block`) \
             and the migration fails here"
        ))
        .help(format!(
            "{help}\n{};",
            st.sql.trim().trim_end_matches(';')
        )),
    );
}
