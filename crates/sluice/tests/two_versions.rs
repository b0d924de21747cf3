//! Issue 14, two application versions live (PostgreSQL, default mode): a column rename runs as
//! expand (`sluice up`) → both names work → contract (`sluice complete`), or rollback.
//!
//! An old-version client (old name) and a new-version client (new name) write and read
//! concurrently through every stage: 0 errors on both, every write by either visible through the
//! other name, final rows equal to the as-written result. Rollback restores the schema exactly
//! (pg_dump), a kill at every step of the expand phase converges on rerun, and each command run
//! twice is safe.

mod common;

use common::pg_clients::{run_rounds, session, wait_ops, Round};
use common::{wait_bounded, Project, Run};
use sluice_testkit::Server;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use tokio_postgres::Client as PgClient;

/// One column shape under test: the table `t` has `id bigserial PRIMARY KEY`, the column, and
/// `note int`.
struct Case {
    name: &'static str,
    /// The column's definition in CREATE TABLE, and what else the table carries.
    column: &'static str,
    extra: &'static str,
    old: &'static str,
    new: &'static str,
    ty: &'static str,
    /// What an INSERT that leaves the column out stores (text form), None: NULL.
    default: Option<&'static str>,
    /// Values must be unique (a unique key on the column).
    unique: bool,
}

const CASES: &[Case] = &[
    Case {
        name: "text NOT NULL with default, check and index",
        column: "name text NOT NULL DEFAULT 'anon' CHECK (name <> '')",
        extra: "CREATE INDEX t_name_idx ON t (name);",
        old: "name",
        new: "full_name",
        ty: "text",
        default: Some("anon"),
        unique: false,
    },
    Case {
        name: "nullable unique bigint, mixed-case new name",
        column: "code bigint UNIQUE",
        extra: "",
        old: "code",
        new: "Ref Code",
        ty: "bigint",
        default: None,
        unique: true,
    },
];

fn q(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Case {
    fn create(&self) -> String {
        format!(
            "-- sluice:up\nCREATE TABLE t (id bigserial PRIMARY KEY, {}, note int);\n{}\nINSERT INTO t ({}, note) SELECT {}, g FROM generate_series(1, 3000) g;\n-- sluice:down\nDROP TABLE t;\n",
            self.column,
            self.extra,
            q(self.old),
            if self.unique { "g" } else { "'s' || g" }
        )
    }

    fn rename(&self) -> String {
        format!(
            "-- sluice:up\nALTER TABLE t RENAME COLUMN {} TO {};\n-- sluice:down\nALTER TABLE t RENAME COLUMN {} TO {};\n",
            q(self.old),
            q(self.new),
            q(self.new),
            q(self.old)
        )
    }

    /// The n-th written value (text form); unique across both clients.
    fn value(&self, n: u64) -> String {
        if self.unique {
            (1_000_000 + n).to_string()
        } else {
            format!("v{n}")
        }
    }

    fn seeded(&self, id: i64) -> String {
        if self.unique {
            id.to_string()
        } else {
            format!("s{id}")
        }
    }
}

/// One application version's client: writes and reads through its own name (`mine`), and right
/// after each write reads the row through the other name while both exist. It owns the rows whose
/// id has its parity and the rows it inserts, so what it reads back is known exactly.
struct Client {
    mine: String,
    other: String,
    ty: String,
    parity: i64,
    /// Read back through the other name (both names exist).
    cross: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicU64>,
}

struct ClientResult {
    errors: Vec<String>,
    /// id → the value this client last wrote (None: NULL).
    written: BTreeMap<i64, Option<String>>,
}

/// The round of one [`Client`], with the rows it owns and what it wrote.
struct Writer {
    c: Client,
    case: &'static Case,
    mine: String,
    other: String,
    counter: Arc<AtomicU64>,
    owned: Vec<i64>,
    written: BTreeMap<i64, Option<String>>,
}

impl Round for Writer {
    async fn round(&mut self, db: &PgClient, i: u64, errors: &mut Vec<String>) -> bool {
        let (mine, other, ty, case) = (&self.mine, &self.other, &self.c.ty, self.case);
        let owned = &mut self.owned;
        let n = self.counter.fetch_add(1, Ordering::SeqCst);
        // Write: an insert (every 7th leaves the column out) or an update of an owned row.
        let (id, want) = if i.is_multiple_of(3) {
            let omit = i.is_multiple_of(7);
            let r = if omit {
                db.query_one(
                    "INSERT INTO t (note) VALUES ($1) RETURNING id",
                    &[&(n as i32)],
                )
                .await
            } else {
                db.query_one(
                    &format!(
                        "INSERT INTO t ({mine}, note) VALUES ($1::text::{ty}, $2) RETURNING id"
                    ),
                    &[&case.value(n), &(n as i32)],
                )
                .await
            };
            match r {
                Ok(row) => {
                    let id: i64 = row.get(0);
                    owned.push(id);
                    let want = if omit {
                        case.default.map(str::to_string)
                    } else {
                        Some(case.value(n))
                    };
                    (id, want)
                }
                Err(e) => {
                    errors.push(format!("insert through {mine}: {e}"));
                    return false;
                }
            }
        } else {
            let id = owned[(n as usize * 7919) % owned.len()];
            // Every 11th update sets NULL where the column allows it.
            let null = case.default.is_none() && i.is_multiple_of(11);
            let r = if null {
                db.execute(&format!("UPDATE t SET {mine} = NULL WHERE id = $1"), &[&id])
                    .await
            } else {
                db.execute(
                    &format!("UPDATE t SET {mine} = $1::text::{ty} WHERE id = $2"),
                    &[&case.value(n), &id],
                )
                .await
            };
            match r {
                Ok(1) => (id, (!null).then(|| case.value(n))),
                Ok(k) => {
                    errors.push(format!("update of {id} through {mine} touched {k} rows"));
                    return false;
                }
                Err(e) => {
                    errors.push(format!("update through {mine}: {e}"));
                    return false;
                }
            }
        };
        self.written.insert(id, want.clone());
        // Read back through its own name, and through the other one while it exists.
        let cross = self.c.cross.load(Ordering::SeqCst);
        let names: &[&String] = if cross { &[mine, other] } else { &[mine] };
        for name in names {
            match db
                .query_one(&format!("SELECT {name}::text FROM t WHERE id = $1"), &[&id])
                .await
            {
                Ok(row) => {
                    let got: Option<String> = row.get(0);
                    if got != want {
                        errors.push(format!(
                            "row {id} through {name}: {got:?}, written {want:?} through {mine}"
                        ));
                    }
                }
                Err(e) => errors.push(format!("read through {name}: {e}")),
            }
            if db.is_closed() {
                return false;
            }
        }
        true
    }
}

async fn run_client(
    c: Client,
    url: String,
    case: &'static Case,
    counter: Arc<AtomicU64>,
) -> ClientResult {
    let (stop, ops) = (c.stop.clone(), c.ops.clone());
    let writer = Writer {
        mine: q(&c.mine),
        other: q(&c.other),
        owned: (1..=3000).filter(|i| i % 2 == c.parity).collect(),
        c,
        case,
        counter,
        written: BTreeMap::new(),
    };
    let (writer, errors) = run_rounds(writer, session(&url, "20s").await, stop, ops).await;
    ClientResult {
        errors,
        written: writer.written,
    }
}

/// Columns (by name: type, NOT NULL, default, collation), indexes and constraints (by name, with
/// their definitions), triggers and functions: the schema of the test database, apart from
/// the order of the columns.
async fn schema_facts(db: &tokio_postgres::Client) -> Vec<String> {
    let mut out = Vec::new();
    for sql in [
        "SELECT format('column %s.%s %s%s default %s collation %s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod), CASE WHEN a.attnotnull THEN ' not null' ELSE '' END, pg_get_expr(d.adbin, d.adrelid), a.attcollation) FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum WHERE n.nspname = 'public' AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped",
        "SELECT format('index %s %s valid=%s', indexname, indexdef, i.indisvalid) FROM pg_indexes x JOIN pg_class c ON c.relname = x.indexname JOIN pg_index i ON i.indexrelid = c.oid WHERE schemaname = 'public'",
        "SELECT format('constraint %s %s', conname, pg_get_constraintdef(k.oid)) FROM pg_constraint k JOIN pg_namespace n ON n.oid = k.connamespace WHERE n.nspname = 'public'",
        "SELECT format('trigger %s', tgname) FROM pg_trigger WHERE NOT tgisinternal",
        "SELECT format('function %s', p.proname) FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace WHERE n.nspname = 'public'",
        "SELECT format('sequence %s owned by %s', s.relname, (SELECT a.attname FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid WHERE d.objid = s.oid AND d.deptype = 'a')) FROM pg_class s WHERE s.relkind = 'S'",
    ] {
        for r in db.query(sql, &[]).await.unwrap() {
            out.push(r.get::<_, String>(0));
        }
    }
    out.sort();
    out
}

fn pg_dump_schema(p: &Project) -> String {
    p.pg_dump_schema()
}

fn ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: {r:?}");
}

