//! `require-lock-timeout`: the first statement of a part that takes a lock conflicting with reads or
//! writes on an existing table, with no lock timeout set before it.
//!
//! Fires at most once per part: on the first such statement that runs without an effective timeout.
//! PostgreSQL: `SET lock_timeout` (session; `SET LOCAL` counts only when the part runs in one
//! transaction, since statement by statement it ends with its own transaction; `0`, `DEFAULT` and
//! `RESET` switch it off). MariaDB/MySQL: `SET [SESSION] lock_wait_timeout` (not `GLOBAL`, which
//! only affects new sessions; not `innodb_lock_wait_timeout`, which bounds row-lock waits, not the
//! metadata lock every ALTER TABLE waits for), or MariaDB's per-statement `WAIT n` / `NOWAIT`.
//!
//! Lock-taking statements (the shared convention, see `lock_taking`): PostgreSQL ALTER TABLE (any
//! clause but `VALIDATE CONSTRAINT` alone and `DETACH PARTITION ... CONCURRENTLY`), CREATE/DROP INDEX
//! and REINDEX without CONCURRENTLY, DROP TABLE, TRUNCATE, VACUUM FULL, CLUSTER, CREATE TRIGGER,
//! ALTER DOMAIN, `LOCK TABLE` in a mode that conflicts with writes, ALTER TYPE forms that alter
//! typed tables, and REFRESH MATERIALIZED VIEW without CONCURRENTLY (ACCESS EXCLUSIVE on the
//! view). Not `ALTER TYPE ... ADD VALUE` / `RENAME VALUE`: verified on PostgreSQL 15 that they
//! lock only the type (ExclusiveLock on the pg_type object), no table. MariaDB/MySQL: any ALTER
//! TABLE, CREATE/DROP INDEX, DROP TABLE, RENAME TABLE, TRUNCATE, OPTIMIZE, LOCK TABLES. Tables created
//! earlier in the same part are exempt.

use super::prelude::*;
pub(super) use crate::analysis::tokens::{objects_after, tokens, Tok};
use sqlparser::ast::{self, AlterTableOperation, Statement};

pub const RULE: Rule = Rule {
    id: "require-lock-timeout",
    // `sluice up` sets a lock timeout on every statement itself; the file only needs its own when
    // something else runs it.
    severity: Severity::Info,
    engines: Engines::All,
    summary: "a lock-taking statement on an existing table with no lock timeout set before it",
    why: "DDL must wait for every transaction that touched the table to finish, and while it waits \
          every new query on the table queues behind it: one long-running transaction or idle-in-transaction \
          session turns an instant ALTER into a full outage of the table. PostgreSQL waits forever by \
          default (lock_timeout = 0); MySQL waits for the metadata lock up to lock_wait_timeout, 31536000 s \
          (one year) by default, MariaDB 86400 s (one day) since 10.2.4. With a short timeout the statement \
          fails fast instead. `sluice up` sets one itself on every statement (--lock-timeout, default \
          1 s) and retries with backoff; the file needs its own SET when another tool runs it",
    safe: "-- PostgreSQL, at the top of the migration:\nSET lock_timeout = '2s';\n\
           -- MariaDB/MySQL:\nSET SESSION lock_wait_timeout = 5;",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some(locked) = first_unprotected(st, ctx, Timeout::Lock) else {
        return;
    };
    let on = locked
        .table
        .as_ref()
        .map(|t| format!(" on `{t}`"))
        .unwrap_or_default();
    if ctx.is_postgres() {
        out.push(
            Hit::new(format!(
                "{}{on} runs without a lock_timeout: if an open transaction holds a lock on the table that \
                 conflicts with it, \
                 this statement waits for it with no limit, and the queries its lock conflicts with \
                 ({}) queue behind it",
                locked.what,
                if matches!(locked.what, "CREATE INDEX" | "CREATE TRIGGER" | "ALTER DOMAIN") {
                    "every write"
                } else {
                    "for most forms, every read and write"
                }
            ))
            .help("SET lock_timeout = '2s';  -- before this statement; on timeout, run `sluice up` again"),
        );
    } else {
        let default = if ctx.target.engine == EngineKind::MySql {
            "31536000 s (one year) by default on MySQL"
        } else if ctx.target.at_least(10, 3) {
            "86400 s (one day) by default on MariaDB"
        } else {
            "86400 s (one day) by default on MariaDB 10.2.4+, a year before"
        };
        let wait = if ctx.target.engine == EngineKind::MariaDb && ctx.target.at_least(10, 3) {
            "\n-- or for this statement only (MariaDB 10.3+): WAIT 5 after the table name, e.g. ALTER TABLE t WAIT 5 ADD ..."
        } else {
            ""
        };
        out.push(
            Hit::new(format!(
                "{}{on} runs without a lock_wait_timeout: it waits for the table's metadata lock up to \
                 lock_wait_timeout, {default}, while every query on the table queues behind it",
                locked.what
            ))
            .help(format!(
                "SET SESSION lock_wait_timeout = 5;  -- before this statement; on timeout, run `sluice up` again{wait}"
            )),
        );
    }
}

