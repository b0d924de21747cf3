//! Issues 13 and 14, what a review of the two-version triggers found (PostgreSQL), each a class:
//!
//! - a write the sync triggers must see but `=` calls no change: values equal under the type's
//!   equality yet different (citext's case, numeric's scale, interval's '1 day' vs '24 hours',
//!   float's -0), through a rename's new name and old name, and through a versioned schema's view
//!   and table — each must reach the other name and survive complete;
//! - an old type without `=` (json → jsonb versioned): every UPDATE failed while expanded;
//! - a second versioned schema opened while one is: refused, twice, nothing made;
//! - a role that the version schema's grants miss finds the view refused, not the table's old
//!   type silently;
//! - a kept type change of a key that an open type change's column references: refused;
//! - a child row written during a rollback whose key the old type cannot take (a composite key
//!   with a NULL part, which no parent row guards): the rollback is refused, nothing lost.

mod common;

use common::{Project, Run};
use sluice_testkit::Server;

fn ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: {r:?}");
}

fn state_of(p: &Project, v: i64) -> Option<String> {
    p.state_of(v)
}

async fn text(p: &Project, sql: &str) -> String {
    p.pg_text(sql).await.unwrap_or_else(|| "NULL".into())
}

/// (type, the first value, a value `=` calls equal to it but that is another value).
fn equal_but_different() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("numeric", "1.0", "1.00"),
        ("interval", "1 day", "24 hours"),
        ("float8", "0", "-0"),
        ("citext", "abc@x.org", "ABC@x.org"),
    ]
}

#[tokio::test]
async fn a_rename_carries_writes_that_equality_calls_no_change() {
    for (ty, first, second) in equal_but_different() {
        for through_new in [true, false] {
            let p = Project::new(Server::Postgres).await;
            let c = p.db.pg().await;
            c.batch_execute(&format!(
                "CREATE EXTENSION IF NOT EXISTS citext; CREATE TABLE t (id int PRIMARY KEY, a {ty}); INSERT INTO t SELECT g, '{first}' FROM generate_series(1, 50) g;"
            ))
            .await
            .unwrap();
            p.write("1_rename.sql", "ALTER TABLE t RENAME COLUMN a TO b;\n");
            ok(&p.run(&["up"]), "expand");
            assert_eq!(state_of(&p, 1).as_deref(), Some("expanded"));
            let (write, via) = if through_new {
                (format!("UPDATE t SET b = '{second}' WHERE id = 7"), "b")
            } else {
                (format!("UPDATE t SET a = '{second}' WHERE id = 7"), "a")
            };
            c.batch_execute(&write).await.unwrap();
            let want = text(&p, &format!("SELECT '{second}'::{ty}::text")).await;
            for col in ["a", "b"] {
                assert_eq!(
                    text(&p, &format!("SELECT {col}::text FROM t WHERE id = 7")).await,
                    want,
                    "{ty}: written through {via}, read through {col}"
                );
            }
            ok(&p.run(&["complete"]), "complete");
            assert_eq!(
                text(&p, "SELECT b::text FROM t WHERE id = 7").await,
                want,
                "{ty}: written through {via}, after complete"
            );
        }
    }
}