fn state_of(p: &Project, v: i64) -> Option<String> {
    p.state_of(v)
}

/// Every row has the same value under both names (while both exist).
async fn assert_equal_names(db: &tokio_postgres::Client, case: &Case) {
    let n: i64 = db
        .query_one(
            &format!(
                "SELECT count(*) FROM t WHERE {} IS DISTINCT FROM {}",
                q(case.old),
                q(case.new)
            ),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0, "{}: rows whose two names differ", case.name);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn old_and_new_versions_run_concurrently_through_expand_and_complete() {
    for case in CASES {
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        p.write("2_rename.sql", &case.rename());
        let db = p.db.pg().await;

        let counter = Arc::new(AtomicU64::new(0));
        let (expanded, completed) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (stop_old, stop_new) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let (old_ops, new_ops) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        // The old version runs from before the migration until the new one is deployed everywhere.
        let old = tokio::spawn(run_client(
            Client {
                mine: case.old.into(),
                other: case.new.into(),
                ty: case.ty.into(),
                parity: 0,
                cross: expanded.clone(),
                stop: stop_old.clone(),
                ops: old_ops.clone(),
            },
            p.db.url.clone(),
            case,
            counter.clone(),
        ));
        wait_ops(&old_ops, 100).await;
        // Expand while the old version writes.
        let up = wait_bounded(p.spawn(&["up"]), 300, "sluice up");
        ok(&up, "expand");
        assert!(up.stderr.contains("expanded"), "{up:?}");
        assert_eq!(
            state_of(&p, 2).as_deref(),
            Some("expanded"),
            "{}",
            case.name
        );
        // Both names exist now: the old version reads its writes back through the new name too.
        expanded.store(true, Ordering::SeqCst);
        let before_new = old_ops.load(Ordering::SeqCst);
        // The new version is deployed beside it (the not-cross flag is the new version's own).
        let not_completed = Arc::new(AtomicBool::new(true));
        let new = tokio::spawn(run_client(
            Client {
                mine: case.new.into(),
                other: case.old.into(),
                ty: case.ty.into(),
                parity: 1,
                cross: not_completed.clone(),
                stop: stop_new.clone(),
                ops: new_ops.clone(),
            },
            p.db.url.clone(),
            case,
            counter.clone(),
        ));
        // Between: both versions write concurrently.
        wait_ops(&new_ops, 300).await;
        wait_ops(&old_ops, before_new + 300).await;
        assert_equal_names(&db, case).await;
        let status = p.run(&["status"]);
        assert!(status.stdout.contains("expanded (open"), "{status:?}");
        // The rollout is done: the old version stops, then the contract phase runs while the new
        // version keeps writing.
        stop_old.store(true, Ordering::SeqCst);
        let old = old.await.unwrap();
        not_completed.store(false, Ordering::SeqCst);
        let at_complete = new_ops.load(Ordering::SeqCst);
        let complete = wait_bounded(p.spawn(&["complete"]), 120, "sluice complete");
        ok(&complete, "complete");
        completed.store(true, Ordering::SeqCst);
        wait_ops(&new_ops, at_complete + 200).await;
        stop_new.store(true, Ordering::SeqCst);
        let new = new.await.unwrap();

        assert_eq!(
            old.errors,
            Vec::<String>::new(),
            "{}: old version",
            case.name
        );
        assert_eq!(
            new.errors,
            Vec::<String>::new(),
            "{}: new version",
            case.name
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));

        // The rows are what the writes give applied to one column, as written.
        let mut want: BTreeMap<i64, Option<String>> =
            (1..=3000).map(|id| (id, Some(case.seeded(id)))).collect();
        want.extend(old.written);
        want.extend(new.written);
        let got: BTreeMap<i64, Option<String>> = db
            .query(&format!("SELECT id, {}::text FROM t", q(case.new)), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(got.len(), want.len(), "{}", case.name);
        assert!(
            got == want,
            "{}: rows differ from the as-written result",
            case.name
        );

        // The schema equals the rename as written (a twin database), column order aside.
        let twin = Project::new(Server::Postgres).await;
        twin.write("1_create.sql", &case.create());
        twin.write("2_rename.sql", &case.rename());
        ok(&twin.run(&["up", "--as-written"]), "twin");
        assert_eq!(
            schema_facts(&db).await,
            schema_facts(&twin.db.pg().await).await,
            "{}",
            case.name
        );
        // complete run twice: nothing left to do.
        let again = p.run(&["complete"]);
        ok(&again, "complete again");
        assert!(again.stderr.contains("nothing is expanded"), "{again:?}");
        let again = p.run(&["complete", "2"]);
        assert_eq!(again.code, 11, "{again:?}");
        // `down` after complete works as today (the down part renames back, as written).
        ok(&p.run(&["down", "--as-written"]), "down");
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
    }
}

#[tokio::test]
async fn rollback_restores_the_schema_exactly_and_every_command_reruns_safely() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write("2_rename.sql", &case.rename());
    let db = p.db.pg().await;

    // The plan shows both phases and what each version sees, and exits 0 (up does not run it as
    // written).
    let plan = p.run(&["plan"]);
    ok(&plan, "plan");
    for part in [
        "two application versions live: rename column t.name to full_name runs in two phases",
        "`sluice complete` (contract)",
        "`sluice rollback`",
        "what each application version sees:",
        "expanded (after `sluice up`): both versions run",
        "info [rename-column]",
    ] {
        assert!(plan.stdout.contains(part), "{part}: {plan:?}");
    }

    ok(&p.run(&["up"]), "expand");
    // Running it again: nothing to do; `down` refuses an expanded migration (exit 11).
    let again = p.run(&["up"]);
    ok(&again, "up again");
    assert!(again.stderr.contains("nothing to apply"), "{again:?}");
    let down = p.run(&["down"]);
    assert_eq!(down.code, 11, "{down:?}");
    assert!(down.stderr.contains("sluice rollback"), "{down:?}");
    // A second breaking migration on the same table is refused, nothing of it runs (exit 11).
    p.write(
        "3_rename_again.sql",
        "ALTER TABLE t RENAME COLUMN note TO remark;\n",
    );
    let second = p.run(&["up"]);
    assert_eq!(second.code, 11, "{second:?}");
    assert!(
        second.stderr.contains("is expanded on the same table"),
        "{second:?}"
    );
    assert_eq!(state_of(&p, 3).as_deref(), Some("pending"));
    std::fs::remove_file(p.migration_path("3_rename_again.sql")).unwrap();

    // Old-version writes between expand and rollback are kept in the old column.
    db.execute("UPDATE t SET name = 'between' WHERE id <= 10", &[])
        .await
        .unwrap();
    ok(&p.run(&["rollback"]), "rollback");
    assert_eq!(state_of(&p, 2).as_deref(), Some("pending"));
    assert_eq!(
        pg_dump_schema(&p),
        before,
        "rollback restores the schema exactly"
    );
    let n: i64 = db
        .query_one("SELECT count(*) FROM t WHERE name = 'between'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 10);
    let drift = p.run(&["drift"]);
    ok(&drift, "no drift after rollback");
    // Rollback again: nothing to do (0); of a version that is not expanded: exit 11.
    let again = p.run(&["rollback"]);
    ok(&again, "rollback again");
    assert!(again.stderr.contains("nothing to roll back"), "{again:?}");
    assert_eq!(p.run(&["rollback", "1"]).code, 11);

    // Expand again after the rollback: the backfill starts afresh (its old checkpoint is stale).
    db.execute("UPDATE t SET name = 'after' WHERE id > 2990", &[])
        .await
        .unwrap();
    ok(&p.run(&["up"]), "expand again");
    assert_equal_names(&db, case).await;
    ok(&p.run(&["complete", "2"]), "complete");
    ok(&p.run(&["up"]), "up after complete");
    assert_eq!(
        p.run(&["rollback", "2"]).code,
        11,
        "complete: rollback refuses"
    );
    let n: i64 = db
        .query_one("SELECT count(*) FROM t WHERE full_name = 'after'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 10);
}

/// A reader of sluice's messages that goes away mid-run (`sluice up 2>&1 | head -2`, a dead log
/// pipe) does not stop the run between two steps of the expand phase: it finishes, exit 0.
#[tokio::test]
async fn a_closed_stderr_does_not_stop_the_expand() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    p.write("2_rename.sql", &case.rename());
    ok(&p.run(&["up", "--to", "1"]), "create");
    let mut child = p.spawn(&["up"]);
    drop(child.stderr.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
}

#[tokio::test]
async fn up_complete_runs_both_phases() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    p.write("2_rename.sql", &case.rename());
    ok(&p.run(&["up", "--to", "1"]), "create");
    let r = p.run(&["up", "--complete"]);
    ok(&r, "up --complete");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    // It completes at once: no advice to run `sluice complete` (nor rollback) on the way.
    assert!(r.stderr.contains("completed 2_rename"), "{r:?}");
    assert!(!r.stderr.contains("sluice complete"), "{r:?}");
    assert!(!r.stderr.contains("sluice rollback"), "{r:?}");
    let log = p.run(&["log", "--json"]);
    for kind in ["\"expand\"", "\"complete\""] {
        assert!(log.stdout.contains(kind), "{kind}: {log:?}");
    }
    let twin = Project::new(Server::Postgres).await;
    twin.write("1_create.sql", &case.create());
    twin.write("2_rename.sql", &case.rename());
    ok(&twin.run(&["up", "--as-written"]), "twin");
    assert_eq!(
        schema_facts(&p.db.pg().await).await,
        schema_facts(&twin.db.pg().await).await
    );
}

/// `up --complete` also completes what an earlier `up` left expanded, first (the old column stays
/// only "until `sluice complete`, or the next `up` with `--complete`"), so a pending migration on the
/// same table — refused by a plain `up` while the first is expanded — then runs; the rerun has
/// nothing to do. The result equals the migrations run as written.
#[tokio::test]
async fn up_complete_first_completes_what_an_earlier_up_left_expanded() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    p.write("2_rename.sql", &case.rename());
    // The table exists before the rename's run (one created in the same run is new: as written).
    ok(&p.run(&["up", "--to", "1"]), "create");
    ok(&p.run(&["up"]), "expand");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    // A second breaking change on the same table.
    let drop = "-- sluice:up\nALTER TABLE t DROP COLUMN note;\n".to_string();
    p.write("3_drop.sql", &drop);
    for _ in 0..2 {
        let r = p.run(&["up"]);
        assert_eq!(r.code, 11, "a plain up still refuses: {r:?}");
        assert_eq!(state_of(&p, 3).as_deref(), Some("pending"));
    }
    let dry = p.run(&["up", "--complete", "--dry-run"]);
    ok(&dry, "dry run");
    assert!(
        dry.stderr
            .contains("would complete 2 first, left expanded by an earlier `up` (`--complete`)"),
        "{dry:?}"
    );
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    let r = p.run(&["up", "--complete"]);
    ok(&r, "up --complete");
    assert!(
        r.stderr
            .contains("completed 2, left expanded by an earlier `up` (`--complete`)"),
        "{r:?}"
    );
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
    assert_eq!(state_of(&p, 3).as_deref(), Some("applied"));
    let again = p.run(&["up", "--complete"]);
    ok(&again, "rerun");
    assert!(!again.stderr.contains("completed 2"), "{again:?}");
    let twin = Project::new(Server::Postgres).await;
    twin.write("1_create.sql", &case.create());
    twin.write("2_rename.sql", &case.rename());
    twin.write("3_drop.sql", &drop);
    ok(&twin.run(&["up", "--as-written"]), "twin");
    assert_eq!(
        schema_facts(&p.db.pg().await).await,
        schema_facts(&twin.db.pg().await).await
    );
}

