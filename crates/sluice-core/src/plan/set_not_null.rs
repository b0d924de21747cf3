//! SET NOT NULL: through a CHECK (col IS NOT NULL) NOT VALID, validated without blocking, after which
//! PostgreSQL 12+ sets NOT NULL without scanning.

use super::*;
use crate::quote;

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::SetNotNull { table, column } = a else {
        unreachable!()
    };
    let t = quote::qname(ctx.target.engine, table);
    let c = quote::pg::ident(column);
    let check = quote::pg::ident(&helper_name(&table.name, column, "not_null"));
    let as_written = impact(
        "ACCESS EXCLUSIVE",
        Effect::Scan,
        Blocks::ReadsAndWrites,
        "every row is scanned while all queries wait",
    );
    if !ctx.target.at_least(12, 0) {
        return OpPlan {
            impact: as_written,
            safe_steps: vec![],
            refused: Some("before PostgreSQL 12 SET NOT NULL always scans under ACCESS EXCLUSIVE; keep a validated CHECK (col IS NOT NULL) instead".into()),
        };
    }
    OpPlan {
        impact: as_written,
        safe_steps: vec![
            Step::new(
                "add the check without scanning",
                format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID"),
                "ACCESS EXCLUSIVE",
                Effect::Instant,
                Blocks::ReadsAndWrites,
            ),
            Step::new(
                "validate it (reads and writes continue)",
                format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}"),
                "SHARE UPDATE EXCLUSIVE",
                Effect::Scan,
                Blocks::Nothing,
            ),
            Step::new(
                "set NOT NULL: the valid check spares the scan",
                format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL"),
                "ACCESS EXCLUSIVE",
                Effect::Instant,
                Blocks::ReadsAndWrites,
            ),
            Step::new(
                "drop the helper check",
                format!("ALTER TABLE {t} DROP CONSTRAINT {check}"),
                "ACCESS EXCLUSIVE",
                Effect::Instant,
                Blocks::ReadsAndWrites,
            ),
        ],
        refused: None,
    }
}
