//! `mysql-primary-key-change` (MariaDB/MySQL): ADD PRIMARY KEY / DROP PRIMARY KEY on an existing table.
//!
//! InnoDB stores rows in primary-key order (the clustered index), so both rebuild the table. Verified on
//! MariaDB 10.11: `DROP PRIMARY KEY` alone is accepted only with ALGORITHM=COPY (writes blocked): Error.
//! `ADD PRIMARY KEY` (also with nullable columns) and `DROP PRIMARY KEY, ADD PRIMARY KEY (...)` in one
//! statement rebuild in place with LOCK=NONE: rebuild severity (Warning offline, Error on a large table,
//! nothing on a small one). An inline `ADD COLUMN ... AUTO_INCREMENT PRIMARY KEY` is left to
//! `add-serial-or-identity`.

use super::mysql_table_rebuild::online_rebuild_severity;
use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "mysql-primary-key-change",
    severity: Severity::Error,
    engines: Engines::MySqlFamily,
    summary: "ADD PRIMARY KEY or DROP PRIMARY KEY on an existing table (rebuilds the clustered index)",
    why: "InnoDB stores the rows in primary-key order, so changing the key rewrites the whole table. DROP PRIMARY \
          KEY alone is a copy (ALGORITHM=COPY) that blocks writes throughout, and leaves the table clustered on a \
          hidden row id (row-based replicas then scan the table for every changed row). ADD PRIMARY KEY, or DROP \
          and ADD in one statement, rebuilds in place with writes allowed, but rewrites every row",
    safe: "ALTER TABLE t DROP PRIMARY KEY, ADD PRIMARY KEY (id, created_at), ALGORITHM=INPLACE, LOCK=NONE;  -- one statement\n\
           -- on a large table: gh-ost / pt-online-schema-change",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let mut drop_pk: Option<&QName> = None;
    let mut add_pk: Option<(&QName, Vec<String>)> = None;
    for a in st.actions() {
        match a {
            Action::DropKey { table, what } if what == "PRIMARY KEY" => drop_pk = Some(table),
            Action::AddConstraint { table, constraint }
                if constraint.kind == ConstraintKind::PrimaryKey =>
            {
                add_pk = Some((table, constraint.columns.clone()))
            }
            Action::AddColumn { table, column, .. }
                if column.primary_key && !column.auto_increment =>
            {
                add_pk = Some((table, vec![column.name.clone()]))
            }
            _ => {}
        }
    }
    match (drop_pk, add_pk) {
        (Some(table), None) => {
            if ctx.is_new_table(table) {
                return;
            }
            let tq = super::require_lock_timeout::name_sql(ctx.target.engine, table);
            out.push(
                Hit::new(format!(
                    "DROP PRIMARY KEY on `{table}` alone copies the table (ALGORITHM=COPY): every write waits until the \
                     copy ends; afterwards InnoDB clusters the rows on a hidden row id"
                ))
                .help(format!(
                    "-- replacing the key? do it in one statement, rebuilt in place with writes allowed:\n\
                     ALTER TABLE {tq} DROP PRIMARY KEY, ADD PRIMARY KEY (...), ALGORITHM=INPLACE, LOCK=NONE;"
                )),
            );
        }
        (drop, Some((table, cols))) => {
            if ctx.is_new_table(table) {
                return;
            }
            let tq = super::require_lock_timeout::name_sql(ctx.target.engine, table);
            let Some(sev) = online_rebuild_severity(st, ctx, table) else {
                return;
            };
            let verb = if drop.is_some() {
                "replacing"
            } else {
                "adding"
            };
            out.push(
                Hit::new(format!(
                    "{verb} the primary key of `{table}` rebuilds the table (the primary key is InnoDB's clustered index): \
                     writes continue, but every row is rewritten and replicas lag while they replay it"
                ))
                .severity(sev)
                .help(format!(
                    "ALTER TABLE {tq} {}ADD PRIMARY KEY ({}), ALGORITHM=INPLACE, LOCK=NONE;  -- refused rather than \
                     blocking; on a large table: gh-ost / pt-online-schema-change",
                    if drop.is_some() { "DROP PRIMARY KEY, " } else { "" },
                    cols.join(", ")
                )),
            );
        }
        (None, None) => {}
    }
}
