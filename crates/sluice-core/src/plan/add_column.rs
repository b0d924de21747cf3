//! ADD COLUMN: instant when the server can store the default in the catalog; otherwise (volatile
//! default, NOT NULL without default, PostgreSQL < 11 with any default) staged as add nullable →
//! default for new rows → batched backfill → NOT NULL through a validated CHECK.

use super::*;
use crate::analysis::ir::Volatility;
use crate::quote;

pub fn plan(a: &Action, ctx: &Ctx) -> OpPlan {
    let Action::AddColumn { table, column, .. } = a else {
        unreachable!()
    };
    let e = ctx.target.engine;
    if e.is_mysql_family() {
        return mysql(a, ctx);
    }
    let t = quote::qname(e, table);
    let c = quote::pg::ident(&column.name);
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
        };
    }
    let mut ty = column.data_type.clone();
    if ty.eq_ignore_ascii_case("serial") {
        ty = "integer".into();
    }
    let check = quote::pg::ident(&helper_name(&table.name, &column.name, "not_null"));
    let mut steps = vec![Step::new(
        "add the column, nullable and without default (catalog only)",
        format!("ALTER TABLE {t} ADD COLUMN {c} {ty}"),
        "ACCESS EXCLUSIVE",
        Effect::Instant,
        Blocks::ReadsAndWrites,
    )];
    let fill = match &column.default {
        Some(d) => {
            steps.push(Step::new(
                "set the default for rows inserted from now on",
                format!("ALTER TABLE {t} ALTER COLUMN {c} SET DEFAULT {}", d.text),
                "ACCESS EXCLUSIVE",
                Effect::Instant,
                Blocks::ReadsAndWrites,
            ));
            d.text.clone()
        }
        None => "<value>".into(),
    };
    steps.push(Step::new(
        "backfill existing rows in batches by primary key, each batch its own short transaction, paced on client latency",
        format!("UPDATE {t} SET {c} = {fill} WHERE <primary key in batch> AND {c} IS NULL"),
        "ROW EXCLUSIVE",
        Effect::Backfill,
        Blocks::Nothing,
    ));
    if column.not_null {
        steps.push(Step::new(
            "add NOT NULL as a check without scanning",
            format!("ALTER TABLE {t} ADD CONSTRAINT {check} CHECK ({c} IS NOT NULL) NOT VALID"),
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
        ));
        steps.push(Step::new(
            "validate the check (scan without blocking reads or writes)",
            format!("ALTER TABLE {t} VALIDATE CONSTRAINT {check}"),
            "SHARE UPDATE EXCLUSIVE",
            Effect::Scan,
            Blocks::Nothing,
        ));
        if ctx.target.at_least(12, 0) {
            steps.push(Step::new(
                "set NOT NULL: the valid check spares the scan (PostgreSQL 12+)",
                format!("ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL"),
                "ACCESS EXCLUSIVE",
                Effect::Instant,
                Blocks::ReadsAndWrites,
            ));
            steps.push(Step::new(
                "drop the helper check",
                format!("ALTER TABLE {t} DROP CONSTRAINT {check}"),
                "ACCESS EXCLUSIVE",
                Effect::Instant,
                Blocks::ReadsAndWrites,
            ));
        }
    }
    if column.default.is_none() && column.not_null {
        return OpPlan {
            impact: as_written,
            safe_steps: steps,
            refused: Some("NOT NULL without a default: sluice needs the value to backfill existing rows; add a DEFAULT, or add the column nullable, fill it, then SET NOT NULL".into()),
        };
    }
    OpPlan {
        impact: as_written,
        safe_steps: steps,
        refused: None,
    }
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
        }
    }
}
