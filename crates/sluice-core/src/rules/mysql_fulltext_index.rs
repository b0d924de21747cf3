//! `mysql-fulltext-index` (MariaDB/MySQL): `ADD FULLTEXT INDEX` (or `ADD SPATIAL INDEX`) on an
//! existing InnoDB table, which blocks writes for the whole build.
//!
//! Verified on MariaDB 10.11 (the server asked for INSTANT, NOCOPY and INPLACE with LOCK=NONE, each
//! refused: "Fulltext index creation requires a lock. Try LOCK=SHARED"): the first FULLTEXT index
//! of a table rebuilds it to add the hidden FTS_DOC_ID column, INPLACE with LOCK=SHARED; a later
//! one (or one on a table that already has an FTS_DOC_ID column) is built without a rebuild, but
//! still only with LOCK=SHARED, as is a SPATIAL index. Either way writes wait until the build ends.
//! `tests/path_judged_by_server.rs` in sluice-mysql holds the server to this. With LOCK=SHARED or
//! EXCLUSIVE, or ALGORITHM=COPY, written out, `mysql-lock-option` / `mysql-copy-algorithm`
//! report the statement instead (one finding per statement). `CREATE FULLTEXT INDEX` is not parsed
//! (`unparsed-statement` reports it).

use super::mysql_copy_algorithm::options;
use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "mysql-fulltext-index",
    severity: Severity::Error,
    engines: Engines::MySqlFamily,
    summary: "ADD FULLTEXT or SPATIAL INDEX on an existing table (LOCK=SHARED: writes wait for the whole build)",
    why: "InnoDB builds a FULLTEXT or SPATIAL index only with LOCK=SHARED: every write to the table waits \
          until the build ends (the server refuses LOCK=NONE). The first FULLTEXT index of a table also \
          rebuilds the whole table to add its hidden FTS_DOC_ID column",
    safe: "-- let `sluice up` run it: the ALTER goes through its online shadow-table copy, writes continue;\n\
           -- or run it in a maintenance window. To make later FULLTEXT indexes cheaper, create the table with\n\
           -- FTS_DOC_ID BIGINT UNSIGNED NOT NULL AUTO_INCREMENT and UNIQUE KEY FTS_DOC_ID_INDEX (FTS_DOC_ID)",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some(table) = st.actions().iter().find_map(|a| match a {
        Action::AddConstraint { table, constraint }
            if constraint.kind == ConstraintKind::FullText && !ctx.is_new_table(table) =>
        {
            Some(table)
        }
        _ => None,
    }) else {
        return;
    };
    // A lock or copy written out is reported by mysql-lock-option / mysql-copy-algorithm.
    if let Some(o) = options(st, ctx.target.engine) {
        if o.algorithm.as_deref() == Some("COPY")
            || matches!(o.lock.as_deref(), Some("SHARED" | "EXCLUSIVE"))
        {
            return;
        }
    }
    let kind = if st.sql.to_ascii_uppercase().contains("SPATIAL") {
        "SPATIAL"
    } else {
        "FULLTEXT"
    };
    out.push(
        Hit::new(format!(
            "a {kind} index is built only with LOCK=SHARED: every write to `{table}` waits until the build ends{}",
            if kind == "FULLTEXT" {
                " (the table's first FULLTEXT index also rebuilds the whole table)"
            } else {
                ""
            }
        ))
        .help(
            "-- `sluice up` runs this ALTER as an online shadow-table copy (writes continue);\n\
             -- as written (`--as-written`, another tool), run it in a maintenance window",
        ),
    );
}

#[cfg(test)]
mod tests {
    use super::RULE;

    fn ids(target: &str, sql: &str) -> Vec<String> {
        let m = crate::migration::parse_text(std::path::Path::new("m.sql"), 1, "m".into(), sql)
            .unwrap();
        let t = crate::target::Target::parse(target).unwrap();
        crate::lint::lint(t, &[m], &Default::default())
            .findings
            .into_iter()
            .map(|f| f.rule.to_string())
            .filter(|r| r == RULE.id)
            .collect()
    }

    #[test]
    fn flags_fulltext_and_spatial_indexes_on_existing_tables_only() {
        let bad = [
            "ALTER TABLE docs ADD FULLTEXT INDEX ft (body);",
            "ALTER TABLE docs ADD FULLTEXT KEY ft (body, title);",
            "ALTER TABLE docs ADD FULLTEXT (body);",
            "ALTER TABLE docs ADD SPATIAL INDEX sp (g);",
            "ALTER TABLE docs ADD COLUMN c INT, ADD FULLTEXT INDEX ft (body);",
            // The server refuses LOCK=NONE: nothing runs without the lock.
            "ALTER TABLE docs ADD FULLTEXT INDEX ft (body), ALGORITHM=INPLACE, LOCK=NONE;",
        ];
        let good = [
            "ALTER TABLE docs ADD INDEX ix (body(10));",
            "ALTER TABLE docs ADD UNIQUE INDEX ux (title);",
            "CREATE TABLE docs2 (id INT PRIMARY KEY, body TEXT);\nALTER TABLE docs2 ADD FULLTEXT INDEX ft (body);",
            "CREATE TABLE docs3 (id INT PRIMARY KEY, body TEXT, FULLTEXT KEY ft (body));",
            // Reported by mysql-lock-option / mysql-copy-algorithm instead.
            "ALTER TABLE docs ADD FULLTEXT INDEX ft (body), LOCK=SHARED;",
            "ALTER TABLE docs ADD FULLTEXT INDEX ft (body), ALGORITHM=COPY;",
        ];
        for target in ["mariadb:10.11", "mysql:8.0.36"] {
            for sql in bad {
                assert_eq!(
                    ids(target, sql),
                    ["mysql-fulltext-index"],
                    "{target}: {sql}"
                );
            }
            for sql in good {
                assert!(ids(target, sql).is_empty(), "{target}: {sql}");
            }
        }
        assert!(ids("postgres:15", "CREATE INDEX ix ON docs (body);").is_empty());
    }
}
