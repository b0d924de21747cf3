//! `DROP TABLE [IF EXISTS] a [CASCADE]` in two phases (PostgreSQL), the migration's only
//! statement: the table rename of [`super::rename_table`] with sluice's name for the table
//! (`<a>_sluice_dropped`) as the new name.
//!
//! Expand (`sluice up`): in one short transaction committed with the `expanded` record, the table
//! is renamed to `<a>_sluice_dropped` and a view `a` over every column stands in for it (the
//! table's grants copied, `security_invoker` from PostgreSQL 15), so the old version keeps
//! reading and writing `a`. Contract (`sluice complete`): the view and the table are dropped in
//! one short transaction (CASCADE when the statement has it): what the DROP TABLE as written
//! leaves. Rollback (before complete): the rename's (drop the view, rename the table back).
//!
//! Refused before anything runs: whatever the rename refuses, and what the DROP TABLE as written
//! would fail on (other objects that depend on the table, without CASCADE), a partition or
//! inheritance child (until complete, its parent would still show the rows the DROP TABLE as
//! written removes from it at once), and a published table (a subscriber applies changes by the
//! table's name: under sluice's name they would stop it). A missing table under IF EXISTS: nothing in either phase.

use super::rename_table::{self, TableFacts};
use super::Phases;
use crate::quote::pg::literal;

/// The name the table has between expand and complete.
pub fn dropped_name(from: &str) -> String {
    super::rename_table_mysql::dropped_name(from)
}

/// What stands in the way of dropping table `from` (quoted SQL name) in two phases, one row each:
/// (`dependent`, `parent` or `published`, what, in words): what depends on the table, its row
/// type or the sequences it owns (serial), other than its own parts; its parent; the publications
/// that send it. Nothing when `from` is not a table (a stand-in view once expanded).
pub fn obstacles_sql(from: &str) -> String {
    format!(
        "WITH t AS (SELECT c.oid, c.reltype, c.relispartition FROM pg_class c WHERE c.oid = to_regclass({from}) AND c.relkind IN ('r', 'p')) \
         SELECT DISTINCT 'dependent', CASE WHEN d.classid = 'pg_rewrite'::regclass THEN (SELECT CASE WHEN r.rulename = '_RETURN' THEN CASE v.relkind WHEN 'm' THEN 'materialized view ' ELSE 'view ' END || v.oid::regclass::text ELSE 'rule ' || quote_ident(r.rulename::text) || ' on ' || v.oid::regclass::text END FROM pg_rewrite r JOIN pg_class v ON v.oid = r.ev_class WHERE r.oid = d.objid) ELSE pg_describe_object(d.classid, d.objid, d.objsubid) END \
         FROM pg_depend d, t WHERE d.deptype = 'n' \
         AND ((d.refclassid = 'pg_class'::regclass AND d.refobjid = t.oid) OR (d.refclassid = 'pg_type'::regclass AND d.refobjid = t.reltype) \
         OR (d.refclassid = 'pg_class'::regclass AND d.refobjid IN (SELECT s.objid FROM pg_depend s JOIN pg_class q ON q.oid = s.objid AND q.relkind = 'S' WHERE s.classid = 'pg_class'::regclass AND s.refclassid = 'pg_class'::regclass AND s.refobjid = t.oid AND s.deptype IN ('a', 'i')))) \
         AND NOT (d.classid = 'pg_constraint'::regclass AND EXISTS (SELECT FROM pg_constraint k WHERE k.oid = d.objid AND k.conrelid = t.oid)) \
         AND NOT (d.classid = 'pg_attrdef'::regclass AND EXISTS (SELECT FROM pg_attrdef a WHERE a.oid = d.objid AND a.adrelid = t.oid)) \
         AND NOT (d.classid = 'pg_rewrite'::regclass AND EXISTS (SELECT FROM pg_rewrite r WHERE r.oid = d.objid AND r.ev_class = t.oid)) \
         UNION ALL SELECT 'parent', CASE WHEN t.relispartition THEN 'a partition of ' ELSE 'a child of ' END || i.inhparent::regclass::text FROM pg_inherits i, t WHERE i.inhrelid = t.oid \
         UNION ALL SELECT 'references', quote_ident(k.conname::text) || ' (to ' || k.confrelid::regclass::text || ')' FROM pg_constraint k, t WHERE k.conrelid = t.oid AND k.contype = 'f' AND k.confrelid <> t.oid \
         UNION ALL SELECT 'published', quote_ident(p.pubname::text) FROM pg_publication_tables p JOIN pg_namespace n ON n.nspname = p.schemaname JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename JOIN t ON t.oid = c.oid \
         ORDER BY 1, 2",
        from = literal(from)
    )
}

