//! ADD COLUMN: instant when the server can store the default in the catalog; otherwise (volatile
//! default, NOT NULL without default, PostgreSQL < 11 with any default) staged as add nullable →
//! default for new rows → batched backfill → NOT NULL through a validated CHECK.

use super::staged::{plain_alter, About, Lock, Rewrite, Step as RStep};
use super::*;
use crate::analysis::ir::Volatility;
use sqlparser::ast::Statement;

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::AddColumn { column, .. } = a else {
        unreachable!()
    };
    let e = ctx.target.engine;
    if e.is_mysql_family() {
        return mysql(a, ctx);
    }
    let fast_default = ctx.target.at_least(11, 0);
    let rewrite_reason = match &column.default {
        _ if column.serial || column.identity => {
            Some("a serial/identity column fills every existing row")
        }
        _ if column.generated_stored => {
            Some("a stored generated column is computed for every existing row")
        }
        Some(_) if !fast_default => Some("before PostgreSQL 11 any default rewrites the table"),
        Some(d) if matches!(d.volatility, Volatility::Volatile | Volatility::Unknown) => {
            Some("the default is volatile: evaluated per row")
        }
        _ => None,
    };
    let not_null_no_default = column.not_null
        && column.default.is_none()
        && !column.serial
        && !column.identity
        && !column.generated_stored;
    if rewrite_reason.is_none() && !not_null_no_default {
        return OpPlan::safe_as_written(impact(
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            if column.default.is_some() {
                "the default is stored in the catalog: no rewrite"
            } else {
                "catalog only"
            },
        ));
    }
    let as_written = match rewrite_reason {
        Some(why) => impact(
            "ACCESS EXCLUSIVE",
            Effect::Rewrite,
            Blocks::ReadsAndWrites,
            format!("rewrites the table: {why}"),
        ),
        None => impact(
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "fails when the table has rows: NOT NULL without a default",
        ),
    };
    if column.serial || column.identity || column.generated_stored {
        return OpPlan {
            impact: as_written,
            safe_steps: vec![],
            refused: Some("serial, identity and stored generated columns cannot be staged in place yet: add a plain column with a default, backfill it, then attach a sequence or a trigger".into()),
            staged: false,
        };
    }
    if column.default.is_none() && column.not_null {
        return OpPlan {
            impact: as_written,
            safe_steps: vec![],
            refused: Some("NOT NULL without a default: sluice needs the value to backfill existing rows; add a DEFAULT, or add the column nullable, fill it, then SET NOT NULL".into()),
            staged: false,
        };
    }
    // Added nullable, default for new rows, backfilled, NOT NULL through a validated check: the
    // steps are the rewrite's.
    OpPlan::staged(as_written)
}

fn mysql(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::AddColumn { column, .. } = a else {
        unreachable!()
    };
    let t = ctx.target;
    let instant = match t.engine {
        EngineKind::MariaDb => t.at_least(10, 4) || (t.at_least(10, 3) && !column.positioned),
        _ => t.at_least_patch(8, 0, 29) || (t.at_least_patch(8, 0, 12) && !column.positioned),
    } && !column.auto_increment
        && !column.generated_stored
        && !column.default.as_ref().is_some_and(|d| d.parenthesized);
    if instant {
        OpPlan::safe_as_written(impact(
            "metadata lock (brief), ALGORITHM=INSTANT",
            Effect::Instant,
            Blocks::ReadsAndWrites,
            "instant: metadata only",
        ))
    } else {
        OpPlan {
            impact: impact(
                "ALGORITHM=INPLACE (rebuild) or COPY",
                Effect::Copy,
                Blocks::Writes,
                "the table is rebuilt",
            ),
            safe_steps: vec![Step::new(
                "online copy into a shadow table with triggers, verified, then an atomic rename",
                "(online schema change)",
                "metadata lock at cut-over only",
                Effect::Copy,
                Blocks::Nothing,
            )],
            refused: None,
            staged: false,
        }
    }
}

