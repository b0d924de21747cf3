//! A staged column type change whose swap kept the old column (issue 13 point 4): between the
//! swap and `sluice complete` the old column stays under a sluice name, kept equal to the new
//! column cast back by a reverse trigger, so that `sluice rollback` is one more short swap, not a
//! rewrite. The expand phase is the staged type change itself
//! ([`crate::plan::alter_column_type::staged`], run by `sluice up`); this file plans the other two
//! from the live catalog after the swap.

use super::{Guard, LifecyclePlan, Phases, Step, Watch, WATCH_SQLSTATE};
use crate::engine::ColumnCatalog;
use crate::plan::alter_column_type::{
    carry, forget_views, old_name, sync_names, views_after_key, views_key, Around, Fate,
};
use crate::quote::pg::{ident, literal, qualified};

/// In a rollback guard's column, between a referencing table and its column (the guard's
/// refusal names that table, not the type change's).
pub const GUARD_SEP: char = '\u{1f}';

/// Where the rollback watch records writes (sluice's own schema, kept like its history).
pub const WATCH_TABLE: &str = "sluice.rollback_watch";
/// The watch trigger's function (one for every watch: the trigger passes its key).
pub const WATCH_FUNCTION: &str = "sluice.rollback_watch";

/// Complete and rollback of a kept type change, from the catalog of the column (`cat`: the new
/// type, carrying every index, constraint and key) and whether the kept old column exists.
///
/// - complete: drop the reverse trigger, its function and the old column (catalog only, one
///   short transaction);
/// - rollback: refused while rows hold a value the old type cannot take (the reverse trigger
///   stored NULL for them): counted once, outside any strong lock, with a watch trigger
///   installed before the count that records such rows written after it, and checked by the
///   swap back under its lock (so a row written between the count and the swap is never
///   dropped with the new column); else every index, check, NOT NULL and foreign key of the column
///   rebuilt on the old column in the staged forms (CONCURRENTLY, NOT VALID + VALIDATE), then
///   one short swap back (the same swap as the type change's, the other way): the new column
///   dropped, the old one renamed back and given the names, default, identity or sequence. The old
///   column never moved, so the table is as before the migration, column order included.
///
/// `children`: the referencing columns the type change widened with the column and kept the same
/// way (each child's catalog after its swap, its own old column there). Their rollback joins the
/// column's: first every child's indexes, checks and other keys rebuilt on its kept column, and
/// each key between a child and the column copied between the two kept columns (NOT VALID +
/// VALIDATE: the kept columns are kept equal by the reverse triggers, so the copy holds), then
/// one swap back of every table in one transaction (the children locked first, as the type
/// change's swap does). So the children are never left wide after a rollback, and no moment has
/// a key unchecked.
///
/// `around`: the migration's statements its swap ran around the ALTER (views and policies on the
/// column dropped before, re-created after; [`Around::keepable`]). The swap back runs them again:
/// the drops right before it takes the column's table, the re-creations once every column is
/// back (they name the column, which is then the old one), then checks that they equal what the
/// type change's swap recorded before its drops ([`Around::check_recreated`]): else the swap back
/// fails, changing nothing, and the rollback is refused.
pub fn phases(
    cat: &ColumnCatalog,
    old_exists: bool,
    children: &[ColumnCatalog],
    around: &Around,
) -> Result<Phases, String> {
    let old = old_name(&cat.column);
    if !old_exists {
        return Err(format!(
            "the old column {} that the type change kept is gone, so it cannot be completed or rolled back as a kept type change",
            ident(&old)
        ));
    }
    // The views and policies the migration moved around its swap move back the same way.
    let left = around.remaining(cat);
    if !left.is_empty() {
        return Err(format!(
            "{}: the swap back does not move these",
            left.join("; ")
        ));
    }
    let t = qualified(&cat.schema, &cat.table);
    let c = ident(&cat.column);
    let mut complete = Vec::new();
    let mut locks: Vec<String> = children
        .iter()
        .map(|ch| qualified(&ch.schema, &ch.table))
        .filter(|q| *q != t)
        .collect();
    locks.sort();
    locks.dedup();
    if !locks.is_empty() {
        // The other tables first, every wait short (as the type change's swap): a client
        // holding a child and checking its key on the table (or deleting on the table and
        // cascading into a child) makes sluice give up and retry, never the client.
        complete.push(crate::plan::alter_column_type::SHORT_SECOND_WAIT.to_string());
        complete.push(format!(
            "LOCK TABLE {}, {t} IN ACCESS EXCLUSIVE MODE",
            locks.join(", ")
        ));
    }
    // The keys between a kept child and the column: copied between the two kept columns.
    let is_child = |fk: &crate::engine::ForeignKeyFacts| {
        children.iter().find(|ch| {
            fk.referenced
                && fk.schema == ch.schema
                && fk.table == ch.table
                && fk.paired.as_ref().is_some_and(|(col, _)| *col == ch.column)
        })
    };
    // The reverse triggers of the kept columns on one table (a self-reference widened with the
    // column) set only their own kept column: no reason to refuse the others' order.
    let backs: Vec<(String, String, String)> = std::iter::once(cat)
        .chain(children)
        .map(|c| {
            (
                c.schema.clone(),
                c.table.clone(),
                sync_names(c, "sluice_back").0,
            )
        })
        .collect();
    let others = |c: &ColumnCatalog| {
        let mut c = c.clone();
        let own = sync_names(&c, "sluice_back").0;
        c.before_triggers.retain(|t| {
            *t == own
                || !backs
                    .iter()
                    .any(|(s, tb, n)| *s == c.schema && *tb == c.table && n == t)
        });
        c
    };
    let mut parent = others(cat);
    for fk in parent.foreign_keys.iter_mut() {
        if let Some(ch) = is_child(fk) {
            let referencing = crate::engine::ForeignKeyFacts {
                referencing: true,
                referenced: false,
                ..fk.clone()
            };
            fk.definition = crate::plan::alter_column_type::fk_on_shadow(
                &referencing,
                &ch.column,
                &old_name(&ch.column),
            )
            .map_err(|why| format!("foreign key {}: {why}", fk.name))?;
        }
    }
    let keys: Vec<(String, String, String)> = cat
        .foreign_keys
        .iter()
        .filter(|fk| is_child(fk).is_some())
        .map(|fk| (fk.schema.clone(), fk.table.clone(), fk.name.clone()))
        .collect();
    let Back {
        mut steps,
        mut about,
        swap,
        mut fk_undo,
        mut undo,
    } = back(
        &parent,
        &Around {
            after: vec![],
            ..around.clone()
        },
    )?;
    let mut child_swaps = Vec::new();
    let mut guards = Vec::new();
    for ch in children {
        let label = format!(
            "referencing column {}.{}.{}",
            ch.schema, ch.table, ch.column
        );
        let left = around.remaining(ch);
        if !left.is_empty() {
            return Err(format!(
                "{label}: {}: the swap back does not move these",
                left.join("; ")
            ));
        }
        let mut own = others(ch);
        // Its key to the column is the column's to copy (above).
        own.foreign_keys
            .retain(|fk| !keys.contains(&(fk.schema.clone(), fk.table.clone(), fk.name.clone())));
        // Watched as the column is (in `back`): a child row whose key the old type cannot take
        // needs no parent row above 2^31 (a composite key with a NULL part is not checked), so
        // the parent's watch does not cover it.
        let kept = back(&own, &Around::default()).map_err(|why| format!("{label}: {why}"))?;
        child_swaps.push(kept.swap);
        let table = format!("{}.{}", ch.schema, ch.table);
        let mut child_about = kept.about;
        for a in child_about.iter_mut() {
            a.tables = vec![table.clone()];
            a.label = Some(label.clone());
        }
        steps.extend(kept.steps);
        about.extend(child_about);
        fk_undo.extend(kept.fk_undo);
        undo.extend(kept.undo);
        complete.extend(complete_sql(ch));

        guards.push((
            // The table and the column apart (the refusal names both): see guard_refusal.
            format!("{}.{}{GUARD_SEP}{}", ch.schema, ch.table, ch.column),
            format!(
                "SELECT count(*) FROM {} WHERE {} IS NULL AND {} IS NOT NULL",
                qualified(&ch.schema, &ch.table),
                ident(&old_name(&ch.column)),
                ident(&ch.column)
            ),
        ));
    }
    let mut watch = watch(cat);
    for ch in children {
        let w = self::watch(ch);
        watch.install.extend(w.install);
        watch.clear = format!("{}; {}", watch.clear, w.clear);
        watch.remove.extend(w.remove);
    }
    complete.extend(complete_sql(cat));
    let (key, after_key) = (views_key(cat), views_after_key(cat));
    complete.push(forget_views(&key, &after_key));
    // The children's swaps after the column's: its swap drops the keys on their new columns,
    // which theirs then drop. The views and policies last, over the columns swapped back.
    let recreate = (!around.is_empty()).then(|| {
        around
            .after
            .iter()
            .map(|(_, sql)| sql.clone())
            .chain([around.check_recreated(&key, &after_key)])
            .collect::<Vec<_>>()
            .join("; ")
    });
    // First of all, that the views and policies are as the migration left them.
    let unchanged = (!around.is_empty()).then(|| around.check_unchanged(&after_key));
    let swap = unchanged
        .into_iter()
        .chain(std::iter::once(swap))
        .chain(child_swaps)
        .chain(recreate)
        .collect::<Vec<_>>()
        .join("; ");
    let rollback_undo = fk_undo.into_iter().chain(undo).collect();
    let sees = sees(cat);
    Ok(Phases {
        precheck: vec![],
        precheck_refusal: None,
        expand: vec![],
        expand_about: vec![],
        expand_atomic: false,
        complete,
        rollback: vec![swap],
        rollback_refusal: None,
        complete_refusal: None,
        complete_online: None,
        rollback_guard: std::iter::once((
            cat.column.clone(),
            format!(
                "SELECT count(*) FROM {t} WHERE {} IS NULL AND {c} IS NOT NULL",
                ident(&old)
            ),
        ))
        .chain(guards)
        .collect(),
        guard: Guard::OldType,
        rollback_prepare: steps.into_iter().zip(about).collect(),
        rollback_undo,
        sees,
        complete_description: COMPLETE,
        rollback_description: ROLLBACK,
        expand_locks: vec![],
        phase_lock: None,
        rollback_lock: None,
        watch: Some(watch),
        old_version: vec![],
    })
}