/// What the live catalog says beyond the rename's facts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropFacts {
    pub if_exists: bool,
    pub cascade: bool,
    /// Other objects that depend on the table (views, other tables' foreign keys, inheritance
    /// children, functions, rules of other tables, ...), in words.
    pub dependents: Vec<String>,
    /// The table's parent: `a partition of p` or `a child of p`.
    pub parents: Vec<String>,
    /// The publications that send the table (logical replication).
    pub publications: Vec<String>,
    /// The table's own foreign keys to other tables: `name (to other)`.
    pub references: Vec<String>,
}

/// [`DropFacts`]'s lists from the rows of [`obstacles_sql`].
pub fn obstacles(rows: &[Vec<Option<String>>], d: &mut DropFacts) {
    for r in rows {
        let (Some(Some(kind)), Some(Some(what))) = (r.first(), r.get(1)) else {
            continue;
        };
        match kind.as_str() {
            "dependent" => d.dependents.push(what.clone()),
            "published" => d.publications.push(what.clone()),
            "references" => d.references.push(what.clone()),
            _ => d.parents.push(what.clone()),
        }
    }
}

/// The phases of dropping table `table` (as written, for messages) in two phases; `f`: the
/// rename's facts for the table and [`dropped_name`] (None: no such table). Err: why it cannot
/// run in two phases (refused; `--as-written` runs it in one).
pub fn phases(
    st: &crate::analysis::ir::Stmt,
    table: &str,
    f: Option<&TableFacts>,
    d: &DropFacts,
) -> Result<Phases, String> {
    let Some(f) = f else {
        if d.if_exists {
            return Ok(nothing(table));
        }
        // What the statement as written says.
        return Err(format!("table \"{table}\" does not exist"));
    };
    if !f.expanded {
        if !d.parents.is_empty() {
            return Err(format!(
                "the table is {}: until `sluice complete` the parent would still show the rows that the DROP TABLE as written removes from it at once (run it with `sluice up --as-written`, or detach it first in a migration of its own)",
                d.parents.join(", ")
            ));
        }
        if !d.publications.is_empty() {
            return Err(format!(
                "the table is published (publication {}): a subscriber applies its changes by the table's name, so its changes under sluice's name while expanded would stop the subscription (the DROP TABLE as written only stops sending it; run it with `sluice up --as-written`, or take it out of the publication first in a migration of its own)",
                d.publications.join(", ")
            ));
        }
        // Other tables' foreign keys: CASCADE drops them with the table as written, at once;
        // while expanded they would still check those tables' writes against the hidden table
        // (the new version's inserts there would fail). Refused even with CASCADE.
        let keys: Vec<&String> = d
            .dependents
            .iter()
            .filter(|w| w.starts_with("constraint "))
            .collect();
        if !keys.is_empty() {
            return Err(format!(
                "{} reference(s) the table: {} (drop those foreign keys first, in a migration of their own)",
                keys.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(", "),
                if d.cascade {
                    "while expanded they would still check those tables' writes against it, where the DROP TABLE ... CASCADE as written removes them at once"
                } else {
                    "the DROP TABLE as written fails on them"
                }
            ));
        }
        if !d.cascade && !d.dependents.is_empty() {
            return Err(format!(
                "{} depend(s) on the table: its contract, the DROP TABLE, would fail on them as the statement as written does (drop them first, in a migration of their own, or write CASCADE to drop them with the table at `sluice complete`)",
                d.dependents.join(", ")
            ));
        }
    }
    let mut p = rename_table::phases(st, f)?;
    let (old, new) = (
        crate::quote::pg::qualified(&f.schema, &f.from),
        crate::quote::pg::qualified(&f.schema, &f.to),
    );
    // Only when the table was renamed away: a `DROP TABLE IF EXISTS` of a table that did not
    // exist expanded nothing, and a table made with the name since is not sluice's to drop.
    p.complete = vec![crate::plan::staged::do_block(&format!(
        "BEGIN IF to_regclass({}) IS NOT NULL THEN DROP VIEW {old}; DROP TABLE {new}{}; END IF; END",
        crate::quote::pg::literal(&new),
        if d.cascade { " CASCADE" } else { "" }
    ))];
    p.expand_about = vec![super::super::staged::About::catalog(
        "rename the table to sluice's name and create a view with its name over it (catalog only, one short transaction committed with the `expanded` record): the old version keeps using it",
    )];
    p.complete_description = "`sluice complete`: drop the view with the table's name, then the table behind it (what the DROP TABLE as written drops), in one short transaction";
    p.rollback_description = "`sluice rollback` (before complete): drop the view and rename the table back, in one short transaction";
    p.sees = sees(&f.from, &f.to, d);
    Ok(p)
}

