//! `RENAME TABLE a TO b` / `ALTER TABLE a RENAME [TO] b` in two phases on MariaDB (and MySQL 8),
//! from what `information_schema` says the two names are.
//!
//! Expand (`sluice up`): a view `a` over `b` (every column, MERGE, SQL SECURITY INVOKER: simple
//! and updatable, so INSERT with the table's defaults and AUTO_INCREMENT, UPDATE, DELETE, REPLACE,
//! INSERT ... ON DUPLICATE KEY UPDATE and SELECT ... FOR UPDATE keep working) takes the place of
//! table `a` with no moment where `a` is missing (an old-version client never gets 1146):
//! 1. the view is made under a temporary sluice name. The server only creates a view over an
//!    existing table, and the view must name `b`, so a placeholder table `b` (the columns only,
//!    marked by its comment) stands there while the view is created and is dropped right after.
//!    Table `a` is not touched.
//! 2. `RENAME TABLE a TO b, <view> TO a`: one atomic statement (an exclusive metadata lock on the
//!    names for milliseconds, bounded by lock_wait_timeout and retried). Triggers and foreign
//!    keys (the table's own and those of other tables that reference it) follow the table.
//!
//! Contract (`sluice complete`): `DROP VIEW a`, what the rename as written leaves. Rollback:
//! `RENAME TABLE a TO <view>, b TO a` (atomic again: `a` is always there), then the view is
//! dropped; the table is exactly as before (`SHOW CREATE TABLE` equal).
//!
//! Each phase is planned from the state the names are in, so a rerun after a kill at any point
//! runs only what is left.
//!
//! `DROP TABLE a` (the migration's only statement) runs the same way with a sluice name as `b`
//! (`<a>_sluice_dropped`): expand renames the table away behind the view `a`, so the old version
//! keeps working; contract drops the view and the table; rollback is the rename's.

use super::super::helper_name;
use super::super::staged::{About, Lock, Step};
use super::super::{Blocks, Effect};
use super::Phases;
use crate::quote::mysql::{ident, literal};
use crate::target::EngineKind;

/// What the live server says about the two names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub engine: Option<EngineKind>,
    /// The database as the statement names it (None: the connection's).
    pub schema: Option<String>,
    /// The new name names another database than the old one.
    pub other_schema: bool,
    pub from: String,
    pub to: String,
    /// `information_schema.TABLES.TABLE_TYPE` of each name (None: no such name).
    pub from_type: Option<String>,
    pub to_type: Option<String>,
    /// `TABLE_COMMENT` of `to` (the placeholder's mark).
    pub to_comment: String,
    /// The migration has a history row sluice may have acted on (expanded, interrupted or
    /// failed): what carries its helper names is sluice's own.
    pub recorded: bool,
    /// The table's columns in order: (name, EXTRA).
    pub columns: Vec<(String, String)>,
    /// Privileges granted on the table by name (`grantee privilege`).
    pub grants: Vec<String>,
    /// `wsrep_on` is ON.
    pub galera: bool,
    /// A DROP TABLE: `to` is sluice's name for the table until complete drops it.
    pub drop: bool,
    /// A DROP TABLE IF EXISTS.
    pub if_exists: bool,
    /// Other tables' foreign keys that reference the table, described (a DROP TABLE's contract
    /// would fail on them).
    pub referenced_by: Vec<String>,
}

/// The name a DROP TABLE's table has between expand and complete.
pub fn dropped_name(from: &str) -> String {
    helper_name(from, "", "sluice_dropped")
}

/// The SQL listing the foreign keys of other tables that reference `table`.
pub fn referenced_by_sql(schema: Option<&str>, table: &str) -> String {
    let (s, t) = (db(schema), literal(table));
    format!(
        "SELECT CONCAT('foreign key ', CONSTRAINT_NAME, ' of table ', TABLE_NAME) FROM information_schema.REFERENTIAL_CONSTRAINTS WHERE UNIQUE_CONSTRAINT_SCHEMA = {s} AND REFERENCED_TABLE_NAME = {t} AND NOT (CONSTRAINT_SCHEMA = {s} AND TABLE_NAME = {t})"
    )
}

/// The SQL reading TABLE_NAME, TABLE_TYPE, TABLE_COMMENT of the two names.
pub fn tables_sql(schema: Option<&str>, from: &str, to: &str) -> String {
    format!(
        "SELECT TABLE_NAME, TABLE_TYPE, TABLE_COMMENT FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME IN ({}, {})",
        db(schema),
        literal(from),
        literal(to)
    )
}