#[tokio::test]
async fn a_versioned_schema_carries_writes_that_equality_calls_no_change() {
    // text → the type: the down expression is the text form.
    for (ty, first, second) in equal_but_different() {
        for through_view in [true, false] {
            let p = Project::new(Server::Postgres).await;
            let c = p.db.pg().await;
            c.batch_execute(&format!(
                "CREATE EXTENSION IF NOT EXISTS citext; CREATE TABLE t (id int PRIMARY KEY, v text, note int); INSERT INTO t SELECT g, '{first}', 0 FROM generate_series(1, 50) g;"
            ))
            .await
            .unwrap();
            p.write(
                "1_type.sql",
                &format!("-- sluice:up\n-- sluice:versioned down v::text\nALTER TABLE t ALTER COLUMN v TYPE {ty} USING v::{ty};\n"),
            );
            ok(&p.run(&["up"]), "expand");
            let write = if through_view {
                format!("SET search_path TO sluice_v1, public; UPDATE t SET v = '{second}' WHERE id = 7; RESET search_path")
            } else {
                format!("UPDATE t SET v = '{second}' WHERE id = 7")
            };
            c.batch_execute(&write).await.unwrap();
            let new = text(&p, &format!("SELECT '{second}'::{ty}::text")).await;
            let old = if through_view {
                new.clone()
            } else {
                second.to_string()
            };
            assert_eq!(
                text(&p, "SELECT v FROM t WHERE id = 7").await,
                old,
                "{ty}: the old version's column (written through the {})",
                if through_view { "view" } else { "table" }
            );
            assert_eq!(
                text(&p, "SELECT v::text FROM sluice_v1.t WHERE id = 7").await,
                new,
                "{ty}: the new version's column"
            );
            ok(&p.run(&["complete"]), "complete");
            assert_eq!(
                text(&p, "SELECT v::text FROM t WHERE id = 7").await,
                new,
                "{ty}: after complete"
            );
        }
    }
}

#[tokio::test]
async fn a_versioned_change_from_a_type_without_equality_keeps_updates_working() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE docs (id int PRIMARY KEY, body json, note text); INSERT INTO docs SELECT g, format('{\"a\": %s}', g)::json, 'n' FROM generate_series(1, 100) g;")
        .await
        .unwrap();
    p.write(
        "1_jsonb.sql",
        "-- sluice:up\n-- sluice:versioned down body::json\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n",
    );
    ok(&p.run(&["up"]), "expand");
    // The old version: an UPDATE of another column, and of the column itself.
    c.batch_execute("UPDATE docs SET note = 'z' WHERE id = 2; UPDATE docs SET body = '{\"a\": 99}' WHERE id = 3")
        .await
        .unwrap();
    // The new version, through the view.
    c.batch_execute("SET search_path TO sluice_v1, public; UPDATE docs SET body = '{\"b\": 1}' WHERE id = 4; UPDATE docs SET note = 'y' WHERE id = 5; RESET search_path")
        .await
        .unwrap();
    assert_eq!(
        text(&p, "SELECT body::text FROM sluice_v1.docs WHERE id = 3").await,
        "{\"a\": 99}"
    );
    assert_eq!(
        text(&p, "SELECT body::text FROM docs WHERE id = 4").await,
        "{\"b\": 1}"
    );
    ok(&p.run(&["complete"]), "complete");
    assert_eq!(
        text(&p, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'docs'::regclass AND attname = 'body'").await,
        "jsonb"
    );
}

#[tokio::test]
async fn a_second_versioned_schema_is_refused_while_one_is_open() {
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute("CREATE TABLE docs (id int PRIMARY KEY, body text); CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO docs VALUES (1, '{}'); INSERT INTO users VALUES (1, '{}');")
        .await
        .unwrap();
    p.write(
        "1_docs.sql",
        "-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n",
    );
    p.write(
        "2_users.sql",
        "-- sluice:up\n-- sluice:versioned down email::text\nALTER TABLE users ALTER COLUMN email TYPE jsonb USING email::jsonb;\n",
    );
    // In one run: the second would be opened while the first is, earlier in the run.
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 11, "{r:?}");
        assert!(
            r.all().contains(
                "the new application version would need both version schemas on its search_path"
            ),
            "{r:?}"
        );
    }
    ok(&p.run(&["up", "--to", "1"]), "the first alone");
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 11, "{r:?}");
        assert!(r.all().contains("is expanded"), "{r:?}");
        assert_eq!(
            text(
                &p,
                "SELECT count(*)::text FROM pg_namespace WHERE nspname = 'sluice_v2'"
            )
            .await,
            "0",
            "nothing of the second was made"
        );
    }
    ok(&p.run(&["complete"]), "complete the first");
    ok(&p.run(&["up"]), "then the second");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
}

