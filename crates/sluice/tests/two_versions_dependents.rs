//! Issue 14: what is made on either name of an open column rename after its expand (by a later
//! migration or by hand), PostgreSQL, every kind the catalog records against a column:
//!
//! - on the old name: `complete` would drop it with the old column (an index of any form, a
//!   check, a key) or fail on it (a view, a policy, a referencing key, a generated column, a
//!   trigger, statistics, a column grant), and a NOT NULL changed on one name only would leave the
//!   other's. `complete` refuses before anything (exit 11) naming it, again on a rerun, the schema
//!   unchanged; once it is gone, `complete` finishes.
//! - on the new name: `rollback` would drop it with the new column. `rollback` refuses before
//!   anything naming it, again on a rerun; `complete` keeps it.

mod common;

use common::{Project, Run};
use sluice_testkit::Server;

const SETUP: &str = "
    CREATE TABLE parent (id int PRIMARY KEY);
    INSERT INTO parent SELECT g FROM generate_series(0, 300) g;
    CREATE TABLE t (id bigint PRIMARY KEY, a int NOT NULL DEFAULT 0, note text);
    CREATE INDEX t_a_idx ON t (a);
    INSERT INTO t SELECT g, g, 'x' FROM generate_series(1, 200) g;
    CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;";

/// Expands `ALTER TABLE t RENAME COLUMN a TO b` on a fresh database.
async fn expanded() -> Project {
    let p = Project::new(Server::Postgres).await;
    p.db.pg().await.batch_execute(SETUP).await.unwrap();
    p.write("1_rename.sql", "ALTER TABLE t RENAME COLUMN a TO b;\n");
    let r = p.run(&["up"]);
    assert_eq!(r.code, 0, "expand: {r:?}");
    assert_eq!(p.state_of(1).as_deref(), Some("expanded"));
    p
}

fn refused(r: &Run, code: i32, names: &str, what: &str) {
    assert_eq!(r.code, code, "{what}: {r:?}");
    assert!(
        r.stderr.contains("refused (nothing was changed") && r.stderr.contains(names),
        "{what}: the refusal names {names}: {r:?}"
    );
}

/// `made` (on expanded migration 1): `rollback` refuses naming `names`, twice, the schema
/// unchanged; `complete` then keeps it (`present` is true).
async fn rollback_refused_then_complete_keeps(p: &Project, made: &str, names: &str, present: &str) {
    p.db.pg().await.batch_execute(made).await.unwrap();
    let before = p.pg_dump_schema();
    for attempt in ["rollback", "rollback again"] {
        refused(
            &p.run(&["rollback"]),
            1,
            names,
            &format!("{made}: {attempt}"),
        );
        assert_eq!(p.state_of(1).as_deref(), Some("expanded"), "{made}");
        assert_eq!(
            p.pg_dump_schema(),
            before,
            "{made}: {attempt} changed nothing"
        );
    }
    let r = p.run(&["complete"]);
    assert_eq!(r.code, 0, "{made}: complete: {r:?}");
    assert_eq!(
        p.pg_text(present).await.as_deref(),
        Some("true"),
        "{made}: kept by complete"
    );
}

