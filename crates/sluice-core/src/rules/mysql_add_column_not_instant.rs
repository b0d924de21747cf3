//! `mysql-add-column-not-instant` (MariaDB/MySQL): an ADD COLUMN on an existing table that the target
//! version cannot do INSTANT, so the table is rebuilt (in place, writes allowed, but every row rewritten).
//!
//! Version matrix: MariaDB before 10.3 never adds a column instantly; 10.3 only as the last column (AFTER /
//! FIRST rebuild); 10.4+ anywhere. MySQL before 8.0.12 never; 8.0.12–8.0.28 only as the last column; 8.0.29+
//! anywhere (a `mysql:8.0` target without patch number counts as the latest 8.0). On every version (verified
//! on MariaDB 10.11): an inline UNIQUE/KEY on the new column, or an ADD INDEX/UNIQUE in the same ALTER TABLE,
//! makes the whole statement a rebuild. Left to other rules, so one column gets one finding: AUTO_INCREMENT
//! (`add-serial-or-identity`), STORED generated columns (`stored-generated-column`), inline PRIMARY KEY
//! (`mysql-primary-key-change`), inline REFERENCES (`mysql-add-foreign-key`), expression defaults
//! (`mysql-expression-default`). Not detectable offline, hence only in `why`: a table with a FULLTEXT index
//! or ROW_FORMAT=COMPRESSED never gets INSTANT (verified on MariaDB 10.11: FULLTEXT even needs LOCK=SHARED),
//! and MySQL 8.0.29+ rebuilds after 64 instant ADD/DROP COLUMN on a table.
//! Severity of a rebuild: Warning offline, Error when connected and the table is large, nothing when small.

use super::mysql_table_rebuild::{mysql_at_least, online_rebuild_severity};
use super::prelude::*;
use super::require_lock_timeout::name_sql;
use sqlparser::ast::{AlterTableOperation, Statement};

pub const RULE: Rule = Rule {
    id: "mysql-add-column-not-instant",
    severity: Severity::Warning,
    engines: Engines::MySqlFamily,
    summary: "ADD COLUMN that the target version cannot do INSTANT (position, version, or combined with an index)",
    why: "without INSTANT the table is rebuilt: writes continue (ALGORITHM=INPLACE, LOCK=NONE) but every row is \
          rewritten, a second copy needs disk, and replicas replay the rebuild for as long, lagging meanwhile. \
          INSTANT ADD COLUMN needs MariaDB 10.3 (last position) / 10.4 (any position), or MySQL 8.0.12 (last) / \
          8.0.29 (any). Tables with a FULLTEXT index or ROW_FORMAT=COMPRESSED never get INSTANT",
    safe: "ALTER TABLE t ADD COLUMN c INT NULL, ALGORITHM=INSTANT;  -- last position; the server refuses rather than rebuild\n\
           ALTER TABLE t ADD INDEX c_idx (c), ALGORITHM=INPLACE, LOCK=NONE;  -- the index in its own statement",
    check,
};

fn left_to_other_rules(st: &Stmt, ctx: &Ctx, table: &QName, c: &ColumnSpec) -> bool {
    c.auto_increment
        || c.generated_stored
        || c.primary_key
        || c.references.is_some()
        || super::mysql_expression_default::finding(st, ctx, table, c).is_some()
}

fn column_sql(st: &Stmt, ctx: &Ctx, c: &ColumnSpec) -> String {
    if let Some(Statement::AlterTable(at)) = st.ast.as_deref() {
        for o in &at.operations {
            if let AlterTableOperation::AddColumn { column_def, .. } = o {
                if crate::analysis::ir::fold_ident(ctx.target.engine, &column_def.name) == c.name {
                    return column_def.to_string();
                }
            }
        }
    }
    format!("{} {}", c.name, c.data_type)
}

