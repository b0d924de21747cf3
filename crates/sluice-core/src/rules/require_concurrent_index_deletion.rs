//! `require-concurrent-index-deletion` (PostgreSQL): DROP INDEX without CONCURRENTLY.
//!
//! Verified on PostgreSQL 15: `DROP INDEX i` takes an ACCESS EXCLUSIVE lock on the index's table (and
//! the index) until the transaction ends; the drop itself is quick, but it waits behind every running
//! query on the table and every new query queues behind it; a `SELECT` from another session waited
//! on it. `DROP INDEX CONCURRENTLY` (PostgreSQL 9.2+) takes no lock that blocks reads or writes; it
//! cannot run in a transaction block, drops one index at a time and takes no CASCADE.
//! Exempt: an index created earlier in the same migration on a table also created in it. MariaDB/MySQL
//! drop secondary indexes in place without blocking, so this rule is PostgreSQL only.

use super::prelude::*;
use super::require_concurrent_reindex::{is_new_index_on_new_table, qname_sql};

pub const RULE: Rule = Rule {
    id: "require-concurrent-index-deletion",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "DROP INDEX without CONCURRENTLY",
    why: "takes an ACCESS EXCLUSIVE lock on the index's table: it waits for every running query on the table, \
          and meanwhile every new read and write of the table queues behind it until the drop commits",
    safe: "DROP INDEX CONCURRENTLY IF EXISTS idx;  -- one index per statement, outside a transaction block",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::DropIndex {
            names,
            concurrently: false,
            ..
        } = a
        else {
            continue;
        };
        if !names.is_empty()
            && names
                .iter()
                .all(|n| is_new_index_on_new_table(ctx, st.index, n))
        {
            continue;
        }
        let cascade = matches!(
            st.ast.as_deref(),
            Some(sqlparser::ast::Statement::Drop { cascade: true, .. })
        );
        let listed = if names.is_empty() {
            "the index".to_string()
        } else {
            names
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut help: Vec<String> = if names.is_empty() {
            vec!["DROP INDEX CONCURRENTLY IF EXISTS idx;".into()]
        } else {
            names
                .iter()
                .map(|n| format!("DROP INDEX CONCURRENTLY IF EXISTS {};", qname_sql(n)))
                .collect()
        };
        if cascade {
            help.insert(
                0,
                "-- DROP INDEX CONCURRENTLY takes no CASCADE: drop the objects that depend on the index first"
                    .into(),
            );
        }
        if names.len() > 1 {
            help.push("-- one index per statement: CONCURRENTLY drops a single index".into());
        }
        out.push(
            Hit::new(format!(
                "DROP INDEX {listed} takes an ACCESS EXCLUSIVE lock on the table: reads and writes of it \
                 queue behind the drop until it commits"
            ))
            .help(help.join("\n")),
        );
    }
}
