//! `ALTER TABLE t RENAME COLUMN a TO b` in two phases (PostgreSQL), from what the live catalog says
//! column `a` carries.
//!
//! Expand (`sluice up`): a new column `b` of a's type (and collation) beside `a`; a sluice-named
//! BEFORE INSERT OR UPDATE trigger keeps the two equal in both directions (a write through either
//! name is seen through the other); the paced backfill copies `a` into `b`; a's indexes, unique and
//! primary keys are built on `b` concurrently, its CHECKs added NOT VALID then validated, its NOT
//! NULL proven by a validated check. The default stays on `a` only: an INSERT through the new name
//! that leaves `b` out gets a's default through the trigger, while an INSERT through the old name
//! never sees a default of `b` that the trigger would take for a write.
//!
//! Contract (`sluice complete`): one short transaction drops the trigger and `a`, gives `b` the
//! default, owned sequence, statistics target and comment of `a`, attaches the keys `USING INDEX`
//! and renames indexes and checks to their names: what the rename as written leaves, except that
//! `b` is now the table's last column.
//!
//! Rollback (`sluice rollback`, before complete): one short transaction drops the trigger, the
//! function and `b` (its indexes and checks go with it).

use super::super::alter_column_type::{
    attach_rebuilt, constraint_free, index_on_shadow, relation_free, swap_column,
};
use super::super::helper_name;
use super::super::staged::{do_block, About, Lock, Step};
use super::super::{Blocks, Effect};
use super::Phases;
use crate::engine::ColumnCatalog;
use crate::quote::pg::{ident, literal, qualified};

/// The names the phases give their helpers (stable across runs: a rerun and `complete` find them).
pub struct Names {
    pub trigger: String,
    pub function: String,
}

pub fn names(cat: &ColumnCatalog) -> Names {
    Names {
        // Row triggers fire in name order: `zz_` puts the sync after nearly every other.
        trigger: helper_name(&format!("zz_{}", cat.table), &cat.column, "sluice_rename"),
        function: helper_name(&cat.table, &cat.column, "sluice_rename"),
    }
}

/// The temporary name of a copy of index or constraint `name` on the new column.
fn renamed(name: &str) -> String {
    helper_name(name, "", "sluice_renamed")
}

