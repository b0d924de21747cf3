//! CREATE INDEX: built concurrently (PostgreSQL) or in place without locks (MariaDB/MySQL).

use super::staged::{qualified_index, About, Rewrite};
use super::*;
use sqlparser::ast::Statement;

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::CreateIndex { concurrently, .. } = a else {
        unreachable!()
    };
    let e = ctx.target.engine;
    if e.is_mysql_family() {
        return OpPlan::safe_as_written(impact(
            "metadata lock (brief), ALGORITHM=INPLACE, LOCK=NONE",
            Effect::IndexBuild,
            Blocks::Nothing,
            "built in place; writes continue",
        ));
    }
    if *concurrently {
        return OpPlan::safe_as_written(impact(
            "SHARE UPDATE EXCLUSIVE",
            Effect::IndexBuild,
            Blocks::Nothing,
            "built concurrently: reads and writes continue",
        ));
    }
    // Built CONCURRENTLY: the step is the rewrite's.
    OpPlan::staged(impact(
        "SHARE",
        Effect::IndexBuild,
        Blocks::Writes,
        "writes wait for the whole build",
    ))
}

/// What `up` runs on PostgreSQL: `CREATE INDEX` on an existing table, built CONCURRENTLY.
pub(super) fn staged(st: &Stmt) -> Option<Rewrite> {
    let (
        Some(Statement::CreateIndex(ci)),
        [Action::CreateIndex {
            table,
            concurrently: false,
            ..
        }],
    ) = (st.ast.as_deref(), st.actions())
    else {
        return None;
    };
    let mut safe = ci.clone();
    safe.concurrently = true;
    // IF NOT EXISTS makes a rerun after a crash harmless; it needs a name to check.
    safe.if_not_exists = safe.name.is_some();
    let unnamed_index = unnamed_concurrent_probe(&Statement::CreateIndex(safe.clone()));
    Some(Rewrite {
        sql: Statement::CreateIndex(safe).to_string(),
        note: "built CONCURRENTLY: writes continue during the build".into(),
        builds_index: ci.name.as_ref().map(|n| qualified_index(table, &n.to_string())),
        about: vec![About::concurrent_build("build the index concurrently (an invalid index left by a failed attempt is dropped and rebuilt)")],
        unnamed_index,
        answers: &["require-concurrent-index-creation"],
        ..Default::default()
    })
}

/// An unnamed `CREATE INDEX CONCURRENTLY` (PostgreSQL): its table as written, and the same index
/// created (not concurrently) on `pg_temp.sluice_probe`, an empty copy of the table, so that a
/// rerun can tell whether a killed run finished the build (the server chose the name).
pub fn unnamed_concurrent_probe(ast: &Statement) -> Option<(String, String)> {
    use sqlparser::ast::{Ident, ObjectName, ObjectNamePart};
    let Statement::CreateIndex(ci) = ast else {
        return None;
    };
    if ci.name.is_some() || !ci.concurrently {
        return None;
    }
    let mut probe = ci.clone();
    probe.concurrently = false;
    probe.if_not_exists = false;
    probe.table_name = ObjectName(vec![
        ObjectNamePart::Identifier(Ident::new("pg_temp")),
        ObjectNamePart::Identifier(Ident::new("sluice_probe")),
    ]);
    Some((
        ci.table_name.to_string(),
        Statement::CreateIndex(probe).to_string(),
    ))
}
