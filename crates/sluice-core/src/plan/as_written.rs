//! The as-written step: a statement `up` runs as the migration wrote it (not staged), with
//! everything the runner needs to run it, so that the runner reads Steps and never the user's SQL
//! (issue 12). The facts come from the same model as the staged forms and `sluice plan`.

use super::staged::{Lock, TakenLock};
use crate::analysis::ir;
use crate::sql::SqlStatement;
use crate::target::{EngineKind, Target};

/// One statement as written, as `up` runs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsWritten {
    /// The statement as the migration wrote it: what runs.
    pub sql: String,
    /// The strongest lock it takes on a table that existed before the part, or on another object
    /// (PostgreSQL; None: none on such a table, or another engine). Unknown is ACCESS EXCLUSIVE.
    pub lock: Option<TakenLock>,
    /// Runs inside a transaction (false: CONCURRENTLY, VACUUM, ... on PostgreSQL; anything that
    /// commits implicitly on MariaDB/MySQL).
    pub transactional: bool,
    /// A concurrent index build, drop or detach (PostgreSQL): queries never queue behind it and its
    /// waits for older transactions may be long, so it runs without a lock timeout.
    pub never_queues_queries: bool,
    /// The tables it names, first the one it changes: whom to ask about when its lock wait times out.
    pub tables: Vec<String>,
    /// An unnamed `CREATE INDEX CONCURRENTLY`: its table and probe (see
    /// [`super::unnamed_concurrent_probe`]), so a rerun recognises a build a killed run finished.
    pub unnamed_index: Option<(String, String)>,
    /// BEGIN, COMMIT, ...: sluice manages transactions itself and refuses the part.
    pub transaction_control: bool,
    /// An ALTER TABLE on MariaDB/MySQL: handed to the engine's online path (with `safe`).
    pub alter_table: bool,
    /// It changes only tables earlier migrations of the run create: runs as written.
    pub in_run: bool,
}

impl AsWritten {
    /// Holds ACCESS EXCLUSIVE on an existing table: `up` bounds its run time by
    /// `--exclusive-timeout`.
    pub fn bounded(&self) -> bool {
        self.lock
            .as_ref()
            .is_some_and(TakenLock::blocks_all_queries)
    }

    /// The mode of its lock.
    pub fn mode(&self) -> Option<Lock> {
        self.lock.as_ref().map(|l| l.mode)
    }

    /// The table to name in a lock-wait message.
    pub fn table(&self) -> Option<&str> {
        self.tables.first().map(String::as_str)
    }
}

/// The model of a part as `up` runs it: each statement's staged form (with `stage`; None: it runs
/// as written) and each statement as written. `ir`: the statements' IR when the caller built it
/// (`lint` has), so each statement is parsed once.
pub fn model_part(
    target: Target,
    statements: &[SqlStatement],
    ir: Option<&[ir::Stmt]>,
    stage: bool,
    run_tables: &[ir::QName],
) -> (Vec<Option<super::staged::Rewrite>>, Vec<AsWritten>) {
    let built;
    let ir: &[ir::Stmt] = match ir {
        Some(ir) => ir,
        None => {
            built = statements
                .iter()
                .enumerate()
                .map(|(i, s)| ir::build(target.engine, i, s, 0, &s.sql))
                .collect::<Vec<_>>();
            &built
        }
    };
    let rewrites = if stage {
        super::staged::rewrite_stmts_in(target, ir, run_tables)
    } else {
        vec![None; statements.len()]
    };
    (rewrites, part_in(target, statements, ir, run_tables))
}

/// Each statement of a part as written, from its IR (`ir[i]` built from `statements[i]`).
pub fn part(target: Target, statements: &[SqlStatement], ir: &[ir::Stmt]) -> Vec<AsWritten> {
    part_in(target, statements, ir, &[])
}

/// [`part`] for a part of a run whose earlier migrations created `run_tables`: a statement on
/// those only takes no lock worth bounding and, on MariaDB/MySQL, runs as written rather than
/// through the online path (the table is new: empty, unused by the running application version).
pub fn part_in(
    target: Target,
    statements: &[SqlStatement],
    ir: &[ir::Stmt],
    run_tables: &[ir::QName],
) -> Vec<AsWritten> {
    debug_assert_eq!(statements.len(), ir.len());
    let locks = super::locks_as_written_in(target, ir, run_tables);
    statements
        .iter()
        .zip(ir)
        .zip(locks)
        .map(|((s, st), lock)| {
            let mut w = one(target, s, st, lock);
            if on_run_tables(target.engine, st, run_tables) {
                w.in_run = true;
                w.alter_table = false;
            }
            w
        })
        .collect()
}