/// ADD COLUMN with a default the server would evaluate per row (a rewrite under ACCESS EXCLUSIVE),
/// or any default before PostgreSQL 11; NOT NULL is fine then since the backfill fills every row.
fn needs_backfill(target: Target, column: &crate::analysis::ir::ColumnSpec) -> bool {
    let Some(d) = &column.default else {
        return false;
    };
    if column.serial
        || column.identity
        || column.generated_stored
        || column.primary_key
        || column.unique
        || column.references.is_some()
        || column.check
    {
        return false;
    }
    !target.at_least(11, 0) || matches!(d.volatility, Volatility::Volatile | Volatility::Unknown)
}

/// What `up` runs on PostgreSQL for a default the server would evaluate per row (or any default
/// before 11): the column added nullable without default (catalog only), the default for new rows,
/// existing rows backfilled in batches, NOT NULL through a validated check.
pub(super) fn staged(target: Target, st: &Stmt) -> Option<Rewrite> {
    let (Some(Statement::AlterTable(at)), [Action::AddColumn { table, column, .. }]) =
        (st.ast.as_deref(), st.actions())
    else {
        return None;
    };
    if at.operations.len() != 1 || !plain_alter(at) || !needs_backfill(target, column) {
        return None;
    }
    // Add the column without a default (catalog only), give new rows the default, fill the
    // existing ones in batches, then enforce NOT NULL through a validated check.
    let d = column
        .default
        .as_ref()
        .expect("needs_backfill checks the default");
    let t = &at.name;
    let c = crate::quote::pg::ident(&column.name);
    let ty = if column.data_type.eq_ignore_ascii_case("serial") {
        "integer".to_string()
    } else {
        column.data_type.clone()
    };
    let mut undo = Vec::new();
    let mut about = vec![
        About::catalog("add the column, nullable and without default (catalog only)"),
        About::catalog("set the default for rows inserted from now on"),
        About::new("backfill existing rows in batches by primary key, each batch its own short transaction, paced on client latency", Lock::RowExclusive, Effect::Backfill, Blocks::Nothing),
        About::analyze(),
    ];
    let mut then = vec![
        RStep::Sql(format!(
            "ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {}",
            d.text
        )),
        RStep::Backfill {
            table: t.to_string(),
            set: format!("{c} = {}", d.text),
            filter: Some(format!("{c} IS NULL")),
            as_update: false,
        },
        // Every row was just updated: statistics now, not when autovacuum comes by.
        RStep::Analyze {
            table: t.to_string(),
            columns: vec![c.clone()],
        },
    ];
    if column.not_null {
        let check = crate::quote::pg::ident(&super::helper_name(
            &table.name,
            &column.name,
            "not_null_check",
        ));
        then.push(RStep::Sql(format!(
            "ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID"
        )));
        then.push(RStep::Sql(format!(
            "ALTER TABLE {t} VALIDATE CONSTRAINT {check}"
        )));
        then.push(RStep::Sql(format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL; ALTER TABLE {t} DROP CONSTRAINT {check}")));
        about.push(About::catalog("add NOT NULL as a check without scanning"));
        about.push(About::validate(
            "validate the check (scan without blocking reads or writes)",
        ));
        about.push(if target.at_least(12, 0) {
            About::catalog("set NOT NULL (the valid check spares the scan), drop the helper check")
        } else {
            // Before 12 the check does not spare the scan: say what the step costs.
            About::new("set NOT NULL (before PostgreSQL 12 this scans every row under the lock), drop the helper check", Lock::AccessExclusive, Effect::Scan, Blocks::ReadsAndWrites)
        });
        // The column and its backfilled values stay for the rerun (checkpointed); the
        // helper check goes, so the rerun adds it afresh.
        undo.push(format!("ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {check}"));
    }
    Some(Rewrite {
        sql: format!("ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {c} {ty}"),
        note: "added without rewriting the table: default for new rows, existing rows backfilled in batches, NOT NULL through a validated check".into(),
        builds_index: None,
        unnamed_index: None,
        then,
        precheck: None,
        undo,
        about,
        answers: &["volatile-default"],
    })
}