#[tokio::test]
async fn complete_refuses_what_was_made_on_the_old_name_after_the_expand() {
    // (made after the expand, what the refusal names, what removes it again)
    let cases = [
        ("CREATE INDEX t_expr ON t ((a % 7))", "index t_expr", "DROP INDEX t_expr"),
        ("CREATE INDEX t_part ON t (id) WHERE a > 5", "index t_part", "DROP INDEX t_part"),
        ("CREATE INDEX t_incl ON t (id) INCLUDE (a)", "index t_incl", "DROP INDEX t_incl"),
        ("CREATE INDEX t_a_brin ON t USING brin (a)", "index t_a_brin", "DROP INDEX t_a_brin"),
        ("ALTER TABLE t ADD CONSTRAINT t_a_uq UNIQUE (a)", "index t_a_uq", "ALTER TABLE t DROP CONSTRAINT t_a_uq"),
        ("ALTER TABLE t ADD CONSTRAINT t_a_ex EXCLUDE USING btree (a WITH =)", "index t_a_ex", "ALTER TABLE t DROP CONSTRAINT t_a_ex"),
        ("ALTER TABLE t ADD CONSTRAINT t_a_ck CHECK (a >= 0)", "check constraint t_a_ck", "ALTER TABLE t DROP CONSTRAINT t_a_ck"),
        ("ALTER TABLE t ADD CONSTRAINT t_a_ck2 CHECK (a >= 0) NOT VALID", "check constraint t_a_ck2", "ALTER TABLE t DROP CONSTRAINT t_a_ck2"),
        ("ALTER TABLE t ADD CONSTRAINT t_a_fk FOREIGN KEY (a) REFERENCES parent (id)", "t_a_fk", "ALTER TABLE t DROP CONSTRAINT t_a_fk"),
        ("CREATE UNIQUE INDEX t_a_u ON t (a); CREATE TABLE child (x int CONSTRAINT child_x_fk REFERENCES t (a))", "child_x_fk", "DROP TABLE child; DROP INDEX t_a_u"),
        ("CREATE VIEW va AS SELECT id, a FROM t", "view va depends on a", "DROP VIEW va"),
        ("CREATE MATERIALIZED VIEW mva AS SELECT id, a FROM t", "materialized view mva depends on a", "DROP MATERIALIZED VIEW mva"),
        ("CREATE POLICY t_pol ON t USING (a > 0)", "policy t_pol", "DROP POLICY t_pol ON t"),
        ("CREATE STATISTICS t_st ON a, note FROM t", "t_st", "DROP STATISTICS t_st"),
        ("ALTER TABLE t ADD COLUMN g int GENERATED ALWAYS AS (a * 2) STORED", "column g", "ALTER TABLE t DROP COLUMN g"),
        ("CREATE TRIGGER t_upd AFTER UPDATE OF a ON t FOR EACH ROW EXECUTE FUNCTION noop()", "trigger t_upd", "DROP TRIGGER t_upd ON t"),
        ("GRANT SELECT (a) ON t TO PUBLIC", "a has privileges of its own", "REVOKE SELECT (a) ON t FROM PUBLIC"),
        ("ALTER TABLE t ALTER COLUMN a DROP NOT NULL", "a is nullable but b is NOT NULL", "ALTER TABLE t ALTER COLUMN a SET NOT NULL"),
        ("ALTER TABLE t ALTER COLUMN a TYPE bigint", "the type: a is bigint but b is integer", "ALTER TABLE t ALTER COLUMN a TYPE integer"),
    ];
    for (made, names, undo) in cases {
        let p = expanded().await;
        let c = p.db.pg().await;
        c.batch_execute(made).await.unwrap();
        let before = p.pg_dump_schema();
        for attempt in ["complete", "complete again"] {
            refused(
                &p.run(&["complete"]),
                11,
                names,
                &format!("{made}: {attempt}"),
            );
            assert_eq!(p.state_of(1).as_deref(), Some("expanded"), "{made}");
            assert_eq!(
                p.pg_dump_schema(),
                before,
                "{made}: {attempt} changed nothing"
            );
        }
        // Both names still work while it stays expanded.
        c.batch_execute(
            "INSERT INTO t (id, a) VALUES (1001, 250); INSERT INTO t (id, b) VALUES (1002, 251)",
        )
        .await
        .unwrap();
        c.batch_execute(undo).await.unwrap();
        let r = p.run(&["complete"]);
        assert_eq!(r.code, 0, "{made}: complete once it is gone: {r:?}");
        assert_eq!(
            p.pg_text("SELECT string_agg(attname, ',' ORDER BY attnum) FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped").await.as_deref(),
            Some("id,note,b"),
            "{made}"
        );
        assert_eq!(
            p.pg_text("SELECT string_agg(id || '=' || b, ',' ORDER BY id) FROM t WHERE id > 1000")
                .await
                .as_deref(),
            Some("1001=250,1002=251"),
            "{made}"
        );
    }
}

