//! DROP INDEX: concurrently on PostgreSQL, so the short ACCESS EXCLUSIVE never queues traffic.

use super::staged::{About, Lock, Rewrite};
use super::*;
use sqlparser::ast::{ObjectType, Statement};

pub fn plan(a: &Action, _st: &Stmt, _ctx: &Ctx) -> OpPlan {
    let Action::DropIndex { concurrently, .. } = a else {
        unreachable!()
    };
    if *concurrently {
        return OpPlan::safe_as_written(impact(
            "SHARE UPDATE EXCLUSIVE",
            Effect::Instant,
            Blocks::Nothing,
            "dropped concurrently",
        ));
    }
    // Dropped CONCURRENTLY: the step is the rewrite's.
    OpPlan::staged(impact(
        "ACCESS EXCLUSIVE",
        Effect::Instant,
        Blocks::ReadsAndWrites,
        "instant, but queues every query on the table while it waits for its lock",
    ))
}

/// What `up` runs on PostgreSQL: one index dropped CONCURRENTLY (a list of indexes or CASCADE runs
/// as written: the concurrent form takes neither).
pub(super) fn staged(st: &Stmt) -> Option<Rewrite> {
    let Some(Statement::Drop {
        object_type: ObjectType::Index,
        if_exists,
        names,
        cascade: false,
        ..
    }) = st.ast.as_deref()
    else {
        return None;
    };
    if names.len() != 1 {
        return None;
    }
    Some(Rewrite {
        sql: format!(
            "DROP INDEX CONCURRENTLY {}{}",
            if *if_exists { "IF EXISTS " } else { "" },
            names[0]
        ),
        note: "dropped CONCURRENTLY: queries on the table never queue behind it".into(),
        about: vec![About {
            transactional: false,
            ..About::new(
                "drop the index concurrently",
                Lock::ShareUpdateExclusive,
                Effect::Instant,
                Blocks::Nothing,
            )
        }],
        answers: &["require-concurrent-index-deletion"],
        ..Default::default()
    })
}

/// Why a DROP INDEX runs as written, when it does.
pub(super) fn why_as_written(st: &Stmt) -> Option<&'static str> {
    match st.ast.as_deref() {
        Some(Statement::Drop { names, cascade: true, .. }) if !names.is_empty() => {
            Some("DROP INDEX CONCURRENTLY cannot CASCADE: drop what depends on the index first, then the index on its own")
        }
        Some(Statement::Drop { names, .. }) if names.len() > 1 => {
            Some("DROP INDEX CONCURRENTLY drops one index at a time: write one DROP INDEX per index")
        }
        _ => None,
    }
}