/// What swapping one kept table back takes: its steps before the swap (rebuilds on the kept
/// column, key copies) with what each does, the swap itself, and what removes the steps' work.
struct Back {
    steps: Vec<Step>,
    about: Vec<crate::plan::staged::About>,
    swap: String,
    fk_undo: Vec<String>,
    undo: Vec<String>,
}

/// The type change's carry run the other way for `cat`'s table, from the new column to the kept
/// one, its swap watched: right after the swap's first statement on the table (it takes ACCESS
/// EXCLUSIVE, so every writer has committed and the watch records are final) the watch trigger
/// goes (its WHEN names the column the swap drops), and the swap fails, changing nothing, if a
/// write since the count left a value the old type cannot take.
fn back(cat: &ColumnCatalog, around: &Around) -> Result<Back, String> {
    let (trigger, func) = sync_names(cat, "sluice_back");
    let carried = carry(
        cat,
        &old_name(&cat.column),
        &trigger,
        &func,
        false,
        Fate::Drop,
        around,
    )?;
    let mut steps = carried.then;
    let mut about = carried.about;
    let Some(Step::Sql(swap)) = steps.pop() else {
        unreachable!("carry ends with the swap")
    };
    about.pop();
    let first = format!(
        "DROP TRIGGER {} ON {}",
        ident(&trigger),
        qualified(&cat.schema, &cat.table)
    );
    debug_assert!(swap.contains(&first));
    let swap = swap.replacen(&first, &format!("{first}; {}", watch_check(cat)), 1);
    Ok(Back {
        steps,
        about,
        swap,
        fk_undo: carried.fk_undo,
        undo: carried.undo,
    })
}