#[tokio::test]
async fn rollback_refuses_what_was_made_on_the_new_name_and_complete_keeps_it() {
    // (made after the expand, what the refusal names, a query true while it is there)
    let cases = [
        (
            "CREATE INDEX t_b_later ON t (b) WHERE b > 5",
            "index t_b_later",
            "to_regclass('t_b_later') IS NOT NULL",
        ),
        (
            "CREATE INDEX t_b_expr ON t ((b % 3))",
            "index t_b_expr",
            "to_regclass('t_b_expr') IS NOT NULL",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT t_b_ck CHECK (b >= 0)",
            "check constraint t_b_ck",
            "EXISTS (SELECT FROM pg_constraint WHERE conname = 't_b_ck')",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT t_b_fk FOREIGN KEY (b) REFERENCES parent (id)",
            "t_b_fk",
            "EXISTS (SELECT FROM pg_constraint WHERE conname = 't_b_fk')",
        ),
        (
            "CREATE VIEW vb AS SELECT id, b FROM t",
            "view vb depends on b",
            "to_regclass('vb') IS NOT NULL",
        ),
        (
            "CREATE STATISTICS t_bst ON b, note FROM t",
            "t_bst",
            "EXISTS (SELECT FROM pg_statistic_ext WHERE stxname = 't_bst')",
        ),
        (
            "GRANT SELECT (b) ON t TO PUBLIC",
            "b has privileges of its own",
            "has_column_privilege('public', 't', 'b', 'SELECT')",
        ),
        (
            "CREATE SEQUENCE s_b OWNED BY t.b",
            "sequence public.s_b owned by b",
            "to_regclass('s_b') IS NOT NULL",
        ),
    ];
    for (made, names, present) in cases {
        let p = expanded().await;
        rollback_refused_then_complete_keeps(&p, made, names, present).await;
    }
    // What the expand made itself does not stop the rollback: it removes all of it.
    let p = expanded().await;
    let r = p.run(&["rollback"]);
    assert_eq!(r.code, 0, "plain rollback: {r:?}");
    assert_eq!(p.state_of(1).as_deref(), Some("pending"));
}

/// A split's rollback drops the added columns: what was made on them after the expand (an index,
/// a check, a view) refuses it before anything, twice, nothing changed; `complete` keeps it.
#[tokio::test]
async fn a_split_rollback_refuses_what_was_made_on_the_added_columns() {
    let cases = [
        (
            "CREATE INDEX ix_fn ON t (first_name)",
            "index ix_fn",
            "to_regclass('ix_fn') IS NOT NULL",
        ),
        (
            "ALTER TABLE t ADD CONSTRAINT ck_fn CHECK (first_name <> '')",
            "check constraint ck_fn",
            "EXISTS (SELECT FROM pg_constraint WHERE conname = 'ck_fn')",
        ),
        (
            "CREATE VIEW vfn AS SELECT id, last_name FROM t",
            "view vfn depends on last_name",
            "to_regclass('vfn') IS NOT NULL",
        ),
    ];
    for (made, names, present) in cases {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute("CREATE TABLE t (id bigint PRIMARY KEY, name text NOT NULL); INSERT INTO t SELECT g, 'F' || g || ' L' || g FROM generate_series(1, 200) g;")
            .await
            .unwrap();
        p.write(
            "1_split.sql",
            "-- sluice:up\nALTER TABLE t ADD COLUMN first_name text, ADD COLUMN last_name text;\nUPDATE t SET first_name = split_part(name, ' ', 1), last_name = split_part(name, ' ', 2);\n-- sluice:old name = first_name || ' ' || last_name\nALTER TABLE t DROP COLUMN name;\n",
        );
        let r = p.run(&["up"]);
        assert_eq!(r.code, 0, "expand: {r:?}");
        assert_eq!(p.state_of(1).as_deref(), Some("expanded"));
        rollback_refused_then_complete_keeps(&p, made, names, present).await;
    }
}
