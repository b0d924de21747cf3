//! `identifier-too-long`: a table, column, index or constraint name over the engine's limit.
//!
//! PostgreSQL keeps the first 63 BYTES (NAMEDATALEN - 1) of an identifier and only says so in a NOTICE:
//! two long names that share those bytes collide ("relation ... already exists"), and later migrations
//! that spell the full name miss the object. Verified on PostgreSQL 15: a 73-character column name came
//! back truncated to 63 characters; a 33-character name of two-byte `é` was cut to 31 characters (62 bytes).
//! MariaDB/MySQL refuse names over 64 CHARACTERS (verified on MariaDB 10.11: 64 accepted, 65 refused with
//! "Identifier name ... is too long" / "Incorrect table name"; 64 two-byte characters accepted).
//!
//! Checked: CREATE TABLE (table, columns, named constraints), ADD COLUMN, ADD CONSTRAINT, CREATE INDEX,
//! RENAME TABLE/COLUMN/CONSTRAINT and ALTER INDEX ... RENAME. New tables are not exempt.

use super::prelude::*;
use sqlparser::ast::{AlterIndexOperation, AlterTableOperation, ColumnDef, Statement};

pub const RULE: Rule = Rule {
    id: "identifier-too-long",
    severity: Severity::Error,
    engines: Engines::All,
    summary: "an identifier longer than PostgreSQL's 63 bytes or MariaDB/MySQL's 64 characters",
    why: "PostgreSQL silently truncates it to 63 bytes, so two long names can collide and the full name no longer \
          finds the object; MariaDB/MySQL refuse the statement",
    safe: "-- shorten the name below the limit, e.g.\nCREATE INDEX orders_customer_created_idx ON orders (customer_id, created_at);",
    check,
};

fn fold(i: &sqlparser::ast::Ident) -> String {
    match i.quote_style {
        Some(_) => i.value.clone(),
        None => i.value.to_lowercase(),
    }
}

/// Names of inline column constraints (`col int CONSTRAINT name CHECK ...`).
fn option_names(c: &ColumnDef, out: &mut Vec<(&'static str, String)>) {
    for o in &c.options {
        if let Some(n) = &o.name {
            out.push(("constraint", fold(n)));
        }
    }
}

fn names(st: &Stmt) -> Vec<(&'static str, String)> {
    let mut out: Vec<(&'static str, String)> = Vec::new();
    let table = |out: &mut Vec<(&'static str, String)>, q: &QName| {
        if let Some(s) = &q.schema {
            out.push(("schema", s.clone()));
        }
        out.push(("table", q.name.clone()));
    };
    for a in st.actions() {
        match a {
            Action::CreateTable {
                table: t,
                columns,
                constraints,
                ..
            } => {
                table(&mut out, t);
                for c in columns {
                    out.push(("column", c.name.clone()));
                }
                for k in constraints {
                    if let Some(n) = &k.name {
                        out.push((
                            if matches!(k.kind, ConstraintKind::Index | ConstraintKind::FullText) {
                                "index"
                            } else {
                                "constraint"
                            },
                            n.clone(),
                        ));
                    }
                }
            }
            Action::CreateIndex { name: Some(n), .. } => out.push(("index", n.clone())),
            Action::AddColumn { column, .. } => out.push(("column", column.name.clone())),
            Action::AddConstraint { constraint, .. } => {
                if let Some(n) = &constraint.name {
                    out.push(("constraint", n.clone()));
                }
            }
            Action::RenameColumn { to, .. } => out.push(("column", to.clone())),
            Action::RenameTable { to, .. } => table(&mut out, to),
            _ => {}
        }
    }
    match st.ast.as_deref() {
        Some(Statement::CreateTable(ct)) => {
            for c in &ct.columns {
                option_names(c, &mut out);
            }
        }
        Some(Statement::AlterTable(at)) => {
            for op in &at.operations {
                match op {
                    AlterTableOperation::AddColumn { column_def, .. } => {
                        option_names(column_def, &mut out)
                    }
                    AlterTableOperation::RenameConstraint { new_name, .. } => {
                        out.push(("constraint", fold(new_name)))
                    }
                    _ => {}
                }
            }
        }
        Some(Statement::AlterIndex {
            operation: AlterIndexOperation::RenameIndex { index_name },
            ..
        }) => {
            if let Some(last) = index_name.0.last().and_then(|p| p.as_ident()) {
                out.push(("index", fold(last)));
            }
        }
        _ => {}
    }
    out
}

/// The first `max` bytes of `s`, cut at a character boundary (as PostgreSQL's `pg_mbcliplen` does).
fn clip(s: &str, max: usize) -> &str {
    let mut end = max.min(s.len());
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

fn article(kind: &str) -> &'static str {
    if kind.starts_with('i') {
        "an"
    } else {
        "a"
    }
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let mut seen = std::collections::HashSet::new();
    for (kind, name) in names(st) {
        if !seen.insert((kind, name.clone())) {
            continue;
        }
        if ctx.is_postgres() {
            let bytes = name.len();
            if bytes <= 63 {
                continue;
            }
            let cut = clip(&name, 63);
            out.push(
                Hit::new(format!(
                    "{kind} name `{name}` is {bytes} bytes: PostgreSQL silently truncates it to 63 bytes (`{cut}`), \
                     so another name starting the same way collides with it"
                ))
                .help(format!(
                    "-- use {} {kind} name of at most 63 bytes, e.g. `{}`",
                    article(kind),
                    clip(&name, 55).trim_end_matches('_')
                )),
            );
        } else {
            let chars = name.chars().count();
            if chars <= 64 {
                continue;
            }
            out.push(
                Hit::new(format!(
                    "{kind} name `{name}` is {chars} characters: {} refuses names longer than 64 characters",
                    if ctx.target.engine == EngineKind::MariaDb {
                        "MariaDB"
                    } else {
                        "MySQL"
                    }
                ))
                .help(format!(
                    "-- use {} {kind} name of at most 64 characters",
                    article(kind)
                )),
            );
        }
    }
}
