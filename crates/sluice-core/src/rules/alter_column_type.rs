//! `alter-column-type`: `ALTER COLUMN ... TYPE` on an existing PostgreSQL table.
//!
//! PostgreSQL rewrites the whole table (and rebuilds its indexes) under ACCESS EXCLUSIVE unless the
//! new type is binary-coercible with the old one and needs no check of the stored values. Verified on
//! PostgreSQL 15 by comparing `pg_relation_filenode` of the table (and of an index on the column)
//! before and after. Catalog-only:
//! - `varchar(n)` → `varchar(m)` with m ≥ n, `varchar(n)`/`varchar` → `varchar` or `text`, `text` → `varchar`;
//! - `numeric(p,s)` → `numeric(p2,s)` with p2 ≥ p (same scale), `numeric(p,s)` → `numeric`;
//! - `varbit(n)` → `varbit(m)` with m ≥ n or `varbit`; `bit(n)` → `varbit`;
//! - `cidr` → `inet`;
//! - `timestamp`/`timestamptz`/`time`/`timetz`/`interval` precision widened or removed;
//! - `timestamp` ↔ `timestamptz` only when the session TimeZone is UTC (PostgreSQL 12+);
//! - the same type again; a `USING` that is only the column (or the column cast to the new type).
//!
//! Rewrites (verified): narrowing any of the above, `text` → `varchar(n)`, `char(n)` → `text`/`varchar`,
//! `char(n)` → `char(m)`, `bit(n)` → `varbit(m)`, a changed numeric scale, `int` → `bigint`, any array
//! element change (`varchar(10)[]` → `text[]`), and a `USING` with a real expression.
//!
//! The old type comes from `ctx.column_type` (an earlier statement or migration of the same lint run,
//! or the live schema). When it is unknown and the new type could be a catalog-only widening, the
//! finding is a warning that says so; otherwise an error.

use super::prelude::*;
use sqlparser::ast::{self, Statement};

pub const RULE: Rule = Rule {
    id: "alter-column-type",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "ALTER COLUMN ... TYPE that rewrites an existing table",
    why: "unless the change is binary-coercible (e.g. widening a varchar), PostgreSQL rewrites every row \
          and rebuilds every index of the table while holding an ACCESS EXCLUSIVE lock: all reads and \
          writes on the table wait until it finishes (minutes to hours on a large table)",
    safe: "-- expand/contract instead of changing the type in place:\n\
           ALTER TABLE t ADD COLUMN col_new new_type;\n\
           -- backfill in batches, keep col_new in sync (trigger or application), switch reads,\n\
           -- then drop the old column in a later migration.\n\
           -- To shorten a varchar, keep the type and add a constraint instead:\n\
           ALTER TABLE t ADD CONSTRAINT t_col_len CHECK (char_length(col) <= 20) NOT VALID;\n\
           ALTER TABLE t VALIDATE CONSTRAINT t_col_len;",
    check,
};

// What PostgreSQL does to the table lives with the operation: crate::plan::alter_column_type.
pub(crate) use crate::plan::alter_column_type::{
    parse_type, pg_change, trivial_using, usings, Change, SqlType,
};

/// New types that are catalog-only for some old types: what to say when the old type is unknown.
fn could_be_catalog_only(new: &SqlType, ctx: &Ctx) -> Option<&'static str> {
    if new.array {
        return None;
    }
    Some(match new.base.as_str() {
        "varchar" if new.args.is_empty() => {
            "from varchar(n) or text (and back from varchar(n) to varchar)"
        }
        "varchar" => "from a varchar(n) with n no larger than the new limit",
        "text" => "from varchar(n) or varchar",
        "numeric" if new.args.is_empty() => "from numeric(p,s)",
        "numeric" => "from numeric(p,s) with the same scale and a precision no larger",
        "varbit" if new.args.is_empty() => "from varbit(n) or bit(n)",
        "varbit" => "from a varbit(n) with n no larger than the new limit",
        "inet" => "from cidr",
        "timestamptz" | "timestamp" if ctx.target.at_least(12, 0) => {
            "from timestamp/timestamptz with a smaller or equal precision, and between timestamp and timestamptz only when the session TimeZone is UTC"
        }
        "time" | "timetz" | "interval" | "timestamp" | "timestamptz" if !new.args.is_empty() => {
            "from the same type with a smaller or equal precision"
        }
        _ => return None,
    })
}

