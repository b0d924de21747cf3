//! Every statement sluice runs in a staged form must leave the database exactly as the statement
//! as written would: the same schema (by sluice's schema model: columns, nullability, defaults,
//! indexes, constraints and their names and validity) and the same rows. Each case runs on two
//! twin databases, once `--as-written` and once staged with writers inserting throughout, which
//! must see no error.

mod common;

use common::Project;
use sluice_core::engine::prelude::*;
use sluice_testkit::Server;

const SETUP: &str = "
    CREATE TABLE customers (id int PRIMARY KEY, email text);
    INSERT INTO customers SELECT g, 'c' || g || '@x' FROM generate_series(1, 200) g;
    CREATE TABLE orders (id bigint, customer_id int, amount int, note text);
    INSERT INTO orders SELECT g, 1 + g % 200, g % 1000, NULL FROM generate_series(1, 20000) g;
    CREATE INDEX orders_note_idx ON orders (note);
    CREATE SEQUENCE orders_next START 1000000;";

/// Each case: a name and the migration (on top of SETUP).
const CASES: &[(&str, &str)] = &[
    (
        "create index",
        "CREATE INDEX orders_amount_idx ON orders (amount);",
    ),
    (
        "create unique index",
        "CREATE UNIQUE INDEX orders_id_idx ON orders (id);",
    ),
    ("drop index", "DROP INDEX orders_note_idx;"),
    (
        "foreign key, unnamed",
        "ALTER TABLE orders ADD FOREIGN KEY (customer_id) REFERENCES customers (id);",
    ),
    (
        "check, named",
        "ALTER TABLE orders ADD CONSTRAINT orders_amount_ok CHECK (amount >= 0);",
    ),
    (
        "check, unnamed",
        "ALTER TABLE orders ADD CHECK (amount >= 0);",
    ),
    (
        "check, unnamed, two columns",
        "ALTER TABLE orders ADD CHECK (amount >= 0 AND orders.customer_id > 0);",
    ),
    ("unique, unnamed", "ALTER TABLE orders ADD UNIQUE (id);"),
    (
        "unique, named",
        "ALTER TABLE orders ADD CONSTRAINT orders_uq UNIQUE (id);",
    ),
    (
        "primary key, unnamed",
        "ALTER TABLE orders ADD PRIMARY KEY (id);",
    ),
    (
        "primary key, named",
        "ALTER TABLE orders ADD CONSTRAINT orders_pk PRIMARY KEY (id);",
    ),
    (
        "set not null",
        "ALTER TABLE orders ALTER COLUMN amount SET NOT NULL;",
    ),
    (
        "add column, volatile default, not null",
        "ALTER TABLE orders ADD COLUMN token text NOT NULL DEFAULT md5(random()::text);",
    ),
    (
        "add column, volatile default, nullable",
        "ALTER TABLE orders ADD COLUMN seen timestamptz DEFAULT clock_timestamp();",
    ),
];

async fn schema(url: &str) -> sluice_core::schema::Schema {
    let url = sluice_core::dburl::DbUrl::parse(url).unwrap();
    let mut e = sluice_postgres::PgEngine::connect(&url).await.unwrap();
    e.introspect().await.unwrap()
}