/// Two pending breaking migrations on one live table in one run: refused before anything runs
/// (exit 11, twice), saying the first is only about to be expanded and giving a fix that works —
/// followed, it applies both (and so does `up --complete`), equal to the migrations as written.
#[tokio::test]
async fn two_breaking_migrations_on_one_table_in_one_run_get_a_fix_that_works() {
    let create = "-- sluice:up\nCREATE TABLE t (id bigserial PRIMARY KEY, a int, c int NOT NULL DEFAULT 0, d int);\n\
                  INSERT INTO t (a, c, d) SELECT g, g, g FROM generate_series(1, 500) g;\n";
    let rename_a = "-- sluice:up\nALTER TABLE t RENAME COLUMN a TO b;\n";
    let drop_c = "-- sluice:up\nALTER TABLE t DROP COLUMN c;\n";
    let rename_d = "-- sluice:up\nALTER TABLE t RENAME COLUMN d TO e;\n";
    let rename_t = "-- sluice:up\nALTER TABLE t RENAME TO u;\n";
    // (first, second): column renames and drops either way round, and a table rename. (A type
    // change is judged from the live table — a small one runs as written — see
    // type_change_lifecycle.rs.)
    let pairs = [
        (rename_a, drop_c),
        (drop_c, rename_a),
        (rename_a, rename_d),
        (drop_c, rename_t),
    ];
    for (k, (first, second)) in pairs.iter().enumerate() {
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", create);
        ok(&p.run(&["up"]), "create");
        p.write("2_first.sql", first);
        p.write("3_second.sql", second);
        // `up` and its dry run say the same (the dry run said "would apply" before).
        for args in [&["up"][..], &["up", "--dry-run"], &["up"]] {
            let r = p.run(args);
            assert_eq!(r.code, 11, "{k} {args:?}: {r:?}");
            assert!(
                r.stderr.contains("would be expanded earlier in this run"),
                "{k}: {r:?}"
            );
            assert!(
                r.stderr.contains("`sluice up --to 2`")
                    && r.stderr.contains("`sluice complete 2`")
                    && r.stderr.contains("`sluice up --complete`"),
                "{k}: {r:?}"
            );
            assert!(
                !r.stderr.contains("is expanded on the same table"),
                "{k}: {r:?}"
            );
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{k}");
            assert_eq!(state_of(&p, 3).as_deref(), Some("pending"), "{k}");
        }
        // `plan` shows both migrations' steps and says, on the second only, that `up` refuses it
        // (an error finding: exit 7), with `up`'s reason and fix; twice, nothing changes.
        for round in 0..2 {
            let r = p.run(&["plan"]);
            assert_eq!(r.code, 7, "{k} plan {round}: {r:?}");
            let (before_second, second) = r
                .stdout
                .split_once("3_second")
                .unwrap_or_else(|| panic!("{k}: the plan lists migration 3: {r:?}"));
            assert!(
                !before_second.contains("breaking-change-on-open-table"),
                "{k}: only the second is refused: {r:?}"
            );
            assert!(
                second.contains("breaking-change-on-open-table")
                    && second.contains("`sluice up` refuses this migration (exit 11)")
                    && second.contains("would be expanded earlier in this run")
                    && second.contains("`sluice up --to 2`"),
                "{k}: {r:?}"
            );
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{k}");
        }
        // With --as-written nothing is two-phase: nothing to refuse.
        let r = p.run(&["plan", "--as-written"]);
        assert!(
            !r.stdout.contains("breaking-change-on-open-table"),
            "{k}: {r:?}"
        );
        // The fix as written: the first alone, complete it, then the rest.
        ok(&p.run(&["up", "--to", "2"]), "first alone");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{k}");
        // Now the plan names the expanded one and `complete`.
        let r = p.run(&["plan"]);
        assert_eq!(r.code, 7, "{k}: {r:?}");
        assert!(
            r.stdout.contains("is expanded on the same table")
                && r.stdout.contains("`sluice complete 2`"),
            "{k}: {r:?}"
        );
        // Now it is expanded: the refusal says so and names `complete`.
        let r = p.run(&["up"]);
        assert_eq!(r.code, 11, "{k}: {r:?}");
        assert!(
            r.stderr.contains("is expanded on the same table"),
            "{k}: {r:?}"
        );
        ok(&p.run(&["complete", "2"]), "complete the first");
        ok(&p.run(&["up", "--complete"]), "the second");
        assert_eq!(state_of(&p, 3).as_deref(), Some("applied"), "{k}");
        // The other fix: both phases of each in one run.
        let both = Project::new(Server::Postgres).await;
        both.write("1_create.sql", create);
        ok(&both.run(&["up"]), "create");
        both.write("2_first.sql", first);
        both.write("3_second.sql", second);
        ok(&both.run(&["up", "--complete"]), "up --complete");
        let twin = Project::new(Server::Postgres).await;
        twin.write("1_create.sql", create);
        twin.write("2_first.sql", first);
        twin.write("3_second.sql", second);
        ok(&twin.run(&["up", "--as-written"]), "twin");
        let want = schema_facts(&twin.db.pg().await).await;
        assert_eq!(schema_facts(&p.db.pg().await).await, want, "{k}");
        assert_eq!(schema_facts(&both.db.pg().await).await, want, "{k}");
    }
}

