//! `require-if-exists-non-transactional` (PostgreSQL): in a part that runs statement by statement, a
//! statement that cannot run in a transaction and is not idempotent: `CREATE INDEX CONCURRENTLY`
//! without `IF NOT EXISTS`, `DROP INDEX CONCURRENTLY` without `IF EXISTS`, and (before PostgreSQL 12,
//! where it cannot run in a transaction block) `ALTER TYPE ... ADD VALUE` without `IF NOT EXISTS`.
//!
//! Scope: only these. Transactional statements of a per-statement part commit together with their
//! progress record, so a resume never reruns them and they need no IF [NOT] EXISTS. `REINDEX
//! CONCURRENTLY` and `VACUUM` are idempotent. `DETACH PARTITION ... CONCURRENTLY` has no IF EXISTS form
//! (an interrupted one is finished with `... DETACH PARTITION p FINALIZE`). MariaDB/MySQL commit every DDL
//! statement before its progress record too, but most of their DDL has no IF [NOT] EXISTS form
//! (MySQL) and flagging every statement would drown the real findings, so this rule stays PostgreSQL.

use super::prelude::*;
use super::require_lock_timeout::{ident_sql, name_sql};

pub const RULE: Rule = Rule {
    id: "require-if-exists-non-transactional",
    severity: Severity::Warning,
    engines: Engines::Postgres,
    summary: "a non-transactional statement (CREATE/DROP INDEX CONCURRENTLY) without IF [NOT] EXISTS",
    why: "it runs outside any transaction, so it cannot commit together with sluice's progress record: if \
          the process dies right after it completes, `sluice up` resumes by running it again, and without \
          IF NOT EXISTS / IF EXISTS the rerun fails (`relation already exists` / `does not exist`). Note that a \
          CREATE INDEX CONCURRENTLY that itself failed leaves an INVALID index, which IF NOT EXISTS would then \
          silently keep: drop it first (DROP INDEX CONCURRENTLY IF EXISTS) before resuming",
    safe: "CREATE INDEX CONCURRENTLY IF NOT EXISTS idx ON t (col);\nDROP INDEX CONCURRENTLY IF EXISTS idx;",
    check,
};

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    if ctx.mode != TxMode::PerStatement {
        return;
    }
    for a in st.actions() {
        match a {
            Action::CreateIndex {
                name,
                table,
                unique,
                concurrently: true,
                columns,
                if_not_exists: false,
            } => {
                let idx = name
                    .as_deref()
                    .map(|n| ident_sql(EngineKind::Postgres, n))
                    .unwrap_or_else(|| "idx".into());
                let tq = name_sql(EngineKind::Postgres, table);
                let unique = if *unique { "UNIQUE " } else { "" };
                out.push(
                    Hit::new(format!(
                        "CREATE {unique}INDEX CONCURRENTLY on `{table}` without IF NOT EXISTS: rerun on \
                         resume after a crash, it fails because the index exists"
                    ))
                    .help(format!(
                        "CREATE {unique}INDEX CONCURRENTLY IF NOT EXISTS {idx} ON {tq} ({});",
                        columns.join(", ")
                    )),
                );
            }
            // The keyword fallback's `if_exists` matches EXISTS anywhere (an index named `x_exists_idx`):
            // read the words instead.
            Action::DropIndex {
                names,
                concurrently: true,
                ..
            } if !has_if_exists(st) => {
                let names = if names.is_empty() {
                    drop_index_names(st)
                } else {
                    names
                        .iter()
                        .map(|n| name_sql(EngineKind::Postgres, n))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                out.push(
                    Hit::new(format!(
                        "DROP INDEX CONCURRENTLY {names} without IF EXISTS: rerun on resume after a crash, \
                         it fails because the index is gone"
                    ))
                    .help(format!("DROP INDEX CONCURRENTLY IF EXISTS {names};")),
                );
            }
            Action::AddEnumValue {
                type_name,
                if_not_exists: false,
                ..
            } if !ctx.target.at_least(12, 0) => {
                out.push(
                    Hit::new(format!(
                        "ALTER TYPE `{type_name}` ADD VALUE runs outside a transaction before PostgreSQL 12 \
                         and has no IF NOT EXISTS: rerun on resume after a crash, it fails because the value exists"
                    ))
                    .help(format!(
                        "ALTER TYPE {} ADD VALUE IF NOT EXISTS{};",
                        name_sql(EngineKind::Postgres, type_name),
                        after_add_value(&st.sql).unwrap_or(" 'value'")
                    )),
                );
            }
            _ => {}
        }
    }
}

fn has_if_exists(st: &Stmt) -> bool {
    let w = super::require_lock_timeout::words_of(st, EngineKind::Postgres);
    w.windows(2).any(|p| p[0] == "IF" && p[1] == "EXISTS")
}

/// The index names of `DROP INDEX CONCURRENTLY a, b` (the keyword fallback does not keep them).
fn drop_index_names(st: &Stmt) -> String {
    let upper = st.sql.to_ascii_uppercase();
    match upper.find("CONCURRENTLY") {
        Some(p) => st.sql[p + "CONCURRENTLY".len()..]
            .trim()
            .trim_end_matches(';')
            .split_whitespace()
            .filter(|w| !w.eq_ignore_ascii_case("CASCADE") && !w.eq_ignore_ascii_case("RESTRICT"))
            .collect::<Vec<_>>()
            .join(" "),
        None => "idx".into(),
    }
}

/// What follows `ADD VALUE` in an `ALTER TYPE` statement (` 'x' BEFORE 'y'`).
fn after_add_value(sql: &str) -> Option<&str> {
    let upper = sql.to_ascii_uppercase();
    let add = upper.find(" ADD ")?;
    let value = add + upper[add..].find("VALUE")?;
    Some(sql[value + "VALUE".len()..].trim_end_matches(';'))
}
