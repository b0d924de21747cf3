//! Issue 14, two application versions live (PostgreSQL): `ALTER TABLE t DROP COLUMN c` on an
//! existing table runs as expand (`sluice up`: the column stays; a NOT NULL without default is
//! dropped so the new version's INSERTs may leave it out) → contract (`sluice complete`: the DROP
//! as written), or rollback (NOT NULL restored in the staged form, refused while NULLs exist).
//!
//! An old-version client (writes the column) and a new-version client (leaves it out) run
//! concurrently through before → expand → between → complete, every statement bounded: 0 errors
//! on both, every write by either visible to the other, final rows equal to the as-written
//! result. Every column shape and statement form is checked against a twin run of the statement
//! as written.

mod common;

use common::pg_clients::{msg, run_version_client, wait_ops, Round};
use common::{wait_bounded, Project, Run};
use sluice_testkit::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use tokio_postgres::Client as PgClient;

fn ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: {r:?}");
}

fn state_of(p: &Project, v: i64) -> Option<String> {
    p.state_of(v)
}

fn pg_dump_schema(p: &Project) -> String {
    p.pg_dump_schema()
}

/// Columns, indexes, constraints, views, triggers and sequences of schema public, sorted.
async fn schema_facts(db: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT format('column %s.%s %s%s default %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, pg_get_expr(d.adbin, d.adrelid)) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE n.nspname = 'public' AND c.relkind IN ('r', 'v') AND a.attnum > 0 AND NOT a.attisdropped",
        "SELECT format('index %s', indexdef) FROM pg_indexes WHERE schemaname = 'public'",
        "SELECT format('constraint %s %s', conname, pg_get_constraintdef(k.oid)) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = 'public'",
        "SELECT format('view %s %s', viewname, definition) FROM pg_views WHERE schemaname = 'public'",
        "SELECT format('trigger %s', tgname) FROM pg_trigger WHERE NOT tgisinternal",
        "SELECT format('sequence %s', relname) FROM pg_class WHERE relkind = 'S'",
    ] {
        for r in db.query(sql, &[]).await.unwrap() {
            out.push(r.get::<_, String>(0));
        }
    }
    out.sort();
    out
}

async fn not_null(db: &tokio_postgres::Client, column: &str) -> Option<bool> {
    db.query_opt(
        "SELECT attnotnull FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = $1 AND NOT attisdropped",
        &[&column],
    )
    .await
    .unwrap()
    .map(|r| r.get(0))
}

const CREATE_HEAD: &str = "CREATE TABLE t (id bigserial PRIMARY KEY, ";

// ---------------------------------------------------------------------------------------------
// Concurrency: old and new version through the whole cycle.

/// The shared record of committed writes: id → the note last written (notes only grow, since
/// every write takes the next number of one counter).
/// The bool: the row was inserted (not seeded) by that client.
type Written = Arc<Mutex<BTreeMap<i64, (i32, bool)>>>;

struct Client {
    /// The old version writes `legacy`; the new version leaves it out.
    old: bool,
    /// What the old version reads in `legacy` of a row the new version inserted.
    omitted: Option<&'static str>,
    mine: Written,
    theirs: Written,
    /// Seeded rows this client owns: id % 2 == parity.
    parity: i64,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
}

struct ClientResult {
    errors: Vec<String>,
    /// id → (legacy as last written by this client, note).
    written: BTreeMap<i64, (Option<String>, i32)>,
}

/// One application version: inserts (every 3rd round) and updates of its own rows, each read
/// back through the columns it knows, and a read of a row the other version wrote.
struct Writer {
    c: Client,
    counter: Arc<AtomicU64>,
    owned: Vec<i64>,
    written: BTreeMap<i64, (Option<String>, i32)>,
}

