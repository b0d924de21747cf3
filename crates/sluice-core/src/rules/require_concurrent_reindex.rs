//! `require-concurrent-reindex` (PostgreSQL): REINDEX without CONCURRENTLY.
//!
//! Verified on PostgreSQL 15: `REINDEX INDEX i` holds a SHARE lock on the table and an ACCESS EXCLUSIVE
//! lock on the index for the whole rebuild. The planner locks every index of a table it plans for, so
//! while it runs not only writes but also plain `SELECT`s on the table wait (a `SELECT ... WHERE id = 5`
//! from another session hit its lock_timeout). `REINDEX TABLE` does the same for every index of the table.
//!
//! Version boundary: `REINDEX ... CONCURRENTLY` exists from PostgreSQL 12 on. Before 12 there is no
//! online form: the finding says so and shows the build-concurrently-and-swap recipe; a
//! `REINDEX CONCURRENTLY` written for a server older than 12 is reported too, as the server rejects it.
//! `REINDEX SYSTEM` has no concurrent form on any version (system catalogs cannot be rebuilt concurrently).
//! Exempt: `REINDEX TABLE` of a table created earlier in the migration, `REINDEX INDEX` of an index
//! created earlier in the migration on such a table.
//!
//! sqlparser does not parse REINDEX, CLUSTER or `VACUUM (options)`: this file also holds the small
//! tokenizer the rules for those statements share (`toks`, `name_at`).

use super::prelude::*;
use sqlparser::tokenizer::{Token, Tokenizer};

pub const RULE: Rule = Rule {
    id: "require-concurrent-reindex",
    severity: Severity::Error,
    engines: Engines::Postgres,
    summary: "REINDEX without CONCURRENTLY",
    why: "REINDEX holds a SHARE lock on the table (every INSERT, UPDATE and DELETE waits) and an ACCESS \
          EXCLUSIVE lock on each index it rebuilds; since planning a query on the table locks all its \
          indexes, reads of the table wait too, for the whole rebuild (seconds to hours)",
    safe: "REINDEX INDEX CONCURRENTLY idx;  -- PostgreSQL 12+, outside a transaction block\n\
           -- before 12: CREATE INDEX CONCURRENTLY idx_new ON t (col); DROP INDEX CONCURRENTLY idx; \
           ALTER INDEX idx_new RENAME TO idx;",
    check,
};

/// What a `REINDEX` statement rebuilds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Reindex {
    /// `INDEX`, `TABLE`, `SCHEMA`, `DATABASE` or `SYSTEM`.
    pub kind: String,
    pub name: Option<QName>,
    pub concurrently: bool,
}

/// Reads `REINDEX [ ( option [, ...] ) ] { INDEX | TABLE | SCHEMA | DATABASE | SYSTEM } [ CONCURRENTLY ] name`
/// (with PostgreSQL 14's `(CONCURRENTLY [boolean])` option form).
pub(super) fn parse_reindex(st: &Stmt) -> Option<Reindex> {
    if st.keywords.first().map(String::as_str) != Some("REINDEX") {
        return None;
    }
    let t = toks(&st.sql);
    let mut i = 1;
    let mut concurrently = false;
    if kw(&t, i) == "(" {
        i += 1;
        while i < t.len() && !(t[i].depth == 0 && t[i].kw == ")") {
            if t[i].depth == 1 && t[i].kw == "CONCURRENTLY" {
                concurrently = !is_false(kw(&t, i + 1));
            }
            i += 1;
        }
        i += 1;
    }
    let kind = kw(&t, i).to_string();
    if !matches!(
        kind.as_str(),
        "INDEX" | "TABLE" | "SCHEMA" | "DATABASE" | "SYSTEM"
    ) {
        return None;
    }
    i += 1;
    // `REINDEX TABLE CONCURRENTLY t`; a table named `concurrently` is the name itself.
    if kw(&t, i) == "CONCURRENTLY" && t.get(i + 1).is_some_and(|x| x.ident.is_some()) {
        concurrently = true;
        i += 1;
    }
    Some(Reindex {
        kind,
        name: name_at(&t, i).map(|(n, _)| n),
        concurrently,
    })
}

fn is_false(w: &str) -> bool {
    matches!(w, "FALSE" | "OFF" | "0")
}

/// A token of a statement sqlparser does not parse, with its parenthesis depth.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Tk {
    /// An unquoted word upper-cased; any other token as written (`(`, `,`, `.`, `1`); empty for a
    /// quoted identifier.
    pub kw: String,
    /// A word as PostgreSQL folds identifiers (unquoted → lower case, quoted → as written).
    pub ident: Option<String>,
    /// Parentheses around the token (a `(` or `)` counts at the depth outside it).
    pub depth: usize,
}

