//! `mysql-copy-algorithm` (MariaDB/MySQL): `ALGORITHM=COPY` on an existing table, or a session setting
//! that makes every following ALTER TABLE copy (`SET alter_algorithm = 'COPY'` on MariaDB 10.3+,
//! `SET old_alter_table = ON`).
//!
//! COPY builds a new table and copies every row into it while the original is locked against writes
//! (LOCK=SHARED is the least COPY allows). The options are read from the IR (`Action::MySqlOptions`),
//! or from the tokens when the statement went through the keyword fallback.

use super::prelude::*;
use super::require_lock_timeout::{normalize_var, objects_after, tokens, Tok};
use sqlparser::ast;

pub const RULE: Rule = Rule {
    id: "mysql-copy-algorithm",
    severity: Severity::Error,
    engines: Engines::MySqlFamily,
    summary: "ALGORITHM=COPY (or alter_algorithm/old_alter_table forcing it) on an existing table",
    why: "COPY creates a new table and copies every row into it while the original accepts no writes (LOCK=SHARED \
          at best): every INSERT, UPDATE and DELETE waits for the whole copy, minutes to hours on a large table",
    safe: "ALTER TABLE t ..., ALGORITHM=INSTANT;         -- or INPLACE, LOCK=NONE: the server refuses instead of blocking\n\
           -- operations that only COPY supports: gh-ost / pt-online-schema-change",
    check,
};

/// The ALGORITHM= and LOCK= options of a statement and the table they apply to.
pub(super) struct MyOptions {
    pub table: Option<QName>,
    pub algorithm: Option<String>,
    pub lock: Option<String>,
}

pub(super) fn options(st: &Stmt, engine: EngineKind) -> Option<MyOptions> {
    for a in st.actions() {
        if let Action::MySqlOptions {
            table,
            algorithm,
            lock,
        } = a
        {
            return Some(MyOptions {
                table: Some(table.clone()),
                algorithm: algorithm.clone(),
                lock: lock.clone(),
            });
        }
    }
    // Keyword fallback / unparsed: read the top-level ALGORITHM / LOCK clauses from the tokens.
    if st.ast.is_some() {
        return None;
    }
    let k0 = st.keywords.first().map(String::as_str).unwrap_or("");
    if !matches!(k0, "ALTER" | "CREATE" | "DROP") {
        return None;
    }
    let toks = tokens(&st.sql, engine);
    let mut depth = 0;
    let (mut algorithm, mut lock) = (None, None);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            Tok::Word(w) if depth == 0 && (w == "ALGORITHM" || w == "LOCK") => {
                let j = if toks.get(i + 1) == Some(&Tok::Punct('=')) {
                    i + 2
                } else {
                    i + 1
                };
                let v = match toks.get(j) {
                    Some(Tok::Word(v)) => v.clone(),
                    _ => continue,
                };
                let known = if w == "ALGORITHM" {
                    matches!(
                        v.as_str(),
                        "COPY" | "INPLACE" | "INSTANT" | "NOCOPY" | "DEFAULT"
                    )
                } else {
                    matches!(v.as_str(), "NONE" | "SHARED" | "EXCLUSIVE" | "DEFAULT")
                };
                if !known {
                    continue;
                }
                if w == "ALGORITHM" {
                    algorithm = Some(v);
                } else {
                    lock = Some(v);
                }
            }
            _ => {}
        }
    }
    if algorithm.is_none() && lock.is_none() {
        return None;
    }
    let marker: &[&str] = if st.keywords.iter().any(|k| k == "INDEX") && k0 != "ALTER" {
        &["ON"]
    } else {
        &["TABLE"]
    };
    Some(MyOptions {
        table: objects_after(st, engine, marker).into_iter().next(),
        algorithm,
        lock,
    })
}

/// `SET alter_algorithm = 'COPY'` / `SET old_alter_table = ON` (session scope).
fn forces_copy(st: &Stmt) -> Option<String> {
    let pairs = crate::analysis::ir::set_assignments(st.ast.as_deref()?);
    for (scope, name, value) in pairs {
        let (name, global) = normalize_var(&name);
        if global || matches!(scope, Some(ast::ContextModifier::Global)) {
            continue;
        }
        let v = value
            .trim_matches('\'')
            .trim_matches('"')
            .to_ascii_uppercase();
        match name.as_str() {
            "alter_algorithm" if v == "COPY" => {
                return Some(format!("SET alter_algorithm = {value}"))
            }
            "old_alter_table" if matches!(v.as_str(), "1" | "ON" | "TRUE" | "COPY") => {
                return Some(format!("SET old_alter_table = {value}"))
            }
            _ => {}
        }
    }
    None
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    if let Some(set) = forces_copy(st) {
        out.push(
            Hit::new(format!(
                "`{set}` makes every following ALTER TABLE of this session copy its table, blocking writes for the whole copy"
            ))
            .help("-- remove it; write ALGORITHM=INSTANT or ALGORITHM=INPLACE, LOCK=NONE on each ALTER TABLE instead"),
        );
        return;
    }
    let Some(o) = options(st, ctx.target.engine) else {
        return;
    };
    if o.algorithm.as_deref() != Some("COPY") {
        return;
    }
    if o.table.as_ref().is_some_and(|t| ctx.is_new_table(t)) {
        return;
    }
    let on = o
        .table
        .as_ref()
        .map(|t| format!("`{t}`"))
        .unwrap_or_else(|| "the table".into());
    out.push(
        Hit::new(format!(
            "ALGORITHM=COPY copies {on} row by row while it accepts no writes: every INSERT, UPDATE and DELETE waits \
             for the whole copy"
        ))
        .help(
            "-- try ALGORITHM=INSTANT, then ALGORITHM=INPLACE, LOCK=NONE: the server refuses (instead of blocking)\n\
             -- when the change cannot run online; then use gh-ost / pt-online-schema-change",
        ),
    );
}