/// The SQL reading COLUMN_NAME, EXTRA of `table`'s columns in order.
pub fn columns_sql(schema: Option<&str>, table: &str) -> String {
    format!(
        "SELECT COLUMN_NAME, EXTRA FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} ORDER BY ORDINAL_POSITION",
        db(schema),
        literal(table)
    )
}

/// The SQL listing every table and column privilege granted on either name (needs SELECT on
/// `mysql.tables_priv` and `mysql.columns_priv`; else [`own_grants_sql`]). `fold`: the server
/// compares table names case-insensitively (`lower_case_table_names` <> 0), while the grant
/// tables compare their names as bytes (stored in lower case with 1): compared in lower case.
pub fn grants_sql(schema: Option<&str>, from: &str, to: &str, fold: bool) -> String {
    let (s, a, b) = (db(schema), literal(from), literal(to));
    let (d, s, name, a, b) = if fold {
        let low = |x: &str| format!("LOWER({x})");
        (low("Db"), low(&s), low("Table_name"), low(&a), low(&b))
    } else {
        ("Db".to_string(), s, "Table_name".to_string(), a, b)
    };
    format!(
        "SELECT CONCAT('''', User, '''@''', Host, ''' ', Table_priv, ' on ', Table_name) FROM mysql.tables_priv WHERE {d} = {s} AND {name} IN ({a}, {b}) \
         UNION SELECT CONCAT('''', User, '''@''', Host, ''' ', Column_priv, ' on ', Table_name, '.', Column_name) FROM mysql.columns_priv WHERE {d} = {s} AND {name} IN ({a}, {b})"
    )
}

/// The privileges on either name that `information_schema` shows the login (its own).
pub fn own_grants_sql(schema: Option<&str>, from: &str, to: &str) -> String {
    let (s, a, b) = (db(schema), literal(from), literal(to));
    format!(
        "SELECT CONCAT(GRANTEE, ' ', PRIVILEGE_TYPE, ' on ', TABLE_NAME) FROM information_schema.TABLE_PRIVILEGES WHERE TABLE_SCHEMA = {s} AND TABLE_NAME IN ({a}, {b}) \
         UNION SELECT CONCAT(GRANTEE, ' ', PRIVILEGE_TYPE, ' on ', TABLE_NAME, '.', COLUMN_NAME) FROM information_schema.COLUMN_PRIVILEGES WHERE TABLE_SCHEMA = {s} AND TABLE_NAME IN ({a}, {b})"
    )
}

fn db(schema: Option<&str>) -> String {
    schema.map(literal).unwrap_or_else(|| "DATABASE()".into())
}

/// The temporary name of the stand-in view (stable across runs: a rerun finds it).
pub fn view_name(from: &str) -> String {
    helper_name(from, "", "sluice_view")
}

/// The comment that marks the placeholder table: only a table carrying it is dropped.
pub fn placeholder_mark(from: &str) -> String {
    format!("sluice: placeholder for the stand-in view of {from}")
}

/// Where the two names are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// `a` is the table; `b` absent or sluice's placeholder (a first or an interrupted expand, or
    /// an interrupted rollback).
    Before { placeholder: bool },
    /// `a` is the view, `b` the table.
    Expanded,
    /// `a` is gone, `b` the table (an interrupted complete).
    Contracted,
    /// A DROP TABLE: both gone (an interrupted complete), or nothing there for IF EXISTS.
    Gone,
}

fn state(f: &Facts) -> Result<State, String> {
    let table = |t: &Option<String>| {
        t.as_deref()
            .is_some_and(|t| t == "BASE TABLE" || t == "SYSTEM VERSIONED")
    };
    let view = |t: &Option<String>| t.as_deref() == Some("VIEW");
    let placeholder = table(&f.to_type) && f.to_comment == placeholder_mark(&f.from);
    match (&f.from_type, &f.to_type) {
        (Some(_), _) if table(&f.from_type) && f.to_type.is_none() => {
            Ok(State::Before { placeholder: false })
        }
        (Some(_), Some(_)) if table(&f.from_type) && placeholder && f.recorded => {
            Ok(State::Before { placeholder: true })
        }
        (Some(_), Some(_)) if table(&f.from_type) => {
            // What the statement as written says.
            Err(format!("Table '{}' already exists", f.to))
        }
        (Some(_), Some(_)) if view(&f.from_type) && table(&f.to_type) && f.recorded => {
            Ok(State::Expanded)
        }
        (None, Some(_)) if table(&f.to_type) && f.recorded => Ok(State::Contracted),
        (None, None) if f.drop && (f.recorded || f.if_exists) => Ok(State::Gone),
        // What the statement as written says.
        (None, _) if f.drop => Err(format!("Unknown table '{}'", f.from)),
        (None, _) => Err(format!("table {} does not exist", f.from)),
        (Some(t), _) => Err(format!(
            "{} is {}: the two phases rename a table behind a stand-in view",
            f.from,
            if view(&f.from_type) {
                "a view".to_string()
            } else {
                t.to_lowercase()
            }
        )),
    }
}

