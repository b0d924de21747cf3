//! `cluster` (PostgreSQL): CLUSTER.
//!
//! Verified on PostgreSQL 15: `CLUSTER t USING i` holds ACCESS EXCLUSIVE on `t` and all its indexes
//! while it rewrites the table in index order into a new file (`pg_relation_filenode` changed; 5.9 s
//! for 2M rows): every read and write waits for the whole rewrite. The pre-8.3 spelling
//! `CLUSTER i ON t` is still accepted and does the same. `CLUSTER` without a table reclusters every
//! previously clustered table of the database (and cannot run in a transaction block).
//! sqlparser does not parse CLUSTER: the statement is read from its tokens.
//! Exempt: a table created earlier in the migration.

use super::prelude::*;
use super::require_concurrent_reindex::{ident_sql, kw, name_at, qname_sql, toks};

pub const RULE: Rule = Rule {
    id: "cluster",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "CLUSTER",
    why: "CLUSTER rewrites the whole table in index order under an ACCESS EXCLUSIVE lock: every read and write \
          of the table waits for the whole rewrite, which also needs disk for a second copy",
    safe: "-- reorder online with pg_repack (brief ACCESS EXCLUSIVE only at the start and the end):\n\
           ALTER TABLE t CLUSTER ON t_created_at_idx;  -- records the order, no rewrite\n\
           -- then: pg_repack --table=t   (orders by the clustering index)",
    check,
};

/// `CLUSTER [VERBOSE] [(options)] [table [USING index]]` or `CLUSTER index ON table`: (table, index).
fn parse_cluster(st: &Stmt) -> Option<(Option<QName>, Option<QName>)> {
    if st.keywords.first().map(String::as_str) != Some("CLUSTER") {
        return None;
    }
    let t = toks(&st.sql);
    let mut i = 1;
    if kw(&t, i) == "(" {
        while i < t.len() && !(t[i].depth == 0 && t[i].kw == ")") {
            i += 1;
        }
        i += 1;
    }
    if kw(&t, i) == "VERBOSE" {
        i += 1;
    }
    let Some((first, next)) = name_at(&t, i) else {
        return Some((None, None));
    };
    match kw(&t, next) {
        "USING" => Some((Some(first), name_at(&t, next + 1).map(|(n, _)| n))),
        "ON" => Some((name_at(&t, next + 1).map(|(n, _)| n), Some(first))),
        _ => Some((Some(first), None)),
    }
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some((table, index)) = parse_cluster(st) else {
        return;
    };
    let Some(table) = table else {
        out.push(
            Hit::new(
                "CLUSTER without a table rewrites every previously clustered table of the database, each \
                 under an ACCESS EXCLUSIVE lock: reads and writes of each wait while it is rewritten",
            )
            .help("-- reorder tables online with pg_repack instead: pg_repack --table=<table>"),
        );
        return;
    };
    if ctx.is_new_table(&table) {
        return;
    }
    let tq = qname_sql(&table);
    let order = match &index {
        Some(i) => format!(
            "ALTER TABLE {tq} CLUSTER ON {};  -- records the order, no rewrite\n",
            ident_sql(&i.name)
        ),
        None => String::new(),
    };
    out.push(
        Hit::new(format!(
            "CLUSTER rewrites `{table}` in index order under an ACCESS EXCLUSIVE lock: every read and write \
             of `{table}` waits for the whole rewrite"
        ))
        .help(format!(
            "{order}-- then reorder online: pg_repack --table={tq}   (orders by the clustering index; \
             ACCESS EXCLUSIVE only briefly at the start and the end)"
        )),
    );
}