/// Which session setting a rule asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Timeout {
    Lock,
    Statement,
}

pub(crate) use crate::analysis::Locked;

/// `Some` when `st` is the first lock-taking statement of the part on an existing table that runs
/// without an effective timeout of this kind.
pub(super) fn first_unprotected(st: &Stmt, ctx: &Ctx, kind: Timeout) -> Option<Locked> {
    let engine = ctx.target.engine;
    // Most statements take no lock at all: answer them without walking the part (a seed file can
    // hold many thousands of INSERTs).
    lock_taking(st, engine, ctx.created_tables)?;
    // The answer is one statement per part: found once, not by a walk per lock-taking statement
    // (which made a part of n such statements cost n² walks).
    let first =
        ctx.memo.first_unprotected[kind as usize].get_or_init(|| first_unprotected_in(ctx, kind));
    match first {
        Some((i, l)) if *i == st.index => Some(l.clone()),
        _ => None,
    }
}

/// The first lock-taking statement of the part that runs without an effective timeout, with its
/// index.
fn first_unprotected_in(ctx: &Ctx, kind: Timeout) -> Option<(usize, Locked)> {
    let engine = ctx.target.engine;
    let mut created: Vec<QName> = Vec::new();
    let mut set = false;
    for (i, st) in ctx.statements.iter().enumerate() {
        if let Some(v) = timeout_change(st, ctx, kind) {
            set = v;
        }
        if !set {
            if let Some(l) = lock_taking(st, engine, &created) {
                let own_wait = kind == Timeout::Lock
                    && engine == EngineKind::MariaDb
                    && ctx.target.at_least(10, 3)
                    && has_wait_clause(st, engine);
                if !own_wait {
                    return Some((i, l));
                }
            }
        }
        for a in st.actions() {
            if let Action::CreateTable { table, .. } = a {
                created.push(table.clone());
            }
        }
        if engine == EngineKind::Postgres {
            for (index, table) in st.actions().iter().flat_map(crate::analysis::new_indexes) {
                if created.iter().any(|c| c.matches(&table)) {
                    created.push(index);
                }
            }
        }
        if let Some(Statement::CreateView(v)) = st.ast.as_deref() {
            if v.materialized {
                created.push(crate::analysis::ir::qname(engine, &v.name));
            }
        }
    }
    None
}

/// Some(true) when the statement sets an effective timeout of this kind for the following
/// statements, Some(false) when it switches it off, None when it does not touch it.
fn timeout_change(st: &Stmt, ctx: &Ctx, kind: Timeout) -> Option<bool> {
    let pg = ctx.is_postgres();
    let wanted: &[&str] = match (kind, pg) {
        (Timeout::Lock, true) => &["lock_timeout"],
        (Timeout::Lock, false) => &["lock_wait_timeout"],
        (Timeout::Statement, true) => &["statement_timeout"],
        (Timeout::Statement, false) => &["max_statement_time", "max_execution_time"],
    };
    // RESET name / RESET ALL (PostgreSQL).
    let k = &st.keywords;
    if pg && k.first().map(String::as_str) == Some("RESET") {
        let what = k.get(1).map(|w| w.to_lowercase()).unwrap_or_default();
        if what == "all" || wanted.contains(&what.as_str()) {
            return Some(false);
        }
        return None;
    }
    let Some(Statement::Set(set)) = st.ast.as_deref() else {
        return None;
    };
    let mut result = None;
    let mut consider = |scope: &Option<ast::ContextModifier>,
                        name: &ast::ObjectName,
                        value: &str| {
        let (name, global) = normalize_var(&name.to_string());
        if global
            || matches!(scope, Some(ast::ContextModifier::Global))
            || !wanted.contains(&name.as_str())
        {
            return;
        }
        // PostgreSQL SET LOCAL ends with its transaction: statement by statement, that is the SET itself.
        if pg && matches!(scope, Some(ast::ContextModifier::Local)) && ctx.mode != TxMode::Single {
            return;
        }
        result = Some(effective_value(value, pg));
    };
    match set {
        ast::Set::SingleAssignment {
            scope,
            variable,
            values,
            ..
        } => {
            let v = values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(",");
            consider(scope, variable, &v);
        }
        ast::Set::MultipleAssignments { assignments } => {
            for a in assignments {
                consider(&a.scope, &a.name, &a.value.to_string());
            }
        }
        _ => {}
    }
    result
}