/// True when an earlier statement of the part set the session TimeZone to UTC.
fn timezone_is_utc(st: &Stmt, ctx: &Ctx) -> bool {
    let utc = |v: &str| {
        let v = v
            .trim()
            .trim_matches('\'')
            .trim_matches('"')
            .to_ascii_lowercase();
        matches!(
            v.as_str(),
            "utc" | "etc/utc" | "gmt" | "etc/gmt" | "zulu" | "etc/zulu" | "uct" | "etc/uct"
        )
    };
    let mut is_utc = false;
    for s in ctx.statements.iter().take_while(|s| s.index < st.index) {
        for a in s.actions() {
            if let Action::SetParam { name, value, .. } = a {
                if name == "timezone" || name == "time zone" {
                    is_utc = utc(value);
                }
            }
        }
        if let Some(Statement::Set(ast::Set::SetTimeZone { value, .. })) = s.ast.as_deref() {
            is_utc = utc(&value.to_string());
        }
    }
    is_utc
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let usings = usings(st);
    for a in st.actions() {
        let Action::AlterColumnType {
            table,
            column,
            new_type,
            using,
            ..
        } = a
        else {
            continue;
        };
        if ctx.is_new_table(table) {
            continue;
        }
        let new = parse_type(new_type);
        let using_expr = usings.iter().find(|(c, _)| c == column).map(|(_, e)| e);
        let real_using = *using && !using_expr.is_some_and(|e| trivial_using(e, column, &new));
        let rewrite_msg = |from: &str| {
            format!(
                "changing `{table}.{column}`{from} to {new_type} rewrites `{table}` and rebuilds its indexes \
                 under an ACCESS EXCLUSIVE lock: reads and writes wait until it finishes"
            )
        };
        let help = expand_contract_help(table, column, new_type, &new);
        if real_using {
            out.push(
                Hit::new(format!(
                    "{} (a USING expression converts every row)",
                    rewrite_msg("")
                ))
                .help(help),
            );
            continue;
        }
        match ctx.column_type(table, column) {
            Some(old_text) => {
                let old = parse_type(old_text);
                let from = format!(" from {old_text}");
                match pg_change(&old, &new) {
                    Change::CatalogOnly => {}
                    Change::RewriteUnlessUtc if ctx.target.at_least(12, 0) => {
                        if timezone_is_utc(st, ctx) {
                            continue;
                        }
                        out.push(
                            Hit::new(format!(
                                "changing `{table}.{column}` from {old_text} to {new_type} is catalog-only only when the \
                                 session TimeZone is UTC; in any other time zone it rewrites `{table}` under an \
                                 ACCESS EXCLUSIVE lock"
                            ))
                            .severity(Severity::Warning)
                            .help(format!(
                                "SET timezone = 'UTC';  -- before the type change, in the same session\n\
                                 ALTER TABLE {table} ALTER COLUMN {column} TYPE {new_type};\n\
                                 RESET timezone;"
                            )),
                        );
                    }
                    Change::RewriteUnlessUtc | Change::Rewrite => {
                        out.push(Hit::new(rewrite_msg(&from)).help(help));
                    }
                }
            }
            None => match could_be_catalog_only(&new, ctx) {
                Some(when) => out.push(
                    Hit::new(format!(
                        "sluice cannot tell offline what type `{table}.{column}` has now: changing it to {new_type} \
                         is catalog-only {when}; any other change rewrites `{table}` under an ACCESS EXCLUSIVE lock"
                    ))
                    .severity(Severity::Warning)
                    .help(format!(
                        "-- check the current type first: \\d {table}\n\
                         -- if this is not a widening listed above, expand/contract instead:\n{help}"
                    )),
                ),
                None => out.push(Hit::new(rewrite_msg("")).help(help)),
            },
        }
    }
}