#[tokio::test]
async fn a_role_the_version_schema_misses_is_refused_not_served_the_old_type() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    // Roles are the server's: made and dropped by its administrator.
    let su = p.db.pg_su().await;
    let role = format!("{}_cols", p.db.name);
    su.batch_execute(&format!("CREATE ROLE \"{role}\""))
        .await
        .unwrap();
    c.batch_execute(
        "CREATE TABLE docs (id int PRIMARY KEY, body text); INSERT INTO docs VALUES (1, '{}');",
    )
    .await
    .unwrap();
    p.write(
        "1_docs.sql",
        "-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n",
    );
    ok(&p.run(&["up"]), "expand");
    // A role granted on the table after the expand (not on the view): through the version's
    // search_path it must hit the view and be refused, not read the table's text column.
    c.batch_execute(&format!("GRANT SELECT ON docs TO \"{role}\""))
        .await
        .unwrap();
    let r = su
        .batch_execute(&format!(
            "SET ROLE \"{role}\"; SET search_path TO sluice_v1, public; SELECT body FROM docs;"
        ))
        .await;
    su.batch_execute("RESET ROLE; RESET search_path")
        .await
        .unwrap();
    let e = r.expect_err("the view refuses the role");
    assert_eq!(e.code().map(|c| c.code()), Some("42501"), "{e:?}");
    ok(&p.run(&["rollback"]), "rollback");
    su.batch_execute(&format!(
        "DROP TABLE docs; DROP OWNED BY \"{role}\"; DROP ROLE \"{role}\""
    ))
    .await
    .unwrap();
}