/// The phases of renaming table `f.from` to `f.to`; `st` is the statement as written. Err: why
/// the rename cannot run in two phases (refused; `--as-written` runs it in one).
pub fn phases(st: &crate::analysis::ir::Stmt, f: &Facts) -> Result<Phases, String> {
    use sqlparser::ast::Statement;
    if let Some(Statement::AlterTable(at)) = st.ast.as_deref() {
        if !super::super::staged::plain_alter(at) {
            return Err("the two phases name the table plainly, which for IF EXISTS would change what the statement does; write it without".into());
        }
    }
    let mariadb = f.engine != Some(EngineKind::MySql);
    if f.other_schema {
        return Err("the new name is in another database: the stand-in view would live apart from the table; rename within the database (a view may not be renamed across databases)".into());
    }
    if f.galera {
        return Err("the server is a Galera node (wsrep_on=ON): the phases' DDL (a placeholder table, a view, an atomic RENAME of both) runs in total order isolation, which aborts the statements it meets on the other nodes (1213, measured: see README \"Galera clusters\"), so the old version would see errors after all; and sluice has not verified there that the old name is present on every node at every moment".into());
    }
    let state = state(f)?;
    if matches!(state, State::Contracted | State::Gone) {
        return Ok(contracted(f, state == State::Gone));
    }
    // What the view cannot stand in for matters before the expand only: complete and rollback
    // of an expanded migration are not held back by what changed since.
    if matches!(state, State::Before { .. }) {
        refusals(f)?;
    }
    let schema = f.schema.as_deref();
    let name = |n: &str| match schema {
        Some(s) => format!("{}.{}", ident(s), ident(n)),
        None => ident(n),
    };
    let (a, b, v) = (name(&f.from), name(&f.to), name(&view_name(&f.from)));
    let cols = f
        .columns
        .iter()
        .map(|(c, _)| ident(c))
        .collect::<Vec<_>>()
        .join(", ");
    let mark = placeholder_mark(&f.from);
    // Drops `b` only while it is the placeholder (a failed expand cleans up before the rerun
    // plans again): MariaDB runs DDL in an anonymous block; MySQL has none, so it drops only
    // what the facts showed.
    let drop_placeholder = |placeholder: bool| -> Option<String> {
        if mariadb {
            Some(format!(
                "BEGIN NOT ATOMIC IF EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} AND TABLE_COMMENT = {}) THEN DROP TABLE {b}; END IF; END",
                db(schema),
                literal(&f.to),
                literal(&mark)
            ))
        } else {
            placeholder.then(|| format!("DROP TABLE IF EXISTS {b}"))
        }
    };
    let mut complete = vec![format!("DROP VIEW {a}")];
    if f.drop {
        complete.push(format!("DROP TABLE {b}"));
    }
    // MariaDB: one rollback for every state (run as `sluice rollback` after expand and as the
    // cleanup of a failed or interrupted expand, and shown by `plan`), each part guarded by
    // what the names are now. MySQL has no anonymous blocks: the rollback of the state seen.
    let exists = |name: &str, kind: &str| {
        format!(
            "EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = {} AND TABLE_NAME = {} AND TABLE_TYPE {kind})",
            db(schema),
            literal(name)
        )
    };
    let mariadb_rollback = vec![
        format!(
            "BEGIN NOT ATOMIC IF {} AND {} THEN RENAME TABLE {a} TO {v}, {b} TO {a}; END IF; END",
            exists(&f.from, "= 'VIEW'"),
            exists(&f.to, "<> 'VIEW'")
        ),
        format!("DROP VIEW IF EXISTS {v}"),
    ];
    let (expand, about, locks, rollback) = match state {
        State::Before { placeholder } => {
            let mut make = Vec::new();
            // A placeholder a killed run left may lack columns (killed while being made): made
            // afresh.
            if placeholder {
                make.push(format!("DROP TABLE {b}"));
            }
            make.push(format!(
                "CREATE TABLE {b} ({}) COMMENT {}",
                f.columns
                    .iter()
                    .map(|(c, _)| format!("{} int", ident(c)))
                    .collect::<Vec<_>>()
                    .join(", "),
                literal(&mark)
            ));
            make.push(format!(
                "CREATE OR REPLACE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW {v} ({cols}) AS SELECT {cols} FROM {b}"
            ));
            make.push(format!("DROP TABLE {b}"));
            let expand = vec![
                Step::Sql(make.join("; ")),
                Step::Sql(format!("RENAME TABLE {a} TO {b}, {v} TO {a}")),
            ];
            let about = vec![
                About::new(
                    "create the stand-in view under a temporary name, over a placeholder of the new name that is dropped right after (the table is not touched)",
                    Lock::AccessShare,
                    Effect::Instant,
                    Blocks::Nothing,
                ),
                About::catalog(
                    "in one atomic RENAME TABLE, the table becomes the new name and the view takes the old one: the old name never goes missing",
                ),
            ];
            let locks = vec![
                "no lock on the table (metadata locks on the new names only)".to_string(),
                "exclusive metadata lock on the names (milliseconds; bounded by lock_wait_timeout, retried)".to_string(),
            ];
            let mut rollback = if mariadb {
                mariadb_rollback
            } else {
                vec![format!("DROP VIEW IF EXISTS {v}")]
            };
            rollback.extend(drop_placeholder(placeholder));
            (expand, about, locks, rollback)
        }
        State::Expanded => {
            let rollback = if mariadb {
                let mut r = mariadb_rollback;
                r.extend(drop_placeholder(false));
                r
            } else {
                vec![
                    format!("RENAME TABLE {a} TO {v}, {b} TO {a}"),
                    format!("DROP VIEW {v}"),
                ]
            };
            (vec![], vec![], vec![], rollback)
        }
        State::Contracted | State::Gone => unreachable!(),
    };
    // Recorded (complete only acts on an expanded migration), yet the table has its old name
    // back: a rollback cut off after its RENAME, before its record. The contract's DROP VIEW
    // would fail on the table with a bare server error; the rollback's rerun finishes.
    let complete_refusal = (f.recorded && matches!(state, State::Before { .. })).then(|| {
        format!(
            "the stand-in view {0} is gone and table {0} has its old name back while the migration is still recorded expanded (a `sluice rollback` was cut off after its schema change): there is no expand phase left to complete; run `sluice rollback` again to finish the rollback, then `sluice up` to expand anew",
            f.from
        )
    });
    Ok(Phases {
        precheck: vec![],
        precheck_refusal: None,
        expand,
        expand_about: about,
        expand_atomic: false,
        complete,
        rollback,
        rollback_refusal: None,
        complete_refusal,
        complete_online: None,
        rollback_guard: vec![],
        watch: None,
        old_version: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees: sees(f),
        complete_description: if f.drop {
            "`sluice complete`: drop the view with the old name, then the table behind it (what the DROP TABLE as written drops)"
        } else {
            "`sluice complete`: drop the view with the old name (an exclusive metadata lock for milliseconds)"
        },
        rollback_description: "`sluice rollback` (before complete): in one atomic RENAME TABLE the table takes its old name back (the old name never goes missing), then the view is dropped",
        expand_locks: locks,
        phase_lock: Some("exclusive metadata lock on the names (milliseconds)".into()),
        rollback_lock: None,
    })
}

