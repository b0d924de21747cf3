//! `vacuum-full` (PostgreSQL): VACUUM FULL.
//!
//! Verified on PostgreSQL 15: `VACUUM FULL t` holds ACCESS EXCLUSIVE (and SHARE) on `t` while it copies
//! the table into a new file (`pg_relation_filenode` changed): every read and write waits for the whole
//! rewrite, and it needs disk for a second copy of the table and its indexes. Plain VACUUM takes SHARE
//! UPDATE EXCLUSIVE and blocks neither reads nor writes.
//!
//! The statement is read from its tokens (sqlparser parses neither `VACUUM (FULL) t` nor
//! `VACUUM ANALYZE t`): FULL as a bare word before the table list, or `FULL [true|on|1]` in the
//! parenthesised options; `(FULL false)` is not FULL, nor is a table whose name merely contains "full".
//! Without a table it rewrites every table of the database. Exempt: only tables created earlier in
//! the migration.

use super::prelude::*;
use super::require_concurrent_reindex::{kw, name_at, qname_sql, toks};

pub const RULE: Rule = Rule {
    id: "vacuum-full",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "VACUUM FULL",
    why: "VACUUM FULL rewrites the table and all its indexes into new files under an ACCESS EXCLUSIVE lock: \
          every read and write waits for the whole rewrite, and it needs free disk for a full second copy",
    safe: "VACUUM (ANALYZE) t;  -- makes dead space reusable without blocking reads or writes\n\
           -- to give disk space back to the OS online: pg_repack --table=t",
    check,
};

/// `VACUUM ...`: whether it is FULL, and the tables it names.
pub(super) fn parse_vacuum(st: &Stmt) -> Option<(bool, Vec<QName>)> {
    if st.keywords.first().map(String::as_str) != Some("VACUUM") {
        return None;
    }
    let t = toks(&st.sql);
    let mut i = 1;
    let mut full = false;
    if kw(&t, i) == "(" {
        i += 1;
        while i < t.len() && !(t[i].depth == 0 && t[i].kw == ")") {
            if t[i].depth == 1 && t[i].kw == "FULL" {
                full = !matches!(kw(&t, i + 1), "FALSE" | "OFF" | "0");
            }
            i += 1;
        }
        i += 1;
    } else {
        while matches!(
            kw(&t, i),
            "FULL" | "FREEZE" | "VERBOSE" | "ANALYZE" | "ANALYSE"
        ) {
            full |= kw(&t, i) == "FULL";
            i += 1;
        }
    }
    let mut tables = Vec::new();
    while let Some((name, next)) = name_at(&t, i) {
        tables.push(name);
        i = next;
        // A column list: `t (a, b)`.
        if kw(&t, i) == "(" {
            let depth = t[i].depth;
            i += 1;
            while i < t.len() && !(t[i].depth == depth && t[i].kw == ")") {
                i += 1;
            }
            i += 1;
        }
        if kw(&t, i) != "," {
            break;
        }
        i += 1;
    }
    Some((full, tables))
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some((true, tables)) = parse_vacuum(st) else {
        return;
    };
    if !tables.is_empty() && tables.iter().all(|t| ctx.is_new_table(t)) {
        return;
    }
    if tables.is_empty() {
        out.push(
            Hit::new(
                "VACUUM FULL without a table rewrites every table of the database, each under an ACCESS \
                 EXCLUSIVE lock: reads and writes of each table wait while it is copied",
            )
            .help(
                "VACUUM (ANALYZE);  -- makes dead space reusable without blocking\n\
                 -- to shrink a bloated table online: pg_repack --table=<table>",
            ),
        );
        return;
    }
    let existing: Vec<&QName> = tables.iter().filter(|t| !ctx.is_new_table(t)).collect();
    let listed = existing
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let names = existing
        .iter()
        .map(|t| qname_sql(t))
        .collect::<Vec<_>>()
        .join(", ");
    let repack = existing
        .iter()
        .map(|t| format!("--table={}", qname_sql(t)))
        .collect::<Vec<_>>()
        .join(" ");
    out.push(
        Hit::new(format!(
            "VACUUM FULL rewrites {listed} into new files under an ACCESS EXCLUSIVE lock: every read and \
             write waits for the whole rewrite, which also needs disk for a second copy"
        ))
        .help(format!(
            "VACUUM (ANALYZE) {names};  -- makes dead space reusable without blocking\n\
             -- to give the space back to the OS online: pg_repack {repack}"
        )),
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::ir;

    fn parse(sql: &str) -> (bool, Vec<String>) {
        let s = crate::sql::split(EngineKind::Postgres, sql)
            .unwrap()
            .remove(0);
        let st = ir::build(EngineKind::Postgres, 0, &s, 0, sql);
        let (full, t) = parse_vacuum(&st).unwrap();
        (full, t.iter().map(QName::display).collect())
    }

    #[test]
    fn reads_vacuum_forms() {
        assert_eq!(parse("VACUUM FULL t"), (true, vec!["t".into()]));
        assert_eq!(parse("VACUUM FULL"), (true, vec![]));
        assert_eq!(
            parse("VACUUM (FULL, ANALYZE) s.t (a, b), u"),
            (true, vec!["s.t".into(), "u".into()])
        );
        assert_eq!(parse("VACUUM (FULL false) t"), (false, vec!["t".into()]));
        assert_eq!(
            parse("VACUUM ANALYZE fulltext_docs"),
            (false, vec!["fulltext_docs".into()])
        );
        assert_eq!(
            parse("VACUUM FULL VERBOSE ANALYZE t"),
            (true, vec!["t".into()])
        );
    }
}