/// A kill before every step of the expand phase (and after the last, before the state is
/// recorded), and a real kill -9 in the middle of the backfill: the rerun converges to the same
/// expanded table; a rollback from the interrupted state restores the schema exactly.
#[tokio::test]
async fn a_kill_during_expand_converges_on_rerun() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    ok(&p.run(&["up"]), "create");
    let before = pg_dump_schema(&p);
    p.write("2_rename.sql", &case.rename());
    let db = p.db.pg().await;
    // The reference: an uninterrupted expand.
    ok(&p.run(&["up"]), "expand");
    let expanded = schema_facts(&db).await;
    ok(&p.run(&["rollback"]), "rollback");
    let points: Vec<String> = (0..9)
        .map(|k| format!("expand-step-{k}"))
        .chain(["expand-unrecorded".to_string()])
        .collect();
    for (n, point) in points.iter().enumerate() {
        let killed: Run = p
            .command(&["up"])
            .env("SLUICE_CRASH_AT", point)
            .output()
            .unwrap()
            .into();
        assert_ne!(killed.code, 0, "{point}: {killed:?}");
        assert!(
            killed.stderr.contains(point.as_str()),
            "{point}: {killed:?}"
        );
        assert_eq!(state_of(&p, 2).as_deref(), Some("interrupted"), "{point}");
        // Writes through the old name go on while nothing runs.
        db.execute(
            "UPDATE t SET name = 'k' || $1::text WHERE id = $2",
            &[&point, &(n as i64 + 1)],
        )
        .await
        .unwrap();
        if n % 3 == 2 {
            // Roll back from the interrupted state instead: the schema is as before.
            ok(&p.run(&["rollback"]), point);
            assert_eq!(pg_dump_schema(&p), before, "{point}");
            continue;
        }
        ok(&p.run(&["up"]), point);
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "{point}");
        assert_eq!(schema_facts(&db).await, expanded, "{point}");
        assert_equal_names(&db, case).await;
        let again = p.run(&["up"]);
        ok(&again, point);
        assert!(
            again.stderr.contains("nothing to apply"),
            "{point}: {again:?}"
        );
        ok(&p.run(&["rollback"]), point);
        assert_eq!(pg_dump_schema(&p), before, "{point}");
    }

    // A real kill -9 while the backfill runs (a bigger table, so that it has batches to do).
    db.batch_execute(
        "INSERT INTO t (name, note) SELECT 'b' || g, g FROM generate_series(1, 100000) g",
    )
    .await
    .unwrap();
    let mut child = p
        .command(&["up", "--pace", "speed", "--target-batch-ms", "5"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    common::eventually(120, "the backfill to start", || async {
        db.query_opt(
            "SELECT 1 FROM sluice.backfills WHERE rows_done > 0 AND state <> 'done'",
            &[],
        )
        .await
        .ok()
        .flatten()
        .is_some()
            || state_of(&p, 2).as_deref() == Some("expanded")
    })
    .await;
    child.kill().unwrap(); // SIGKILL
    let _ = wait_bounded(child, 60, "killed up");
    db.execute("UPDATE t SET name = 'after-kill' WHERE id = 5", &[])
        .await
        .unwrap();
    ok(&p.run(&["up"]), "rerun after kill -9");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    assert_eq!(schema_facts(&db).await, expanded);
    assert_equal_names(&db, case).await;
    ok(&p.run(&["complete"]), "complete");
}

/// What the two phases cannot carry, or what the rename as written would fail on, is refused
/// before anything is made or recorded (the migration stays pending, the schema as it was), with
/// the reason; run again, the same answer.
#[tokio::test]
async fn refusals_leave_nothing_and_say_why() {
    let cases: &[(&str, &str, &str, i32, &str)] = &[
        (
            "the new name is taken",
            "ALTER TABLE t ADD COLUMN full_name text;",
            "ALTER TABLE t RENAME COLUMN name TO full_name;",
            1,
            "column full_name of relation t already exists",
        ),
        (
            "a type without equality",
            "ALTER TABLE t ADD COLUMN doc json;",
            "ALTER TABLE t RENAME COLUMN doc TO body;",
            2,
            "type json has no equality operator",
        ),
        (
            "a domain with a DEFAULT (the old version's INSERTs would get it under the new name)",
            "CREATE DOMAIN code3 AS char(3) DEFAULT 'USD';\nALTER TABLE t ADD COLUMN cur code3;",
            "ALTER TABLE t RENAME COLUMN cur TO currency;",
            2,
            "the type of column cur is a domain with a DEFAULT",
        ),
        (
            "a view uses the column",
            "CREATE VIEW v AS SELECT name FROM t;",
            "ALTER TABLE t RENAME COLUMN name TO full_name;",
            2,
            "view v depends on it",
        ),
        (
            "an identity column",
            "ALTER TABLE t ADD COLUMN n int GENERATED ALWAYS AS IDENTITY;",
            "ALTER TABLE t RENAME COLUMN n TO m;",
            2,
            "identity column",
        ),
        (
            "other statements beside the rename",
            "",
            "ALTER TABLE t RENAME COLUMN name TO full_name;\nALTER TABLE t ADD COLUMN x int;",
            2,
            "put the rename in a migration of its own",
        ),
    ];
    for (what, setup, rename, code, message) in cases {
        let p = Project::new(Server::Postgres).await;
        p.write(
            "1_create.sql",
            &format!(
                "CREATE TABLE t (id bigserial PRIMARY KEY, name text NOT NULL, note int);\nINSERT INTO t (name) SELECT 'n' || g FROM generate_series(1, 100) g;\n{setup}\n"
            ),
        );
        ok(&p.run(&["up"]), what);
        let before = pg_dump_schema(&p);
        p.write("2_rename.sql", rename);
        for attempt in 0..2 {
            let r = p.run(&["up"]);
            assert_eq!(r.code, *code, "{what} ({attempt}): {r:?}");
            assert!(r.stderr.contains(message), "{what} ({attempt}): {r:?}");
            assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{what}");
            assert_eq!(pg_dump_schema(&p), before, "{what}");
        }
        // `--as-written` renames in one step, as before (the taken name fails there too).
        let written = p.run(&["up", "--as-written"]);
        match message.contains("already exists") {
            true => assert!(
                written.stderr.contains("already exists"),
                "{what}: {written:?}"
            ),
            false => ok(&written, what),
        }
    }
}

/// A step that fails (here: a lock the expand phase never gets) records the migration failed,
/// saying what is left; the rerun removes what the failed attempt made and expands afresh.
#[tokio::test]
async fn a_failed_expand_is_recorded_and_its_rerun_starts_afresh() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    ok(&p.run(&["up"]), "create");
    p.write("2_rename.sql", &case.rename());
    let holder = p.db.pg().await;
    holder
        .batch_execute("BEGIN; LOCK TABLE t IN ACCESS SHARE MODE")
        .await
        .unwrap();
    let r = p.run(&["up", "--lock-timeout", "100", "--lock-retry-for", "1"]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("lock timeout"), "{r:?}");
    assert_eq!(state_of(&p, 2).as_deref(), Some("failed"));
    holder.batch_execute("COMMIT").await.unwrap();
    for _ in 0..2 {
        ok(&p.run(&["up"]), "rerun");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    }
    assert_equal_names(&p.db.pg().await, case).await;
}

