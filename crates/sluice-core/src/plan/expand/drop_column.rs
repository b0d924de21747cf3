//! `ALTER TABLE t DROP COLUMN c` in two phases (PostgreSQL), from what the live catalog says the
//! column carries.
//!
//! Expand (`sluice up`): the column stays, so the old version keeps reading and writing it. A NOT
//! NULL column without a default (nor identity, nor generation) loses its NOT NULL, so that the
//! new version's INSERTs that leave it out work; sluice records that in `sluice.meta` in the same
//! transaction, so that rollback restores exactly what expand changed. Any other column needs no
//! change at all.
//!
//! Contract (`sluice complete`): the statement as written, in one short transaction (with CASCADE
//! it also drops what depends on the column; `plan` lists it).
//!
//! Rollback (`sluice rollback`, before complete): NOT NULL comes back in the staged form (a CHECK
//! added NOT VALID, validated without blocking, then SET NOT NULL proven by it and the check
//! dropped), refused with the number of NULL rows when the new version wrote any.

use super::super::helper_name;
use super::super::staged::{do_block, About, Step};
use super::Phases;
use crate::analysis::ir::QName;
use crate::engine::ColumnCatalog;
use crate::quote::pg::{ident, literal, qualified};

/// One column the statement drops, as the live catalog has it.
#[derive(Clone)]
pub struct Column {
    pub name: String,
    pub if_exists: bool,
    /// None: the column does not exist.
    pub cat: Option<ColumnCatalog>,
    /// `sluice.meta` says an expand phase of this migration dropped its NOT NULL.
    pub not_null_dropped: bool,
}

/// The `sluice.meta` key that records that the expand phase of migration `version` dropped the
/// NOT NULL of `schema.table.column`.
pub fn meta_key(version: i64, schema: &str, table: &str, column: &str) -> String {
    format!("expand {version}: NOT NULL dropped from {schema}.{table}.{column}")
}