impl Round for Writer {
    async fn round(&mut self, db: &PgClient, i: u64, errors: &mut Vec<String>) -> bool {
        let c = &self.c;
        let owned = &mut self.owned;
        let who = if c.old { "old" } else { "new" };
        let n = self.counter.fetch_add(1, Ordering::SeqCst) as i32;
        let value = format!("v{n}");
        let insert = i.is_multiple_of(3);
        let r = match (insert, c.old) {
            (true, true) => db
                .query_one(
                    "INSERT INTO t (legacy, note) VALUES ($1, $2) RETURNING id",
                    &[&value, &n],
                )
                .await
                .map(|r| r.get::<_, i64>(0)),
            (true, false) => db
                .query_one("INSERT INTO t (note) VALUES ($1) RETURNING id", &[&n])
                .await
                .map(|r| r.get::<_, i64>(0)),
            (false, _) => {
                let id = owned[(n as usize * 7919) % owned.len()];
                let r = if c.old {
                    db.execute(
                        "UPDATE t SET legacy = $1, note = $2 WHERE id = $3",
                        &[&value, &n, &id],
                    )
                    .await
                } else {
                    db.execute("UPDATE t SET note = $1 WHERE id = $2", &[&n, &id])
                        .await
                };
                match r {
                    Ok(1) => Ok(id),
                    Ok(k) => {
                        errors.push(format!("{who}: update of {id} touched {k} rows"));
                        return false;
                    }
                    Err(e) => Err(e),
                }
            }
        };
        let id = match r {
            Ok(id) => id,
            Err(e) => {
                errors.push(format!("{who}: write: {}", msg(&e)));
                return false;
            }
        };
        if insert {
            owned.push(id);
        }
        // The new version never writes legacy (it does not know it).
        let legacy = c.old.then_some(value);
        self.written.insert(id, (legacy.clone(), n));
        let inserted = insert || c.mine.lock().unwrap().get(&id).is_some_and(|(_, i)| *i);
        c.mine.lock().unwrap().insert(id, (n, inserted));
        // Read back its own write, through the columns this version knows.
        let sql = if c.old {
            "SELECT legacy, note FROM t WHERE id = $1"
        } else {
            "SELECT NULL::text, note FROM t WHERE id = $1"
        };
        match db.query_one(sql, &[&id]).await {
            Ok(row) => {
                let got: (Option<String>, i32) = (row.get(0), row.get(1));
                let want = (if c.old { legacy } else { None }, n);
                if got != want {
                    errors.push(format!("{who}: row {id}: {got:?}, wrote {want:?}"));
                }
            }
            Err(e) => errors.push(format!("{who}: read: {}", msg(&e))),
        }
        // Read a row the other version wrote: its committed write is visible.
        let seen = {
            let theirs = c.theirs.lock().unwrap();
            let k = theirs.len();
            (k > 0)
                .then(|| theirs.iter().nth(n as usize % k).map(|(a, b)| (*a, *b)))
                .flatten()
        };
        if let Some((id, (at_least, inserted))) = seen {
            let sql = if c.old {
                "SELECT note, legacy FROM t WHERE id = $1"
            } else {
                "SELECT note, NULL::text FROM t WHERE id = $1"
            };
            match db.query_one(sql, &[&id]).await {
                Ok(row) => {
                    let (got, legacy): (i32, Option<String>) = (row.get(0), row.get(1));
                    if got < at_least {
                        errors.push(format!(
                            "{who}: row {id} of the other version: note {got}, it committed {at_least}"
                        ));
                    }
                    // The old version sees what a row the new version inserted holds in the
                    // column it left out, and the seeded value where the new version updated.
                    let want = match inserted {
                        true => c.omitted.map(str::to_string),
                        false => Some(format!("s{id}")),
                    };
                    if c.old && legacy != want {
                        errors.push(format!(
                            "{who}: row {id} of the other version: legacy {legacy:?}, want {want:?}"
                        ));
                    }
                }
                Err(e) => errors.push(format!("{who}: read of the other's row: {}", msg(&e))),
            }
        }
        true
    }
}