/// DROP TABLE IF EXISTS of a missing table: nothing to do in either phase.
fn nothing(table: &str) -> Phases {
    Phases {
        precheck: vec![],
        precheck_refusal: None,
        expand: vec![],
        expand_about: vec![],
        expand_atomic: true,
        complete: vec![],
        rollback: vec![],
        rollback_refusal: None,
        complete_refusal: None,
        complete_online: None,
        rollback_guard: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees: vec![(
            "every stage".into(),
            format!("table {table} does not exist (DROP TABLE IF EXISTS): nothing changes for either version"),
        )],
        complete_description: "`sluice complete`: nothing to drop (the table does not exist); record it",
        rollback_description: "`sluice rollback`: nothing to undo (the table does not exist)",
        expand_locks: vec![],
        phase_lock: None,
        rollback_lock: None,
        watch: None,
        old_version: vec![],
    }
}

fn sees(a: &str, b: &str, d: &DropFacts) -> Vec<(String, String)> {
    let cascade = d.cascade;
    // Its own foreign keys stay with the hidden table until complete (the old version's writes
    // are checked): the referenced tables' deletes and key updates meet them, as written not.
    let keys = if d.references.is_empty() {
        String::new()
    } else {
        format!(
            ". The table's own foreign keys stay until `sluice complete` ({}): until then a DELETE or key UPDATE of a row they reference fails as it did before (or cascades into {b} as declared), where the DROP TABLE as written lets it through at once",
            d.references.join(", ")
        )
    };
    vec![
        (
            "before".into(),
            format!("the old version reads and writes table {a}; the new version does not use it"),
        ),
        (
            "expanded (after `sluice up`)".into(),
            format!(
                "both versions run: the table is {b} (sluice's name), the old version uses view {a} over it (every column; SELECT, INSERT with the table's defaults, UPDATE, DELETE, RETURNING, SELECT ... FOR UPDATE and INSERT ... ON CONFLICT (columns) work through it, with the table's privileges; the table's triggers and rules fire, foreign keys are checked). Through {a} the old version cannot: TRUNCATE, COPY {a} FROM/TO (COPY (SELECT ...) TO works), ON CONFLICT ON CONSTRAINT <name>, ALTER TABLE or other DDL, system columns (ctid), ONLY {a}. The new version does not use {a}{keys}"
            ),
        ),
        (
            "completed (after `sluice complete`)".into(),
            format!(
                "only the new version may run: view {a} and table {b} are dropped (the rows are gone{}), as the DROP TABLE as written leaves the database",
                if cascade { ", and what depends on the table with them (CASCADE)" } else { "" }
            ),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!("the table is {a} again (pg_dump as before the migration, with every row written meanwhile) and the view is gone"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::EngineKind;

    fn stmt(sql: &str) -> crate::analysis::ir::Stmt {
        let s = crate::sql::split(EngineKind::Postgres, sql).unwrap();
        crate::analysis::ir::build(EngineKind::Postgres, 0, &s[0], 0, &s[0].sql)
    }

    fn facts() -> TableFacts {
        TableFacts {
            schema: "app".into(),
            from: "Old T".into(),
            to: dropped_name("Old T"),
            columns: vec!["id".into(), "Name".into()],
            owner: "o".into(),
            current_user: "o".into(),
            grants: vec![("app_rw".into(), "SELECT".into(), false)],
            server_version: 150004,
            ..Default::default()
        }
    }

    #[test]
    fn expand_is_the_renames_with_sluices_name_and_complete_drops_both() {
        let st = stmt("DROP TABLE app.\"Old T\"");
        let p = phases(&st, "app.Old T", Some(&facts()), &DropFacts::default()).unwrap();
        assert!(p.expand_atomic);
        assert_eq!(
            p.expand[0].text(),
            "ALTER TABLE \"app\".\"Old T\" RENAME TO \"Old T_sluice_dropped\"; CREATE VIEW \"app\".\"Old T\" WITH (security_invoker = true) AS SELECT \"id\", \"Name\" FROM \"app\".\"Old T_sluice_dropped\"; GRANT SELECT ON \"app\".\"Old T\" TO \"app_rw\""
        );
        assert_eq!(
            p.complete,
            ["DO 'BEGIN IF to_regclass(''\"app\".\"Old T_sluice_dropped\"'') IS NOT NULL THEN DROP VIEW \"app\".\"Old T\"; DROP TABLE \"app\".\"Old T_sluice_dropped\"; END IF; END'"]
        );
        assert!(p.rollback[0].contains(
            "DROP VIEW \"app\".\"Old T\"; ALTER TABLE \"app\".\"Old T_sluice_dropped\" RENAME TO \"Old T\""
        ));
        let cascade = DropFacts {
            cascade: true,
            dependents: vec!["view app.v".into()],
            ..Default::default()
        };
        let p = phases(&st, "app.Old T", Some(&facts()), &cascade).unwrap();
        assert!(
            p.complete[0].contains("DROP TABLE \"app\".\"Old T_sluice_dropped\" CASCADE; END IF")
        );
    }

    #[test]
    fn refuses_what_the_drop_as_written_fails_on_and_skips_a_missing_table() {
        let st = stmt("DROP TABLE t");
        let deps = DropFacts {
            dependents: vec!["view v".into(), "constraint c_fk on table c".into()],
            ..Default::default()
        };
        let why = phases(&st, "t", Some(&facts()), &deps).unwrap_err();
        assert!(
            why.contains("constraint c_fk on table c reference(s) the table: the DROP TABLE as written fails on them"),
            "{why}"
        );
        // With CASCADE too: the key would go on checking the other table's writes meanwhile.
        let cascade = DropFacts {
            cascade: true,
            ..deps.clone()
        };
        let why = phases(&st, "t", Some(&facts()), &cascade).unwrap_err();
        assert!(
            why.contains("while expanded they would still check"),
            "{why}"
        );
        let view = DropFacts {
            dependents: vec!["view v".into()],
            ..Default::default()
        };
        let why = phases(&st, "t", Some(&facts()), &view).unwrap_err();
        assert!(why.contains("view v depend(s) on the table"), "{why}");
        let part = DropFacts {
            parents: vec!["a partition of p".into()],
            ..Default::default()
        };
        assert!(phases(&st, "t", Some(&facts()), &part)
            .unwrap_err()
            .contains("a partition of p"));
        let published = DropFacts {
            publications: vec!["pub".into()],
            cascade: true,
            ..Default::default()
        };
        assert!(phases(&st, "t", Some(&facts()), &published)
            .unwrap_err()
            .contains("publication pub"));
        // Expanded: the stand-in view depends on the table; nothing is asked again.
        let mut f = facts();
        f.expanded = true;
        assert!(phases(&st, "t", Some(&f), &deps).is_ok());
        // Whatever the rename refuses.
        let mut f = facts();
        f.row_security = true;
        f.server_version = 140000;
        assert!(phases(&st, "t", Some(&f), &DropFacts::default())
            .unwrap_err()
            .contains("row-level security"));
        // Missing: IF EXISTS does nothing, else the server's message.
        let p = phases(
            &st,
            "t",
            None,
            &DropFacts {
                if_exists: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(p.expand.is_empty() && p.complete.is_empty() && p.rollback.is_empty());
        assert_eq!(
            phases(&st, "t", None, &DropFacts::default()).unwrap_err(),
            "table \"t\" does not exist"
        );
        let rows = vec![
            vec![Some("dependent".into()), Some("view v".into())],
            vec![Some("parent".into()), Some("a child of p".into())],
        ];
        let mut d = DropFacts::default();
        obstacles(&rows, &mut d);
        assert_eq!((d.dependents.len(), d.parents.len()), (1, 1));
    }
}