/// The key a watch's records carry: the table and column, as the server spells them.
fn watch_key(cat: &ColumnCatalog) -> String {
    format!("{}.{}.{}", cat.schema, cat.table, cat.column)
}

fn watch_trigger(cat: &ColumnCatalog) -> String {
    sync_names(cat, "sluice_watch").0
}

/// The watch of a rollback: an AFTER row trigger whose WHEN is the guard's predicate (so only
/// the rows the guard counts cost anything), recording into [`WATCH_TABLE`]. Creating it takes
/// SHARE ROW EXCLUSIVE (waits for in-flight writers, under the lock discipline), so every write
/// that it misses committed before it and is seen by the count that follows.
fn watch(cat: &ColumnCatalog) -> Watch {
    let t = qualified(&cat.schema, &cat.table);
    let trigger = watch_trigger(cat);
    let key = literal(&watch_key(cat));
    let create = format!(
        "CREATE TRIGGER {} AFTER INSERT OR UPDATE ON {t} FOR EACH ROW WHEN (NEW.{} IS NULL AND NEW.{} IS NOT NULL) EXECUTE FUNCTION {WATCH_FUNCTION}({key})",
        ident(&trigger),
        ident(&old_name(&cat.column)),
        ident(&cat.column)
    );
    let body = format!(
        "BEGIN IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = {}::regclass AND tgname = {}) THEN {create}; END IF; END",
        literal(&t),
        literal(&trigger)
    );
    Watch {
        install: vec![
            format!("CREATE TABLE IF NOT EXISTS {WATCH_TABLE} (watch text NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())"),
            // SECURITY DEFINER: the application's role writes the table, not sluice's schema.
            format!(
                "CREATE OR REPLACE FUNCTION {WATCH_FUNCTION}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {}",
                literal(&format!("BEGIN INSERT INTO {WATCH_TABLE} (watch) VALUES (TG_ARGV[0]); RETURN NULL; END"))
            ),
            format!("DO {}", literal(&body)),
        ],
        clear: format!("DELETE FROM {WATCH_TABLE} WHERE watch = {key}"),
        remove: vec![
            format!("DROP TRIGGER IF EXISTS {} ON {t}", ident(&trigger)),
            format!("DELETE FROM {WATCH_TABLE} WHERE watch = {key}"),
        ],
    }
}