#[tokio::test]
async fn a_key_an_open_type_change_references_is_not_kept_beside_it() {
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute("CREATE TABLE customers (id int PRIMARY KEY); INSERT INTO customers SELECT generate_series(1, 100); CREATE TABLE orders (k int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id)); INSERT INTO orders SELECT g, g FROM generate_series(1, 100) g;")
        .await
        .unwrap();
    p.write(
        "1_child.sql",
        "ALTER TABLE orders ALTER COLUMN customer_id TYPE bigint;\n",
    );
    p.write(
        "2_parent.sql",
        "ALTER TABLE customers ALTER COLUMN id TYPE bigint;\n",
    );
    // In one run, then with the first expanded: refused before the second makes anything.
    for expect in ["earlier in this run", "expanded"] {
        for _ in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, 11, "{r:?}");
            assert!(
                r.all().contains(&format!("which public.orders.customer_id references, while migration 1_child changes that column's type ({expect})")),
                "{expect}: {r:?}"
            );
            assert_eq!(
                text(&p, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'customers'::regclass AND attname = 'id'").await,
                "integer"
            );
        }
        if expect == "earlier in this run" {
            ok(&p.run(&["up", "--to", "1"]), "the first alone");
            assert_eq!(state_of(&p, 1).as_deref(), Some("expanded"));
        }
    }
    ok(&p.run(&["complete"]), "complete the first");
    ok(&p.run(&["up"]), "the second");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    // Its rollback leaves the first's completed child as it is.
    ok(&p.run(&["rollback"]), "rollback of the second");
    assert_eq!(
        text(&p, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'customer_id'").await,
        "bigint"
    );
    assert_eq!(state_of(&p, 1).as_deref(), Some("applied"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_child_row_written_during_the_rollback_that_the_old_type_cannot_take_refuses_it() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE customers (tenant int NOT NULL, id int NOT NULL, PRIMARY KEY (tenant, id)); INSERT INTO customers SELECT 1, generate_series(1, 100);
        CREATE TABLE orders (k int PRIMARY KEY, tenant int, customer_id int, FOREIGN KEY (tenant, customer_id) REFERENCES customers (tenant, id)); INSERT INTO orders SELECT g, 1, g FROM generate_series(1, 100) g;")
        .await
        .unwrap();
    p.write(
        "1_widen.sql",
        "ALTER TABLE customers ALTER COLUMN id TYPE bigint;\n",
    );
    ok(&p.run(&["up"]), "expand");
    assert_eq!(state_of(&p, 1).as_deref(), Some("expanded"));
    // The rollback held after its count, before it rebuilds anything: a child row whose key
    // part the old type cannot take, unchecked by the key (MATCH SIMPLE, tenant NULL).
    let r = common::paused_at(&p, &["rollback"], "rollback-step-0", None, || async {
        c.batch_execute(
            "INSERT INTO orders (k, tenant, customer_id) VALUES (900, NULL, 3000000000)",
        )
        .await
        .unwrap();
    })
    .await;
    assert_eq!(r.code, 11, "{r:?}");
    assert!(
        r.all().contains(
            "1 row(s) of public.orders hold a value in customer_id that its old type cannot take"
        ),
        "{r:?}"
    );
    assert_eq!(state_of(&p, 1).as_deref(), Some("expanded"));
    assert_eq!(
        text(&p, "SELECT customer_id::text FROM orders WHERE k = 900").await,
        "3000000000"
    );
    // Fixed, the rollback goes through.
    c.batch_execute("DELETE FROM orders WHERE k = 900")
        .await
        .unwrap();
    ok(&p.run(&["rollback"]), "rollback");
    assert_eq!(
        text(&p, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'customer_id'").await,
        "integer"
    );
}

#[tokio::test]
async fn what_was_made_on_the_column_after_the_expand_does_not_stop_the_rollback() {
    for made in [
        "CREATE VIEW report AS SELECT id, body FROM docs",
        "CREATE TABLE other (k int); GRANT SELECT (body) ON docs TO PUBLIC",
    ] {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute("CREATE TABLE docs (id int PRIMARY KEY, body text); INSERT INTO docs SELECT g, '{}' FROM generate_series(1, 20) g;")
            .await
            .unwrap();
        p.write(
            "1_docs.sql",
            "-- sluice:up\n-- sluice:versioned down body::text\nALTER TABLE docs ALTER COLUMN body TYPE jsonb USING body::jsonb;\n",
        );
        ok(&p.run(&["up"]), "expand");
        c.batch_execute(made).await.unwrap();
        ok(&p.run(&["rollback"]), made);
        assert_eq!(state_of(&p, 1).as_deref(), Some("pending"), "{made}");
        assert_eq!(
            text(
                &p,
                "SELECT count(*)::text FROM pg_namespace WHERE nspname = 'sluice_v1'"
            )
            .await,
            "0",
            "{made}"
        );
    }
}

/// Columns, constraints, indexes, triggers and sluice's functions of the public schema.
async fn catalog(p: &Project) -> String {
    text(
        p,
        "SELECT string_agg(x, E'\\n' ORDER BY x) FROM (
           SELECT format('col %s.%s %s %s', attrelid::regclass, attname, format_type(atttypid, atttypmod), attnotnull) AS x FROM pg_attribute
            WHERE attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r') AND attnum > 0 AND NOT attisdropped
           UNION ALL SELECT format('con %s %s', conname, pg_get_constraintdef(oid)) FROM pg_constraint WHERE connamespace = 'public'::regnamespace
           UNION ALL SELECT format('idx %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'
           UNION ALL SELECT format('trg %s', tgname) FROM pg_trigger WHERE NOT tgisinternal AND tgrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)
           UNION ALL SELECT format('fn %s', proname) FROM pg_proc WHERE pronamespace = 'public'::regnamespace) f",
    )
    .await
}

#[tokio::test]
async fn a_type_change_cut_off_before_its_swap_rolls_back_to_the_schema_before_it() {
    for point in ["staged-swap", "staged-swap-uncommitted"] {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int NOT NULL CHECK (v >= 0)); CREATE INDEX t_v ON t (v); INSERT INTO t SELECT g, g FROM generate_series(1, 2000) g;")
            .await
            .unwrap();
        let before = catalog(&p).await;
        p.write("1_widen.sql", "ALTER TABLE t ALTER COLUMN v TYPE bigint;\n");
        let r = p.run_crashing(&["up"], point);
        assert!(
            r.stderr.contains(&format!("SLUICE_CRASH_AT={point}")),
            "{point}: {r:?}"
        );
        assert_ne!(catalog(&p).await, before, "{point}: the helpers are there");
        c.batch_execute("INSERT INTO t VALUES (5000, 5)")
            .await
            .unwrap();
        let rb = p.run(&["rollback"]);
        ok(&rb, point);
        assert_eq!(
            catalog(&p).await,
            before,
            "{point}: as before the migration"
        );
        assert_eq!(state_of(&p, 1).as_deref(), Some("pending"), "{point}");
        assert_eq!(text(&p, "SELECT count(*)::text FROM t").await, "2001");
        let again = p.run(&["rollback"]);
        ok(&again, point);
        ok(&p.run(&["up"]), "up again");
        assert_eq!(state_of(&p, 1).as_deref(), Some("expanded"), "{point}");
        ok(&p.run(&["complete"]), "complete");
        assert_eq!(
            text(&p, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'v'").await,
            "bigint"
        );
    }
}

/// MariaDB's default collations call 'USD', 'usd' and 'usd ' equal: the rename's triggers and
/// backfill compare bytes, so no such value is lost, whichever name writes it (table-driven over
/// the shapes the review found), and the end equals the rename as written with the same writes.
#[tokio::test]
async fn a_mariadb_rename_keeps_values_its_collation_calls_equal() {
    use mysql_async::prelude::Queryable;
    const SETUP: &str = "CREATE TABLE t (id int PRIMARY KEY, a varchar(20) NOT NULL DEFAULT 'usd', other int) DEFAULT CHARSET utf8mb4 COLLATE utf8mb4_general_ci;
        INSERT INTO t VALUES (1, 'USD', 0), (2, 'usd ', 0), (3, 'eur', 0), (4, 'usd', 0), (6, 'abc', 0)";
    // (what the old version writes through a, what the new version writes through b)
    let old_writes = [
        "INSERT INTO t (id, a) VALUES (10, 'USD')",
        "UPDATE t SET a = 'Abc' WHERE id = 6",
        "UPDATE t SET other = 1",
    ];
    let new_writes = [
        "UPDATE t SET b = 'EUR' WHERE id = 3",
        "INSERT INTO t (id, b) VALUES (5, 'USD')",
        "UPDATE t SET b = 'usd  ' WHERE id = 4",
    ];
    let staged = Project::new(Server::MariaDb).await;
    let written = Project::new(Server::MariaDb).await;
    for p in [&staged, &written] {
        let mut c = p.db.my().await;
        c.query_drop(SETUP).await.unwrap();
    }
    staged.write("1_rename.sql", "ALTER TABLE t RENAME COLUMN a TO b;\n");
    ok(&staged.run(&["up"]), "expand");
    assert_eq!(state_of(&staged, 1).as_deref(), Some("expanded"));
    let mut c = staged.db.my().await;
    for w in old_writes.iter().chain(new_writes.iter()) {
        c.query_drop(*w).await.unwrap();
    }
    // While expanded both names hold the same bytes on every row.
    let differ: Vec<(i64, Option<String>, Option<String>)> = c
        .query(
            "SELECT id, HEX(a), HEX(b) FROM t WHERE NOT (CAST(a AS BINARY) <=> CAST(b AS BINARY))",
        )
        .await
        .unwrap();
    assert!(differ.is_empty(), "the names differ: {differ:?}");
    ok(&staged.run(&["complete"]), "complete");
    // The twin: the rename as written, then the same writes (the old ones through the new name).
    let mut w = written.db.my().await;
    w.query_drop("ALTER TABLE t RENAME COLUMN a TO b")
        .await
        .unwrap();
    for sql in old_writes
        .iter()
        .map(|s| {
            s.replace("(id, a)", "(id, b)")
                .replace("SET a =", "SET b =")
        })
        .chain(new_writes.iter().map(|s| s.to_string()))
    {
        w.query_drop(sql).await.unwrap();
    }
    let rows = "SELECT id, HEX(b), other FROM t ORDER BY id";
    let got: Vec<(i64, String, Option<i64>)> = c.query(rows).await.unwrap();
    let want: Vec<(i64, String, Option<i64>)> = w.query(rows).await.unwrap();
    assert_eq!(got, want, "rows equal the rename as written");
}

#[tokio::test]
async fn a_mariadb_rename_of_an_on_update_column_is_refused() {
    use mysql_async::prelude::Queryable;
    let p = Project::new(Server::MariaDb).await;
    let mut c = p.db.my().await;
    c.query_drop("CREATE TABLE t (id int PRIMARY KEY, a timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP); INSERT INTO t (id) VALUES (1)")
        .await
        .unwrap();
    p.write("1_rename.sql", "ALTER TABLE t RENAME COLUMN a TO b;\n");
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(
            r.all().contains("it has ON UPDATE CURRENT_TIMESTAMP"),
            "{r:?}"
        );
        let cols: Vec<String> = c
            .query("SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't' ORDER BY ORDINAL_POSITION")
            .await
            .unwrap();
        assert_eq!(
            cols,
            vec!["id".to_string(), "a".to_string()],
            "nothing made"
        );
    }
}

/// The fill of a NOT NULL column the old version does not write: an expression the trigger
/// cannot evaluate as the UPDATE does (a generated column, still NULL in a BEFORE trigger; a
/// system column) or one that leaves rows NULL (SET NOT NULL then fails, as written too) is
/// refused before anything is made: no trigger, no filled row, every time.
#[tokio::test]
async fn a_fill_that_would_fail_later_is_refused_before_anything_is_made() {
    for (expr, said) in [
        ("cc", "names the generated column cc"),
        ("tableoid::text", "tableoid"),
        ("lower(country)", "would still hold NULL after the UPDATE"),
    ] {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute("CREATE TABLE accounts (id int PRIMARY KEY, country text, cc text GENERATED ALWAYS AS (upper(country)) STORED, region text);
            INSERT INTO accounts (id, country) VALUES (1, 'de'), (2, NULL), (3, 'fr');")
            .await
            .unwrap();
        p.write(
            "1_fill.sql",
            &format!("UPDATE accounts SET region = {expr} WHERE region IS NULL;\nALTER TABLE accounts ALTER COLUMN region SET NOT NULL;\n"),
        );
        let before = catalog(&p).await;
        for _ in 0..2 {
            let r = p.run(&["up"]);
            assert_ne!(r.code, 0, "{expr}: {r:?}");
            assert!(r.all().contains(said), "{expr}: {r:?}");
            assert_eq!(catalog(&p).await, before, "{expr}: nothing made");
            assert_eq!(
                text(&p, "SELECT count(region)::text FROM accounts").await,
                "0",
                "{expr}: no row filled"
            );
        }
    }
}

/// A published table's rename (PostgreSQL): a subscriber applies changes by the table's name, so
/// the expand's rename would stop the subscription; refused before anything, twice.
#[tokio::test]
async fn a_published_tables_rename_is_refused_with_the_way_round() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    let publication = format!("{}_pub", p.db.name);
    c.batch_execute(&format!(
        "CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1); CREATE PUBLICATION \"{publication}\" FOR TABLE a;"
    ))
    .await
    .unwrap();
    p.write("1_rename.sql", "ALTER TABLE a RENAME TO b;\n");
    let before = catalog(&p).await;
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 2, "{r:?}");
        assert!(r.all().contains("the table is published"), "{r:?}");
        assert_eq!(catalog(&p).await, before, "nothing made");
    }
    c.batch_execute(&format!("DROP PUBLICATION \"{publication}\""))
        .await
        .unwrap();
}