/// `@@session.lock_wait_timeout` → (`lock_wait_timeout`, false); `@@global.x` → (`x`, true).
pub(super) fn normalize_var(raw: &str) -> (String, bool) {
    let mut s = raw.trim().trim_start_matches('@').to_lowercase();
    let mut global = false;
    for (prefix, g) in [("session.", false), ("local.", false), ("global.", true)] {
        if let Some(rest) = s.strip_prefix(prefix) {
            global = g;
            s = rest.to_string();
        }
    }
    (s.trim_matches('`').trim_matches('"').to_string(), global)
}

/// False for values that switch the timeout off (`0`, `'0s'`, `DEFAULT`).
fn effective_value(value: &str, pg: bool) -> bool {
    let v = value.trim().trim_matches('\'').trim_matches('"').trim();
    if v.eq_ignore_ascii_case("default") {
        return false;
    }
    if pg {
        let digits: String = v
            .chars()
            .take_while(|c| c.is_ascii_digit() || *c == '.')
            .collect();
        return !digits.is_empty() && digits.parse::<f64>().map(|n| n > 0.0).unwrap_or(true);
    }
    true
}

/// MariaDB's `ALTER TABLE t WAIT n ...` / `NOWAIT` (also on DROP/RENAME/TRUNCATE/OPTIMIZE/CREATE INDEX).
fn has_wait_clause(st: &Stmt, engine: EngineKind) -> bool {
    let toks = tokens(&st.sql, engine);
    toks.iter().enumerate().any(|(i, t)| match t {
        Tok::Word(w) if w == "NOWAIT" => true,
        Tok::Word(w) if w == "WAIT" => matches!(toks.get(i + 1), Some(Tok::Number)),
        _ => false,
    })
}

