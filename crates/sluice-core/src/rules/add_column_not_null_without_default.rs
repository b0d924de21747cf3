//! `add-column-not-null-without-default`: `ADD COLUMN ... NOT NULL` without a `DEFAULT` on an existing table.
//!
//! PostgreSQL: the statement fails as soon as the table has a row ("column ... contains null values").
//! MariaDB/MySQL: it succeeds and silently stores the type's implicit default in every existing row
//! (verified on MariaDB 10.11 in strict mode: `0`, `''`, `0000-00-00 00:00:00`, the first ENUM value),
//! data the application then reads as real: a warning there.
//!
//! Not reported: identity, serial and AUTO_INCREMENT columns (they fill themselves; `add-serial-or-identity`
//! reports those), generated columns (computed), and tables created earlier in the same migration.

use super::prelude::*;

pub const RULE: Rule = Rule {
    id: "add-column-not-null-without-default",
    severity: Severity::Error,
    engines: Engines::All,
    summary: "ADD COLUMN ... NOT NULL without a DEFAULT on a table that already has rows",
    why: "PostgreSQL refuses it as soon as the table has one row (the new column would be NULL there), so the \
          deploy fails in every environment with data; MariaDB/MySQL accept it and silently write the type's \
          implicit default (0, '', a zero date, the first ENUM value) into every existing row",
    safe: "ALTER TABLE t ADD COLUMN col bigint;  -- nullable: catalog-only\n\
           -- backfill in batches, then enforce (PostgreSQL 12+: no scan under the exclusive lock):\n\
           ALTER TABLE t ADD CONSTRAINT t_col_not_null_check CHECK (col IS NOT NULL) NOT VALID;\n\
           ALTER TABLE t VALIDATE CONSTRAINT t_col_not_null_check;\n\
           ALTER TABLE t ALTER COLUMN col SET NOT NULL;\n\
           ALTER TABLE t DROP CONSTRAINT t_col_not_null_check;\n\
           -- or, when one value fits every existing row: ADD COLUMN col bigint NOT NULL DEFAULT 0",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    for a in st.actions() {
        let Action::AddColumn { table, column, .. } = a else {
            continue;
        };
        let has_default = column
            .default
            .as_ref()
            .is_some_and(|d| !d.text.trim().eq_ignore_ascii_case("NULL"));
        let fills_itself = column.identity
            || column.serial
            || column.auto_increment
            || column.generated_stored
            || column.generated_virtual
            || column.data_type.trim().eq_ignore_ascii_case("SERIAL");
        if !column.not_null || has_default || fills_itself || ctx.is_new_table(table) {
            continue;
        }
        let c = &column.name;
        let ty = &column.data_type;
        if ctx.is_postgres() {
            out.push(
                Hit::new(format!(
                    "adding `{table}.{c}` as NOT NULL without a DEFAULT fails as soon as `{table}` has a row: \
                     PostgreSQL has no value to put there"
                ))
                .help(format!(
                    "ALTER TABLE {table} ADD COLUMN {c} {ty};\n\
                     -- backfill in batches: UPDATE {table} SET {c} = ... WHERE {c} IS NULL AND <batch>;\n\
                     ALTER TABLE {table} ADD CONSTRAINT {table_name}_{c}_not_null_check CHECK ({c} IS NOT NULL) NOT VALID;\n\
                     ALTER TABLE {table} VALIDATE CONSTRAINT {table_name}_{c}_not_null_check;  -- in its own transaction\n\
                     ALTER TABLE {table} ALTER COLUMN {c} SET NOT NULL;  -- PostgreSQL 12+: no scan, the check proves it\n\
                     ALTER TABLE {table} DROP CONSTRAINT {table_name}_{c}_not_null_check;\n\
                     -- or, when one constant fits every existing row (catalog-only on PostgreSQL 11+):\n\
                     -- ALTER TABLE {table} ADD COLUMN {c} {ty} NOT NULL DEFAULT <value>;",
                    table_name = table.name
                )),
            );
        } else {
            let upper = ty.to_ascii_uppercase();
            let temporal = ["DATE", "TIME", "YEAR"].iter().any(|w| upper.contains(w));
            let message = if temporal && ctx.target.engine == EngineKind::MySql {
                format!(
                    "adding `{table}.{c}` as NOT NULL without a DEFAULT either writes the zero date into every \
                     existing row of `{table}` or, in strict mode with NO_ZERO_DATE, fails on the first row"
                )
            } else {
                format!(
                    "adding `{table}.{c}` as NOT NULL without a DEFAULT silently writes the implicit default of {ty} \
                     (0, '', a zero date or the first ENUM value) into every existing row of `{table}`"
                )
            };
            out.push(Hit::new(message).severity(Severity::Warning).help(format!(
                "-- say which value existing rows get:\n\
                     ALTER TABLE {table} ADD COLUMN {c} {ty} NOT NULL DEFAULT <value>;\n\
                     -- or keep it nullable until every row has a real value:\n\
                     -- ALTER TABLE {table} ADD COLUMN {c} {ty} NULL;"
            )));
        }
    }
}