async fn crash_up(p: &Project, point: &str) {
    let r = p.run_crashing(&["up"], point);
    assert!(
        r.stderr.contains(&format!("SLUICE_CRASH_AT={point}")),
        "{point}: {r:?}"
    );
}

/// A staged type change whose swap committed before the process died (the record says its
/// statement is done): the rerun does not run the ALTER again (`USING v * 1.5` twice gave 22.5
/// for 10), and `rollback` does not claim to undo it (the type names `float8` and `double
/// precision` are one type).
#[tokio::test]
async fn a_type_change_whose_swap_committed_is_neither_run_again_nor_undone() {
    for then in ["up", "rollback"] {
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int); INSERT INTO t SELECT g, 10 FROM generate_series(1, 2000) g;")
            .await
            .unwrap();
        p.write(
            "1_float.sql",
            "ALTER TABLE t ALTER COLUMN v TYPE float8 USING v * 1.5;\n",
        );
        crash_up(&p, "staged-swap-committed").await;
        let r = p.run(&[then]);
        if then == "rollback" {
            assert_eq!(r.code, 11, "{r:?}");
            assert!(r.all().contains("its swap committed"), "{r:?}");
            ok(&p.run(&["up"]), "up after the refused rollback");
        } else {
            ok(&r, "rerun");
        }
        assert_eq!(
            text(&p, "SELECT string_agg(DISTINCT v::text, ',') FROM t").await,
            "15",
            "{then}: every row converted once"
        );
        assert_eq!(state_of(&p, 1).as_deref(), Some("applied"), "{then}");
    }
}