/// Whether the statement takes a lock that conflicts with ordinary reads or writes on a table that
/// existed before this migration part (`created`: tables created earlier in the part).
pub(super) fn lock_taking(st: &Stmt, engine: EngineKind, created: &[QName]) -> Option<Locked> {
    let is_new = |t: &QName| created.iter().any(|c| c.matches(t));
    let existing = |tables: Vec<QName>, what: &'static str| -> Option<Locked> {
        if tables.is_empty() {
            return Some(Locked { table: None, what });
        }
        tables.into_iter().find(|t| !is_new(t)).map(|t| Locked {
            table: Some(t),
            what,
        })
    };
    let pg = engine == EngineKind::Postgres;
    // REFRESH MATERIALIZED VIEW without CONCURRENTLY: ACCESS EXCLUSIVE on the view, reads wait.
    if pg
        && st.keywords.first().map(String::as_str) == Some("REFRESH")
        && !st.keywords.iter().any(|k| k == "CONCURRENTLY")
    {
        return existing(
            objects_after(st, engine, &["VIEW"]),
            "REFRESH MATERIALIZED VIEW",
        );
    }
    if let Some(ast) = st.ast.as_deref() {
        match ast {
            Statement::AlterTable(at) => {
                let table = crate::analysis::ir::qname(engine, &at.name);
                if pg {
                    let only_validate = !at.operations.is_empty()
                        && at
                            .operations
                            .iter()
                            .all(|o| matches!(o, AlterTableOperation::ValidateConstraint { .. }));
                    let detach_concurrently = at.operations.len() == 1
                        && matches!(
                            &at.operations[0],
                            AlterTableOperation::DetachPartitionOf {
                                mode: Some(ast::DetachPartitionMode::Concurrently),
                                ..
                            }
                        );
                    if only_validate || detach_concurrently {
                        return None;
                    }
                }
                return existing(vec![table], "ALTER TABLE");
            }
            Statement::CreateTrigger(ct) if pg => {
                return existing(
                    vec![crate::analysis::ir::qname(engine, &ct.table_name)],
                    "CREATE TRIGGER",
                );
            }
            Statement::Drop {
                object_type: ast::ObjectType::Index,
                table: Some(t),
                ..
            } => {
                return existing(vec![crate::analysis::ir::qname(engine, t)], "DROP INDEX");
            }
            Statement::AlterType(_) => return None,
            Statement::Lock(_) if pg => {
                if pg_lock_mode_conflicts(st) {
                    return existing(objects_after(st, engine, &["LOCK"]), "LOCK TABLE");
                }
                return None;
            }
            Statement::LockTables { .. } if !pg => {
                return existing(
                    objects_after(st, engine, &["TABLES", "TABLE"]),
                    "LOCK TABLES",
                );
            }
            _ => {}
        }
    }
    for a in st.actions() {
        let found = match a {
            Action::CreateIndex {
                table,
                concurrently,
                ..
            } if !(pg && *concurrently) => existing(vec![table.clone()], "CREATE INDEX"),
            // An index made on a new table (earlier in the part or the run) locks nothing in use.
            Action::DropIndex { .. }
                if pg && crate::analysis::drops_only_new_indexes(a, created) =>
            {
                None
            }
            Action::DropIndex { concurrently, .. } if !(pg && *concurrently) => {
                let tables = if pg {
                    vec![]
                } else {
                    objects_after(st, engine, &["ON"])
                };
                existing(tables, "DROP INDEX")
            }
            Action::DropTable { names, .. } => {
                if names.iter().all(is_new) {
                    None
                } else {
                    existing(names.clone(), "DROP TABLE")
                }
            }
            Action::Truncate { tables, .. } => {
                if !tables.is_empty() && tables.iter().all(is_new) {
                    None
                } else {
                    existing(tables.clone(), "TRUNCATE")
                }
            }
            Action::RenameTable { from, .. } if !pg => existing(vec![from.clone()], "RENAME TABLE"),
            Action::VacuumFull { table } if pg => {
                existing(table.iter().cloned().collect(), "VACUUM FULL")
            }
            Action::Cluster if pg => existing(objects_after(st, engine, &["CLUSTER"]), "CLUSTER"),
            Action::Reindex {
                concurrently: false,
                ..
            } if pg => {
                let tables = if st.keywords.get(1).map(String::as_str) == Some("TABLE") {
                    objects_after(st, engine, &["TABLE"])
                } else {
                    vec![]
                };
                existing(tables, "REINDEX")
            }
            Action::AlterDomainAddConstraint { .. } if pg => existing(vec![], "ALTER DOMAIN"),
            Action::MySqlRebuild { .. } if !pg => {
                let tables = objects_after(st, engine, &["TABLE"]);
                let what = if st.keywords.first().map(String::as_str) == Some("OPTIMIZE") {
                    "OPTIMIZE TABLE"
                } else {
                    "ALTER TABLE"
                };
                existing(tables, what)
            }
            _ => None,
        };
        if found.is_some() {
            return found;
        }
    }
    if matches!(st.parsed, Parsed::Unparsed { .. }) {
        let k: Vec<&str> = st.keywords.iter().map(String::as_str).collect();
        let first_two = (
            k.first().copied().unwrap_or(""),
            k.get(1).copied().unwrap_or(""),
        );
        return match first_two {
            ("ALTER", "TABLE") => existing(objects_after(st, engine, &["TABLE"]), "ALTER TABLE"),
            ("ALTER", "ONLINE" | "IGNORE") if !pg => {
                existing(objects_after(st, engine, &["TABLE"]), "ALTER TABLE")
            }
            ("ALTER", "DOMAIN") if pg => {
                let w = words_of(st, engine);
                (w.iter().any(|x| x == "ADD")
                    || w.windows(2).any(|p| p[0] == "SET" && p[1] == "NOT"))
                .then_some(Locked {
                    table: None,
                    what: "ALTER DOMAIN",
                })
            }
            ("ALTER", "TYPE") if pg => words_of(st, engine)
                .iter()
                .any(|x| x == "ATTRIBUTE")
                .then_some(Locked {
                    table: None,
                    what: "ALTER TYPE",
                }),
            ("CREATE", "TRIGGER") if pg => {
                existing(objects_after(st, engine, &["ON"]), "CREATE TRIGGER")
            }
            ("CREATE", _) if k.contains(&"INDEX") && !(pg && k.contains(&"CONCURRENTLY")) => {
                existing(objects_after(st, engine, &["ON"]), "CREATE INDEX")
            }
            ("RENAME", "TABLE") if !pg => {
                existing(objects_after(st, engine, &["TABLE"]), "RENAME TABLE")
            }
            ("TRUNCATE", _) => existing(objects_after(st, engine, &["TRUNCATE"]), "TRUNCATE"),
            ("DROP", "TABLE") => existing(objects_after(st, engine, &["TABLE"]), "DROP TABLE"),
            _ => None,
        };
    }
    None
}