/// Every table the statement names is one of `run_tables`. An ALTER TABLE whose clauses the IR
/// does not model (`ENGINE=InnoDB`, `CONVERT TO CHARACTER SET`) names its table all the same.
pub fn on_run_tables(engine: EngineKind, st: &ir::Stmt, run_tables: &[ir::QName]) -> bool {
    if run_tables.is_empty() {
        return false;
    }
    let mut tables: Vec<ir::QName> = st
        .actions()
        .iter()
        .flat_map(|a| match a {
            ir::Action::MySqlRebuild { table, .. } => table.iter().cloned().collect(),
            // PostgreSQL: the run lists the indexes it made on its own tables (a relation like a
            // table); a MariaDB/MySQL index name is the table's own and never listed.
            ir::Action::DropIndex { names, .. } if engine == EngineKind::Postgres => names.clone(),
            a => super::action_table(a).into_iter().collect::<Vec<_>>(),
        })
        .collect();
    if let Some(sqlparser::ast::Statement::AlterTable(at)) = st.ast.as_deref() {
        tables.push(ir::qname(engine, &at.name));
    } else if tables.is_empty() && st.keywords.starts_with(&["ALTER".into(), "TABLE".into()]) {
        tables = crate::analysis::tokens::objects_after(st, engine, &["TABLE"]);
    }
    !tables.is_empty()
        && tables
            .iter()
            .all(|t| run_tables.iter().any(|r| r.matches(t)))
}

/// One statement on its own (its lock judged as if no earlier statement created its table).
pub fn statement(target: Target, s: &SqlStatement) -> AsWritten {
    let st = ir::build(target.engine, 0, s, 0, &s.sql);
    let lock = super::locks_as_written(target, std::slice::from_ref(&st)).remove(0);
    one(target, s, &st, lock)
}