/// Why a view cannot stand in for the table (or a DROP TABLE's contract would fail), checked
/// before the expand phase.
fn refusals(f: &Facts) -> Result<(), String> {
    if f.drop && !f.referenced_by.is_empty() {
        return Err(format!(
            "{} reference(s) the table: its contract, the DROP TABLE, would fail on them as the statement as written does (drop those foreign keys first, in a migration of their own)",
            f.referenced_by.join(", ")
        ));
    }
    if f.from_type.as_deref() == Some("SYSTEM VERSIONED") {
        return Err("the table is system-versioned, and a view cannot stand in for its FOR SYSTEM_TIME queries".into());
    }
    let invisible: Vec<&str> = f
        .columns
        .iter()
        .filter(|(_, extra)| extra.to_uppercase().contains("INVISIBLE"))
        .map(|(c, _)| c.as_str())
        .collect();
    if !invisible.is_empty() {
        return Err(format!(
            "column(s) {} are INVISIBLE: the stand-in view must name them to let the old version write them, and would then show them in SELECT *",
            invisible.join(", ")
        ));
    }
    if !f.grants.is_empty() {
        return Err(format!(
            "privileges are granted on the table by name ({}): the server does not move them with a rename, so the old version (through the view, which checks the querying user's privileges on the table) or the new version could lose access. Grant them at database level (GRANT ... ON db.*), or also on the new name once it exists",
            f.grants.join("; ")
        ));
    }
    if f.columns.is_empty() {
        return Err(format!("information_schema shows no columns of {}", f.from));
    }
    Ok(())
}

