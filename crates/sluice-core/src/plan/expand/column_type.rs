//! A staged column type change whose swap kept the old column (issue 13 point 4): between the
//! swap and `sluice complete` the old column stays under a sluice name, kept equal to the new
//! column cast back by a reverse trigger, so that `sluice rollback` is one more short swap, not a
//! rewrite. The expand phase is the staged type change itself
//! ([`crate::plan::alter_column_type::staged`], run by `sluice up`); this file plans the other two
//! from the live catalog after the swap.

use super::{Guard, LifecyclePlan, Phases, Step};
use crate::engine::ColumnCatalog;
use crate::plan::alter_column_type::{carry, old_name, sync_names, Fate};
use crate::quote::pg::{ident, qualified};

/// Complete and rollback of a kept type change, from the catalog of the column (`cat`: the new
/// type, carrying every index, constraint and key) and whether the kept old column exists.
///
/// - complete: drop the reverse trigger, its function and the old column (catalog only, one
///   short transaction);
/// - rollback: refused while rows hold a value the old type cannot take (the reverse trigger
///   stored NULL for them); else every index, check, NOT NULL and foreign key of the column
///   rebuilt on the old column in the staged forms (CONCURRENTLY, NOT VALID + VALIDATE), then
///   one short swap back (the same swap as the type change's, the other way): the new column
///   dropped, the old one renamed back and given the names, default, identity or sequence. The old
///   column never moved, so the table is as before the migration, column order included.
pub fn phases(cat: &ColumnCatalog, old_exists: bool) -> Result<Phases, String> {
    let old = old_name(&cat.column);
    if !old_exists {
        return Err(format!(
            "the old column {} that the type change kept is gone, so it cannot be completed or rolled back as a kept type change",
            ident(&old)
        ));
    }
    if !cat.blockers.is_empty() {
        return Err(format!(
            "{}: the swap back does not move these",
            cat.blockers.join("; ")
        ));
    }
    let t = qualified(&cat.schema, &cat.table);
    let c = ident(&cat.column);
    let (back_trigger, back_func) = sync_names(cat, "sluice_back");
    let complete = complete_sql(cat);
    let carried = carry(cat, &old, &back_trigger, &back_func, false, Fate::Drop)?;
    let mut steps = carried.then;
    let mut about = carried.about;
    let swap = match steps.pop() {
        Some(Step::Sql(sql)) => sql,
        _ => unreachable!("carry ends with the swap"),
    };
    about.pop();
    let rollback_undo = carried.fk_undo.into_iter().chain(carried.undo).collect();
    let sees = sees(cat);
    Ok(Phases {
        precheck: vec![],
        expand: vec![],
        expand_about: vec![],
        expand_atomic: false,
        complete,
        rollback: vec![swap],
        rollback_guard: vec![(
            cat.column.clone(),
            format!(
                "SELECT count(*) FROM {t} WHERE {} IS NULL AND {c} IS NOT NULL",
                ident(&old)
            ),
        )],
        guard: Guard::OldType,
        rollback_prepare: steps.into_iter().zip(about).collect(),
        rollback_undo,
        sees,
        complete_description: COMPLETE,
        rollback_description: ROLLBACK,
        expand_locks: vec![],
        phase_lock: None,
        rollback_lock: None,
    })
}

const COMPLETE: &str = "`sluice complete`: drop the reverse trigger and the old column (catalog only), in one short transaction";
const ROLLBACK: &str = "`sluice rollback` (before complete): refused while rows hold a value the old type cannot take (exit 11); else the column's indexes, checks, NOT NULL and foreign keys rebuilt on the old column in the staged forms (CONCURRENTLY, NOT VALID + VALIDATE, no blocking), then one short swap back: the new column dropped, the old one renamed back and given the names, keys, default, identity or sequence";

/// The contract phase: the reverse trigger, its function and the old column dropped.
fn complete_sql(cat: &ColumnCatalog) -> Vec<String> {
    let t = qualified(&cat.schema, &cat.table);
    let (back_trigger, back_func) = sync_names(cat, "sluice_back");
    vec![
        format!("DROP TRIGGER IF EXISTS {} ON {t}", ident(&back_trigger)),
        format!("DROP FUNCTION IF EXISTS {back_func}()"),
        format!(
            "ALTER TABLE {t} DROP COLUMN IF EXISTS {}",
            ident(&old_name(&cat.column))
        ),
    ]
}

fn sees(cat: &ColumnCatalog) -> Vec<(String, String)> {
    let c = ident(&cat.column);
    vec![
        (
            "expanded (after `sluice up`)".into(),
            format!(
                "both versions read and write {c} as the new type; the old column stays as {} (kept equal by a reverse trigger: a value the old type cannot take is stored there as NULL)",
                ident(&old_name(&cat.column))
            ),
        ),
        (
            "completed (after `sluice complete`)".into(),
            "the table is as the ALTER as written leaves it".into(),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!("{c} has its old type again, with every index, constraint, key and default, as before the migration; refused (exit 11, nothing changed) while rows written since hold a value the old type cannot take"),
        ),
    ]
}

/// What `sluice plan` shows of a type change whose swap will keep the old column (`cat`: the
/// column before the change, `r`: its staged form): the staged steps as the expand phase, the
/// contract phase, and the rollback in words (its steps are planned from the catalog after the
/// swap, when `sluice rollback` runs).
pub fn plan(cat: &ColumnCatalog, r: &crate::plan::staged::Rewrite) -> LifecyclePlan {
    use crate::plan::{staged::Lock, Blocks, Effect, Step as PlanStep};
    let on = |s: PlanStep| {
        let mut s = s.under(Lock::AccessExclusive);
        if let Some(l) = &mut s.taken {
            l.tables = vec![format!("{}.{}", cat.schema, cat.table)];
        }
        s
    };
    LifecyclePlan {
        change: format!(
            "change the type of column {}.{}.{} (the old column kept until complete)",
            cat.schema, cat.table, cat.column
        ),
        expand: r.plan_steps(),
        complete: on(PlanStep::new(
            COMPLETE,
            complete_sql(cat).join("; "),
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
        )),
        rollback: on(PlanStep::new(
            ROLLBACK,
            "-- planned from the live catalog when `sluice rollback` runs: the steps above, the other way",
            "ACCESS EXCLUSIVE",
            Effect::Instant,
            Blocks::ReadsAndWrites,
        )),
        sees: sees(cat),
    }
}