/// A user's column with the staged change's helper name: `up` refuses to go on (its precheck),
/// and `rollback` then leaves the column and its values alone.
#[tokio::test]
async fn a_users_column_with_the_helpers_name_is_never_dropped() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE t (id int PRIMARY KEY, v int, v_sluice_new text); INSERT INTO t SELECT g, g, 'mine' FROM generate_series(1, 500) g;")
        .await
        .unwrap();
    p.write("1_widen.sql", "ALTER TABLE t ALTER COLUMN v TYPE bigint;\n");
    let r = p.run(&["up"]);
    assert_ne!(r.code, 0, "{r:?}");
    for _ in 0..2 {
        let rb = p.run(&["rollback"]);
        assert_eq!(rb.code, 11, "{rb:?}");
        assert!(
            rb.all().contains("is not one sluice can tell it made"),
            "{rb:?}"
        );
        assert_eq!(
            text(&p, "SELECT count(v_sluice_new)::text FROM t").await,
            "500"
        );
    }
}

/// MariaDB rename of columns whose bytes are not their text (inet6, uuid) with a default: the
/// old version's INSERT that leaves the new name out keeps its value.
#[tokio::test]
async fn a_mariadb_rename_keeps_writes_of_types_whose_bytes_are_not_their_text() {
    use mysql_async::prelude::Queryable;
    for (ty, default, written) in [
        ("inet6", "'::1'", "'::2'"),
        (
            "uuid",
            "'00000000-0000-0000-0000-0000000000ab'",
            "'00000000-0000-0000-0000-000000000001'",
        ),
        ("decimal(10,2)", "0", "'1.50'"),
    ] {
        let p = Project::new(Server::MariaDb).await;
        let mut c = p.db.my().await;
        c.query_drop(format!("CREATE TABLE t (id int PRIMARY KEY, a {ty} NOT NULL DEFAULT {default}); INSERT INTO t (id) VALUES (1)"))
            .await
            .unwrap();
        p.write("1_rename.sql", "ALTER TABLE t RENAME COLUMN a TO b;\n");
        ok(&p.run(&["up"]), ty);
        c.query_drop(format!("INSERT INTO t (id, a) VALUES (2, {written})"))
            .await
            .unwrap();
        let got: Vec<(String, String, String)> = c
            .query(format!("SELECT CAST(a AS CHAR), CAST(b AS CHAR), CAST(CAST({written} AS {}) AS CHAR) FROM t WHERE id = 2", if ty.starts_with("decimal") { ty } else { "CHAR" }))
            .await
            .unwrap();
        let (a, b, want) = got[0].clone();
        assert_eq!(
            (a.as_str(), b.as_str()),
            (want.as_str(), want.as_str()),
            "{ty}"
        );
    }
}