/// The phases once the view is gone (a kill after complete's DROP VIEW, before its record):
/// complete only records it (a DROP TABLE's: drops what is left); a rollback is refused. `gone`:
/// a DROP TABLE's table is gone too (or was never there, IF EXISTS).
fn contracted(f: &Facts, gone: bool) -> Phases {
    let name = |n: &str| match &f.schema {
        Some(s) => format!("{}.{}", ident(s), ident(n)),
        None => ident(n),
    };
    let complete = if f.drop && !gone {
        vec![format!("DROP TABLE {}", name(&f.to))]
    } else {
        vec![]
    };
    let what = if gone && !f.recorded {
        format!(
            "table {} does not exist (DROP TABLE IF EXISTS): there is nothing to undo",
            f.from
        )
    } else {
        format!(
            "view {} is gone already (an interrupted `sluice complete` dropped it): run `sluice complete` to finish",
            f.from
        )
    };
    let (rollback, rollback_refusal) = if gone && !f.recorded {
        (vec![], None)
    } else {
        super::refused_rollback(f.engine, &what)
    };
    Phases {
        precheck: vec![],
        precheck_refusal: None,
        expand: vec![],
        expand_about: vec![],
        expand_atomic: false,
        complete,
        rollback,
        rollback_refusal,
        complete_refusal: None,
        complete_online: None,
        rollback_guard: vec![],
        watch: None,
        old_version: vec![],
        guard: super::Guard::NotNull,
        rollback_prepare: vec![],
        rollback_undo: vec![],
        sees: sees(f),
        complete_description: if gone && !f.recorded {
            "`sluice complete`: nothing to drop (the table does not exist); record it"
        } else {
            "`sluice complete`: the view is gone already (an interrupted complete); drop what is left and record it"
        },
        rollback_description: "refused: the view with the old name is gone already",
        expand_locks: vec![],
        phase_lock: Some("none".into()),
        rollback_lock: None,
    }
}

