//! `drop-not-null` (PostgreSQL): `ALTER COLUMN ... DROP NOT NULL` on an existing column of an existing
//! table. Info: the change itself is catalog-only and harmless to the database (a brief ACCESS
//! EXCLUSIVE lock, no scan), and it is the usual first step of retiring a column; what it changes is
//! the contract with readers, which may assume a value. (MariaDB/MySQL express it as MODIFY, which
//! rebuilds the table: `mysql-modify-column`.)

use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql};

pub const RULE: Rule = Rule {
    id: "drop-not-null",
    severity: Severity::Info,
    engines: Engines::Postgres,
    summary: "makes an existing column nullable",
    why: "harmless to the database (catalog only), but code that reads the column may assume a value: once \
          NULLs are written, a non-optional field in an ORM model or a report summing the column misbehaves. \
          Putting NOT NULL back later needs a full-table scan",
    safe: "-- make sure every reader handles NULL in the column, then:\nALTER TABLE t ALTER COLUMN c DROP NOT NULL;",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::DropNotNull { table, column } = a else {
            continue;
        };
        if ctx.is_new_table(table) || ctx.is_new_column(table, column) {
            continue;
        }
        out.push(
            Hit::new(format!(
                "`{table}`.`{column}` accepts NULL from now on: readers that assume a value must handle NULL first"
            ))
            .help(format!(
                "-- once every reader handles NULL:\nALTER TABLE {} ALTER COLUMN {} DROP NOT NULL;",
                name_sql(EngineKind::Postgres, table),
                ident_sql(EngineKind::Postgres, column)
            )),
        );
    }
}
