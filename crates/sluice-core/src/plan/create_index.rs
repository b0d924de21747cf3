//! CREATE INDEX: built concurrently (PostgreSQL) or in place without locks (MariaDB/MySQL).

use super::*;
use crate::quote;

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::CreateIndex {
        name,
        table,
        unique,
        concurrently,
        columns,
        ..
    } = a
    else {
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
    let name = name
        .clone()
        .unwrap_or_else(|| pg_object_name(&table.name, Some(&pg_name_addition(columns)), "idx"));
    let u = if *unique { "UNIQUE " } else { "" };
    OpPlan {
        impact: impact("SHARE", Effect::IndexBuild, Blocks::Writes, "writes wait for the whole build"),
        safe_steps: vec![
            Step::new(
                "build the index concurrently (an invalid index left by a failed attempt is dropped and rebuilt)",
                format!("CREATE {u}INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({})", quote::pg::ident(&name), quote::qname(e, table), columns.join(", ")),
                "SHARE UPDATE EXCLUSIVE",
                Effect::IndexBuild,
                Blocks::Nothing,
            )
            .outside_transaction(),
        ],
        refused: None,
    }
}