/// The tokens of `sql` (comments and whitespace left out).
pub(super) fn toks(sql: &str) -> Vec<Tk> {
    let dialect = crate::sql::dialect(EngineKind::Postgres);
    let Ok(tokens) = Tokenizer::new(dialect.as_ref(), sql).tokenize() else {
        return vec![];
    };
    let mut depth = 0usize;
    let mut out = Vec::new();
    for tok in tokens {
        let tk = match &tok {
            Token::Whitespace(_) | Token::EOF | Token::SemiColon => continue,
            Token::Word(w) => match w.quote_style {
                None => Tk {
                    kw: w.value.to_ascii_uppercase(),
                    ident: Some(w.value.to_lowercase()),
                    depth,
                },
                Some(_) => Tk {
                    kw: String::new(),
                    ident: Some(w.value.clone()),
                    depth,
                },
            },
            Token::LParen => {
                depth += 1;
                Tk {
                    kw: "(".into(),
                    ident: None,
                    depth: depth - 1,
                }
            }
            Token::RParen => {
                depth = depth.saturating_sub(1);
                Tk {
                    kw: ")".into(),
                    ident: None,
                    depth,
                }
            }
            other => Tk {
                kw: other.to_string(),
                ident: None,
                depth,
            },
        };
        out.push(tk);
    }
    out
}

/// The keyword at `i`, or "" past the end.
pub(super) fn kw(t: &[Tk], i: usize) -> &str {
    t.get(i).map(|x| x.kw.as_str()).unwrap_or("")
}

/// The dotted name starting at `i` (`s.t` or `t`), with the index after it.
pub(super) fn name_at(t: &[Tk], i: usize) -> Option<(QName, usize)> {
    let mut parts = vec![t.get(i)?.ident.clone()?];
    let mut j = i + 1;
    while kw(t, j) == "." {
        match t.get(j + 1).and_then(|x| x.ident.clone()) {
            Some(p) => parts.push(p),
            None => break,
        }
        j += 2;
    }
    let name = parts.pop()?;
    Some((
        QName {
            schema: parts.pop(),
            name,
        },
        j,
    ))
}

/// A parsed object name as PostgreSQL folds it (`S.T` → s.t; quoted parts kept as written).
/// A PostgreSQL name as the server resolves it.
pub(super) fn qname_of(n: &sqlparser::ast::ObjectName) -> QName {
    crate::analysis::ir::qname(EngineKind::Postgres, n)
}