fn one(target: Target, s: &SqlStatement, st: &ir::Stmt, lock: Option<TakenLock>) -> AsWritten {
    let pg = target.engine == EngineKind::Postgres;
    let own_tx = target.needs_own_transaction(s);
    // The tables it waits for first (a CREATE TABLE waits for the tables it references, not for
    // its own).
    let mut tables: Vec<String> = lock.iter().flat_map(|l| l.tables.clone()).collect();
    for t in st.actions().iter().filter_map(super::action_table) {
        let t = t.display();
        if !tables.contains(&t) {
            tables.push(t);
        }
    }
    AsWritten {
        sql: s.sql.clone(),
        lock,
        transactional: !own_tx,
        never_queues_queries: pg && own_tx && s.has_word("CONCURRENTLY"),
        tables,
        unnamed_index: st
            .ast
            .as_deref()
            .filter(|_| pg)
            .and_then(super::unnamed_concurrent_probe),
        transaction_control: s.is_transaction_control(),
        alter_table: !pg && s.has_words(&["ALTER", "TABLE"]),
        in_run: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of statement `up` runs as written gets its lock, transaction mode, lock-timeout
    /// class, tables and unnamed-index facts from the model.
    #[test]
    fn each_statement_kind_gets_its_as_written_step() {
        use Lock::*;
        // sql, lock, transactional, never queues queries, tables, unnamed index table
        type Row = (
            &'static str,
            Option<Lock>,
            bool,
            bool,
            &'static [&'static str],
            Option<&'static str>,
        );
        let pg: &[Row] = &[
            (
                "CREATE INDEX i ON t (a)",
                Some(Share),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "CREATE INDEX CONCURRENTLY i ON t (a)",
                Some(ShareUpdateExclusive),
                false,
                true,
                &["t"],
                None,
            ),
            (
                "CREATE INDEX CONCURRENTLY ON app.t (a)",
                Some(ShareUpdateExclusive),
                false,
                true,
                &["app.t"],
                Some("app.t"),
            ),
            (
                "CREATE INDEX ON t (a)",
                Some(Share),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "CREATE UNIQUE INDEX CONCURRENTLY ON t (lower(a)) WHERE a > ''",
                Some(ShareUpdateExclusive),
                false,
                true,
                &["t"],
                Some("t"),
            ),
            (
                "DROP INDEX i",
                Some(AccessExclusive),
                true,
                false,
                &[],
                None,
            ),
            (
                "DROP INDEX CONCURRENTLY i",
                Some(ShareUpdateExclusive),
                false,
                true,
                &[],
                None,
            ),
            (
                "ALTER TABLE t ADD COLUMN b int",
                Some(AccessExclusive),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "ALTER TABLE t SET UNLOGGED",
                Some(AccessExclusive),
                true,
                false,
                &[],
                None,
            ),
            (
                "ALTER TABLE t ADD CONSTRAINT f FOREIGN KEY (a) REFERENCES u (id)",
                Some(ShareRowExclusive),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "ALTER TABLE t VALIDATE CONSTRAINT c",
                Some(ShareUpdateExclusive),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "ALTER TABLE t DETACH PARTITION p CONCURRENTLY",
                Some(ShareUpdateExclusive),
                false,
                true,
                &["t"],
                None,
            ),
            (
                "VACUUM FULL t",
                Some(AccessExclusive),
                false,
                false,
                &["t"],
                None,
            ),
            (
                "ALTER TABLE t RENAME TO u",
                Some(AccessExclusive),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "TRUNCATE a, b",
                Some(AccessExclusive),
                true,
                false,
                &["a"],
                None,
            ),
            (
                "DROP TABLE a",
                Some(AccessExclusive),
                true,
                false,
                &["a"],
                None,
            ),
            (
                "LOCK TABLE t",
                Some(AccessExclusive),
                true,
                false,
                &[],
                None,
            ),            // A new table locks no existing one, except those it references, inherits, copies or
            // is a partition of (judged against pg_locks in plan_judged_by_server.rs); its own
            // name comes after them.
            ("CREATE TABLE n (a int)", None, true, false, &["n"], None),
            (
                "CREATE TABLE n (a int REFERENCES p (id))",
                Some(ShareRowExclusive),
                true,
                false,
                &["p", "n"],
                None,
            ),
            (
                "CREATE TABLE n (a int, b int, FOREIGN KEY (a) REFERENCES app.p (id), FOREIGN KEY (b) REFERENCES q (id))",
                Some(ShareRowExclusive),
                true,
                false,
                &["app.p", "q", "n"],
                None,
            ),
            (
                "CREATE TABLE n (a int REFERENCES n (a) UNIQUE)",
                None,
                true,
                false,
                &["n"],
                None,
            ),
            (
                "CREATE TABLE n PARTITION OF p FOR VALUES IN (1)",
                Some(AccessExclusive),
                true,
                false,
                &["p", "n"],
                None,
            ),
            (
                "CREATE TABLE n (LIKE p)",
                Some(AccessShare),
                true,
                false,
                &["p", "n"],
                None,
            ),
            // The options choose what is copied, not the lock.
            (
                "CREATE TABLE n (LIKE p INCLUDING ALL)",
                Some(AccessShare),
                true,
                false,
                &["p", "n"],
                None,
            ),
            (
                "CREATE UNLOGGED TABLE n (LIKE p INCLUDING DEFAULTS EXCLUDING INDEXES)",
                Some(AccessShare),
                true,
                false,
                &["p", "n"],
                None,
            ),
            (
                "CREATE TABLE n (a int) INHERITS (p)",
                Some(ShareUpdateExclusive),
                true,
                false,
                &["p", "n"],
                None,
            ),
            (
                "CREATE TABLE n AS SELECT * FROM p",
                Some(AccessShare),
                true,
                false,
                &["n"],
                None,
            ),
            // Nor does any other new object.
            ("CREATE TYPE e2 AS ENUM ('a')", None, true, false, &[], None),
            (
                "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'select 1'",
                None,
                true,
                false,
                &[],
                None,
            ),
            ("CREATE SCHEMA s", None, true, false, &[], None),
            // REINDEX: SHARE UPDATE EXCLUSIVE on the table concurrently, outside a transaction;
            // otherwise ACCESS EXCLUSIVE on the indexes (which every query planning on the table
            // needs).
            (
                "REINDEX TABLE CONCURRENTLY app.t",
                Some(ShareUpdateExclusive),
                false,
                true,
                &["app.t"],
                None,
            ),
            (
                "REINDEX (VERBOSE) TABLE CONCURRENTLY t",
                Some(ShareUpdateExclusive),
                false,
                true,
                &["t"],
                None,
            ),
            (
                "REINDEX INDEX CONCURRENTLY i",
                Some(ShareUpdateExclusive),
                false,
                true,
                &[],
                None,
            ),
            (
                "REINDEX TABLE t",
                Some(AccessExclusive),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "REINDEX INDEX i",
                Some(AccessExclusive),
                true,
                false,
                &[],
                None,
            ),
            // Data changes: ROW EXCLUSIVE on the table they name.
            (
                "UPDATE app.t SET a = 1 WHERE b = 2",
                Some(RowExclusive),
                true,
                false,
                &["app.t"],
                None,
            ),
            (
                "INSERT INTO t (a) VALUES (1)",
                Some(RowExclusive),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "DELETE FROM t WHERE a = 1",
                Some(RowExclusive),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "MERGE INTO t USING u ON t.id = u.id WHEN MATCHED THEN DELETE",
                Some(RowExclusive),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "COPY t (a) FROM STDIN",
                Some(RowExclusive),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "COPY t TO STDOUT",
                Some(AccessShare),
                true,
                false,
                &["t"],
                None,
            ),
            (
                "COPY (SELECT * FROM t) TO STDOUT",
                Some(AccessShare),
                true,
                false,
                &[],
                None,
            ),
        ];
        let target = Target::new(EngineKind::Postgres, 15, 0);
        for &(sql, lock, tx, nq, tables, unnamed) in pg {
            let s = &crate::sql::split(target.engine, sql).unwrap()[0];
            let w = statement(target, s);
            assert_eq!(w.sql, sql);
            assert_eq!(w.mode(), lock, "{sql}");
            assert_eq!(
                w.lock.as_ref().and_then(|l| l.object.clone()),
                None,
                "{sql}"
            );
            assert_eq!(w.bounded(), lock == Some(AccessExclusive), "{sql}");
            assert_eq!(w.transactional, tx, "{sql}");
            assert_eq!(w.never_queues_queries, nq, "{sql}");
            assert_eq!(w.tables, tables, "{sql}");
            assert_eq!(
                w.unnamed_index.as_ref().map(|u| u.0.as_str()),
                unnamed,
                "{sql}"
            );
            if let Some((_, probe)) = &w.unnamed_index {
                assert!(
                    probe.contains("pg_temp.sluice_probe") && !probe.contains("CONCURRENTLY"),
                    "{probe}"
                );
            }
            assert!(!w.transaction_control && !w.alter_table, "{sql}");
        }
        // An enum's values and a schema's name: the lock is on the type or schema, no table, so
        // `up` does not bound them (judged against pg_locks in plan_judged_by_server.rs).
        for (sql, mode, object) in [
            ("ALTER TYPE app.e ADD VALUE 'x'", Exclusive, "type app.e"),
            (
                "ALTER TYPE e ADD VALUE IF NOT EXISTS 'x' BEFORE 'a'",
                Exclusive,
                "type e",
            ),
            ("ALTER TYPE e RENAME VALUE 'a' TO 'b'", Exclusive, "type e"),
            ("ALTER SCHEMA s RENAME TO s2", AccessExclusive, "schema s"),
        ] {
            let s = &crate::sql::split(target.engine, sql).unwrap()[0];
            let w = statement(target, s);
            let want = TakenLock {
                mode,
                tables: vec![],
                object: Some(object.into()),
            };
            assert_eq!(w.lock, Some(want), "{sql}");
            assert!(!w.bounded() && w.tables.is_empty(), "{sql}");
        }
        // ALTER TYPE ... ADD VALUE could not run in a transaction before PostgreSQL 12.
        let old = Target::new(EngineKind::Postgres, 11, 0);
        let s = &crate::sql::split(old.engine, "ALTER TYPE e ADD VALUE 'x'").unwrap()[0];
        assert!(!statement(old, s).transactional);
        for sql in ["BEGIN", "COMMIT", "START TRANSACTION"] {
            let s = &crate::sql::split(target.engine, sql).unwrap()[0];
            assert!(statement(target, s).transaction_control, "{sql}");
        }
        // MariaDB/MySQL: no PostgreSQL lock; DDL commits implicitly; ALTER TABLE goes online.
        for engine in [EngineKind::MariaDb, EngineKind::MySql] {
            let target = Target::new(engine, 10, 11);
            let rows: &[(&str, bool, bool, &[&str])] = &[
                ("ALTER TABLE t ADD COLUMN b INT", false, true, &["t"]),
                ("CREATE INDEX i ON t (a)", false, false, &["t"]),
                ("UPDATE t SET a = 1", true, false, &["t"]),
                ("DELETE FROM t", true, false, &["t"]),
                ("CREATE TABLE n (a INT)", false, false, &["n"]),
            ];
            for &(sql, tx, alter, tables) in rows {
                let s = &crate::sql::split(engine, sql).unwrap()[0];
                let w = statement(target, s);
                assert_eq!(w.lock, None, "{sql}");
                assert_eq!(
                    (w.transactional, w.alter_table),
                    (tx, alter),
                    "{engine:?} {sql}"
                );
                assert_eq!(w.tables, tables, "{sql}");
                assert!(
                    !w.never_queues_queries && w.unnamed_index.is_none(),
                    "{sql}"
                );
            }
        }
    }

    /// In a part, a table created by an earlier statement is empty: nothing to bound.
    #[test]
    fn a_table_created_earlier_in_the_part_is_not_bounded() {
        let target = Target::new(EngineKind::Postgres, 15, 0);
        let stmts = crate::sql::split(
            target.engine,
            "CREATE TABLE n (a int); ALTER TABLE n ADD COLUMN b int; ALTER TABLE t ADD COLUMN b int",
        )
        .unwrap();
        let ir: Vec<ir::Stmt> = stmts
            .iter()
            .enumerate()
            .map(|(i, s)| ir::build(target.engine, i, s, 0, &s.sql))
            .collect();
        let w = part(target, &stmts, &ir);
        assert_eq!((w[1].bounded(), w[2].bounded()), (false, true));
    }
}