fn expand_contract_help(table: &QName, column: &str, new_type: &str, new: &SqlType) -> String {
    let mut h = String::new();
    if new.is("varchar") && !new.args.is_empty() {
        h.push_str(&format!(
            "-- to limit the length, keep the type and add a constraint (no rewrite, no long lock):\n\
             ALTER TABLE {table} ADD CONSTRAINT {name} CHECK (char_length({column}) <= {n}) NOT VALID;\n\
             ALTER TABLE {table} VALIDATE CONSTRAINT {name};  -- in its own transaction\n\
             -- otherwise expand/contract:\n",
            name = format!("{}_{column}_len", table.name),
            n = new.args[0],
        ));
    }
    h.push_str(&format!(
        "ALTER TABLE {table} ADD COLUMN {column}_new {new_type};\n\
         -- backfill in batches (repeat until no row is left):\n\
         -- UPDATE {table} SET {column}_new = {column}::{new_type} WHERE ctid IN (SELECT ctid FROM {table} WHERE {column}_new IS NULL AND {column} IS NOT NULL LIMIT 10000);\n\
         -- keep {column}_new in sync (trigger or application writes), switch reads to it,\n\
         -- then drop {column} and rename {column}_new in a later migration"
    ));
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(old: &str, new: &str) -> Change {
        pg_change(&parse_type(old), &parse_type(new))
    }

    #[test]
    fn parses_spellings() {
        assert_eq!(
            parse_type("character varying(20)"),
            parse_type("VARCHAR(20)")
        );
        assert_eq!(
            parse_type("TIMESTAMP(3) WITHOUT TIME ZONE").base,
            "timestamp"
        );
        assert_eq!(parse_type("timestamp with time zone").base, "timestamptz");
        assert_eq!(parse_type("INT(11) UNSIGNED").base, "int4");
        assert!(parse_type("INT(11) UNSIGNED").unsigned);
        assert!(parse_type("integer[]").array);
        assert_eq!(parse_type("NUMERIC(10)").args, vec![10, 0]);
        assert_eq!(parse_type("DECIMAL(10,2)"), parse_type("numeric(10,2)"));
        assert_eq!(parse_type("serial").base, "serial");
        assert_eq!(parse_type("\"char\"").base, "\"char\"");
    }

    #[test]
    fn verified_catalog_only_changes() {
        use Change::*;
        // Each verified on PostgreSQL 15 with pg_relation_filenode before/after.
        assert_eq!(change("VARCHAR(10)", "VARCHAR(20)"), CatalogOnly);
        assert_eq!(change("VARCHAR(20)", "VARCHAR(15)"), Rewrite);
        assert_eq!(change("VARCHAR(10)", "VARCHAR"), CatalogOnly);
        assert_eq!(change("VARCHAR(10)", "TEXT"), CatalogOnly);
        assert_eq!(change("TEXT", "VARCHAR"), CatalogOnly);
        assert_eq!(change("TEXT", "VARCHAR(100)"), Rewrite);
        assert_eq!(change("NUMERIC(10,2)", "NUMERIC(12,2)"), CatalogOnly);
        assert_eq!(change("NUMERIC(10,2)", "NUMERIC(14,4)"), Rewrite);
        assert_eq!(change("NUMERIC(10,2)", "NUMERIC"), CatalogOnly);
        assert_eq!(change("NUMERIC", "NUMERIC(20,2)"), Rewrite);
        assert_eq!(change("NUMERIC(5)", "NUMERIC(8,0)"), CatalogOnly);
        assert_eq!(change("NUMERIC(5)", "NUMERIC(5,1)"), Rewrite);
        assert_eq!(change("VARBIT(5)", "VARBIT(10)"), CatalogOnly);
        assert_eq!(change("VARBIT(5)", "BIT VARYING"), CatalogOnly);
        assert_eq!(change("BIT(5)", "VARBIT"), CatalogOnly);
        assert_eq!(change("BIT(5)", "VARBIT(10)"), Rewrite);
        assert_eq!(change("cidr", "inet"), CatalogOnly);
        assert_eq!(change("CHAR(5)", "TEXT"), Rewrite);
        assert_eq!(change("CHAR(5)", "VARCHAR(5)"), Rewrite);
        assert_eq!(change("CHAR(5)", "CHAR(10)"), Rewrite);
        assert_eq!(change("INT", "BIGINT"), Rewrite);
        assert_eq!(change("INTEGER", "int4"), CatalogOnly);
        assert_eq!(change("VARCHAR(10)[]", "VARCHAR(20)[]"), Rewrite);
        assert_eq!(change("VARCHAR(10)[]", "TEXT[]"), Rewrite);
        assert_eq!(change("TIMESTAMP(3)", "TIMESTAMP(6)"), CatalogOnly);
        assert_eq!(change("TIMESTAMP(3)", "TIMESTAMP"), CatalogOnly);
        assert_eq!(change("TIMESTAMP(6)", "TIMESTAMP(3)"), Rewrite);
        assert_eq!(change("TIME(3)", "TIME(6)"), CatalogOnly);
        assert_eq!(change("INTERVAL(3)", "INTERVAL(6)"), CatalogOnly);
        assert_eq!(change("TIMESTAMP", "TIMESTAMPTZ"), RewriteUnlessUtc);
        assert_eq!(
            change("timestamp(3) without time zone", "TIMESTAMPTZ"),
            RewriteUnlessUtc
        );
        assert_eq!(change("TIMESTAMPTZ", "TIMESTAMP(3)"), Rewrite);
        // Catalog spellings (format_type) of the live schema.
        assert_eq!(change("character varying(20)", "VARCHAR(40)"), CatalogOnly);
        assert_eq!(change("bit varying(5)", "VARBIT(10)"), CatalogOnly);
        assert_eq!(change("character(2)", "TEXT"), Rewrite);
        assert_eq!(change("numeric(10,2)", "DECIMAL(12,2)"), CatalogOnly);
    }

    fn lint_files(target: &str, files: &[&str]) -> Vec<(String, crate::analysis::Severity)> {
        let migrations: Vec<_> = files
            .iter()
            .enumerate()
            .map(|(i, text)| {
                crate::migration::parse_text(
                    std::path::Path::new("m.sql"),
                    i as i64 + 1,
                    format!("m{i}"),
                    text,
                )
                .unwrap()
            })
            .collect();
        let report = crate::lint::lint(
            crate::target::Target::parse(target).unwrap(),
            &migrations,
            &Default::default(),
        );
        report
            .findings
            .iter()
            .filter(|f| f.rule == RULE.id)
            .map(|f| (f.message.clone(), f.severity))
            .collect()
    }

    #[test]
    fn old_type_from_an_earlier_migration() {
        let create = "CREATE TABLE users (id bigint PRIMARY KEY, name varchar(50), score integer);";
        // Known widening: nothing to say.
        assert!(lint_files(
            "postgres:15",
            &[
                create,
                "ALTER TABLE users ALTER COLUMN name TYPE varchar(100);"
            ]
        )
        .is_empty());
        // Known narrowing and int -> bigint: errors naming the old type.
        let hits = lint_files(
            "postgres:15",
            &[
                create,
                "ALTER TABLE users ALTER COLUMN name TYPE varchar(20), ALTER COLUMN score TYPE bigint;",
            ],
        );
        assert_eq!(hits.len(), 2, "{hits:?}");
        assert!(hits
            .iter()
            .all(|(_, s)| *s == crate::analysis::Severity::Error));
        assert!(hits[0].0.contains("from VARCHAR(50)"), "{hits:?}");
        // Unknown column: a warning that lists what would be safe.
        let hits = lint_files(
            "postgres:15",
            &["ALTER TABLE users ALTER COLUMN name TYPE varchar(100);"],
        );
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].1, crate::analysis::Severity::Warning);
        assert!(hits[0].0.contains("cannot tell offline"));
    }
}