/// `LOCK [TABLE] t [IN mode MODE]`: true for the modes that conflict with INSERT/UPDATE/DELETE
/// (SHARE, SHARE ROW EXCLUSIVE, EXCLUSIVE, ACCESS EXCLUSIVE — the default).
fn pg_lock_mode_conflicts(st: &Stmt) -> bool {
    let upper = st.sql.to_ascii_uppercase();
    let Some(pos) = upper.find(" IN ") else {
        return true;
    };
    let mode: Vec<&str> = upper[pos + 4..].split_whitespace().collect();
    !matches!(
        mode.as_slice(),
        ["ACCESS", "SHARE", ..]
            | ["ROW", "SHARE", ..]
            | ["ROW", "EXCLUSIVE", ..]
            | ["SHARE", "UPDATE", "EXCLUSIVE", ..]
    )
}

/// The unquoted words of a statement, upper-cased (strings and quoted identifiers left out).
pub(super) fn words_of(st: &Stmt, engine: EngineKind) -> Vec<String> {
    tokens(&st.sql, engine)
        .into_iter()
        .filter_map(|t| match t {
            Tok::Word(w) => Some(w),
            _ => None,
        })
        .collect()
}

const PG_RESERVED: &[&str] = &[
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_user",
    "default",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];
const MY_RESERVED: &[&str] = &[
    "add",
    "all",
    "alter",
    "and",
    "as",
    "asc",
    "between",
    "by",
    "change",
    "check",
    "column",
    "condition",
    "constraint",
    "create",
    "cross",
    "default",
    "delete",
    "desc",
    "distinct",
    "drop",
    "else",
    "exists",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "index",
    "insert",
    "interval",
    "into",
    "is",
    "join",
    "key",
    "keys",
    "like",
    "limit",
    "lock",
    "match",
    "not",
    "null",
    "on",
    "or",
    "order",
    "primary",
    "range",
    "rank",
    "read",
    "references",
    "rename",
    "select",
    "set",
    "show",
    "table",
    "then",
    "to",
    "union",
    "unique",
    "update",
    "usage",
    "use",
    "using",
    "values",
    "when",
    "where",
    "with",
    "write",
];

/// An identifier as it must be written in the engine's SQL: quoted when it is not a plain name.
pub(super) fn ident_sql(engine: EngineKind, name: &str) -> String {
    if engine == EngineKind::Postgres {
        let plain = name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '$')
            && !PG_RESERVED.contains(&name);
        if plain {
            name.to_string()
        } else {
            format!("\"{}\"", name.replace('"', "\"\""))
        }
    } else {
        let plain = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$')
            && !name.chars().all(|c| c.is_ascii_digit())
            && !MY_RESERVED.contains(&name.to_ascii_lowercase().as_str());
        if plain {
            name.to_string()
        } else {
            format!("`{}`", name.replace('`', "``"))
        }
    }
}

/// A possibly schema-qualified name as it must be written in the engine's SQL.
pub(super) fn name_sql(engine: EngineKind, q: &QName) -> String {
    match &q.schema {
        Some(s) => format!("{}.{}", ident_sql(engine, s), ident_sql(engine, &q.name)),
        None => ident_sql(engine, &q.name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_variable_spellings() {
        assert_eq!(
            normalize_var("@@session.lock_wait_timeout"),
            ("lock_wait_timeout".into(), false)
        );
        assert_eq!(
            normalize_var("@@lock_wait_timeout"),
            ("lock_wait_timeout".into(), false)
        );
        assert_eq!(
            normalize_var("@@GLOBAL.lock_wait_timeout"),
            ("lock_wait_timeout".into(), true)
        );
        assert_eq!(
            normalize_var("lock_timeout"),
            ("lock_timeout".into(), false)
        );
    }

    #[test]
    fn zero_and_default_switch_a_postgres_timeout_off() {
        assert!(!effective_value("0", true));
        assert!(!effective_value("'0'", true));
        assert!(!effective_value("'0ms'", true));
        assert!(!effective_value("DEFAULT", true));
        assert!(effective_value("'2s'", true));
        assert!(effective_value("2000", true));
        assert!(effective_value("5", false));
    }

    #[test]
    fn identifiers_are_quoted_when_needed() {
        assert_eq!(ident_sql(EngineKind::Postgres, "users"), "users");
        assert_eq!(ident_sql(EngineKind::Postgres, "Users"), "\"Users\"");
        assert_eq!(ident_sql(EngineKind::Postgres, "user"), "\"user\"");
        assert_eq!(ident_sql(EngineKind::MariaDb, "Users"), "Users");
        assert_eq!(ident_sql(EngineKind::MariaDb, "order"), "`order`");
        assert_eq!(ident_sql(EngineKind::MySql, "a b"), "`a b`");
    }
}