/// The prefix of every such key of migration `version`.
pub fn meta_prefix(version: i64) -> String {
    format!("expand {version}: NOT NULL dropped from ")
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// The check that proves NOT NULL again during rollback.
pub(super) fn check_name(cat: &ColumnCatalog) -> String {
    helper_name(&cat.table, &cat.column, "sluice_not_null")
}

/// The phases of the DROP COLUMN `sql` (the statement as written) of migration `version`.
/// Err: why it cannot run in two phases (it is then refused; `--as-written` runs it in one).
pub fn phases(
    table: &QName,
    sql: &str,
    version: i64,
    cascade: bool,
    columns: &[Column],
) -> Result<Phases, String> {
    let mut expand = Vec::new();
    let mut about = Vec::new();
    let mut rollback_guard = Vec::new();
    let mut rollback_prepare = Vec::new();
    let mut rollback_undo = Vec::new();
    let mut rollback = Vec::new();
    let mut complete = vec![sql.trim().trim_end_matches(';').trim().to_string()];
    let mut gone: Vec<String> = Vec::new();
    let mut omit_notes: Vec<String> = Vec::new();
    // What the old version reads in each column for the rows the new version inserts.
    let mut old_version: Vec<String> = Vec::new();
    let mut restored: Vec<String> = Vec::new();
    for col in columns {
        let Some(cat) = &col.cat else {
            if col.if_exists {
                omit_notes.push(format!(
                    "{} does not exist: IF EXISTS makes its drop a no-op",
                    col.name
                ));
                continue;
            }
            return Err(format!(
                "column {} of {table} does not exist, so the DROP COLUMN as written fails",
                col.name
            ));
        };
        let blocking: Vec<&str> = cat
            .dependents
            .iter()
            .filter(|d| d.needs_cascade)
            .map(|d| d.described.as_str())
            .collect();
        if !cascade && !blocking.is_empty() {
            return Err(format!(
                "{} depend{} on column {}, so the DROP COLUMN as written fails at `sluice complete`: add CASCADE (complete then drops {} too) or drop {} first",
                blocking.join(", "),
                if blocking.len() == 1 { "s" } else { "" },
                col.name,
                if blocking.len() == 1 { "it" } else { "them" },
                if blocking.len() == 1 { "it" } else { "them" },
            ));
        }
        gone.extend(cat.dependents.iter().map(|d| d.described.clone()));
        let t = qualified(&cat.schema, &cat.table);
        let c = ident(&cat.column);
        let needs_drop =
            cat.not_null && cat.default.is_none() && cat.identity.is_none() && !cat.generated;
        let col_name = format!("{}.{}.{}", cat.schema, cat.table, cat.column);
        if !(needs_drop || col.not_null_dropped) {
            // A generated column holds what it computes for every row: nothing to state.
            if !cat.generated {
                let value = match (&cat.identity, &cat.default, &cat.domain_default) {
                    (Some(_), _, _) => "the next identity value".to_string(),
                    (None, Some(d), _) => format!("its default ({d})"),
                    // A domain's default stands in where the column has none of its own.
                    (None, None, Some(d)) => format!("its type's default ({d}, the domain's)"),
                    (None, None, None) => "NULL".to_string(),
                };
                old_version.push(super::super::old_version::dropped_column(&col_name, &value));
            }
            omit_notes.push(match (cat.not_null, &cat.default) {
                (_, _) if cat.generated => format!("{} is generated: nobody writes it", col.name),
                (_, _) if cat.identity.is_some() => {
                    format!("{} is an identity column: an INSERT that leaves it out gets the next value", col.name)
                }
                (_, Some(d)) => format!("an INSERT that leaves {} out gets its default ({d})", col.name),
                (false, None) => format!("an INSERT that leaves {} out stores NULL", col.name),
                (true, None) => unreachable!("needs_drop"),
            });
            continue;
        }
        if cat
            .indexes
            .iter()
            .any(|i| matches!(i.constraint, Some((_, 'p', ..))))
        {
            return Err(format!(
                "column {} is NOT NULL without a default and in the primary key: the new version cannot leave it out of its INSERTs, so there is no window in which both versions work",
                col.name
            ));
        }
        if cat.inheritance {
            return Err(format!(
                "column {} is NOT NULL without a default and the table is partitioned, a partition or inherits: dropping and restoring its NOT NULL across the hierarchy is not carried yet",
                col.name
            ));
        }
        if cat.server_version < 120000 {
            return Err(
                "restoring NOT NULL on rollback needs PostgreSQL 12 (NOT NULL proven by a validated check)".into(),
            );
        }
        let key = literal(&meta_key(version, &cat.schema, &cat.table, &cat.column));
        expand.push(Step::Sql(format!(
            "ALTER TABLE {t} ALTER COLUMN {c} DROP NOT NULL; INSERT INTO sluice.meta (key, value) VALUES ({key}, '') ON CONFLICT (key) DO NOTHING"
        )));
        about.push(About::catalog(
            "drop the column's NOT NULL (catalog only; recorded in sluice.meta in the same transaction): the new version's INSERTs may leave the column out",
        ));
        omit_notes.push(format!(
            "an INSERT that leaves {} out stores NULL (its NOT NULL is dropped until complete)",
            col.name
        ));
        old_version.push(super::super::old_version::dropped_column(
            &col_name,
            "NULL (a NOT NULL column: its NOT NULL is dropped until complete)",
        ));
        restored.push(col.name.clone());

        // Rollback: refuse NULLs, then NOT NULL in the staged form.
        rollback_guard.push((
            col.name.clone(),
            format!("SELECT count(*) FROM {t} WHERE {c} IS NULL"),
        ));
        let check = check_name(cat);
        let (lt, lcheck, qcheck) = (literal(&t), literal(&check), ident(&check));
        rollback_prepare.push((
            Step::Sql(do_block(&format!(
                "BEGIN IF NOT EXISTS (SELECT FROM pg_constraint WHERE conrelid = {lt}::regclass AND conname = {lcheck}) THEN ALTER TABLE {t} ADD CONSTRAINT {qcheck} CHECK ({c} IS NOT NULL) NOT VALID; END IF; END"
            ))),
            About::catalog("NOT NULL as a check for new rows only (catalog only)"),
        ));
        rollback_prepare.push((
            Step::Sql(format!("ALTER TABLE {t} VALIDATE CONSTRAINT {qcheck}")),
            About::validate("validate it (reads and writes continue)"),
        ));
        rollback_undo.push(format!(
            "ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qcheck}"
        ));
        // SET NOT NULL only with the valid check (no scan under the lock); never forget a
        // dropped NOT NULL without restoring it.
        rollback.push(do_block(&format!(
            "BEGIN IF EXISTS (SELECT FROM pg_constraint WHERE conrelid = {lt}::regclass AND conname = {lcheck} AND convalidated) THEN ALTER TABLE {t} ALTER COLUMN {c} SET NOT NULL; ELSIF EXISTS (SELECT FROM sluice.meta WHERE key = {key}) THEN RAISE EXCEPTION {}; END IF; END",
            literal(&format!("NOT NULL of {} is not proven by a valid check: run `sluice rollback` again", cat.column))
        )));
        rollback.push(format!(
            "ALTER TABLE {t} DROP CONSTRAINT IF EXISTS {qcheck}"
        ));
        rollback.push(format!("DELETE FROM sluice.meta WHERE key = {key}"));
    }
    complete.push(format!(
        "DELETE FROM sluice.meta WHERE starts_with(key, {})",
        literal(&meta_prefix(version))
    ));

    let names = columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let also = if gone.is_empty() {
        String::new()
    } else {
        format!(
            " The drop {} with it: {}.",
            if cascade {
                "(CASCADE) also removes"
            } else {
                "also removes"
            },
            gone.join(", ")
        )
    };
    let sees = vec![
        (
            "before".into(),
            format!("the old version reads and writes {names}; the new version, which leaves {names} out, must not run yet where its INSERTs would fail (NOT NULL without a default)"),
        ),
        (
            "expanded (after `sluice up`)".into(),
            format!(
                "both versions run, nothing is dropped yet: the old version reads and writes {names} as before, the new version leaves {names} out. {}. Rows the new version inserts show that value to the old version.",
                capitalized(&omit_notes.join("; "))
            ),
        ),
        (
            "completed (after `sluice complete`)".into(),
            format!("only the new version may run: {names} {} gone and queries naming {} fail, as the DROP COLUMN as written leaves the table.{also}", if columns.len() > 1 { "are" } else { "is" }, if columns.len() > 1 { "them" } else { "it" }),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            if restored.is_empty() {
                "only the old version may run: the table is as before the migration (expand changed nothing)".to_string()
            } else {
                format!("only the old version may run: {} NOT NULL again, as before the migration; refused (exit 11, nothing changed) while rows the new version inserted hold NULL there: backfill them, then run `sluice rollback` again", restored.join(", ") + if restored.len() > 1 { " are" } else { " is" })
            },
        ),
    ];

    // A column whose type refuses NULL by itself (a domain's NOT NULL or CHECK) and gives no
    // default: dropping the column's NOT NULL does not let the new version's INSERTs leave it out.
    let precheck = columns
        .iter()
        .filter_map(|col| col.cat.as_ref().map(|cat| (col, cat)))
        .map(|(col, cat)| {
            let t = qualified(&cat.schema, &cat.table);
            do_block(&format!(
                "DECLARE ty regtype; BEGIN SELECT a.atttypid::regtype INTO ty FROM pg_attribute a JOIN pg_type y ON y.oid = a.atttypid WHERE a.attrelid = {}::regclass AND a.attname = {} AND NOT a.atthasdef AND y.typtype = 'd' AND y.typdefaultbin IS NULL; IF ty IS NOT NULL THEN BEGIN EXECUTE format('SELECT NULL::%s', ty); EXCEPTION WHEN not_null_violation OR check_violation THEN RAISE EXCEPTION {} USING ERRCODE = 'feature_not_supported'; END; END IF; END",
                literal(&t),
                literal(&col.name),
                literal(&format!("the type of column {} is a domain that does not allow NULL and has no default: while expanded, the new version's INSERTs that leave {} out would fail; give the column a default first (`ALTER TABLE … ALTER COLUMN … SET DEFAULT …`, in a migration of its own), or drop it with `sluice up --as-written`", col.name.replace('%', "%%"), col.name.replace('%', "%%")))
            ))
        })
        .collect();
    Ok(Phases {
        precheck,
        precheck_refusal: None,
        expand,
        expand_about: about,
        expand_atomic: false,
        complete,
        rollback,
        rollback_refusal: None,
        complete_refusal: None,
        complete_online: None,
        rollback_guard,
        guard: super::Guard::NotNull,
        rollback_prepare,
        rollback_undo,
        sees,
        complete_description: "`sluice complete`: the DROP COLUMN as written, in one short transaction (and sluice's note of what expand changed is removed)",
        rollback_description: "`sluice rollback` (before complete): refused while the column holds NULLs (exit 11); else NOT NULL back in the staged form: CHECK ... NOT VALID, VALIDATE (no blocking), then in one short transaction SET NOT NULL (proven by the check, no scan) and drop the check",
        expand_locks: vec![],
        phase_lock: None,
        rollback_lock: None,
        watch: None,
        old_version,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Dependent, IndexFacts};

    fn cat(column: &str, not_null: bool, default: Option<&str>) -> ColumnCatalog {
        ColumnCatalog {
            schema: "public".into(),
            table: "t".into(),
            column: column.into(),
            data_type: "text".into(),
            not_null,
            default: default.map(str::to_string),
            server_version: 150000,
            ..Default::default()
        }
    }

    fn col(c: ColumnCatalog) -> Column {
        Column {
            name: c.column.clone(),
            if_exists: false,
            cat: Some(c),
            not_null_dropped: false,
        }
    }

    fn t() -> QName {
        QName {
            schema: None,
            name: "t".into(),
        }
    }

    #[test]
    fn only_a_not_null_column_without_default_changes_in_expand() {
        let sql = "ALTER TABLE t DROP COLUMN a, DROP COLUMN b, DROP COLUMN c";
        let p = phases(
            &t(),
            sql,
            7,
            false,
            &[
                col(cat("a", true, None)),
                col(cat("b", true, Some("'x'::text"))),
                col(cat("c", false, None)),
            ],
        )
        .unwrap();
        assert_eq!(p.expand.len(), 1);
        let s = p.expand[0].text();
        assert!(s.starts_with("ALTER TABLE \"public\".\"t\" ALTER COLUMN \"a\" DROP NOT NULL; INSERT INTO sluice.meta"), "{s}");
        assert!(
            s.contains("expand 7: NOT NULL dropped from public.t.a"),
            "{s}"
        );
        assert_eq!(p.complete[0], sql);
        assert_eq!(
            p.complete[1],
            "DELETE FROM sluice.meta WHERE starts_with(key, 'expand 7: NOT NULL dropped from ')"
        );
        assert_eq!(p.rollback_guard.len(), 1);
        assert_eq!(p.rollback_guard[0].0, "a");
        assert_eq!(p.rollback_prepare.len(), 2);
        assert!(p.rollback_prepare[0]
            .0
            .text()
            .contains("CHECK (\"a\" IS NOT NULL) NOT VALID"));
        assert!(p.rollback_prepare[1]
            .0
            .text()
            .contains("VALIDATE CONSTRAINT \"t_a_sluice_not_null\""));
        assert!(p.rollback[0].contains("SET NOT NULL"));
        // A rerun after expand dropped it: the note says so, the step runs again (idempotent).
        let mut again = col(cat("a", false, None));
        again.not_null_dropped = true;
        let p2 = phases(&t(), sql, 7, false, &[again]).unwrap();
        assert_eq!(p2.expand[0].text(), s);
        // Nothing to change: an empty expand phase, an empty rollback.
        let p3 = phases(&t(), sql, 7, false, &[col(cat("c", false, None))]).unwrap();
        assert!(p3.expand.is_empty() && p3.rollback.is_empty() && p3.rollback_guard.is_empty());
    }

    #[test]
    fn refuses_what_the_phases_cannot_carry() {
        let sql = "ALTER TABLE t DROP COLUMN a";
        let view = |cascade| {
            let mut c = cat("a", false, None);
            c.dependents.push(Dependent {
                described: "view v".into(),
                needs_cascade: true,
            });
            phases(&t(), sql, 1, cascade, &[col(c)])
        };
        assert!(view(false)
            .unwrap_err()
            .contains("view v depends on column a"));
        let p = view(true).unwrap();
        assert!(p.sees[2].1.contains("view v"), "{:?}", p.sees);
        let missing = Column {
            name: "zz".into(),
            if_exists: false,
            cat: None,
            not_null_dropped: false,
        };
        assert!(phases(&t(), sql, 1, false, &[missing])
            .unwrap_err()
            .contains("does not exist"));
        let missing = Column {
            name: "zz".into(),
            if_exists: true,
            cat: None,
            not_null_dropped: false,
        };
        assert!(phases(&t(), sql, 1, false, &[missing])
            .unwrap()
            .expand
            .is_empty());
        let mut pk = cat("a", true, None);
        pk.indexes.push(IndexFacts {
            name: "t_pkey".into(),
            constraint: Some(("t_pkey".into(), 'p', false, false)),
            ..Default::default()
        });
        assert!(phases(&t(), sql, 1, false, &[col(pk)])
            .unwrap_err()
            .contains("primary key"));
        let mut old = cat("a", true, None);
        old.server_version = 110000;
        assert!(phases(&t(), sql, 1, false, &[col(old)])
            .unwrap_err()
            .contains("PostgreSQL 12"));
    }
}