/// A history applied from an empty database (issue 17): renames in tables that earlier migrations
/// of the same run created break no running version, so they run as written — one rename alone,
/// two renames with an index in one file — and every migration ends `applied`, on both engines.
/// In a later run the table exists, and a rename there is two-phase again. Each command twice.
#[tokio::test]
async fn renames_in_tables_created_earlier_in_the_run_run_as_written() {
    for server in [Server::Postgres, Server::MariaDb] {
        let p = Project::new(server).await;
        let text = if server == Server::Postgres {
            "text"
        } else {
            "varchar(20)"
        };
        p.write(
            "1_create.sql",
            &format!("-- sluice:up\nCREATE TABLE t (id bigint PRIMARY KEY, a {text});\n-- sluice:down\nDROP TABLE t;\n"),
        );
        p.write(
            "2_rename.sql",
            "-- sluice:up\nALTER TABLE t RENAME COLUMN a TO b;\n-- sluice:down\nALTER TABLE t RENAME COLUMN b TO a;\n",
        );
        p.write(
            "3_two.sql",
            "-- sluice:up\nALTER TABLE t RENAME COLUMN b TO c;\nALTER TABLE t RENAME COLUMN id TO tid;\nCREATE INDEX t_c ON t (c);\n-- sluice:down\nDROP INDEX t_c ON t;\nALTER TABLE t RENAME COLUMN tid TO id;\nALTER TABLE t RENAME COLUMN c TO b;\n"
                .replace(
                    "DROP INDEX t_c ON t;",
                    if server == Server::Postgres { "DROP INDEX t_c;" } else { "DROP INDEX t_c ON t;" },
                )
                .as_str(),
        );
        p.write(
            "4_add.sql",
            "-- sluice:up\nALTER TABLE t ADD COLUMN d int;\n-- sluice:down\nALTER TABLE t DROP COLUMN d;\n",
        );
        let dry = p.run(&["up", "--dry-run"]);
        ok(&dry, "dry run");
        assert!(!dry.all().contains("expand phase"), "{server:?}: {dry:?}");
        // `plan` does not refuse them (its lint findings still name the renames: lint judges each
        // migration on its own).
        let plan = p.run(&["plan"]);
        assert!(!plan.all().contains("refuses it"), "{server:?}: {plan:?}");
        for round in 0..2 {
            let r = p.run(&["up"]);
            ok(&r, &format!("{server:?} up round {round}"));
            let states = p.states();
            assert_eq!(
                states,
                (1..=4)
                    .map(|v| (v, "applied".to_string()))
                    .collect::<Vec<_>>(),
                "{server:?} round {round}: {r:?}"
            );
        }
        let cols: Vec<String> = match server {
            Server::Postgres => p
                .db
                .pg()
                .await
                .query(
                    "SELECT attname::text FROM pg_attribute WHERE attrelid = 't'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                    &[],
                )
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
            Server::MariaDb => {
                use mysql_async::prelude::Queryable;
                p.db.my()
                    .await
                    .query("SELECT column_name FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 't' ORDER BY ordinal_position")
                    .await
                    .unwrap()
            }
        };
        assert_eq!(cols, ["tid", "c", "d"], "{server:?}");
        // The table now exists before the run: a rename in it breaks the running version again.
        p.write(
            "5_rename.sql",
            "-- sluice:up\nALTER TABLE t RENAME COLUMN c TO e;\n-- sluice:down\nALTER TABLE t RENAME COLUMN e TO c;\n",
        );
        // Both engines run it in two phases now (MariaDB since issue 14's MariaDB slice).
        for _ in 0..2 {
            let r = p.run(&["up"]);
            ok(&r, &format!("{server:?} later rename"));
            assert_eq!(state_of(&p, 5).as_deref(), Some("expanded"), "{r:?}");
        }
    }
}

