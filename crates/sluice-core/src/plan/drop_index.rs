//! DROP INDEX: concurrently on PostgreSQL, so the short ACCESS EXCLUSIVE never queues traffic.

use super::*;
use crate::quote;

pub fn plan(a: &Action, _st: &Stmt, _ctx: &Ctx) -> OpPlan {
    let Action::DropIndex {
        names,
        concurrently,
        ..
    } = a
    else {
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
    let steps = names
        .iter()
        .map(|n| {
            Step::new(
                "drop the index concurrently",
                format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS {}",
                    quote::qname(EngineKind::Postgres, n)
                ),
                "SHARE UPDATE EXCLUSIVE",
                Effect::Instant,
                Blocks::Nothing,
            )
            .outside_transaction()
        })
        .collect();
    OpPlan {
        impact: impact(
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "instant, but queues every query on the table while it waits for its lock",
        ),
        safe_steps: steps,
        refused: None,
    }
}