/// An identifier as it must be written in SQL (quoted unless it is a plain lower-case name).
pub(super) fn ident_sql(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// A possibly qualified name as it must be written in SQL.
pub(super) fn qname_sql(q: &QName) -> String {
    match &q.schema {
        Some(s) => format!("{}.{}", ident_sql(s), ident_sql(&q.name)),
        None => ident_sql(&q.name),
    }
}

/// True when statements `earlier` and `later` of the part run in the same transaction: the part runs
/// as one transaction, or both sit inside one BEGIN ... COMMIT written in the file.
pub(super) fn same_transaction(ctx: &Ctx, earlier: usize, later: usize) -> bool {
    if ctx.mode == TxMode::Single {
        return true;
    }
    ctx.in_explicit_transaction
        && !ctx.statements[earlier..later].iter().any(|s| {
            s.actions()
                .iter()
                .any(|a| matches!(a, Action::Begin | Action::Commit | Action::Rollback))
        })
}

/// The table of an index created earlier in this part (`CREATE INDEX i ON t`, or a named PRIMARY
/// KEY / UNIQUE / EXCLUDE constraint of a CREATE TABLE), when there is one.
pub(super) fn table_of_new_index(ctx: &Ctx, before: usize, index: &QName) -> Option<QName> {
    for st in ctx.statements.iter().take(before) {
        for a in st.actions() {
            match a {
                Action::CreateIndex {
                    name: Some(n),
                    table,
                    ..
                } if *n == index.name => return Some(table.clone()),
                Action::CreateTable {
                    table, constraints, ..
                } if constraints
                    .iter()
                    .any(|c| c.name.as_deref() == Some(index.name.as_str())) =>
                {
                    return Some(table.clone())
                }
                _ => {}
            }
        }
    }
    None
}

/// True when the index was created earlier in this part (or run) on a table also created in it.
/// The walk lists such an index with the new tables; an earlier migration of the run may have made it.
pub(super) fn is_new_index_on_new_table(ctx: &Ctx, before: usize, index: &QName) -> bool {
    ctx.is_new_table(index)
        || table_of_new_index(ctx, before, index).is_some_and(|t| ctx.is_new_table(&t))
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some(r) = parse_reindex(st) else {
        return;
    };
    let target = r
        .name
        .as_ref()
        .map(|n| n.display())
        .unwrap_or_else(|| "the current database".into());
    let pg12 = ctx.target.at_least(12, 0);
    if r.concurrently {
        if !pg12 {
            out.push(
                Hit::new(format!(
                    "REINDEX CONCURRENTLY does not exist before PostgreSQL 12: the server rejects this \
                     statement (target {})",
                    ctx.target
                ))
                .help(rebuild_recipe(&r)),
            );
        }
        return;
    }
    // Exemptions: what it rebuilds is new in this migration.
    match (r.kind.as_str(), &r.name) {
        ("TABLE", Some(t)) if ctx.is_new_table(t) => return,
        ("INDEX", Some(i)) if is_new_index_on_new_table(ctx, st.index, i) => return,
        _ => {}
    }
    let scope = match r.kind.as_str() {
        "INDEX" => format!("REINDEX INDEX `{target}` holds a SHARE lock on its table and an ACCESS EXCLUSIVE lock on the index"),
        "TABLE" => format!("REINDEX TABLE `{target}` holds a SHARE lock on `{target}` and an ACCESS EXCLUSIVE lock on each of its indexes"),
        "SCHEMA" => format!("REINDEX SCHEMA `{target}` locks each table of the schema in turn (SHARE on the table, ACCESS EXCLUSIVE on its indexes)"),
        "DATABASE" => format!("REINDEX DATABASE on {target} locks each table in turn (SHARE on the table, ACCESS EXCLUSIVE on its indexes)"),
        _ => "REINDEX SYSTEM rebuilds the system catalogs' indexes under exclusive locks".to_string(),
    };
    let blocked =
        "while it rebuilds: writes wait, and so do reads, since planning any query on the \
                   table locks all of its indexes";
    if r.kind == "SYSTEM" {
        out.push(
            Hit::new(format!(
                "{scope}: every session that touches the catalogs waits, and there is no concurrent form"
            ))
            .help("-- REINDEX SYSTEM has no online form: run it in a maintenance window, not in a migration"),
        );
        return;
    }
    if pg12 {
        let help = match &r.name {
            Some(n) => format!(
                "REINDEX {} CONCURRENTLY {};  -- outside a transaction block",
                r.kind,
                qname_sql(n)
            ),
            None => format!(
                "REINDEX {} CONCURRENTLY;  -- outside a transaction block",
                r.kind
            ),
        };
        out.push(Hit::new(format!("{scope} {blocked}")).help(help));
    } else {
        out.push(
            Hit::new(format!(
                "{scope} {blocked}; before PostgreSQL 12 there is no REINDEX CONCURRENTLY: build a new \
                 index concurrently and swap it in"
            ))
            .help(rebuild_recipe(&r)),
        );
    }
}

/// The online rebuild without REINDEX CONCURRENTLY: build a twin concurrently, drop the old, rename.
fn rebuild_recipe(r: &Reindex) -> String {
    match (r.kind.as_str(), &r.name) {
        ("INDEX", Some(i)) => {
            let new = ident_sql(&format!("{}_new", i.name));
            let new_q = match &i.schema {
                Some(s) => format!("{}.{new}", ident_sql(s)),
                None => new.clone(),
            };
            let i_sql = qname_sql(i);
            format!(
                "-- the same definition as {i} (see `\\d {i}` or pg_get_indexdef('{i_sql}'::regclass)):\n\
                 CREATE INDEX CONCURRENTLY {new} ON t (col);\n\
                 DROP INDEX CONCURRENTLY {i_sql};\n\
                 ALTER INDEX {new_q} RENAME TO {};",
                ident_sql(&i.name)
            )
        }
        _ => "-- for each index to rebuild (PostgreSQL 12+: REINDEX ... CONCURRENTLY):\n\
              CREATE INDEX CONCURRENTLY idx_new ON t (col);  -- same definition as idx\n\
              DROP INDEX CONCURRENTLY idx;\n\
              ALTER INDEX idx_new RENAME TO idx;"
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::ir;

    fn stmt(sql: &str) -> Stmt {
        let s = crate::sql::split(EngineKind::Postgres, sql)
            .unwrap()
            .remove(0);
        ir::build(EngineKind::Postgres, 0, &s, 0, sql)
    }

    #[test]
    fn reads_reindex_forms() {
        let r = parse_reindex(&stmt("REINDEX INDEX s.i")).unwrap();
        assert_eq!(r.kind, "INDEX");
        assert_eq!(r.name.unwrap().display(), "s.i");
        assert!(!r.concurrently);
        assert!(
            parse_reindex(&stmt("REINDEX TABLE CONCURRENTLY t"))
                .unwrap()
                .concurrently
        );
        assert!(
            parse_reindex(&stmt("REINDEX (VERBOSE, CONCURRENTLY) TABLE t"))
                .unwrap()
                .concurrently
        );
        assert!(
            !parse_reindex(&stmt("REINDEX (CONCURRENTLY false) TABLE t"))
                .unwrap()
                .concurrently
        );
        let r = parse_reindex(&stmt("REINDEX TABLE concurrently_log")).unwrap();
        assert!(!r.concurrently);
        assert_eq!(r.name.unwrap().name, "concurrently_log");
        let r = parse_reindex(&stmt("REINDEX TABLE \"Events\"")).unwrap();
        assert_eq!(r.name.unwrap().name, "Events");
        assert_eq!(parse_reindex(&stmt("REINDEX DATABASE")).unwrap().name, None);
    }
}