/// A killed expand leaves sluice's half-made objects (the new column, its trigger), which the
/// schema snapshot does not know. `status` and `drift` must not send the user to
/// `drift --write-migration` then (its down part would drop the column with its data), and the
/// capture itself is refused (exit 11, twice, no file written); `up` then finishes the expand and
/// the drift is gone. Every expand step is a kill point.
#[tokio::test]
async fn drift_is_not_captured_while_an_expand_is_unfinished() {
    let case = &CASES[0];
    let mut killed_with_drift = 0;
    for k in 1..=8 {
        let p = Project::new(Server::Postgres).await;
        p.write("1_create.sql", &case.create());
        ok(&p.run(&["up"]), "create");
        p.write("2_rename.sql", &case.rename());
        let r = p.run_crashing(&["up"], &format!("expand-step-{k}"));
        if r.code == 0 {
            // Past the last step: nothing was killed.
            assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "step {k}");
            break;
        }
        let files = || std::fs::read_dir(p.migration_path("")).unwrap().count();
        let before = files();
        let status = p.run(&["status"]);
        assert!(
            !status.stdout.contains("--write-migration"),
            "step {k}: {status:?}"
        );
        let drift = p.run(&["drift"]);
        if drift.code != 0 {
            killed_with_drift += 1;
            assert!(
                !drift.stdout.contains("--write-migration"),
                "step {k}: {drift:?}"
            );
            assert!(
                drift.stdout.contains("is unfinished"),
                "step {k}: {drift:?}"
            );
            for _ in 0..2 {
                let w = p.run(&["drift", "--write-migration"]);
                assert_eq!(w.code, 11, "step {k}: {w:?}");
                assert!(
                    w.stderr.contains("not capturing drift while migration"),
                    "step {k}: {w:?}"
                );
                assert_eq!(files(), before, "step {k}: no file written");
            }
        }
        ok(&p.run(&["up"]), "rerun");
        assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"), "step {k}");
        ok(&p.run(&["drift"]), "no drift once expanded");
    }
    assert!(killed_with_drift > 0, "no kill point left drift behind");
}