/// DROP TABLE in two phases, then a migration creating a table of the same name: refused while
/// the drop is open (the name is the view's until complete), and a `DROP TABLE IF EXISTS` of a
/// missing table completes without touching the table made with its name since.
#[tokio::test]
async fn a_table_created_with_an_open_drops_name_waits_for_complete() {
    let p = Project::new(Server::Postgres).await;
    let c = p.db.pg().await;
    c.batch_execute("CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a VALUES (1);")
        .await
        .unwrap();
    p.write("1_drop.sql", "DROP TABLE a;\n");
    p.write(
        "2_create.sql",
        "CREATE TABLE a (id int PRIMARY KEY, name text);\n",
    );
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 11, "{r:?}");
        assert!(
            r.all()
                .contains("migration 2_create creates a while migration 1_drop"),
            "{r:?}"
        );
    }
    ok(&p.run(&["up", "--to", "1"]), "the drop's expand");
    let r = p.run(&["up"]);
    assert_eq!(r.code, 11, "{r:?}");
    ok(&p.run(&["complete"]), "complete the drop");
    ok(&p.run(&["up"]), "then the create");

    p.write("3_gone.sql", "DROP TABLE IF EXISTS nothere;\n");
    ok(&p.run(&["up"]), "if exists");
    assert_eq!(state_of(&p, 3).as_deref(), Some("expanded"));
    c.batch_execute("CREATE TABLE nothere (id int); INSERT INTO nothere VALUES (7)")
        .await
        .unwrap();
    ok(
        &p.run(&["complete"]),
        "complete of the missing table's drop",
    );
    assert_eq!(text(&p, "SELECT count(*)::text FROM nothere").await, "1");
}