/// Inside the swap, with the table held: the watch trigger dropped, its records checked (the
/// swap fails with [`WATCH_SQLSTATE`] if any) and removed.
fn watch_check(cat: &ColumnCatalog) -> String {
    let t = qualified(&cat.schema, &cat.table);
    let key = literal(&watch_key(cat));
    let body = format!(
        "BEGIN IF EXISTS (SELECT FROM {WATCH_TABLE} WHERE watch = {key}) THEN RAISE EXCEPTION 'a row was written since the rollback counted with a value the old type cannot take' USING ERRCODE = {}; END IF; END",
        literal(WATCH_SQLSTATE)
    );
    format!(
        "DROP TRIGGER IF EXISTS {} ON {t}; DO {}; DELETE FROM {WATCH_TABLE} WHERE watch = {key}",
        ident(&watch_trigger(cat)),
        literal(&body)
    )
}

const COMPLETE: &str = "`sluice complete`: drop the reverse trigger and the old column (catalog only), in one short transaction";
const ROLLBACK: &str = "`sluice rollback` (before complete): refused while rows hold a value the old type cannot take (exit 11; a watch trigger installed before the count records such rows written after it, and the swap back checks under its lock that none was: else it changes nothing, counts again, and refuses or tries again); else the column's indexes, checks, NOT NULL and foreign keys rebuilt on the old column in the staged forms (CONCURRENTLY, NOT VALID + VALIDATE, no blocking), then one short swap back: the new column dropped, the old one renamed back and given the names, keys, default, identity or sequence (a migration that drops and re-creates views or policies around the ALTER: its statements run again around the swap back, which fails, changing nothing, unless they re-create them exactly as they were)";

/// The contract phase: the reverse trigger, its function and the old column dropped.
fn complete_sql(cat: &ColumnCatalog) -> Vec<String> {
    let t = qualified(&cat.schema, &cat.table);
    let (back_trigger, back_func) = sync_names(cat, "sluice_back");
    vec![
        // A rollback killed while it watched leaves its trigger, which names the old column.
        format!(
            "DROP TRIGGER IF EXISTS {} ON {t}",
            ident(&watch_trigger(cat))
        ),
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
/// swap, when `sluice rollback` runs). `new_type`: as the migration writes it.
pub fn plan(
    cat: &ColumnCatalog,
    new_type: &str,
    r: &crate::plan::staged::Rewrite,
) -> LifecyclePlan {
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
        old_version: crate::plan::old_version::type_change(
            &format!("{}.{}.{}", cat.schema, cat.table, cat.column),
            &ident(&old_name(&cat.column)),
            &cat.data_type,
            &new_type.to_lowercase(),
        )
        .into_iter()
        .collect(),
    }
}