/// While a rename is expanded, a later migration that builds an index or a constraint on the old
/// name is refused before anything (up and dry run exit 11, plan 7 with the error finding), each
/// form, twice: complete would drop the old column with it (the expand copied only what was there).
/// On the new name it applies.
#[tokio::test]
async fn an_index_or_constraint_on_the_old_name_of_an_open_rename_is_refused() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    ok(&p.run(&["up"]), "create");
    p.write("2_rename.sql", &case.rename());
    ok(&p.run(&["up"]), "expand");
    let before = p.pg_dump_schema();
    let forms = [
        "CREATE INDEX t_later ON t (name);",
        "CREATE INDEX t_later ON t (\"name\", note);",
        "CREATE UNIQUE INDEX CONCURRENTLY t_later ON t (note, name);",
        "ALTER TABLE t ADD CONSTRAINT t_later UNIQUE (name);",
        "ALTER TABLE t ADD CONSTRAINT t_later CHECK (length(name) < 100);",
        "CREATE INDEX t_later ON t (lower(name));",
        "CREATE INDEX t_later ON t ((\"name\" || note));",
        "CREATE INDEX t_later ON t (note) WHERE name IS NOT NULL;",
        "CREATE INDEX t_later ON t (note) INCLUDE (name);",
        "CREATE INDEX t_later ON t USING hash (NAME);",
    ];
    for form in forms {
        p.write("3_later.sql", &format!("-- sluice:up\n{form}\n"));
        for _ in 0..2 {
            for (args, code) in [
                (&["up"][..], 11),
                (&["up", "--dry-run"], 11),
                (&["plan"], 7),
            ] {
                let r = p.run(args);
                assert_eq!(r.code, code, "{form} {args:?}: {r:?}");
                let said = format!("{}{}", r.stdout, r.stderr);
                assert!(
                    said.contains("on t.name while migration 2_rename"),
                    "{form} {args:?}: {r:?}"
                );
                assert!(
                    said.contains("name the new column `full_name`"),
                    "{form}: {r:?}"
                );
            }
            assert_eq!(p.pg_dump_schema(), before, "{form}: nothing changed");
        }
    }
    p.write(
        "3_later.sql",
        "-- sluice:up\nCREATE INDEX t_later ON t (full_name);\n",
    );
    ok(&p.run(&["up"]), "on the new name");
}

/// An expand cut off, then its file edited (here into another migration altogether): the rerun
/// must not plan from the new text and leave the cut-off run's trigger and column behind for good.
/// `up` refuses (exit 4, twice, nothing changed); restored, `up` finishes the expand, and the edit
/// then goes in a new migration.
#[tokio::test]
async fn an_edited_file_of_a_cut_off_expand_is_refused_until_restored() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    ok(&p.run(&["up"]), "create");
    p.write("2_rename.sql", &case.rename());
    let killed = p.run_crashing(&["up"], "expand-step-2");
    assert_ne!(killed.code, 0, "{killed:?}");
    let made = p.pg_dump_schema();
    p.write(
        "2_rename.sql",
        "-- sluice:up\nALTER TABLE t ADD COLUMN d int;\n",
    );
    for _ in 0..2 {
        for args in [&["up"][..], &["up", "--dry-run"], &["plan"]] {
            let r = p.run(args);
            assert_eq!(r.code, 4, "{args:?}: {r:?}");
            assert!(
                r.stderr.contains("the expand phase of migration 2_rename was cut off and its file has changed since"),
                "{args:?}: {r:?}"
            );
            assert_eq!(p.pg_dump_schema(), made, "{args:?}: nothing changed");
        }
    }
    p.write("2_rename.sql", &case.rename());
    ok(&p.run(&["up"]), "the restored file finishes the expand");
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
}