async fn run_client(c: Client, url: String, counter: Arc<AtomicU64>) -> ClientResult {
    let (parity, stop, ops) = (c.parity, c.stop.clone(), c.ops.clone());
    let (writer, errors) = run_version_client(&url, parity, stop, ops, |owned| Writer {
        c,
        counter,
        owned,
        written: BTreeMap::new(),
    })
    .await;
    ClientResult {
        errors,
        written: writer.written,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_and_new_versions_run_concurrently_through_expand_and_complete() {
    // (column definition, what an INSERT that leaves it out stores while expanded)
    let shapes: &[(&str, Option<&str>)] = &[
        ("legacy text NOT NULL", None),
        ("legacy text NOT NULL DEFAULT 'dflt'", Some("dflt")),
        ("legacy text", None),
    ];
    for (column, omitted) in shapes {
        let create = format!(
            "{CREATE_HEAD}{column}, note int NOT NULL);\nCREATE INDEX t_legacy ON t (legacy);\nINSERT INTO t (legacy, note) SELECT 's' || g, 0 FROM generate_series(1, 3000) g;\n"
        );
        let drop = "ALTER TABLE t DROP COLUMN legacy;\n";
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", &create);
        ok(&p.run(&["up"]), "create");
        p.write("2_drop.sql", drop);
        let db = p.db.pg().await;

        let counter = Arc::new(AtomicU64::new(1));
        let (old_w, new_w): (Written, Written) = Default::default();
        let (stop_old, stop_new) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (old_ops, new_ops) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        // Before: only the old version runs.
        let old = tokio::spawn(run_client(
            Client {
                old: true,
                omitted: *omitted,
                mine: old_w.clone(),
                theirs: new_w.clone(),
                parity: 0,
                stop: stop_old.clone(),
                ops: old_ops.clone(),
            },
            p.db.url.clone(),
            counter.clone(),
        ));
        wait_ops(&old_ops, 100).await;
        // Expand while the old version writes.
        let up = wait_bounded(p.spawn(&["up"]), 300, "sluice up");
        ok(&up, "expand");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{column}");
        assert_eq!(
            not_null(&db, "legacy").await,
            Some(column.contains("DEFAULT")),
            "{column}: NOT NULL stays only where the column has a default"
        );
        // Between: the new version is deployed beside the old one.
        let before_new = old_ops.load(Ordering::SeqCst);
        let new = tokio::spawn(run_client(
            Client {
                old: false,
                omitted: *omitted,
                mine: new_w.clone(),
                theirs: old_w.clone(),
                parity: 1,
                stop: stop_new.clone(),
                ops: new_ops.clone(),
            },
            p.db.url.clone(),
            counter.clone(),
        ));
        wait_ops(&new_ops, 300).await;
        wait_ops(&old_ops, before_new + 300).await;
        // The rollout is done: the old version stops; complete runs while the new one writes.
        stop_old.store(true, Ordering::SeqCst);
        let old = old.await.unwrap();
        let at_complete = new_ops.load(Ordering::SeqCst);
        let complete = wait_bounded(p.spawn(&["complete"]), 120, "sluice complete");
        ok(&complete, "complete");
        wait_ops(&new_ops, at_complete + 200).await;
        stop_new.store(true, Ordering::SeqCst);
        let new = new.await.unwrap();

        eprintln!(
            "{column}: old version {} ops, new version {} ops ({} through complete); 0 errors expected",
            old_ops.load(Ordering::SeqCst),
            new_ops.load(Ordering::SeqCst),
            new_ops.load(Ordering::SeqCst) - at_complete
        );
        assert_eq!(old.errors, Vec::<String>::new(), "{column}: old version");
        assert_eq!(new.errors, Vec::<String>::new(), "{column}: new version");
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
        assert_eq!(not_null(&db, "legacy").await, None, "dropped");

        // The rows are every write applied to the table as the drop as written leaves it.
        let mut want: BTreeMap<i64, i32> = (1..=3000).map(|id| (id, 0)).collect();
        let mut all: Vec<(i64, i32)> = old
            .written
            .iter()
            .chain(&new.written)
            .map(|(id, (_, n))| (*id, *n))
            .collect();
        all.sort_by_key(|(_, n)| *n);
        want.extend(all);
        let got: BTreeMap<i64, i32> = db
            .query("SELECT id, note FROM t", &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(got.len(), want.len(), "{column}");
        assert!(
            got == want,
            "{column}: rows differ from the as-written result"
        );

        // The schema equals the drop as written (a twin database).
        let twin = Project::new(Server::Postgres).await;
        twin.write("1_create.sql", &create);
        twin.write("2_drop.sql", drop);
        ok(&twin.run(&["up", "--as-written"]), "twin");
        assert_eq!(
            schema_facts(&db).await,
            schema_facts(&twin.db.pg().await).await,
            "{column}"
        );
        for _ in 0..2 {
            let again = p.run(&["complete"]);
            ok(&again, "complete again");
            assert!(again.stderr.contains("nothing is expanded"), "{again:?}");
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Every column shape and statement form.

struct Shape {
    name: &'static str,
    /// Columns after `id bigserial PRIMARY KEY`, and what else the table carries.
    columns: &'static str,
    extra: &'static str,
    drop: &'static str,
    /// Columns whose NOT NULL expand drops.
    loses_not_null: &'static [&'static str],
    /// An INSERT the new version runs while expanded (it leaves the dropped columns out).
    new_insert: &'static str,
    /// What `plan` says complete also drops.
    also_drops: &'static [&'static str],
}

const SHAPES: &[Shape] = &[
    Shape {
        name: "NOT NULL without default",
        columns: "c text NOT NULL, note int",
        extra: "",
        drop: "ALTER TABLE t DROP COLUMN c",
        loses_not_null: &["c"],
        new_insert: "INSERT INTO t (note) VALUES (1)",
        also_drops: &[],
    },
    Shape {
        name: "NOT NULL with default",
        columns: "c text NOT NULL DEFAULT 'd', note int",
        extra: "",
        drop: "ALTER TABLE t DROP COLUMN c",
        loses_not_null: &[],
        new_insert: "INSERT INTO t (note) VALUES (1)",
        also_drops: &[],
    },
    Shape {
        name: "nullable",
        columns: "c int, note int",
        extra: "",
        drop: "ALTER TABLE t DROP COLUMN c",
        loses_not_null: &[],
        new_insert: "INSERT INTO t (note) VALUES (1)",
        also_drops: &[],
    },
    Shape {
        name: "indexed, with a check",
        columns: "c int CHECK (c > 0), note int",
        extra: "CREATE INDEX t_c ON t (c);",
        drop: "ALTER TABLE t DROP COLUMN c",
        loses_not_null: &[],
        new_insert: "INSERT INTO t (note) VALUES (1)",
        also_drops: &["index t_c", "constraint t_c_check on table t"],
    },
    Shape {
        name: "part of a multi-column index",
        columns: "c int NOT NULL, note int",
        extra: "CREATE UNIQUE INDEX t_note_c ON t (note, c);",
        drop: "ALTER TABLE t DROP COLUMN c",
        loses_not_null: &["c"],
        new_insert: "INSERT INTO t (note) VALUES (-1)",
        also_drops: &["index t_note_c"],
    },
    Shape {
        name: "referenced by a view, CASCADE",
        columns: "c int, note int",
        extra: "CREATE VIEW v AS SELECT id, c FROM t; CREATE VIEW w AS SELECT id FROM v;",
        drop: "ALTER TABLE t DROP COLUMN c CASCADE",
        loses_not_null: &[],
        new_insert: "INSERT INTO t (note) VALUES (1)",
        also_drops: &["view v", "view w"],
    },
    Shape {
        name: "two clauses, IF EXISTS on a missing and an existing column",
        columns: "c text NOT NULL, d int NOT NULL, note int",
        extra: "",
        drop: "ALTER TABLE t DROP COLUMN c, DROP COLUMN IF EXISTS d, DROP COLUMN IF EXISTS gone",
        loses_not_null: &["c", "d"],
        new_insert: "INSERT INTO t (note) VALUES (1)",
        also_drops: &[],
    },
    Shape {
        name: "referenced by another table's foreign key, CASCADE",
        columns: "c int UNIQUE, note int",
        extra: "CREATE TABLE r (id int PRIMARY KEY, tc int REFERENCES t (c));",
        drop: "ALTER TABLE t DROP COLUMN c CASCADE",
        loses_not_null: &[],
        new_insert: "INSERT INTO t (note) VALUES (1)",
        also_drops: &["constraint r_tc_fkey on table r"],
    },
];

impl Shape {
    fn create(&self) -> String {
        let seed_cols: Vec<&str> = self
            .columns
            .split(", ")
            .map(|c| c.split(' ').next().unwrap())
            .collect();
        let values: Vec<&str> = seed_cols.iter().map(|_| "g").collect();
        format!(
            "-- sluice:up\n{CREATE_HEAD}{});\nINSERT INTO t ({}) SELECT {} FROM generate_series(1, 200) g;\n{}\n-- sluice:down\nDROP TABLE t CASCADE;\n",
            self.columns,
            seed_cols.join(", "),
            values.join(", "),
            self.extra
        )
    }
}

#[tokio::test]
async fn every_column_shape_and_form_expands_then_completes_to_the_drop_as_written() {
    for shape in SHAPES {
        let what = shape.name;
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", &shape.create());
        ok(&p.run(&["up"]), what);
        let before = pg_dump_schema(&p);
        p.write("2_drop.sql", &format!("{};\n", shape.drop));
        let db = p.db.pg().await;

        // plan shows both phases and what each version sees; --dry-run shows the same phases.
        let plan = p.run(&["plan"]);
        ok(&plan, what);
        for part in [
            "two application versions live: drop column",
            "`sluice complete` (contract)",
            shape.drop,
            "expanded (after `sluice up`): both versions run, nothing is dropped yet",
            "completed (after `sluice complete`)",
        ] {
            assert!(plan.stdout.contains(part), "{what}: {part}: {plan:?}");
        }
        for gone in shape.also_drops {
            assert!(plan.stdout.contains(gone), "{what}: {gone}: {plan:?}");
        }
        for c in shape.loses_not_null {
            assert!(
                plan.stdout
                    .contains(&format!("ALTER COLUMN \"{c}\" DROP NOT NULL")),
                "{what}: {plan:?}"
            );
        }
        let dry = p.run(&["up", "--dry-run"]);
        ok(&dry, what);
        assert!(dry.stdout.contains("expand phase"), "{what}: {dry:?}");
        assert!(
            dry.stdout.contains(&format!(
                "later, `sluice complete` (contract): {}",
                shape.drop
            )),
            "{what}: {dry:?}"
        );
        assert_eq!(
            pg_dump_schema(&p),
            before,
            "{what}: plan and dry run change nothing"
        );

        for round in 0..2 {
            ok(&p.run(&["up"]), what);
            assert_eq!(
                state_of(&p, 2).as_deref(),
                Some("expanded"),
                "{what} {round}"
            );
        }
        // Nothing is dropped; exactly the listed NOT NULLs are gone.
        let nn: Vec<String> = db
            .query(
                "SELECT attname::text FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped AND attnotnull ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        let before_nn: Vec<String> = {
            let mut v: Vec<String> = shape
                .columns
                .split(", ")
                .filter(|c| c.contains("NOT NULL"))
                .map(|c| c.split(' ').next().unwrap().to_string())
                .filter(|c| !shape.loses_not_null.contains(&c.as_str()))
                .chain(["id".to_string()])
                .collect();
            v.sort();
            v
        };
        assert_eq!(nn, before_nn, "{what}");
        if shape.loses_not_null.is_empty() {
            assert_eq!(pg_dump_schema(&p), before, "{what}: expand changes nothing");
        }
        // Both versions write.
        db.batch_execute(shape.new_insert)
            .await
            .unwrap_or_else(|e| panic!("{what}: new version: {e}"));
        let cols: Vec<&str> = shape
            .columns
            .split(", ")
            .map(|c| c.split(' ').next().unwrap())
            .collect();
        db.batch_execute(&format!(
            "INSERT INTO t ({}) VALUES ({})",
            cols.join(", "),
            cols.iter().map(|_| "5000").collect::<Vec<_>>().join(", ")
        ))
        .await
        .unwrap_or_else(|e| panic!("{what}: old version: {e}"));

        ok(&p.run(&["complete"]), what);
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"), "{what}");
        let notes: i64 = db
            .query_one(
                "SELECT count(*) FROM sluice.meta WHERE key LIKE 'expand %'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(notes, 0, "{what}: complete removes sluice's notes");

        let twin = Project::new(Server::Postgres).await;
        twin.write("1_create.sql", &shape.create());
        twin.write("2_drop.sql", &format!("{};\n", shape.drop));
        ok(&twin.run(&["up", "--as-written"]), what);
        assert_eq!(
            schema_facts(&db).await,
            schema_facts(&twin.db.pg().await).await,
            "{what}"
        );
        let rows: i64 = db
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 202, "{what}");
    }
}

/// What the two phases cannot carry, or what the drop as written would fail on, is refused
/// before anything is made or recorded (pending, the schema as it was), twice; `--as-written`
/// fails or succeeds as the server says.
#[tokio::test]
async fn refusals_leave_nothing_and_say_why() {
    // (what, setup, drop, exit, message, as written succeeds)
    let cases: &[(&str, &str, &str, i32, &str, bool)] = &[
        (
            "a view without CASCADE",
            "CREATE VIEW v AS SELECT id, c FROM t;",
            "ALTER TABLE t DROP COLUMN c;",
            2,
            "view v depends on column c, so the DROP COLUMN as written fails",
            false,
        ),
        (
            "another table's foreign key without CASCADE",
            "CREATE UNIQUE INDEX t_c_key ON t (c); CREATE TABLE r (tc int REFERENCES t (c));",
            "ALTER TABLE t DROP COLUMN c;",
            2,
            "constraint r_tc_fkey on table r depends on column c",
            false,
        ),
        (
            "a missing column without IF EXISTS",
            "",
            "ALTER TABLE t DROP COLUMN nope;",
            2,
            "column nope of t does not exist",
            false,
        ),
        (
            "a NOT NULL primary-key column without default",
            "CREATE TABLE k (a int PRIMARY KEY, b int);",
            "ALTER TABLE k DROP COLUMN a;",
            2,
            "in the primary key",
            true,
        ),
        (
            "other statements beside the drop",
            "",
            "ALTER TABLE t DROP COLUMN c, ADD COLUMN x int;",
            2,
            "put the DROP COLUMN in a migration of its own",
            true,
        ),
        (
            "a domain that refuses NULL (NOT NULL) without a default",
            "CREATE DOMAIN nn AS text NOT NULL; ALTER TABLE t ADD COLUMN d nn DEFAULT 'x'; ALTER TABLE t ALTER COLUMN d DROP DEFAULT;",
            "ALTER TABLE t DROP COLUMN d;",
            2,
            "the type of column d is a domain that does not allow NULL and has no default",
            true,
        ),
        (
            "a domain that refuses NULL (CHECK) without a default",
            "CREATE DOMAIN nc AS int CHECK (VALUE IS NOT NULL); ALTER TABLE t ADD COLUMN d nc DEFAULT 1; ALTER TABLE t ALTER COLUMN d DROP DEFAULT;",
            "ALTER TABLE t DROP COLUMN d;",
            2,
            "the type of column d is a domain that does not allow NULL and has no default",
            true,
        ),
    ];
    for (what, setup, drop, code, message, as_written) in cases {
        let p = Project::new(Server::Postgres).await;
        p.write(
            "1_create.sql",
            &format!("{CREATE_HEAD}c int, note int);\nINSERT INTO t (c) SELECT g FROM generate_series(1, 100) g;\n{setup}\n"),
        );
        ok(&p.run(&["up"]), what);
        let before = pg_dump_schema(&p);
        p.write("2_drop.sql", drop);
        for attempt in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, *code, "{what} ({attempt}): {r:?}");
            assert!(r.stderr.contains(message), "{what} ({attempt}): {r:?}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{what}");
            assert_eq!(pg_dump_schema(&p), before, "{what}");
        }
        let written = p.run(&["up", "--as-written"]);
        assert_eq!(written.code == 0, *as_written, "{what}: {written:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Rollback.

const NN_CREATE: &str = "-- sluice:up\nCREATE TABLE t (id bigserial PRIMARY KEY, c text NOT NULL, note int);\nINSERT INTO t (c, note) SELECT 's' || g, g FROM generate_series(1, 2000) g;\n-- sluice:down\nDROP TABLE t;\n";
const NN_DROP: &str = "-- sluice:up\nALTER TABLE t DROP COLUMN c;\n-- sluice:down\nALTER TABLE t ADD COLUMN c text;\n";

/// From `expanded` without NULLs: the schema exactly as before, the migration pending, each
/// command twice. With NULLs written by the new version: refused (exit 11) with the count, the
/// column and the fix, nothing changed (twice); after the backfill the rollback succeeds.
#[tokio::test]
async fn rollback_restores_not_null_or_refuses_while_nulls_exist() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", NN_CREATE);
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write("2_drop.sql", NN_DROP);
    let db = p.db.pg().await;

    // Without NULLs.
    ok(&p.run(&["up"]), "expand");
    assert_eq!(not_null(&db, "c").await, Some(false));
    db.batch_execute("INSERT INTO t (c, note) VALUES ('old', 1)")
        .await
        .unwrap();
    // A second breaking migration on the same table is refused while this one is expanded.
    p.write("3_again.sql", "ALTER TABLE t DROP COLUMN note;\n");
    let second = p.run(&["up"]);
    assert_eq!(second.code, 11, "{second:?}");
    assert!(
        second.stderr.contains("is expanded on the same table"),
        "{second:?}"
    );
    std::fs::remove_file(p.migration_path("3_again.sql")).unwrap();
    ok(&p.run(&["rollback"]), "rollback");
    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
    assert_eq!(
        pg_dump_schema(&p),
        before,
        "rollback restores the schema exactly"
    );
    for _ in 0..2 {
        let again = p.run(&["rollback"]);
        ok(&again, "rollback again");
        assert!(again.stderr.contains("nothing to roll back"), "{again:?}");
    }
    let notes: i64 = db
        .query_one(
            "SELECT count(*) FROM sluice.meta WHERE key LIKE 'expand %'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(notes, 0);

    // With NULLs: the new version inserted rows that leave c out.
    ok(&p.run(&["up"]), "expand again");
    db.batch_execute("INSERT INTO t (note) SELECT g FROM generate_series(1, 3) g")
        .await
        .unwrap();
    let expanded = pg_dump_schema(&p);
    for attempt in 0..2 {
        let r = p.run(&["rollback"]);
        assert_eq!(r.code, 11, "{attempt}: {r:?}");
        for part in [
            "cannot restore NOT NULL: 3 row(s) of t hold NULL in c",
            "Nothing was changed",
            "UPDATE \"t\" SET \"c\" = <value> WHERE \"c\" IS NULL",
            "then run `sluice rollback` again",
        ] {
            assert!(r.stderr.contains(part), "{part}: {r:?}");
        }
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
        assert_eq!(pg_dump_schema(&p), expanded, "{attempt}: nothing changed");
    }
    db.batch_execute("UPDATE t SET c = 'filled' WHERE c IS NULL")
        .await
        .unwrap();
    ok(&p.run(&["rollback"]), "rollback after the backfill");
    assert_eq!(pg_dump_schema(&p), before);
    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
    let again = p.run(&["rollback"]);
    ok(&again, "rollback again");
    // Old-version rows and the backfilled ones are all there.
    let n: i64 = db
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2004);
    ok(&p.run(&["drift"]), "no drift after rollback");
}

/// A NULL written after the rollback counted (an INSERT whose transaction was open then, and
/// committed while the rollback waited for its lock): VALIDATE fails, the check is removed again,
/// and the rollback is refused with the new count; the schema is as expanded; after the backfill
/// the rollback succeeds.
#[tokio::test]
async fn a_null_written_while_rollback_runs_is_refused_the_same_way() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", NN_CREATE);
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write("2_drop.sql", NN_DROP);
    ok(&p.run(&["up"]), "expand");
    let expanded = pg_dump_schema(&p);
    let writer = p.db.pg().await;
    writer
        .batch_execute("SET statement_timeout = '20s'; BEGIN; INSERT INTO t (note) VALUES (-1)")
        .await
        .unwrap();
    let child = p.spawn(&[
        "rollback",
        "--lock-timeout",
        "200",
        "--lock-retry-for",
        "60",
    ]);
    // The rollback counts 0 NULLs (the insert is not committed), then waits for the lock.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    writer.batch_execute("COMMIT").await.unwrap();
    let r = wait_bounded(child, 120, "sluice rollback");
    assert_eq!(r.code, 11, "{r:?}");
    // It got past the count: it waited for the lock of its first step, behind the insert.
    assert!(r.stderr.contains("for its lock on t"), "{r:?}");
    assert!(r.stderr.contains("1 row(s) of t hold NULL in c"), "{r:?}");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(pg_dump_schema(&p), expanded, "the check was removed again");
    writer
        .batch_execute("UPDATE t SET c = 'filled' WHERE c IS NULL")
        .await
        .unwrap();
    ok(&p.run(&["rollback"]), "rollback after the backfill");
    assert_eq!(pg_dump_schema(&p), before);
}

/// A rollback killed before each of its staged steps (after the check was added, after it was
/// validated) converges on rerun to the schema before the migration, twice; `complete` from the
/// killed state drops the helper check with the column and equals the drop as written.
#[tokio::test]
async fn a_kill_during_rollback_converges_on_rerun() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", NN_CREATE);
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write("2_drop.sql", NN_DROP);
    let db = p.db.pg().await;
    for point in ["rollback-step-0", "rollback-step-1"] {
        ok(&p.run(&["up"]), "expand");
        let expanded = pg_dump_schema(&p);
        let killed: Run = p
            .command(&["rollback"])
            .env("SLUICE_CRASH_AT", point)
            .output()
            .unwrap()
            .into();
        assert_ne!(killed.code, 0, "{point}: {killed:?}");
        assert!(killed.stderr.contains(point), "{point}: {killed:?}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{point}");
        if point == "rollback-step-0" {
            assert_eq!(pg_dump_schema(&p), expanded, "{point}: nothing ran yet");
        } else {
            assert_ne!(pg_dump_schema(&p), expanded, "{point}: the check was added");
        }
        // The old version keeps writing meanwhile.
        db.batch_execute("INSERT INTO t (c, note) VALUES ('during', 0)")
            .await
            .unwrap();
        ok(&p.run(&["rollback"]), point);
        assert_eq!(pg_dump_schema(&p), before, "{point}");
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{point}");
        let again = p.run(&["rollback"]);
        ok(&again, point);
        assert!(again.stderr.contains("nothing to roll back"), "{again:?}");
    }
    // Killed after the check was added, then completed instead.
    ok(&p.run(&["up"]), "expand");
    let killed = p
        .command(&["rollback"])
        .env("SLUICE_CRASH_AT", "rollback-step-1")
        .output()
        .unwrap();
    assert!(!killed.status.success());
    ok(&p.run(&["complete"]), "complete");
    let twin = Project::new(Server::Postgres).await;
    twin.write("1_create.sql", NN_CREATE);
    twin.write("2_drop.sql", NN_DROP);
    ok(&twin.run(&["up", "--as-written"]), "twin");
    assert_eq!(
        schema_facts(&db).await,
        schema_facts(&twin.db.pg().await).await
    );
}

/// `up --complete` does both phases; a drop in a table created by an earlier migration of the
/// same run, or earlier in the same migration, runs as written at once; in a later run it is
/// two-phase again.
#[tokio::test]
async fn up_complete_and_tables_created_in_the_same_run() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", NN_CREATE);
    p.write("2_drop.sql", NN_DROP);
    ok(&p.run(&["up", "--to", "1"]), "create");
    ok(&p.run(&["up", "--complete"]), "up --complete");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    assert_eq!(not_null(&p.db.pg().await, "c").await, None);
    let log = p.run(&["log", "--json"]);
    for kind in ["\"expand\"", "\"complete\""] {
        assert!(log.stdout.contains(kind), "{kind}: {log:?}");
    }

    let q = Project::new(Server::Postgres).await;
    q.write("1_create.sql", NN_CREATE);
    q.write("2_drop.sql", NN_DROP);
    q.write(
        "3_same.sql",
        "CREATE TABLE u (id int PRIMARY KEY, a int NOT NULL, b int);\nALTER TABLE u DROP COLUMN a;\nALTER TABLE u DROP COLUMN b;\n",
    );
    // Mixed with another statement, in a table an earlier migration of the run created.
    q.write(
        "4_mixed.sql",
        "ALTER TABLE u ADD COLUMN z int;\nALTER TABLE u DROP COLUMN id, DROP COLUMN z;\n",
    );
    let dry = q.run(&["up", "--dry-run"]);
    ok(&dry, "dry run");
    assert!(!dry.all().contains("expand phase"), "{dry:?}");
    for _ in 0..2 {
        ok(&q.run(&["up"]), "up");
        assert_eq!(
            q.states(),
            (1..=4)
                .map(|v| (v, "applied".to_string()))
                .collect::<Vec<_>>()
        );
    }
    assert_eq!(not_null(&q.db.pg().await, "c").await, None);
    // A later run: the table exists, the drop is two-phase.
    q.write("5_drop.sql", "ALTER TABLE t DROP COLUMN note;\n");
    ok(&q.run(&["up"]), "later drop");
    assert_eq!(state_of(&q, 5).as_deref(), Some("expanded"));
}

/// Issue 13's class (a rollback's count and the action that relies on it far apart), for the
/// restored NOT NULL: a NULL written at every point between the count and the swap back. Before
/// the check exists (step 0) the write succeeds and VALIDATE catches it: refused (exit 11, the
/// count; twice more on rerun), the table as expanded, the row intact. Once the check NOT VALID
/// is in place (step 1, and the swap after VALIDATE) the write itself fails (check violation):
/// no row can be lost, and the rollback goes on to the exact original schema.
#[tokio::test]
async fn a_null_written_at_every_point_before_the_swap_is_refused_or_never_written() {
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", NN_CREATE);
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write("2_drop.sql", NN_DROP);
    let db = p.db.pg().await;
    // (pause point, whether the NULL is written)
    for (point, written) in [
        ("rollback-step-0", true),
        ("rollback-step-1", false),
        ("rollback-swap", false),
    ] {
        ok(&p.run(&["up"]), "expand");
        let expanded = pg_dump_schema(&p);
        let wrote = Arc::new(std::sync::Mutex::new(None));
        let w = wrote.clone();
        let c = p.db.pg().await;
        let r = common::paused_at(&p, &["rollback"], point, None, || async move {
            *w.lock().unwrap() = Some(c.batch_execute("INSERT INTO t (note) VALUES (-7)").await);
        })
        .await;
        let wrote = wrote.lock().unwrap().take().unwrap();
        if written {
            wrote.unwrap_or_else(|e| panic!("{point}: {e:?}"));
            for (n, r) in [r, p.run(&["rollback"]), p.run(&["rollback"])]
                .into_iter()
                .enumerate()
            {
                assert_eq!(r.code, 11, "{point} run {n}: {r:?}");
                assert!(
                    r.stderr.contains("1 row(s) of t hold NULL in c"),
                    "{point} run {n}: {r:?}"
                );
                assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{point}");
                assert_eq!(pg_dump_schema(&p), expanded, "{point} run {n}");
            }
            let kept: i64 = db
                .query_one("SELECT count(*) FROM t WHERE note = -7 AND c IS NULL", &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(kept, 1, "{point}");
            db.batch_execute("UPDATE t SET c = 'filled' WHERE c IS NULL")
                .await
                .unwrap();
            ok(&p.run(&["rollback"]), point);
        } else {
            let e = wrote.expect_err(point);
            assert_eq!(
                e.code(),
                Some(&tokio_postgres::error::SqlState::CHECK_VIOLATION),
                "{point}: {e:?}"
            );
            ok(&r, point);
        }
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{point}");
        assert_eq!(pg_dump_schema(&p), before, "{point}");
    }
}