/// Rows of `orders` that both runs must agree on (the volatile columns are checked for presence).
async fn rows(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT format('%s|%s|%s|%s', id, customer_id, amount, note) FROM orders WHERE id < 1000000 ORDER BY id",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn staged_statements_leave_what_the_statement_as_written_leaves() {
    let mut failures = Vec::new();
    for (name, sql) in CASES {
        let sql = for_server(sql).await;
        let written = Project::new(Server::Postgres).await;
        let staged = Project::new(Server::Postgres).await;
        for p in [&written, &staged] {
            p.db.pg().await.batch_execute(SETUP).await.unwrap();
            p.write("1_case.sql", &format!("{sql}\n"));
        }
        let r = written.run(&["up", "--as-written"]);
        assert_eq!(r.code, 0, "{name} as written: {r:?}");

        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut writers = Vec::new();
        for _ in 0..2 {
            let w = staged.db.pg().await;
            let stop = stop.clone();
            writers.push(tokio::spawn(async move {
                let (mut n, mut errors) = (0, Vec::new());
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Err(e) = w
                        .execute(
                            "INSERT INTO orders (id, customer_id, amount) VALUES (nextval('orders_next'), 1, 1)",
                            &[],
                        )
                        .await
                    {
                        errors.push(e.to_string());
                    }
                    n += 1;
                }
                (n, errors)
            }));
        }
        let r = staged.run(&["up", "--pace", "speed"]);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(r.code, 0, "{name} staged: {r:?}");
        for w in writers {
            let (n, errors) = w.await.unwrap();
            assert!(n > 0);
            assert!(errors.is_empty(), "{name}: writers failed: {errors:?}");
        }
        let (a, b) = (schema(&written.db.url).await, schema(&staged.db.url).await);
        let differences = sluice_core::schema::diff(&a, &b);
        if !differences.is_empty() {
            failures.push(format!(
                "{name}: {}",
                differences
                    .iter()
                    .map(|d| d.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        let (ca, cb) = (written.db.pg().await, staged.db.pg().await);
        assert_eq!(rows(&ca).await, rows(&cb).await, "{name}: the rows differ");
        if sql.contains("token") {
            let nulls: i64 = cb
                .query_one("SELECT count(*) FROM orders WHERE token IS NULL", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(nulls, 0, "{name}");
        }
        if sql.contains("clock_timestamp") {
            let nulls: i64 = cb
                .query_one("SELECT count(*) FROM orders WHERE seen IS NULL", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(nulls, 0, "{name}: every existing row gets its default");
        }
    }
    assert!(
        failures.is_empty(),
        "staged forms differ from as written:\n{}",
        failures.join("\n")
    );
}

/// How a generated case names its table, columns and objects.
struct Shape {
    name: &'static str,
    /// The table of case `k`, as SQL (each case has a table of its own, so that unnamed objects of
    /// different cases never compete for a name).
    table: fn(usize) -> String,
    /// Two columns, as SQL.
    cols: [&'static str; 2],
    /// A constraint or index name for case `k`, as SQL (never schema-qualified).
    object: fn(usize) -> String,
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "lower",
        table: |k| format!("t{k}"),
        cols: ["a", "b"],
        object: |k| format!("n{k}"),
    },
    Shape {
        name: "mixed case",
        table: |k| format!("\"Order Case {k}\""),
        cols: ["\"Wert\"", "\"Zweiter Wert\""],
        object: |k| format!("\"Name {k}\""),
    },
    Shape {
        name: "non-ASCII",
        table: |k| format!("bestellung_ü{k}"),
        cols: ["\"Größe\"", "ÄB"],
        object: |k| format!("näme{k}"),
    },
    Shape {
        name: "embedded quote",
        table: |k| format!("\"we\"\"ird {k}\""),
        cols: ["\"co\"\"l\"", "\"b\"\"\""],
        object: |k| format!("\"na\"\"me {k}\""),
    },
    Shape {
        name: "63 bytes, columns differing at the end",
        table: |k| format!("t{k:02}{}", "x".repeat(60)),
        cols: [
            "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccca",
            "ccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccb",
        ],
        object: |k| format!("n{k:02}{}", "z".repeat(60)),
    },
    Shape {
        name: "54 bytes",
        table: |k| format!("t{k:02}{}", "l".repeat(51)),
        cols: ["a", "b"],
        object: |k| format!("n{k:02}{}", "z".repeat(51)),
    },
    Shape {
        name: "70 bytes (the server truncates)",
        table: |k| format!("t{k:02}{}", "y".repeat(67)),
        cols: ["a", "b"],
        object: |k| format!("n{k:02}{}", "z".repeat(67)),
    },
    Shape {
        name: "non-ASCII, 62 bytes",
        table: |k| format!("t{k:02}{}", "ü".repeat(29)),
        cols: ["\"ä\"", "\"ö\""],
        object: |k| format!("n{k:02}{}", "é".repeat(29)),
    },
    Shape {
        name: "schema-qualified",
        table: |k| format!("app.\"Sch {k}\""),
        cols: ["a", "\"B\""],
        object: |k| format!("\"N {k}\""),
    },
];

/// Every statement kind sluice stages, with every option each accepts: {T} the case's table,
/// {A} {B} its columns, {R} a referenced table with a primary key, {N} a name.
const KINDS: &[&str] = &[
    "ALTER TABLE {T} ADD UNIQUE ({A})",
    "ALTER TABLE {T} ADD UNIQUE ({A}, {B})",
    "ALTER TABLE {T} ADD UNIQUE NULLS NOT DISTINCT ({A})",
    "ALTER TABLE {T} ADD UNIQUE NULLS DISTINCT ({A})",
    "ALTER TABLE {T} ADD UNIQUE ({A}) DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE {T} ADD UNIQUE ({A}) DEFERRABLE",
    "ALTER TABLE {T} ADD UNIQUE ({A}) NOT DEFERRABLE INITIALLY IMMEDIATE",
    "ALTER TABLE {T} ADD UNIQUE ({A}) INCLUDE ({B})",
    "ALTER TABLE {T} ADD UNIQUE ({A}) WITH (fillfactor = 70)",
    "ALTER TABLE {T} ADD UNIQUE ({A}) USING INDEX TABLESPACE pg_default",
    "ALTER TABLE {T} ADD CONSTRAINT {N} UNIQUE NULLS NOT DISTINCT ({B}, {A}) DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE {T} ADD PRIMARY KEY ({A}, {B})",
    "ALTER TABLE {T} ADD PRIMARY KEY ({A})",
    "ALTER TABLE {T} ADD CONSTRAINT {N} PRIMARY KEY ({B}, {A}) DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE {T} ADD PRIMARY KEY ({A}) INCLUDE ({B})",
    "ALTER TABLE {T} ADD PRIMARY KEY ({A}) WITH (fillfactor = 80) USING INDEX TABLESPACE pg_default",
    "ALTER TABLE {T} ADD FOREIGN KEY ({A}) REFERENCES {R} (id)",
    "ALTER TABLE {T} ADD FOREIGN KEY ({A}) REFERENCES {R} ON DELETE CASCADE ON UPDATE SET NULL",
    "ALTER TABLE {T} ADD CONSTRAINT {N} FOREIGN KEY ({A}) REFERENCES {R} (id) MATCH FULL DEFERRABLE INITIALLY DEFERRED",
    "ALTER TABLE {T} ADD FOREIGN KEY ({A}) REFERENCES {R} (id) NOT DEFERRABLE INITIALLY IMMEDIATE",
    "ALTER TABLE {T} ADD CHECK ({A} > 0)",
    "ALTER TABLE {T} ADD CHECK ({A} > 0 AND {B} > 0)",
    "ALTER TABLE {T} ADD CONSTRAINT {N} CHECK ({B} >= 0) NO INHERIT",
    "ALTER TABLE {T} ALTER COLUMN {A} SET NOT NULL",
    "ALTER TABLE ONLY {T} ALTER COLUMN {B} SET NOT NULL",
    "CREATE INDEX ON {T} ({A})",
    "CREATE INDEX {N} ON {T} ({A})",
    "CREATE UNIQUE INDEX {N} ON {T} ({A}) INCLUDE ({B}) WHERE {B} > 0",
    "CREATE INDEX {N} ON {T} ({A} DESC NULLS FIRST, {B})",
    "CREATE UNIQUE INDEX {N} ON {T} ({A}) NULLS NOT DISTINCT WITH (fillfactor = 70)",
    "CREATE INDEX {N} ON {T} USING hash ({A})",
    "CREATE INDEX {N} ON {T} (({A} + {B}))",
    "CREATE INDEX {N} ON {T} ({A}) TABLESPACE pg_default",
];

/// The schema of every table in `public` and `app`, as the server prints it: columns and their
/// nullability, constraints (definition, deferrability, validity, inheritance), indexes
/// (definition, validity, primary).
async fn catalog(c: &tokio_postgres::Client) -> Vec<String> {
    c.query(
        "SELECT format('column %s.%s %s not null %s', c.oid::regclass, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull)
           FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('public', 'app') AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
         UNION ALL
         SELECT format('constraint %s %s: %s deferrable %s deferred %s valid %s noinherit %s', k.conrelid::regclass, k.conname,
                       pg_get_constraintdef(k.oid), k.condeferrable, k.condeferred, k.convalidated, k.connoinherit)
           FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname IN ('public', 'app')
         UNION ALL
         SELECT format('index %s valid %s primary %s', pg_get_indexdef(i.indexrelid), i.indisvalid, i.indisprimary)
           FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname IN ('public', 'app')
         ORDER BY 1",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| r.get(0))
    .collect()
}

/// Every row of every table in `public` and `app`.
async fn all_rows(c: &tokio_postgres::Client) -> Vec<String> {
    let tables: Vec<String> = c
        .query(
            "SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
              WHERE n.nspname IN ('public', 'app') AND c.relkind = 'r' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let rows = c
            .query(
                &format!("SELECT row_to_json(x)::text FROM {t} x ORDER BY 1"),
                &[],
            )
            .await
            .unwrap();
        out.extend(
            rows.iter()
                .map(|r| format!("{t}: {}", r.get::<_, String>(0))),
        );
    }
    out
}

/// The statement for the server under test: `NULLS [NOT] DISTINCT` exists from PostgreSQL 15, so
/// before it the same cases run without that option (CI runs this file on every supported major).
async fn for_server(sql: &str) -> String {
    let (c, conn) =
        tokio_postgres::connect(&sluice_testkit::postgres_admin_url(), tokio_postgres::NoTls)
            .await
            .unwrap();
    tokio::spawn(conn);
    let v: i32 = c
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap()
        .get(0);
    if v >= 150000 {
        sql.to_string()
    } else {
        sql.replace(" NULLS NOT DISTINCT", "")
            .replace(" NULLS DISTINCT", "")
    }
}

fn fill(template: &str, shape: &Shape, k: usize) -> String {
    template
        .replace("{T}", &(shape.table)(k))
        .replace("{A}", shape.cols[0])
        .replace("{B}", shape.cols[1])
        .replace("{R}", &(shape.table)(99))
        .replace("{N}", &(shape.object)(k))
}

/// The class-level guard: every staged statement kind, with every option it accepts, over every
/// name shape, leaves the catalog (as pg_get_constraintdef / pg_get_indexdef print it, with
/// deferrability, validity and NULLS NOT DISTINCT) and the rows exactly as the statement as written
/// leaves them. Options the staged form cannot carry run as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_shapes_options_and_kinds_equal_as_written() {
    let mut failures = Vec::new();
    let mut cases = 0;
    for shape in SHAPES {
        let mut setup = String::from("CREATE SCHEMA app;\n");
        setup.push_str(&format!(
            "CREATE TABLE {} (id int PRIMARY KEY);\nINSERT INTO {0} SELECT generate_series(1, 300);\n",
            (shape.table)(99)
        ));
        let mut migration = String::new();
        for (k, kind) in KINDS.iter().enumerate() {
            let t = (shape.table)(k);
            let (a, b) = (shape.cols[0], shape.cols[1]);
            setup.push_str(&format!(
                "CREATE TABLE {t} ({a} int, {b} int, note text);\nINSERT INTO {t} SELECT g, 301 - g, 'n' || g FROM generate_series(1, 300) g;\n"
            ));
            migration.push_str(&fill(kind, shape, k));
            migration.push_str(";\n");
            cases += 1;
        }
        let migration = for_server(&migration).await;
        let written = Project::new(Server::Postgres).await;
        let staged = Project::new(Server::Postgres).await;
        for p in [&written, &staged] {
            p.db.pg().await.batch_execute(&setup).await.unwrap();
            p.write("1_case.sql", &migration);
        }
        let w = written.run(&["up", "--as-written"]);
        assert_eq!(w.code, 0, "{}: as written: {w:?}", shape.name);
        let s = staged.run(&["up", "--pace", "speed"]);
        assert_eq!(s.code, 0, "{}: staged: {s:?}", shape.name);
        // The staged forms did run (the comparison would be empty otherwise).
        for note in [
            "unique index built CONCURRENTLY, then attached",
            "primary key on a unique index built CONCURRENTLY",
            "added NOT VALID, then validated",
            "NOT NULL through a CHECK",
            "built CONCURRENTLY: writes continue",
        ] {
            assert!(s.all().contains(note), "{}: no `{note}`: {s:?}", shape.name);
        }
        let (cw, cs) = (written.db.pg().await, staged.db.pg().await);
        let (a, b) = (catalog(&cw).await, catalog(&cs).await);
        if a != b {
            let only_w: Vec<_> = a.iter().filter(|x| !b.contains(x)).collect();
            let only_s: Vec<_> = b.iter().filter(|x| !a.contains(x)).collect();
            failures.push(format!(
                "{}:\n  as written only: {only_w:#?}\n  staged only: {only_s:#?}",
                shape.name
            ));
        }
        assert_eq!(
            all_rows(&cw).await,
            all_rows(&cs).await,
            "{}: rows differ",
            shape.name
        );
        // Nothing of sluice's helpers is left (they would show in the catalog too).
        assert!(
            !b.iter().any(|x| x.contains("not_null_check")),
            "{}: {b:#?}",
            shape.name
        );
    }
    assert!(
        failures.is_empty(),
        "staged forms differ from as written ({} shapes x {} kinds):\n{}",
        SHAPES.len(),
        KINDS.len(),
        failures.join("\n")
    );
    assert_eq!(cases, SHAPES.len() * KINDS.len());
}

/// A staged statement that fails (the data breaks it, or its name is taken) fails where the
/// statement as written fails and leaves what that leaves: nothing (no index, NOT VALID constraint
/// or helper check behind, and no object of someone else's dropped). Every rerun fails the same
/// way; once the data is fixed, the rerun converges on the as-written result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_staged_statements_leave_what_the_failed_statement_leaves() {
    let long = format!("t{}", "l".repeat(55));
    // (case, setup, migration, fix)
    let cases: Vec<(&str, String, String, String)> = vec![
        (
            "unique over duplicates",
            "CREATE TABLE t (a int, b int); INSERT INTO t SELECT g % 50, g FROM generate_series(1, 300) g;".into(),
            "ALTER TABLE t ADD UNIQUE NULLS NOT DISTINCT (a) DEFERRABLE;".into(),
            "DELETE FROM t WHERE b > 50;".into(),
        ),
        (
            "composite primary key, 56-byte table, a NULL",
            format!("CREATE TABLE {long} (a int, b int); INSERT INTO {long} SELECT g, g FROM generate_series(1, 300) g; UPDATE {long} SET b = NULL WHERE a = 7;"),
            format!("ALTER TABLE {long} ADD PRIMARY KEY (a, b);"),
            format!("UPDATE {long} SET b = 7 WHERE a = 7;"),
        ),
        (
            "check over violating rows",
            "CREATE TABLE t (a int, b int); INSERT INTO t SELECT g, g FROM generate_series(1, 300) g;".into(),
            "ALTER TABLE t ADD CHECK (a < 300);".into(),
            "DELETE FROM t WHERE a >= 300;".into(),
        ),
        (
            "foreign key over orphans",
            "CREATE TABLE r (id int PRIMARY KEY); INSERT INTO r SELECT generate_series(1, 100); CREATE TABLE t (a int, b int); INSERT INTO t SELECT g, g FROM generate_series(1, 300) g;".into(),
            "ALTER TABLE t ADD CONSTRAINT \"T Fk\" FOREIGN KEY (a) REFERENCES r (id) DEFERRABLE INITIALLY DEFERRED;".into(),
            "DELETE FROM t WHERE a > 100;".into(),
        ),
        (
            "set not null over a NULL",
            "CREATE TABLE t (a int, b int); INSERT INTO t SELECT g, g FROM generate_series(1, 300) g; UPDATE t SET a = NULL WHERE b = 3;".into(),
            "ALTER TABLE t ALTER COLUMN a SET NOT NULL;".into(),
            "DELETE FROM t WHERE a IS NULL;".into(),
        ),
        (
            "unique whose name another index has",
            "CREATE TABLE t (a int, b int); INSERT INTO t SELECT g, g FROM generate_series(1, 300) g; CREATE INDEX taken ON t (b);".into(),
            "ALTER TABLE t ADD CONSTRAINT taken UNIQUE (a);".into(),
            "DROP INDEX taken;".into(),
        ),
    ];
    for (name, setup, migration, fix) in cases {
        let migration = for_server(&migration).await;
        let written = Project::new(Server::Postgres).await;
        let staged = Project::new(Server::Postgres).await;
        for p in [&written, &staged] {
            p.db.pg().await.batch_execute(&setup).await.unwrap();
            p.write("1_case.sql", &format!("{migration}\n"));
        }
        let (cw, cs) = (written.db.pg().await, staged.db.pg().await);
        let before = catalog(&cs).await;
        let w = written.run(&["up", "--as-written"]);
        assert_eq!(w.code, 1, "{name}: as written: {w:?}");
        for attempt in 0..2 {
            let s = staged.run(&["up", "--pace", "speed"]);
            assert_eq!(s.code, 1, "{name}: staged, attempt {attempt}: {s:?}");
            assert!(
                s.stderr
                    .contains("sluice removed what its staged steps had created")
                    || s.stderr.contains("already exists"),
                "{name}: the report says what is left: {s:?}"
            );
            assert_eq!(
                catalog(&cs).await,
                before,
                "{name}, attempt {attempt}: {s:?}"
            );
            assert_eq!(
                catalog(&cw).await,
                catalog(&cs).await,
                "{name}, attempt {attempt}"
            );
        }
        cw.batch_execute(&fix).await.unwrap();
        cs.batch_execute(&fix).await.unwrap();
        let w = written.run(&["up", "--as-written"]);
        assert_eq!(w.code, 0, "{name}: as written, fixed: {w:?}");
        let s = staged.run(&["up", "--pace", "speed"]);
        assert_eq!(s.code, 0, "{name}: staged, fixed: {s:?}");
        assert_eq!(catalog(&cw).await, catalog(&cs).await, "{name}: fixed");
        assert_eq!(all_rows(&cw).await, all_rows(&cs).await, "{name}: rows");
        let again = staged.run(&["up"]);
        assert_eq!(again.code, 0, "{name}: {again:?}");
    }
}

/// An unnamed constraint whose default name is taken: as written, the server picks another name
/// (`t_pkey1`); the staged form needs the name up front, so it refuses, saying how to go on, and
/// changes nothing, on every rerun; `--as-written` then gives the server's result.
#[tokio::test]
async fn unnamed_constraint_whose_default_name_is_taken_is_refused_clearly() {
    for (setup, migration) in [
        (
            "CREATE INDEX t_pkey ON t (b);",
            "ALTER TABLE t ADD PRIMARY KEY (a);",
        ),
        (
            "CREATE INDEX t_a_key ON t (b);",
            "ALTER TABLE t ADD UNIQUE (a);",
        ),
        (
            "ALTER TABLE t ADD CHECK (a > 0);",
            "ALTER TABLE t ADD CHECK (a < 1000);",
        ),
    ] {
        let written = Project::new(Server::Postgres).await;
        let staged = Project::new(Server::Postgres).await;
        for p in [&written, &staged] {
            p.db.pg()
                .await
                .batch_execute(&format!("CREATE TABLE t (a int, b int); INSERT INTO t SELECT g, g FROM generate_series(1, 300) g; {setup}"))
                .await
                .unwrap();
            p.write("1_case.sql", &format!("{migration}\n"));
        }
        let cs = staged.db.pg().await;
        let before = catalog(&cs).await;
        for attempt in 0..2 {
            let s = staged.run(&["up"]);
            assert_eq!(s.code, 1, "{migration} {attempt}: {s:?}");
            assert!(
                s.stderr
                    .contains("name the constraint in the migration, or run it with --as-written"),
                "{s:?}"
            );
            assert_eq!(catalog(&cs).await, before, "{migration} {attempt}");
        }
        let w = written.run(&["up", "--as-written"]);
        assert_eq!(w.code, 0, "{w:?}");
        let s = staged.run(&["up", "--as-written"]);
        assert_eq!(s.code, 0, "{s:?}");
        assert_eq!(
            catalog(&written.db.pg().await).await,
            catalog(&cs).await,
            "{migration}"
        );
    }
}

/// `sluice up` killed (SIGKILL) at spread-out points through a migration of staged forms on a
/// 56-byte table name (index builds, NOT VALID + VALIDATE, helper checks, the attaching steps):
/// the first rerun converges without help on exactly the as-written catalog and rows, and leaves
/// no helper behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staged_forms_killed_anywhere_converge_on_the_as_written_result() {
    let t = format!("t{}", "k".repeat(55));
    let setup = format!(
        "CREATE TABLE r (id int PRIMARY KEY); INSERT INTO r SELECT generate_series(1, 30000);
         CREATE TABLE {t} (a int, \"B\" int, c int); INSERT INTO {t} SELECT g, g, g FROM generate_series(1, 30000) g;"
    );
    let migration = format!(
        "ALTER TABLE {t} ADD PRIMARY KEY (a, \"B\");
ALTER TABLE {t} ADD UNIQUE NULLS NOT DISTINCT (c) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE {t} ADD FOREIGN KEY (a) REFERENCES r (id) ON DELETE CASCADE;
ALTER TABLE {t} ADD CHECK (c > 0);
ALTER TABLE {t} ALTER COLUMN c SET NOT NULL;
CREATE INDEX \"Idx\" ON {t} (c, a);
"
    );
    let migration = for_server(&migration).await;
    let written = Project::new(Server::Postgres).await;
    written.db.pg().await.batch_execute(&setup).await.unwrap();
    written.write("1_case.sql", &migration);
    let w = written.run(&["up", "--as-written"]);
    assert_eq!(w.code, 0, "{w:?}");
    let cw = written.db.pg().await;
    let (want, want_rows) = (catalog(&cw).await, all_rows(&cw).await);
    // One full staged run, to spread the kill points over its length.
    let full = {
        let p = Project::new(Server::Postgres).await;
        p.db.pg().await.batch_execute(&setup).await.unwrap();
        p.write("1_case.sql", &migration);
        let start = std::time::Instant::now();
        let r = p.run(&["up", "--pace", "speed"]);
        assert_eq!(r.code, 0, "{r:?}");
        start.elapsed()
    };
    // Five kills spread over the run's length; on a busy machine a run may finish sooner than the
    // timed one did, so the spread is tried again (at most 12 runs) until five landed mid-way.
    let mut killed = 0;
    for trial in 1..=12u32 {
        if killed >= 5 {
            break;
        }
        let p = Project::new(Server::Postgres).await;
        let c = p.db.pg().await;
        c.batch_execute(&setup).await.unwrap();
        p.write("1_case.sql", &migration);
        let mut child = p.spawn(&["up", "--pace", "speed"]);
        std::thread::sleep(full * ((trial - 1) % 5 + 1) / 6);
        if child.try_wait().unwrap().is_none() {
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        let r = p.run(&["up", "--pace", "speed"]);
        assert_eq!(r.code, 0, "trial {trial}: the rerun converges: {r:?}");
        assert_eq!(catalog(&c).await, want, "trial {trial}: {r:?}");
        assert_eq!(all_rows(&c).await, want_rows, "trial {trial}");
        let again = p.run(&["up"]);
        assert_eq!(again.code, 0, "trial {trial}: {again:?}");
    }
    assert!(killed >= 3, "only {killed} runs were killed mid-way");
}