/// A recorded migration's file gone (moved away), expanded or applied: every command that needs it
/// refuses with exit 4 (as the README's table says for a missing file) naming it, `status` says it
/// is recorded (not "applied" when it is expanded), `verify` says restore (never `repair`), and
/// `repair` fails (exit 4) instead of saying every migration matches; each twice, nothing changed.
/// Restored, `verify` passes and `complete` runs.
#[tokio::test]
async fn a_missing_file_is_exit_4_everywhere_and_never_repaired() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    ok(&p.run(&["up"]), "create");
    p.write("2_rename.sql", &case.rename());
    ok(&p.run(&["up"]), "expand");
    let aside = p.path().join("aside.sql");
    std::fs::rename(p.migration_path("2_rename.sql"), &aside).unwrap();
    let commands: &[&[&str]] = &[
        &["complete"],
        &["rollback"],
        &["verify"],
        &["repair"],
        &["up"],
        &["up", "--dry-run"],
        &["plan"],
    ];
    for round in 0..2 {
        for args in commands {
            let r = p.run(args);
            assert_eq!(r.code, 4, "{args:?} round {round}: {r:?}");
            let said = format!("{}{}", r.stdout, r.stderr);
            assert!(said.contains("2_rename"), "{args:?}: {r:?}");
            assert!(!said.contains("sluice repair"), "{args:?}: {r:?}");
            assert!(!said.contains("nothing to repair"), "{args:?}: {r:?}");
            assert!(
                !said.contains("recorded as missing-file"),
                "{args:?}: {r:?}"
            );
            // Shown as missing its file; the record is untouched (expanded, as the end shows).
            assert_eq!(state_of(&p, 2).as_deref(), Some("missing-file"), "{args:?}");
        }
        let status = p.run(&["status"]);
        assert!(
            status
                .stdout
                .contains("is recorded in the database but has no file"),
            "{status:?}"
        );
        assert!(!status.stdout.contains("recorded as applied"), "{status:?}");
    }
    std::fs::rename(&aside, p.migration_path("2_rename.sql")).unwrap();
    ok(&p.run(&["verify"]), "verify once restored");
    ok(&p.run(&["complete"]), "complete once restored");
    // Applied, its file gone: down, verify and repair alike.
    std::fs::rename(p.migration_path("2_rename.sql"), &aside).unwrap();
    for args in [&["down"][..], &["verify"], &["repair"]] {
        let r = p.run(args);
        assert_eq!(r.code, 4, "{args:?} applied: {r:?}");
        let said = format!("{}{}", r.stdout, r.stderr);
        assert!(said.contains("2_rename"), "{args:?}: {r:?}");
        assert!(!said.contains("nothing to repair"), "{args:?}: {r:?}");
    }
    std::fs::rename(&aside, p.migration_path("2_rename.sql")).unwrap();
    ok(&p.run(&["verify"]), "verify once restored again");
}

/// The file of an expanded migration edited: complete and rollback are planned from it, so the
/// edit is never accepted while it is open. status, verify, complete and repair all say to
/// restore it (never to `repair`), repair refuses (exit 4, twice, nothing recorded), and once the
/// file is restored complete runs.
#[tokio::test]
async fn an_edited_expanded_migration_must_be_restored_not_repaired() {
    let case = &CASES[0];
    let p = Project::new(Server::Postgres).await;
    p.write("1_create.sql", &case.create());
    ok(&p.run(&["up"]), "create");
    p.write("2_rename.sql", &case.rename());
    ok(&p.run(&["up"]), "expand");
    p.write(
        "2_rename.sql",
        &case.rename().replace("full_name", "fullname"),
    );
    let status = p.run(&["status"]);
    assert!(
        status
            .stdout
            .contains("is expanded and its file has changed since `sluice up`"),
        "{status:?}"
    );
    assert!(!status.stdout.contains("sluice repair"), "{status:?}");
    for cmd in ["complete", "rollback", "repair", "repair"] {
        let r = p.run(&[cmd]);
        assert_eq!(r.code, 4, "{cmd}: {r:?}");
        assert!(r.stderr.contains("restore"), "{cmd}: {r:?}");
        assert!(!r.stderr.contains("sluice repair"), "{cmd}: {r:?}");
        // Still expanded, shown as edited while the file differs.
        assert_eq!(state_of(&p, 2).as_deref(), Some("edited"), "{cmd}");
    }
    p.write("2_rename.sql", &case.rename());
    assert_eq!(state_of(&p, 2).as_deref(), Some("expanded"));
    ok(&p.run(&["complete"]), "complete after the file is restored");
    assert_eq!(state_of(&p, 2).as_deref(), Some("applied"));
}

/// `up --dry-run` refuses what `up` refuses when it reaches a breaking migration (the shape, or
/// what the catalog says), with the same exit code and message, instead of "would apply".
#[tokio::test]
async fn dry_run_refuses_what_up_refuses() {
    // (server, setup, migration)
    let cases: &[(Server, &str, &str)] = &[
        (
            Server::Postgres,
            "",
            "ALTER TABLE ONLY t RENAME COLUMN a TO b;",
        ),
        (
            Server::Postgres,
            "CREATE VIEW v AS SELECT a FROM t;",
            "ALTER TABLE t RENAME COLUMN a TO b;",
        ),
        (
            Server::Postgres,
            "CREATE VIEW v AS SELECT a FROM t;",
            "ALTER TABLE t DROP COLUMN a;",
        ),
        (
            Server::Postgres,
            "CREATE TABLE r (tid int REFERENCES t (id));",
            "DROP TABLE t;",
        ),
        (Server::MariaDb, "", "ALTER TABLE t DROP COLUMN id;"),
    ];
    for (server, setup, migration) in cases {
        let p = Project::new(*server).await;
        p.write(
            "1_create.sql",
            &format!("-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY, a int);\nINSERT INTO t VALUES (1, 1), (2, 2);\n{setup}\n"),
        );
        ok(&p.run(&["up"]), "create");
        p.write("2_change.sql", &format!("-- sluice:up\n{migration}\n"));
        let message = |r: &Run| {
            r.stderr
                .lines()
                .find(|l| l.contains("×"))
                .unwrap_or_default()
                .to_string()
        };
        let up = p.run(&["up"]);
        assert_eq!(up.code, 2, "{migration}: {up:?}");
        for _ in 0..2 {
            let dry = p.run(&["up", "--dry-run"]);
            assert_eq!(dry.code, up.code, "{migration}: {dry:?}");
            assert_eq!(message(&dry), message(&up), "{migration}");
            assert!(!dry.stdout.contains("would apply"), "{migration}: {dry:?}");
        }
        assert_eq!(state_of(&p, 2).as_deref(), Some("pending"), "{migration}");
    }
}