/// The statement's clauses other than the flagged ADD COLUMNs (index clauses), plus an ADD UNIQUE for
/// each inline UNIQUE of those columns: the second statement of the split.
fn other_clauses(st: &Stmt, ctx: &Ctx, cols: &[(&QName, &ColumnSpec)]) -> String {
    let mut out: Vec<String> = Vec::new();
    if let Some(Statement::AlterTable(at)) = st.ast.as_deref() {
        for o in &at.operations {
            match o {
                AlterTableOperation::AddColumn { column_def, .. }
                    if cols.iter().any(|(_, c)| {
                        crate::analysis::ir::fold_ident(ctx.target.engine, &column_def.name)
                            == c.name
                    }) => {}
                AlterTableOperation::Algorithm { .. } | AlterTableOperation::Lock { .. } => {}
                o => out.push(o.to_string()),
            }
        }
    }
    for (_, c) in cols.iter().filter(|(_, c)| c.unique) {
        out.push(format!(
            "ADD UNIQUE ({})",
            super::require_lock_timeout::ident_sql(ctx.target.engine, &c.name)
        ));
    }
    out.join(", ")
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let t = ctx.target;
    let mut cols: Vec<(&QName, &ColumnSpec)> = Vec::new();
    for a in st.actions() {
        if let Action::AddColumn { table, column, .. } = a {
            if !ctx.is_new_table(table) && !left_to_other_rules(st, ctx, table, column) {
                cols.push((table, column));
            }
        }
    }
    let Some(&(table, _)) = cols.first() else {
        return;
    };
    let tq = name_sql(t.engine, table);
    let (instant_at_all, instant_anywhere, first_any, first_last) = match t.engine {
        EngineKind::MariaDb => (
            t.at_least(10, 3),
            t.at_least(10, 4),
            "MariaDB 10.4",
            "MariaDB 10.3",
        ),
        EngineKind::MySql => (
            mysql_at_least(t, 8, 0, 12),
            mysql_at_least(t, 8, 0, 29),
            "MySQL 8.0.29",
            "MySQL 8.0.12",
        ),
        EngineKind::Postgres => return,
    };
    let names = cols
        .iter()
        .map(|(_, c)| format!("`{}`", c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let index_in_same = st.actions().iter().any(|a| {
        matches!(a, Action::AddConstraint { constraint, .. }
            if matches!(constraint.kind, ConstraintKind::Index | ConstraintKind::Unique | ConstraintKind::FullText))
    });
    let inline_unique = cols
        .iter()
        .find(|(_, c)| c.unique)
        .map(|(_, c)| c.name.clone());
    let positioned = cols.iter().any(|(_, c)| c.positioned);
    let defs = cols
        .iter()
        .map(|(_, c)| format!("ADD COLUMN {}", column_sql(st, ctx, c)))
        .collect::<Vec<_>>()
        .join(", ");
    let (reason, help) = if !instant_at_all {
        (
            format!("{t} cannot add columns INSTANT (that needs {first_last}+)"),
            format!(
                "-- on a large table: gh-ost / pt-online-schema-change, or upgrade to {first_any}+ for INSTANT ADD COLUMN;\n\
                 -- at least make the server refuse a blocking copy:\nALTER TABLE {tq} {defs}, ALGORITHM=INPLACE, LOCK=NONE;"
            ),
        )
    } else if positioned && !instant_anywhere {
        let last = cols
            .iter()
            .map(|(_, c)| {
                let sql = column_sql(st, ctx, c);
                let upper = sql.to_ascii_uppercase();
                let cut = [" AFTER ", " FIRST"]
                    .iter()
                    .filter_map(|k| upper.rfind(k))
                    .min()
                    .unwrap_or(sql.len());
                format!("ADD COLUMN {}", &sql[..cut])
            })
            .collect::<Vec<_>>()
            .join(", ");
        (
            format!("AFTER/FIRST: {t} adds a column INSTANT only as the last column (any position needs {first_any}+)"),
            format!("ALTER TABLE {tq} {last}, ALGORITHM=INSTANT;  -- as the last column"),
        )
    } else if index_in_same || inline_unique.is_some() {
        let what = match &inline_unique {
            Some(c) => format!("the inline UNIQUE on `{c}`"),
            None => "the index added in the same ALTER TABLE".into(),
        };
        (
            format!("{what} turns the instant ADD COLUMN into a rebuild of the whole table"),
            format!(
                "-- split it: first the column, instant:\n\
                 ALTER TABLE {tq} {}, ALGORITHM=INSTANT;\n\
                 -- then the index, built in place without a rebuild:\n\
                 ALTER TABLE {tq} {}, ALGORITHM=INPLACE, LOCK=NONE;",
                defs.replace(" UNIQUE", ""),
                other_clauses(st, ctx, &cols)
            ),
        )
    } else {
        return;
    };
    let Some(sev) = online_rebuild_severity(st, ctx, table) else {
        return;
    };
    out.push(
        Hit::new(format!(
            "adding {names} rebuilds `{table}`: {reason}; writes continue, but every row is rewritten and replicas lag \
             while they replay it"
        ))
        .severity(sev)
        .help(help),
    );
}