/// The phases of renaming `cat.column` to `to`; `st` is the statement as written. Err: why the
/// rename cannot run in two phases (it is then refused; `--as-written` runs it in one).
pub fn phases(
    st: &crate::analysis::ir::Stmt,
    cat: &ColumnCatalog,
    to: &str,
) -> Result<Phases, String> {
    use sqlparser::ast::Statement;
    if let Some(Statement::AlterTable(at)) = st.ast.as_deref() {
        if !super::super::staged::plain_alter(at) {
            return Err("the two phases name the table plainly, which for ONLY or IF EXISTS would change what the statement does; write it without them".into());
        }
    }
    if cat.server_version < 120000 {
        return Err(
            "the two phases need PostgreSQL 12 (NOT NULL proven by a validated check)".into(),
        );
    }
    if !cat.blockers.is_empty() || !cat.foreign_keys.is_empty() {
        let fks = cat
            .foreign_keys
            .iter()
            .map(|f| format!("{} depends on it", f.described));
        return Err(format!(
            "{}: the two phases do not carry these yet",
            cat.blockers
                .iter()
                .cloned()
                .chain(fks)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    if cat.identity.is_some() {
        return Err(
            "the column is an identity column: the two phases do not move an identity yet".into(),
        );
    }
    let n = names(cat);
    if let Some(later) = cat
        .before_triggers
        .iter()
        .find(|t| t.as_bytes() > n.trigger.as_bytes())
    {
        return Err(format!("trigger {later} fires after sluice's sync trigger {} (BEFORE triggers fire by name) and could change one name after the other was copied", n.trigger));
    }
    let t = qualified(&cat.schema, &cat.table);
    let schema = ident(&cat.schema);
    let a = ident(&cat.column);
    let b = ident(to);
    let func = format!("{schema}.{}", ident(&n.function));
    let trigger = ident(&n.trigger);
    let ty = &cat.data_type;

    let mut precheck = vec![
        format!(
            "BEGIN IF EXISTS (SELECT FROM pg_attribute WHERE attrelid = {}::regclass AND attname = {} AND NOT attisdropped) THEN RAISE EXCEPTION {}, {}, {} USING ERRCODE = 'duplicate_column'; END IF; END",
            literal(&t),
            literal(to),
            literal("column % of relation % already exists"),
            literal(to),
            literal(&cat.table)
        ),
        // A domain's DEFAULT fills the new name on every INSERT that leaves it out (the old
        // version's), so the trigger would take each such insert for a write of the new name
        // and overwrite the value written through the old one.
        format!(
            "BEGIN IF EXISTS (SELECT FROM pg_attribute a JOIN pg_type y ON y.oid = a.atttypid WHERE a.attrelid = {}::regclass AND a.attname = {} AND y.typdefaultbin IS NOT NULL) THEN RAISE EXCEPTION {} USING ERRCODE = 'feature_not_supported'; END IF; END",
            literal(&t),
            literal(&cat.column),
            literal(&format!("the type of column {} is a domain with a DEFAULT: an INSERT that leaves {} out stores that default in it, so sluice's sync trigger cannot tell the old version's inserts from the new version's (the old name's value would be overwritten); rename it with `sluice up --as-written` (the running version breaks), or first change the column to a type without a default", cat.column.replace('%', "%%"), to.replace('%', "%%")))
        ),
        // The trigger tells which name a write used by comparing values.
        format!(
            "BEGIN PERFORM NULL::{ty} IS DISTINCT FROM NULL::{ty}; EXCEPTION WHEN undefined_function THEN RAISE EXCEPTION {} USING ERRCODE = 'feature_not_supported'; END",
            literal(&format!("type {ty} has no equality operator, so sluice's sync trigger cannot tell which name a write used: rename it with `sluice up --as-written` (the running version breaks), or change the type first"))
        ),
    ];
    let mut expand = Vec::new();
    let mut about = Vec::new();

    // 1. the new column.
    let collate = cat
        .collation
        .as_ref()
        .map(|c| format!(" COLLATE {c}"))
        .unwrap_or_default();
    expand.push(Step::Sql(format!(
        "ALTER TABLE {t} ADD COLUMN IF NOT EXISTS {b} {ty}{collate}"
    )));
    about.push(About::catalog(
        "add the new column beside the old one, nullable, no default (catalog only)",
    ));

    // 2. the two-way sync. Which name a write used is told by the values' text, not `=`: a type
    // whose equality is coarser than its values (citext's case, numeric's scale, interval's
    // '1 day' = '24 hours', float's -0 = 0) would hide a write through the new name, which the
    // old name's value then overwrote.
    let body = format!(
        "BEGIN IF TG_OP = 'INSERT' THEN IF NEW.{b} IS NULL THEN NEW.{b} := NEW.{a}; ELSE NEW.{a} := NEW.{b}; END IF; ELSIF NEW.{b}::text IS DISTINCT FROM OLD.{b}::text THEN NEW.{a} := NEW.{b}; ELSE NEW.{b} := NEW.{a}; END IF; RETURN NEW; END"
    );
    expand.push(Step::Sql(format!(
        "CREATE OR REPLACE FUNCTION {func}() RETURNS trigger LANGUAGE plpgsql AS {}; DROP TRIGGER IF EXISTS {trigger} ON {t}; CREATE TRIGGER {trigger} BEFORE INSERT OR UPDATE ON {t} FOR EACH ROW EXECUTE FUNCTION {func}()",
        literal(&body)
    )));
    about.push(About::new(
        "a trigger keeps both names equal on every insert and update: a write through either name is seen through the other",
        Lock::ShareRowExclusive,
        Effect::Instant,
        Blocks::Writes,
    ));

    // 3. the backfill.
    let set = format!("{b} = {a}");
    let filter = format!("{b} IS DISTINCT FROM {a}");
    expand.push(Step::Backfill {
        table: t.clone(),
        set: set.clone(),
        filter: Some(filter.clone()),
        as_update: false,
    });
    about.push(About::new(
        "backfill existing rows in batches by primary key, each batch its own short transaction, paced on client latency",
        Lock::RowExclusive,
        Effect::Backfill,
        Blocks::Nothing,
    ));
    let checkpoint = crate::plan::staged::forget_backfill(cat, &set);
    // A checkpoint left by an earlier expand of the same rename (rolled back since) is stale.
    precheck.push(crate::plan::alter_column_type::function_free(&func, &t));
    precheck.push(crate::plan::staged::reset_checkpoint(&checkpoint));

    // 4. indexes, keys, checks and NOT NULL on the new column.
    let mut keys = Vec::new();
    for ix in &cat.indexes {
        if let Some((name, 'x', ..)) = &ix.constraint {
            return Err(format!("exclusion constraint {name} uses the column"));
        }
        let tmp = renamed(&ix.name);
        let sql = index_on_shadow(&ix.definition, &cat.column, to, &tmp, &t)
            .map_err(|why| format!("index {}: {why}", ix.name))?;
        let qtmp = format!("{schema}.{}", ident(&tmp));
        precheck.push(relation_free(&qtmp));
        expand.push(Step::Index {
            sql,
            index: qtmp.clone(),
        });
        about.push(About::concurrent_build(
            "build the index on the new column concurrently (reads and writes continue)",
        ));
        keys.push(attach_rebuilt(ix, &t, &tmp, &qtmp));
    }
    // Every row was just updated and the new column is new to the planner: statistics now,
    // after the index builds so that expression indexes get theirs too.
    expand.push(Step::Analyze {
        table: t.clone(),
        columns: vec![b.clone()],
    });
    about.push(About::analyze());
    keys.sort_by_key(|a| !a[0].contains(" PRIMARY KEY USING INDEX "));
    let mut check_names = Vec::new();
    let add_if_missing = |name: &str, def: &str| {
        do_block(&format!(
            "BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = {}::regclass AND conname = {}) THEN ALTER TABLE {t} ADD CONSTRAINT {} {def} NOT VALID; END IF; END",
            literal(&t),
            literal(name),
            ident(name)
        ))
    };
    for ck in &cat.checks {
        let tmp = renamed(&ck.name);
        let def = ck
            .definition
            .strip_suffix(" NOT VALID")
            .unwrap_or(&ck.definition);
        let def =
            swap_column(def, &cat.column, to).map_err(|why| format!("check {}: {why}", ck.name))?;
        precheck.push(constraint_free(&t, &tmp));
        expand.push(Step::Sql(add_if_missing(&tmp, &def)));
        about.push(About::catalog(
            "add the check on the new column for new rows only",
        ));
        if ck.validated {
            expand.push(Step::Sql(format!(
                "ALTER TABLE {t} VALIDATE CONSTRAINT {}",
                ident(&tmp)
            )));
            about.push(About::validate("validate it (reads and writes continue)"));
        }
        check_names.push(format!(
            "ALTER TABLE {t} RENAME CONSTRAINT {} TO {}",
            ident(&tmp),
            ident(&ck.name)
        ));
    }
    if cat.not_null {
        let helper = helper_name(&cat.table, to, "sluice_not_null");
        precheck.push(constraint_free(&t, &helper));
        expand.push(Step::Sql(add_if_missing(
            &helper,
            &format!("CHECK ({b} IS NOT NULL)"),
        )));
        about.push(About::catalog(
            "NOT NULL of the new column as a check, for new rows only",
        ));
        // VALIDATE of a check that a killed run already turned into NOT NULL and dropped is
        // skipped: the block does nothing then.
        expand.push(Step::Sql(do_block(&format!(
            "BEGIN IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = {}::regclass AND conname = {}) THEN ALTER TABLE {t} VALIDATE CONSTRAINT {}; END IF; END",
            literal(&t),
            literal(&helper),
            ident(&helper)
        ))));
        about.push(About::validate("validate it (reads and writes continue)"));
        expand.push(Step::Sql(format!(
            "ALTER TABLE {t} ALTER COLUMN {b} SET NOT NULL; ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {}",
            ident(&helper)
        )));
        about.push(About::catalog(
            "SET NOT NULL on the new column (no scan: the valid check proves it), then drop the check",
        ));
    }

    // The contract phase.
    let mut complete = vec![format!("DROP TRIGGER IF EXISTS {trigger} ON {t}")];
    if let Some((s, n)) = &cat.owned_sequence {
        complete.push(format!(
            "ALTER SEQUENCE {} OWNED BY {t}.{b}",
            qualified(s, n)
        ));
    }
    if let Some(d) = &cat.default {
        complete.push(format!("ALTER TABLE {t} ALTER COLUMN {b} SET DEFAULT {d}"));
    }
    complete.push(format!("ALTER TABLE {t} DROP COLUMN {a}"));
    complete.extend(keys.into_iter().flatten());
    complete.extend(check_names);
    if let Some(s) = cat.statistics {
        complete.push(format!(
            "ALTER TABLE {t} ALTER COLUMN {b} SET STATISTICS {s}"
        ));
    }
    if let Some(text) = &cat.comment {
        complete.push(format!("COMMENT ON COLUMN {t}.{b} IS {}", literal(text)));
    }
    complete.push(format!("DROP FUNCTION IF EXISTS {func}()"));
    complete.push(checkpoint.clone());

    let rollback = vec![
        format!("DROP TRIGGER IF EXISTS {trigger} ON {t}"),
        format!("DROP FUNCTION IF EXISTS {func}()"),
        format!("ALTER TABLE {t} DROP COLUMN IF EXISTS {b}"),
        checkpoint,
    ];

    let (old, new) = (&cat.column, to);
    let default_note = match &cat.default {
        Some(d) => format!(" An INSERT that gives neither name gets {old}'s default ({d}) under both; one that sets {new} to NULL explicitly gets the default too (the trigger cannot tell it from leaving {new} out)."),
        None => String::new(),
    };
    let sees = vec![
        (
            "before".into(),
            format!("the old version reads and writes {old}; the new version must not run yet ({new} does not exist)"),
        ),
        (
            "expanded (after `sluice up`)".into(),
            format!("both versions run. The old version reads and writes {old}, the new version {new}: the trigger {} keeps them equal, so every write through either name is seen through the other, and every row has {new} = {old}. {new} carries {old}'s NOT NULL, checks, unique and primary keys (its indexes are named *_sluice_renamed until complete).{default_note} SELECT * shows both columns ({new} last).", n.trigger),
        ),
        (
            "completed (after `sluice complete`)".into(),
            format!("only the new version may run: {old} is gone and queries naming it fail. {new} has {old}'s default, keys, index and constraint names, as the rename as written leaves them (the column is now the table's last)"),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!("only the old version may run: {new} is gone; the table is as before the migration"),
        ),
    ];

    Ok(Phases {
        precheck: precheck.iter().map(|b| do_block(b)).collect(),
        precheck_refusal: None,
        expand,
        expand_about: about,
        expand_atomic: false,
        complete,
        rollback,
        rollback_refusal: None,
        complete_refusal: None,
        complete_online: None,
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees,
        complete_description: "`sluice complete`: in one short transaction, drop the sync trigger and the old column, give the new column its default, keys, index and constraint names",
        rollback_description: "`sluice rollback` (before complete): in one short transaction, drop the sync trigger and the new column",
        expand_locks: vec![],
        phase_lock: None,
        rollback_lock: None,
        watch: None,
        old_version: vec![crate::plan::old_version::added_column_pg(
            &cat.table, to,
        )],
    })
}

/// At `complete` of an expanded rename: what the old column carries that the expand did not copy
/// to the new one (made after the expand, by a later migration or by hand), read from both
/// columns' live catalogs. The contract's `DROP COLUMN` would drop each such index or check with
/// the old column (lost), or fail on a view, key or policy; a NOT NULL changed on one name only
/// would leave the other's. Empty: the contract carries everything.
pub fn uncopied(old: &ColumnCatalog, new: &ColumnCatalog) -> Vec<String> {
    let has_index = |n: &str| new.indexes.iter().any(|i| i.name == n);
    let has_check = |n: &str| new.checks.iter().any(|c| c.name == n);
    let mut out: Vec<String> = old
        .indexes
        .iter()
        .filter(|ix| !has_index(&renamed(&ix.name)))
        .map(|ix| format!("index {} ({})", ix.name, ix.definition))
        .collect();
    out.extend(
        old.checks
            .iter()
            .filter(|ck| !has_check(&renamed(&ck.name)))
            .map(|ck| format!("check constraint {} ({})", ck.name, ck.definition)),
    );
    // The expand refuses every one of these, so each was made after it.
    out.extend(old.foreign_keys.iter().map(|f| f.described.clone()));
    out.extend(old.blockers.iter().map(|b| of_column(b, &old.column)));
    if old.data_type != new.data_type || old.collation != new.collation {
        out.push(format!(
            "the type: {} is {}{} but {} is {}{} (changed on one name after the expand)",
            old.column,
            old.data_type,
            old.collation
                .as_deref()
                .map(|c| format!(" COLLATE {c}"))
                .unwrap_or_default(),
            new.column,
            new.data_type,
            new.collation
                .as_deref()
                .map(|c| format!(" COLLATE {c}"))
                .unwrap_or_default(),
        ));
    }
    if old.not_null != new.not_null {
        out.push(format!(
            "NOT NULL: {} is {} but {} is {} (changed on one name after the expand)",
            old.column,
            if old.not_null { "NOT NULL" } else { "nullable" },
            new.column,
            if new.not_null { "NOT NULL" } else { "nullable" },
        ));
    }
    out
}

/// A catalog fact about "the column" (`… depends on it`), said of the column by name.
fn of_column(fact: &str, column: &str) -> String {
    match fact.strip_suffix(" depends on it") {
        Some(what) => format!("{what} depends on {column}"),
        None => fact.replace("the column", column),
    }
}

/// At `rollback` of an expanded rename: what the new column carries that is not sluice's own
/// copy (made after the expand: a later migration's index, check, key, view or policy on the new
/// name, or one made by hand). The rollback drops the new column and, with it, each of these.
pub fn not_copies(new: &ColumnCatalog) -> Vec<String> {
    let ours = |n: &str| n.ends_with("_sluice_renamed") || n.ends_with("_sluice_not_null");
    let mut out: Vec<String> = new
        .indexes
        .iter()
        .filter(|ix| !ours(&ix.name))
        .map(|ix| format!("index {} ({})", ix.name, ix.definition))
        .collect();
    out.extend(
        new.checks
            .iter()
            .filter(|ck| !ours(&ck.name))
            .map(|ck| format!("check constraint {} ({})", ck.name, ck.definition)),
    );
    out.extend(new.foreign_keys.iter().map(|f| f.described.clone()));
    // A sequence the new column owns (OWNED BY, serial, identity) goes with it.
    out.extend(
        new.owned_sequence
            .iter()
            .map(|(s, n)| format!("sequence {s}.{n} owned by {}", new.column)),
    );
    out.extend(new.identity.iter().map(|i| {
        format!(
            "identity sequence {}.{} of {}",
            i.schema, i.name, new.column
        )
    }));
    // What depends on the column itself (the table-level facts are the old column's too).
    out.extend(
        new.blockers
            .iter()
            .filter(|b| b.ends_with(" depends on it") || b.contains("privileges of its own"))
            .map(|b| of_column(b, &new.column)),
    );
    out
}

/// The phases of an expanded rename for `complete` and `rollback`, from both columns' live
/// catalogs: what `uncopied` finds refuses `complete`, what `not_copies` finds refuses
/// `rollback` (each before anything runs), and the phases are planned from what the expand
/// carried, so that the other way out stays open.
pub fn expanded_phases(
    st: &crate::analysis::ir::Stmt,
    old: &ColumnCatalog,
    new: &ColumnCatalog,
) -> Result<Phases, String> {
    let lost = uncopied(old, new);
    let ours = not_copies(new);
    let mut carried = old.clone();
    let has_index = |n: &str| new.indexes.iter().any(|i| i.name == n);
    let has_check = |n: &str| new.checks.iter().any(|c| c.name == n);
    carried.indexes.retain(|ix| has_index(&renamed(&ix.name)));
    carried.checks.retain(|ck| has_check(&renamed(&ck.name)));
    carried.foreign_keys.clear();
    carried.blockers.clear();
    carried.not_null = new.not_null;
    // Guards of the expand itself: both ways out drop the sync trigger first.
    carried.before_triggers.clear();
    let mut p = phases(st, &carried, &new.column)?;
    let (a, b) = (&old.column, &new.column);
    if !lost.is_empty() {
        p.complete_refusal = Some(format!(
            "{a} carries what the expand phase did not copy to {b} (made after it): {}. The contract drops {a}, and with it each of these (or fails on it). Make each on {b} instead (an index: `CREATE INDEX CONCURRENTLY … ({b})` in a new migration; NOT NULL: the same on both names) and drop the one on {a}, then run `sluice complete` again; or `sluice rollback`, then `sluice up` to expand anew, which copies the indexes and checks {a} has then",
            lost.join("; ")
        ));
    }
    if !ours.is_empty() {
        p.rollback_refusal = Some(format!(
            "{b} carries what the expand phase did not make (a later migration's or made by hand): {}. The rollback drops {b}, and with it each of these. Drop them first (`sluice down` for a migration that made them), then run `sluice rollback` again",
            ours.join("; ")
        ));
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{CheckFacts, IndexFacts};

    fn stmt(sql: &str) -> crate::analysis::ir::Stmt {
        use crate::target::EngineKind;
        let s = crate::sql::split(EngineKind::Postgres, sql)
            .unwrap()
            .remove(0);
        crate::analysis::ir::build(EngineKind::Postgres, 0, &s, 0, &s.sql)
    }

    fn cat() -> ColumnCatalog {
        ColumnCatalog {
            schema: "public".into(),
            table: "t".into(),
            column: "a".into(),
            data_type: "text".into(),
            not_null: true,
            default: Some("'x'::text".into()),
            indexes: vec![
                IndexFacts {
                    name: "t_a_key".into(),
                    definition: "CREATE UNIQUE INDEX t_a_key ON public.t USING btree (a)".into(),
                    constraint: Some(("t_a_key".into(), 'u', false, false)),
                    ..Default::default()
                },
                IndexFacts {
                    name: "t_lower".into(),
                    definition: "CREATE INDEX t_lower ON public.t USING btree (lower(a))".into(),
                    ..Default::default()
                },
            ],
            checks: vec![CheckFacts {
                name: "t_a_check".into(),
                definition: "CHECK ((length(a) < 10))".into(),
                validated: true,
            }],
            server_version: 150000,
            ..Default::default()
        }
    }

    #[test]
    fn phases_of_a_rename_with_keys_checks_and_not_null() {
        let p = phases(&stmt("ALTER TABLE t RENAME COLUMN a TO b"), &cat(), "b").unwrap();
        let steps = p.expand_steps();
        assert_eq!(steps.len(), p.expand.len());
        let sql: Vec<&str> = steps.iter().map(|s| s.sql.as_str()).collect();
        assert_eq!(
            sql[0],
            "ALTER TABLE \"public\".\"t\" ADD COLUMN IF NOT EXISTS \"b\" text"
        );
        assert!(sql[1].contains("CREATE TRIGGER \"zz_t_a_sluice_rename\" BEFORE INSERT OR UPDATE ON \"public\".\"t\""), "{}", sql[1]);
        assert_eq!(steps[2].effect, Effect::Backfill);
        assert_eq!(
            sql[3],
            "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS \"t_a_key_sluice_renamed\" ON \"public\".\"t\" USING btree (\"b\")"
        );
        assert!(!steps[3].transactional);
        assert!(sql[4].contains("USING btree (lower(\"b\"))"), "{}", sql[4]);
        // Statistics for the new column after its index builds (issue 16).
        assert_eq!(sql[5], "ANALYZE \"public\".\"t\" (\"b\")");
        assert_eq!(steps[5].lock, "SHARE UPDATE EXCLUSIVE");
        assert!(
            sql[6].contains("CHECK ((length(\"b\") < 10)) NOT VALID"),
            "{}",
            sql[6]
        );
        assert!(sql.last().unwrap().contains("SET NOT NULL"));
        let complete = p.complete.join("; ");
        for part in [
            "ALTER TABLE \"public\".\"t\" ALTER COLUMN \"b\" SET DEFAULT 'x'::text",
            "ALTER TABLE \"public\".\"t\" DROP COLUMN \"a\"",
            "ADD CONSTRAINT \"t_a_key\" UNIQUE USING INDEX \"t_a_key_sluice_renamed\"",
            "ALTER INDEX \"public\".\"t_lower_sluice_renamed\" RENAME TO \"t_lower\"",
            "RENAME CONSTRAINT \"t_a_check_sluice_renamed\" TO \"t_a_check\"",
        ] {
            assert!(complete.contains(part), "{part}: {complete}");
        }
        // The trigger goes before the old column; the default comes before the drop too.
        assert!(complete.starts_with("DROP TRIGGER"));
        assert!(p
            .rollback
            .iter()
            .any(|s| s.contains("DROP COLUMN IF EXISTS \"b\"")));
        assert_eq!(p.sees.len(), 4);
    }

    #[test]
    fn refuses_what_the_phases_cannot_carry() {
        let st = stmt("ALTER TABLE t RENAME COLUMN a TO b");
        let refused = |f: &dyn Fn(&mut ColumnCatalog)| {
            let mut c = cat();
            f(&mut c);
            phases(&st, &c, "b").unwrap_err()
        };
        assert!(refused(&|c| c.blockers.push("view v depends on it".into())).contains("view v"));
        assert!(refused(&|c| c.server_version = 110000).contains("PostgreSQL 12"));
        assert!(refused(&|c| c.identity = Some(Default::default())).contains("identity"));
        assert!(refused(&|c| c.before_triggers.push("zzz".into())).contains("fires after"));
        assert!(phases(
            &stmt("ALTER TABLE ONLY t RENAME COLUMN a TO b"),
            &cat(),
            "b"
        )
        .is_err());
    }
}
