//! `detach-partition-without-concurrently` (PostgreSQL): `ALTER TABLE parent DETACH PARTITION p` without
//! CONCURRENTLY.
//!
//! Verified on PostgreSQL 15: a plain DETACH holds ACCESS EXCLUSIVE on the parent and on the partition
//! until commit: every query on the partitioned table waits (and queues behind the DETACH while it waits
//! for running queries). `DETACH PARTITION ... CONCURRENTLY` (PostgreSQL 14+) takes SHARE UPDATE EXCLUSIVE
//! on the parent: an INSERT and a SELECT on the parent went through while it waited for an older
//! transaction. It cannot run in a transaction block nor when the parent has a DEFAULT partition; an
//! interrupted one is completed with `... DETACH PARTITION p FINALIZE` (runs in a transaction block,
//! SHARE UPDATE EXCLUSIVE on the parent: not reported).
//!
//! Version boundary: 14+ → Error with the CONCURRENTLY form as help. Before 14 there is no concurrent form:
//! Warning, with the lock-timeout-and-retry advice. `CONCURRENTLY` written for a server older than 14 is a
//! syntax error there: Error. Exempt: a parent created earlier in the migration.

use super::prelude::*;
use super::require_concurrent_reindex::{qname_of, qname_sql};
use sqlparser::ast::{AlterTableOperation, DetachPartitionMode, Statement};

pub const RULE: Rule = Rule {
    id: "detach-partition-without-concurrently",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "DETACH PARTITION without CONCURRENTLY",
    why: "a plain DETACH PARTITION takes an ACCESS EXCLUSIVE lock on the partitioned table: it waits for every \
          running query on any partition, and meanwhile every new read and write of the table queues behind it",
    safe: "ALTER TABLE measurements DETACH PARTITION measurements_2023 CONCURRENTLY;\n\
           -- PostgreSQL 14+, outside a transaction block, not with a DEFAULT partition",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some(Statement::AlterTable(at)) = st.ast.as_deref() else {
        return;
    };
    let parent = qname_of(&at.name);
    if ctx.is_new_table(&parent) {
        return;
    }
    let pg14 = ctx.target.at_least(14, 0);
    let pq = qname_sql(&parent);
    for op in &at.operations {
        let AlterTableOperation::DetachPartitionOf { partition, mode } = op else {
            continue;
        };
        let part = qname_sql(&qname_of(partition));
        match mode {
            Some(DetachPartitionMode::Finalize) => {}
            Some(DetachPartitionMode::Concurrently) => {
                if !pg14 {
                    out.push(
                        Hit::new(format!(
                            "DETACH PARTITION ... CONCURRENTLY does not exist before PostgreSQL 14: the server \
                             rejects this statement (target {})",
                            ctx.target
                        ))
                        .help(format!(
                            "SET lock_timeout = '2s';\nALTER TABLE {pq} DETACH PARTITION {part};  \
                             -- ACCESS EXCLUSIVE on {pq}, brief once granted; rerun on timeout"
                        )),
                    );
                }
            }
            None if pg14 => out.push(
                Hit::new(format!(
                    "DETACH PARTITION `{part}` takes an ACCESS EXCLUSIVE lock on `{parent}`: every read and \
                     write of the partitioned table waits, and queues behind the DETACH while it waits"
                ))
                .help(format!(
                    "ALTER TABLE {pq} DETACH PARTITION {part} CONCURRENTLY;\n\
                     -- outside a transaction block; not possible while {pq} has a DEFAULT partition;\n\
                     -- if interrupted: ALTER TABLE {pq} DETACH PARTITION {part} FINALIZE;"
                )),
            ),
            None => out.push(
                Hit::new(format!(
                    "DETACH PARTITION `{part}` takes an ACCESS EXCLUSIVE lock on `{parent}`: every read and \
                     write of the partitioned table waits; before PostgreSQL 14 there is no CONCURRENTLY form, \
                     so keep the wait short"
                ))
                .severity(Severity::Warning)
                .help(format!(
                    "SET lock_timeout = '2s';  -- fail fast instead of queueing traffic; rerun on timeout\n\
                     ALTER TABLE {pq} DETACH PARTITION {part};\n\
                     -- PostgreSQL 14+: ALTER TABLE {pq} DETACH PARTITION {part} CONCURRENTLY;"
                )),
            ),
        }
    }
}
