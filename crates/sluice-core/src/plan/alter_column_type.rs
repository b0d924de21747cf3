//! Column type changes: catalog-only when binary coercible (PostgreSQL) or instant/in-place
//! (MariaDB/MySQL); otherwise a rewrite (PostgreSQL) or a copy (MariaDB/MySQL). The rewrite has no
//! staged form yet (the expand/contract path is a later feature), so the plan says what it costs.

use super::*;

/// Catalog-only on PostgreSQL (old type known): the same judgement the `alter-column-type` rule
/// makes, so lint and plan never disagree. timestamp ↔ timestamptz counts only when the session
/// TimeZone is UTC, which the planner cannot assume.
pub fn pg_binary_coercible(old: &str, new: &str) -> bool {
    use crate::rules::alter_column_type::{parse_type, pg_change, Change};
    pg_change(&parse_type(old), &parse_type(new)) == Change::CatalogOnly
}

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::AlterColumnType {
        table,
        column,
        new_type,
        using,
        ..
    } = a
    else {
        unreachable!()
    };
    if ctx.target.engine.is_mysql_family() {
        return OpPlan {
            impact: impact("ALGORITHM=COPY", Effect::Copy, Blocks::Writes, "the table is copied while writes wait (unless the change is instant, e.g. a VARCHAR widening in the same length class)"),
            safe_steps: vec![Step::new("online copy into a shadow table with triggers, checksummed, then an atomic rename", "(online schema change)", "metadata lock at cut-over only", Effect::Copy, Blocks::Nothing)],
            refused: None,
        };
    }
    let old = ctx.column_type(table, column);
    if !using && old.is_some_and(|o| pg_binary_coercible(o, new_type)) {
        return OpPlan::safe_as_written(impact(
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "binary coercible: catalog only",
        ));
    }
    OpPlan {
        impact: impact(
            "ACCESS EXCLUSIVE",
            Effect::Rewrite,
            Blocks::ReadsAndWrites,
            match old {
                Some(o) => format!("{o} → {new_type} rewrites the table and its indexes"),
                None => format!("→ {new_type}: rewrites the table unless the change is binary coercible (old type unknown offline)"),
            },
        ),
        safe_steps: vec![],
        refused: Some("a type change that rewrites the table needs the expand/contract path (new column, dual writes, backfill, switch), which sluice does not have yet: as written it rewrites under ACCESS EXCLUSIVE, so run it in a maintenance window".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::pg_binary_coercible as bc;

    #[test]
    fn coercible_list() {
        assert!(bc("varchar(10)", "varchar(20)"));
        assert!(bc("character varying(10)", "text"));
        assert!(bc("varchar(10)", "varchar"));
        assert!(bc("numeric(10,2)", "numeric(12,2)"));
        assert!(bc("numeric(10,2)", "numeric"));
        assert!(bc("cidr", "inet"));
        assert!(!bc("varchar(20)", "varchar(10)"));
        assert!(!bc("numeric(10,2)", "numeric(12,3)"));
        assert!(!bc("integer", "bigint"));
        assert!(bc("int4", "integer"));
        assert!(bc("varbit(4)", "varbit(8)"));
        assert!(!bc("text", "varchar(10)"));
    }
}