/// MariaDB: a table whose definition holds bytes that are not UTF-8 text (a binary column's
/// default `0x00FF`). The online copy panicked reading it, and the rename gave the new column
/// another default (EF BF BD): every path that writes a definition back from that text now
/// stops with the reason before it changes anything, every time; `--as-written` runs it.
#[tokio::test]
async fn a_mariadb_definition_that_is_not_text_is_never_written_back_wrong() {
    use mysql_async::prelude::Queryable;
    for (what, sql, said, code) in [
        (
            "online copy",
            "ALTER TABLE t MODIFY n bigint NOT NULL DEFAULT 0;",
            "holds bytes that are not UTF-8 text",
            1,
        ),
        (
            "rename",
            "ALTER TABLE t RENAME COLUMN v TO w;",
            "holds bytes that are not UTF-8 text",
            2,
        ),
        (
            "drop column",
            "ALTER TABLE t DROP COLUMN v;",
            "holds bytes that are not UTF-8 text",
            2,
        ),
    ] {
        let p = Project::new(Server::MariaDb).await;
        let mut c = p.db.my().await;
        c.query_drop("CREATE TABLE t (id int PRIMARY KEY, v varbinary(10) NOT NULL DEFAULT 0x00FF, n int NOT NULL DEFAULT 0); INSERT INTO t (id) SELECT seq FROM seq_1_to_200")
            .await
            .unwrap();
        p.write("1_change.sql", &format!("{sql}\n"));
        let shape = "SELECT GROUP_CONCAT(CONCAT(COLUMN_NAME, ' ', COLUMN_TYPE, ' ', HEX(IFNULL(COLUMN_DEFAULT, ''))) ORDER BY ORDINAL_POSITION) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 't'";
        let before: Option<String> = c.query_first(shape).await.unwrap();
        for _ in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, code, "{what}: {r:?}");
            assert!(r.all().contains(said), "{what}: {r:?}");
            let now: Option<String> = c.query_first(shape).await.unwrap();
            assert_eq!(now, before, "{what}: nothing changed");
            let tables: Vec<String> = c.query("SHOW TABLES").await.unwrap();
            assert!(
                tables.iter().all(|t| t == "t" || t.starts_with("sluice_")),
                "{what}: nothing left behind: {tables:?}"
            );
        }
        ok(&p.run(&["up", "--as-written"]), what);
        let column = match what {
            "rename" => "w",
            "drop column" => continue,
            _ => "v",
        };
        let v: Vec<String> = c
            .query(format!("SELECT DISTINCT HEX({column}) FROM t"))
            .await
            .unwrap();
        assert_eq!(v, vec!["00FF".to_string()], "{what}");
    }
}
