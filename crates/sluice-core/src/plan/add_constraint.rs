//! ADD CONSTRAINT: FOREIGN KEY and CHECK as NOT VALID then VALIDATE (the scan runs without blocking);
//! UNIQUE and PRIMARY KEY on a unique index built concurrently, then attached.

use super::*;
use crate::analysis::ir::ConstraintKind;
use crate::quote;

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::AddConstraint { table, constraint } = a else {
        unreachable!()
    };
    let e = ctx.target.engine;
    if e.is_mysql_family() {
        return match constraint.kind {
            ConstraintKind::Index | ConstraintKind::Unique => OpPlan::safe_as_written(impact(
                "ALGORITHM=INPLACE, LOCK=NONE",
                Effect::IndexBuild,
                Blocks::Nothing,
                "index built in place",
            )),
            ConstraintKind::ForeignKey => OpPlan::safe_as_written(impact(
                "ALGORITHM=COPY (INPLACE only with foreign_key_checks=0)",
                Effect::Copy,
                Blocks::Writes,
                "the table is copied while writes wait",
            )),
            _ => OpPlan::safe_as_written(impact(
                "ALGORITHM=INPLACE or COPY",
                Effect::Copy,
                Blocks::Writes,
                "may rebuild the table",
            )),
        };
    }
    let t = quote::qname(e, table);
    let name = constraint
        .name
        .clone()
        .unwrap_or_else(|| pg_default_constraint_name(&table.name, constraint));
    let n = quote::pg::ident(&name);
    match constraint.kind {
        ConstraintKind::ForeignKey | ConstraintKind::Check if constraint.not_valid => OpPlan::safe_as_written(impact(
            if constraint.kind == ConstraintKind::ForeignKey { "SHARE ROW EXCLUSIVE (both tables)" } else { "ACCESS EXCLUSIVE" },
            Effect::Instant,
            if constraint.kind == ConstraintKind::ForeignKey { Blocks::Writes } else { Blocks::ReadsAndWrites },
            "NOT VALID: existing rows are checked later by VALIDATE CONSTRAINT",
        )),
        ConstraintKind::ForeignKey | ConstraintKind::Check => {
            let fk = constraint.kind == ConstraintKind::ForeignKey;
            let (lock, blocks) = if fk { ("SHARE ROW EXCLUSIVE (both tables)", Blocks::Writes) } else { ("ACCESS EXCLUSIVE", Blocks::ReadsAndWrites) };
            OpPlan {
                impact: impact(lock, Effect::Scan, blocks, "every existing row is checked while the lock is held"),
                safe_steps: vec![
                    Step::new("add the constraint for new rows only", format!("ALTER TABLE {t} ADD CONSTRAINT {n} <definition> NOT VALID"), lock, Effect::Instant, blocks),
                    Step::new("validate existing rows in its own transaction (reads and writes continue)", format!("ALTER TABLE {t} VALIDATE CONSTRAINT {n}"), "SHARE UPDATE EXCLUSIVE", Effect::Scan, Blocks::Nothing),
                ],
                refused: None,
            }
        }
        ConstraintKind::PrimaryKey | ConstraintKind::Unique if constraint.using_index => OpPlan::safe_as_written(impact("ACCESS EXCLUSIVE", Effect::Instant, Blocks::ReadsAndWrites, "attaches an existing unique index")),
        ConstraintKind::PrimaryKey | ConstraintKind::Unique => {
            let pk = constraint.kind == ConstraintKind::PrimaryKey;
            let idx = quote::pg::ident(&name);
            let cols: Vec<String> = constraint.columns.iter().map(|c| quote::pg::ident(c)).collect();
            let mut safe_steps = vec![Step::new("build the unique index concurrently", format!("CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS {idx} ON {t} ({})", cols.join(", ")), "SHARE UPDATE EXCLUSIVE", Effect::IndexBuild, Blocks::Nothing).outside_transaction()];
            // NOT NULL for the key columns is proven by validated checks first (PostgreSQL 12+),
            // so the attaching step does not scan.
            let proven = pk && ctx.target.at_least(12, 0);
            if proven {
                for c in &constraint.columns {
                    let k = quote::pg::ident(&helper_name(&table.name, c, "not_null"));
                    let qc = quote::pg::ident(c);
                    safe_steps.push(Step::new(format!("CHECK ({c} IS NOT NULL) for new rows only"), format!("ALTER TABLE {t} ADD CONSTRAINT {k} CHECK ({qc} IS NOT NULL) NOT VALID"), "ACCESS EXCLUSIVE", Effect::Instant, Blocks::ReadsAndWrites));
                    safe_steps.push(Step::new("validate it (reads and writes continue)", format!("ALTER TABLE {t} VALIDATE CONSTRAINT {k}"), "SHARE UPDATE EXCLUSIVE", Effect::Scan, Blocks::Nothing));
                }
            }
            safe_steps.push(Step::new(
                match (pk, proven) {
                    (true, true) => "SET NOT NULL (no scan: the checks prove it), attach the index as the primary key, drop the checks",
                    (true, false) => "attach it as the primary key (columns must already be NOT NULL, else SET NOT NULL scans)",
                    _ => "attach it as the constraint",
                },
                if proven {
                    let mut sql: Vec<String> = cols.iter().map(|c| format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL")).collect();
                    sql.push(format!("ALTER TABLE {t} ADD CONSTRAINT {n} PRIMARY KEY USING INDEX {idx}"));
                    sql.extend(constraint.columns.iter().map(|c| format!("ALTER TABLE {t} DROP CONSTRAINT {}", quote::pg::ident(&helper_name(&table.name, c, "not_null")))));
                    sql.join("; ")
                } else {
                    format!("ALTER TABLE {t} ADD CONSTRAINT {n} {} USING INDEX {idx}", if pk { "PRIMARY KEY" } else { "UNIQUE" })
                },
                "ACCESS EXCLUSIVE",
                Effect::Instant,
                Blocks::ReadsAndWrites,
            ));
            OpPlan {
                impact: impact("ACCESS EXCLUSIVE", Effect::IndexBuild, Blocks::ReadsAndWrites, "the unique index is built while every query waits"),
                safe_steps,
                refused: None,
            }
        }
        ConstraintKind::Exclude => OpPlan {
            impact: impact("ACCESS EXCLUSIVE", Effect::IndexBuild, Blocks::ReadsAndWrites, "its index is built while every query waits"),
            safe_steps: vec![],
            refused: Some("an EXCLUDE constraint has no concurrent form: add it on a new table or in a maintenance window".into()),
        },
        ConstraintKind::Index | ConstraintKind::FullText => OpPlan::safe_as_written(impact("SHARE", Effect::IndexBuild, Blocks::Writes, "index build")),
    }
}