fn sees(f: &Facts) -> Vec<(String, String)> {
    let (a, b) = (&f.from, &f.to);
    if f.drop {
        return vec![
            ("before".into(), format!("the old version reads and writes table {a}; the new version does not use it")),
            (
                "expanded (after `sluice up`)".into(),
                format!("both versions run: the table is {b} (sluice's name), the old version uses view {a} over it (every column; SELECT, SELECT ... FOR UPDATE, INSERT with the table's defaults and AUTO_INCREMENT, INSERT IGNORE, INSERT ... ON DUPLICATE KEY UPDATE, REPLACE, UPDATE, DELETE, LOCK TABLES; the table's triggers fire, foreign keys are checked). Through {a} the old version cannot: TRUNCATE, ALTER TABLE or other DDL, partition operations, HANDLER. The new version does not use {a}"),
            ),
            (
                "completed (after `sluice complete`)".into(),
                format!("only the new version may run: view {a} and table {b} are dropped (the rows are gone), as the DROP TABLE as written leaves the database"),
            ),
            (
                "rolled back (after `sluice rollback`)".into(),
                format!("the table is {a} again (SHOW CREATE TABLE as before the migration, with every row written meanwhile) and view {a} is gone"),
            ),
        ];
    }
    vec![
        (
            "before".into(),
            format!("the old version reads and writes table {a}; the new version, which names {b}, must not run yet"),
        ),
        (
            "expanded (after `sluice up`)".into(),
            format!(
                "both versions run on the same rows: the new version uses table {b}, the old version view {a} over it (every column; SELECT, SELECT ... FOR UPDATE, INSERT with the table's defaults and AUTO_INCREMENT (LAST_INSERT_ID() works), INSERT IGNORE, INSERT ... ON DUPLICATE KEY UPDATE, REPLACE, UPDATE, DELETE, LOCK TABLES work through it; the table's triggers fire, foreign keys follow the table). Through {a} the old version cannot: TRUNCATE, ALTER TABLE or other DDL, partition operations, HANDLER, SHOW CREATE TABLE (it shows a view). Table privileges must be granted at database level (refused otherwise)"
            ),
        ),
        (
            "completed (after `sluice complete`)".into(),
            format!("only the new version may run: view {a} is dropped and queries naming {a} fail, as the rename as written leaves the database"),
        ),
        (
            "rolled back (after `sluice rollback`)".into(),
            format!("only the old version may run: the table is {a} again (SHOW CREATE TABLE as before the migration) and view {a} is gone"),
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stmt(engine: EngineKind, sql: &str) -> crate::analysis::ir::Stmt {
        let s = crate::sql::split(engine, sql).unwrap().remove(0);
        crate::analysis::ir::build(engine, 0, &s, 0, &s.sql)
    }

    fn facts(engine: EngineKind) -> Facts {
        Facts {
            engine: Some(engine),
            from: "a".into(),
            to: "b b".into(),
            from_type: Some("BASE TABLE".into()),
            columns: vec![
                ("id".into(), "auto_increment".into()),
                ("Name".into(), String::new()),
            ],
            ..Default::default()
        }
    }

    #[test]
    fn expand_makes_the_view_first_then_swaps_both_names_at_once() {
        let e = EngineKind::MariaDb;
        let st = stmt(e, "RENAME TABLE a TO `b b`");
        let p = phases(&st, &facts(e)).unwrap();
        let sql: Vec<String> = p.expand.iter().map(Step::text).collect();
        assert_eq!(
            sql,
            [
                "CREATE TABLE `b b` (`id` int, `Name` int) COMMENT 'sluice: placeholder for the stand-in view of a'; CREATE OR REPLACE ALGORITHM=MERGE SQL SECURITY INVOKER VIEW `a_sluice_view` (`id`, `Name`) AS SELECT `id`, `Name` FROM `b b`; DROP TABLE `b b`",
                "RENAME TABLE `a` TO `b b`, `a_sluice_view` TO `a`",
            ]
        );
        assert_eq!(p.complete, ["DROP VIEW `a`"]);
        // One rollback for every state, each part guarded by what the names are.
        assert_eq!(p.rollback[0], "BEGIN NOT ATOMIC IF EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'a' AND TABLE_TYPE = 'VIEW') AND EXISTS (SELECT 1 FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'b b' AND TABLE_TYPE <> 'VIEW') THEN RENAME TABLE `a` TO `a_sluice_view`, `b b` TO `a`; END IF; END");
        assert_eq!(p.rollback[1], "DROP VIEW IF EXISTS `a_sluice_view`");
        assert!(p.rollback[2].starts_with("BEGIN NOT ATOMIC IF EXISTS"));
        assert!(p.rollback[2].contains("THEN DROP TABLE `b b`; END IF; END"));
        let before = p.rollback.clone();
        assert_eq!(p.expand_steps().len(), 2);
        assert_eq!(p.sees.len(), 4);

        // A database named in the statement names every object.
        let mut f = facts(e);
        f.schema = Some("app".into());
        let p = phases(&stmt(e, "ALTER TABLE app.a RENAME TO `b b`"), &f).unwrap();
        assert_eq!(
            p.expand[1].text(),
            "RENAME TABLE `app`.`a` TO `app`.`b b`, `app`.`a_sluice_view` TO `app`.`a`"
        );

        // A rerun after a kill inside step 0: the placeholder is there already.
        let mut f = facts(e);
        f.recorded = true;
        f.to_type = Some("BASE TABLE".into());
        f.to_comment = placeholder_mark("a");
        let p = phases(&st, &f).unwrap();
        assert!(p.expand[0]
            .text()
            .starts_with("DROP TABLE `b b`; CREATE TABLE `b b` (`id` int, `Name` int) COMMENT"));

        // Expanded: nothing to expand; rollback swaps back atomically, then drops the view.
        let mut f = facts(e);
        f.recorded = true;
        f.from_type = Some("VIEW".into());
        f.to_type = Some("BASE TABLE".into());
        // A grant made since the expand does not hold back complete or rollback.
        f.grants = vec!["'app'@'%' SELECT on b b".into()];
        let p = phases(&st, &f).unwrap();
        assert!(p.expand.is_empty());
        assert_eq!(p.rollback, before);
        let p = phases(&stmt(EngineKind::MySql, "RENAME TABLE a TO `b b`"), &{
            let mut f = f.clone();
            f.engine = Some(EngineKind::MySql);
            f
        })
        .unwrap();
        assert_eq!(
            p.rollback,
            [
                "RENAME TABLE `a` TO `a_sluice_view`, `b b` TO `a`",
                "DROP VIEW `a_sluice_view`"
            ]
        );

        // Contracted (the view dropped, not recorded): complete records, rollback refuses.
        f.from_type = None;
        let p = phases(&st, &f).unwrap();
        assert!(p.complete.is_empty());
        assert!(p.rollback[0].contains("gone already"));
    }

    #[test]
    fn a_drop_table_hides_the_table_behind_the_view_until_complete() {
        let e = EngineKind::MariaDb;
        let st = stmt(e, "DROP TABLE a");
        let mut f = facts(e);
        f.drop = true;
        f.to = dropped_name("a");
        let p = phases(&st, &f).unwrap();
        assert_eq!(
            p.expand[1].text(),
            "RENAME TABLE `a` TO `a_sluice_dropped`, `a_sluice_view` TO `a`"
        );
        assert_eq!(
            p.complete,
            ["DROP VIEW `a`", "DROP TABLE `a_sluice_dropped`"]
        );
        assert!(p.sees[1].1.contains("does not use a"));
        // Referenced by another table's foreign key: the contract would fail, refused now.
        let mut r = f.clone();
        r.referenced_by = vec!["foreign key fk_x of table c".into()];
        assert!(phases(&st, &r)
            .unwrap_err()
            .contains("foreign key fk_x of table c reference(s) the table"));
        // Missing: as the statement says; IF EXISTS: nothing in either phase.
        let mut m = f.clone();
        m.from_type = None;
        assert_eq!(phases(&st, &m).unwrap_err(), "Unknown table 'a'");
        m.if_exists = true;
        let p = phases(&stmt(e, "DROP TABLE IF EXISTS a"), &m).unwrap();
        assert!(p.expand.is_empty() && p.complete.is_empty() && p.rollback.is_empty());
        // Killed in complete: after the view (the table is left to drop), after both (nothing).
        let mut k = f.clone();
        k.recorded = true;
        k.from_type = None;
        k.to_type = Some("BASE TABLE".into());
        let p = phases(&st, &k).unwrap();
        assert_eq!(p.complete, ["DROP TABLE `a_sluice_dropped`"]);
        assert!(p.rollback[0].contains("gone already"));
        k.to_type = None;
        let p = phases(&st, &k).unwrap();
        assert!(p.complete.is_empty());
        assert!(p.rollback[0].contains("gone already"));
    }

    /// Every state of a table rename and a DROP TABLE, planned for MariaDB and for MySQL 8.
    #[test]
    fn every_shape_renders_for_both_engines() {
        type Change = dyn Fn(&mut Facts);
        let placeholder: &Change = &|f| {
            f.recorded = true;
            f.to_type = Some("BASE TABLE".into());
            f.to_comment = placeholder_mark("a");
        };
        let expanded: &Change = &|f| {
            f.recorded = true;
            f.from_type = Some("VIEW".into());
            f.to_type = Some("BASE TABLE".into());
        };
        let contracted: &Change = &|f| {
            f.recorded = true;
            f.from_type = None;
            f.to_type = Some("BASE TABLE".into());
        };
        let gone: &Change = &|f| {
            f.recorded = true;
            f.from_type = None;
        };
        let cases: &[(&str, &str, bool, &Change)] = &[
            ("rename", "RENAME TABLE a TO `b b`", false, &|_| {}),
            (
                "rename, placeholder left",
                "RENAME TABLE a TO `b b`",
                false,
                placeholder,
            ),
            (
                "rename, expanded",
                "RENAME TABLE a TO `b b`",
                false,
                expanded,
            ),
            (
                "rename, contracted",
                "RENAME TABLE a TO `b b`",
                false,
                contracted,
            ),
            (
                "rename in a database",
                "ALTER TABLE app.a RENAME TO `b b`",
                false,
                &|f| f.schema = Some("app".into()),
            ),
            ("rename on galera", "RENAME TABLE a TO `b b`", false, &|f| {
                f.galera = true
            }),
            ("drop", "DROP TABLE a", true, &|_| {}),
            ("drop, placeholder left", "DROP TABLE a", true, &|f| {
                f.recorded = true;
                f.to_type = Some("BASE TABLE".into());
                f.to_comment = placeholder_mark("a");
            }),
            ("drop, expanded", "DROP TABLE a", true, expanded),
            ("drop, view dropped", "DROP TABLE a", true, contracted),
            ("drop, both dropped", "DROP TABLE a", true, gone),
            (
                "drop if exists, absent",
                "DROP TABLE IF EXISTS a",
                true,
                &|f| {
                    f.if_exists = true;
                    f.from_type = None;
                },
            ),
        ];
        for (what, sql, drop, change) in cases {
            let plan = |e: EngineKind| {
                let mut f = facts(e);
                if *drop {
                    f.drop = true;
                    f.to = dropped_name("a");
                }
                change(&mut f);
                phases(&stmt(e, sql), &f)
            };
            let (maria, my) = (plan(EngineKind::MariaDb), plan(EngineKind::MySql));
            super::super::check_engines(what, &maria, &my);
        }
        // The states that cannot be rolled back: MySQL refuses at plan time, with the message.
        for change in [contracted, gone] {
            let mut f = facts(EngineKind::MySql);
            f.drop = true;
            f.to = dropped_name("a");
            change(&mut f);
            let p = phases(&stmt(EngineKind::MySql, "DROP TABLE a"), &f).unwrap();
            assert!(p.rollback.is_empty());
            assert!(p.rollback_refusal.unwrap().contains("gone already"));
        }
    }

    #[test]
    fn mysql_drops_the_placeholder_only_when_seen() {
        let e = EngineKind::MySql;
        let st = stmt(e, "RENAME TABLE a TO `b b`");
        let p = phases(&st, &facts(e)).unwrap();
        assert_eq!(p.rollback, ["DROP VIEW IF EXISTS `a_sluice_view`"]);
        let mut f = facts(e);
        f.recorded = true;
        f.to_type = Some("BASE TABLE".into());
        f.to_comment = placeholder_mark("a");
        let p = phases(&st, &f).unwrap();
        assert_eq!(p.rollback[1], "DROP TABLE IF EXISTS `b b`");
    }

    #[test]
    fn refuses_what_the_view_cannot_stand_in_for() {
        let e = EngineKind::MariaDb;
        let st = stmt(e, "RENAME TABLE a TO `b b`");
        type Change = dyn Fn(&mut Facts);
        let cases: &[(&str, &Change, &str)] = &[
            ("galera", &|f| f.galera = true, "Galera"),
            (
                "other database",
                &|f| f.other_schema = true,
                "another database",
            ),
            (
                "taken",
                &|f| f.to_type = Some("BASE TABLE".into()),
                "Table 'b b' already exists",
            ),
            (
                // A placeholder-looking table on a first run is not sluice's own.
                "unrecorded placeholder",
                &|f| {
                    f.to_type = Some("BASE TABLE".into());
                    f.to_comment = placeholder_mark("a");
                },
                "already exists",
            ),
            ("missing", &|f| f.from_type = None, "does not exist"),
            ("a view", &|f| f.from_type = Some("VIEW".into()), "a view"),
            (
                "sequence",
                &|f| f.from_type = Some("SEQUENCE".into()),
                "a is sequence",
            ),
            (
                "versioned",
                &|f| f.from_type = Some("SYSTEM VERSIONED".into()),
                "system-versioned",
            ),
            (
                "invisible",
                &|f| f.columns[1].1 = "INVISIBLE".into(),
                "Name are INVISIBLE",
            ),
            (
                "grants",
                &|f| f.grants = vec!["'app'@'%' SELECT on a".into()],
                "'app'@'%' SELECT on a",
            ),
        ];
        for (what, change, want) in cases {
            let mut f = facts(e);
            change(&mut f);
            let got = phases(&st, &f)
                .err()
                .unwrap_or_else(|| panic!("{what}: not refused"));
            assert!(got.contains(want), "{what}: {got}");
        }
        assert!(
            phases(&stmt(e, "ALTER TABLE IF EXISTS a RENAME TO b"), &facts(e))
                .unwrap_err()
                .contains("IF EXISTS")
        );
    }
}
