//! A staged change cut off in sluice's own steps (PostgreSQL), and what each command then does
//! with what those steps left: `rollback` never claims "as before" over a referencing column it
//! cannot narrow, never drops a column it cannot tell it made, never stalls a table's writers
//! while it waits for another table; `up --as-written` never buries sluice's helpers; `down`
//! points to the command that removes them; a failed swap's cleanup is all or nothing. Each
//! refusal is run twice and changes nothing.

mod common;

use common::{wait_bounded, Project, Run};
use sluice_testkit::Server;
use std::time::{Duration, Instant};

async fn text(p: &Project, sql: &str) -> String {
    p.pg_text(sql).await.unwrap_or_default()
}

/// `pg_dump --schema-only` without sluice's own schema.
fn dump(p: &Project) -> String {
    p.pg_dump_schema()
}

/// sluice's helpers (triggers, columns named as sluice names them) in the public schema.
async fn helpers(p: &Project) -> String {
    text(
        p,
        "SELECT string_agg(x, ', ' ORDER BY x) FROM (
           SELECT tgname::text AS x FROM pg_trigger WHERE NOT tgisinternal AND tgname LIKE '%sluice%'
           UNION ALL SELECT attrelid::regclass || '.' || attname FROM pg_attribute
            WHERE attname LIKE '%sluice%' AND attnum > 0 AND NOT attisdropped
              AND attrelid IN (SELECT oid FROM pg_class WHERE relnamespace = 'public'::regnamespace)) s",
    )
    .await
}

fn ok(r: &Run, what: &str) {
    assert_eq!(r.code, 0, "{what}: {r:?}");
}

const PARENT_CHILD: &str = "CREATE TABLE t (id int PRIMARY KEY, note text);
    CREATE TABLE c (cid int PRIMARY KEY, tid int REFERENCES t (id));
    CREATE VIEW tv AS SELECT id, note FROM t;
    INSERT INTO t SELECT g, 'n' || g FROM generate_series(1, 3000) g;
    INSERT INTO c SELECT g, g FROM generate_series(1, 3000) g;";

const VIEW_SHAPE: &str = "-- sluice:up\nDROP VIEW tv;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE VIEW tv AS SELECT id, note FROM t;\n-- sluice:down\nDROP VIEW tv;\nALTER TABLE t ALTER COLUMN id TYPE integer;\nCREATE VIEW tv AS SELECT id, note FROM t;\n";

/// The view shape with one more statement after it: not kept (the rollback could not undo that
/// statement), so each referencing column is swapped without keeping its old one.
const VIEW_SHAPE_AND_MORE: &str = "-- sluice:up\nDROP VIEW tv;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE VIEW tv AS SELECT id, note FROM t;\nCOMMENT ON TABLE c IS 'widened';\n";

/// Killed after every step of the child's change (`child-step-done@n`), `rollback` undoes the
/// run while the child still has its type. Once the child has the new type it is refused (exit
/// 11, twice, nothing changed): a migration that is more than the ALTER and its views swapped
/// the child without keeping its old one (no rollback can narrow it back); the view shape kept
/// it (`up` finishes, then the kept rollback swaps it back). `up` then finishes either way.
#[tokio::test]
async fn a_referencing_column_the_cut_off_run_widened_refuses_the_rollback() {
    for (shape, kept) in [(VIEW_SHAPE_AND_MORE, false), (VIEW_SHAPE, true)] {
        a_widened_child_refuses_the_rollback(shape, kept).await;
    }
}

async fn a_widened_child_refuses_the_rollback(shape: &str, kept: bool) {
    let (mut undone, mut refused) = (0, 0);
    let mut n = 1;
    loop {
        assert!(n < 40, "the crash point keeps being reached");
        let p = Project::new(Server::Postgres).await;
        p.db.pg().await.batch_execute(PARENT_CHILD).await.unwrap();
        let before = dump(&p);
        p.write("1_widen.sql", shape);
        let r = p.run_crashing(&["up"], &format!("child-step-done@{n}"));
        if r.code == 0 {
            assert!(n > 3, "only {} child steps: {r:?}", n - 1);
            break;
        }
        assert!(r.stderr.contains("child-step-done"), "@{n}: {r:?}");
        let child = text(&p, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 'c'::regclass AND attname = 'tid'").await;
        let cut = dump(&p);
        for attempt in 1..=2 {
            let rb = p.run(&["rollback"]);
            if child == "bigint" {
                assert_eq!(rb.code, 11, "@{n}, attempt {attempt}: {rb:?}");
                let why = if kept {
                    "was already swapped (it keeps its old column)"
                } else {
                    "was already widened by the cut-off run"
                };
                assert!(
                    rb.stderr.contains(why) && rb.stderr.contains("public.c.tid"),
                    "@{n}, kept {kept}: {rb:?}"
                );
                // The way out it names exists: the not-kept shape has no down part to point to.
                let help = if kept {
                    "then `sluice rollback` swaps it back while it is expanded"
                } else {
                    "the migration has no down part, so undoing it afterwards takes a new migration"
                };
                assert!(rb.stderr.contains(help), "@{n}, kept {kept}: {rb:?}");
                assert_eq!(dump(&p), cut, "@{n}: nothing changed");
                assert_eq!(p.states(), vec![(1, "interrupted".to_string())], "@{n}");
            } else if attempt == 1 {
                ok(&rb, &format!("@{n}: rollback"));
                assert_eq!(dump(&p), before, "@{n}: as before the migration");
                assert_eq!(helpers(&p).await, "", "@{n}");
            } else {
                ok(&rb, &format!("@{n}: rollback again"));
                assert!(rb.all().contains("nothing to roll back"), "@{n}: {rb:?}");
            }
        }
        if child == "bigint" {
            refused += 1;
        } else {
            undone += 1;
        }
        ok(&p.run(&["up"]), &format!("@{n}: up"));
        let state = if kept { "expanded" } else { "applied" };
        assert_eq!(p.states(), vec![(1, state.to_string())], "@{n}");
        assert_eq!(
            text(&p, "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname = 'id'").await,
            "bigint"
        );
        if kept && child == "bigint" {
            ok(&p.run(&["rollback"]), &format!("@{n}: kept rollback"));
            assert_eq!(
                dump(&p),
                before,
                "@{n}: the kept rollback restores the schema"
            );
        }
        n += 1;
    }
    assert!(
        undone >= 1 && refused >= 1,
        "undone {undone}, refused {refused}"
    );
}

/// A client holding the referencing table while `rollback` runs: the rollback takes every table
/// in the swap's order with short waits, so the column's table is never held while sluice waits
/// for the other one (its writers never stall behind it); the rollback gets through once the
/// client lets go.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_rollback_never_holds_the_table_while_it_waits_for_a_referencing_one() {
    // Cut off before the child's own swap (its first step done): nothing is swapped yet.
    for (name, migration, point) in [
        ("the view shape", VIEW_SHAPE, "child-step-done@1"),
        (
            "the ALTER alone",
            "ALTER TABLE t ALTER COLUMN id TYPE bigint;\n",
            "child-step-done@1",
        ),
    ] {
        let p = Project::new(Server::Postgres).await;
        p.db.pg().await.batch_execute(PARENT_CHILD).await.unwrap();
        if !migration.contains("DROP VIEW") {
            p.db.pg().await.batch_execute("DROP VIEW tv").await.unwrap();
        }
        let before = dump(&p);
        p.write("1_widen.sql", migration);
        let r = p.run_crashing(&["up"], point);
        assert!(r.stderr.contains(point), "{name}: {r:?}");
        let holder = p.db.pg().await;
        holder
            .batch_execute("BEGIN; UPDATE c SET cid = cid WHERE cid = 1")
            .await
            .unwrap();
        let rb = p.spawn(&["rollback"]);
        let writer = p.db.pg().await;
        let (mut worst, started) = (Duration::ZERO, Instant::now());
        while started.elapsed() < Duration::from_millis(2500) {
            let t = Instant::now();
            writer
                .batch_execute("UPDATE t SET note = note WHERE id = 2")
                .await
                .unwrap();
            worst = worst.max(t.elapsed());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        holder.batch_execute("COMMIT").await.unwrap();
        let rb = wait_bounded(rb, 120, "rollback");
        ok(&rb, name);
        assert!(
            worst < Duration::from_millis(400),
            "{name}: a writer of t waited {worst:?} while the rollback waited for c: {rb:?}"
        );
        assert_eq!(dump(&p), before, "{name}: as before the migration");
        assert_eq!(helpers(&p).await, "", "{name}");
    }
}

/// `up --as-written` of a migration cut off in sluice's own steps would leave their helpers for
/// good (a trigger firing on every write): refused (exit 11, twice, nothing changed) naming them
/// and `sluice rollback`; after the rollback, `--as-written` runs and leaves no helper.
#[tokio::test]
async fn as_written_over_a_cut_off_attempt_is_refused_until_its_helpers_are_gone() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "type change",
            "CREATE TABLE t (id int PRIMARY KEY, w int); INSERT INTO t SELECT g, g FROM generate_series(1, 3000) g;",
            "ALTER TABLE t ALTER COLUMN w TYPE bigint;\n",
            "staged-swap",
        ),
        (
            "type change with its views",
            "CREATE TABLE t (id int PRIMARY KEY, note text); CREATE VIEW tv AS SELECT id, note FROM t; INSERT INTO t SELECT g, 'n' FROM generate_series(1, 3000) g;",
            "-- sluice:up\nDROP VIEW tv;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE VIEW tv AS SELECT id, note FROM t;\n-- sluice:down\nSELECT 1;\n",
            "staged-swap-uncommitted",
        ),
        (
            "NOT NULL fill",
            "CREATE TABLE f (id int PRIMARY KEY, region text); INSERT INTO f SELECT g, CASE WHEN g % 2 = 0 THEN 'r' END FROM generate_series(1, 3000) g;",
            "UPDATE f SET region = 'r4' WHERE region IS NULL;\nALTER TABLE f ALTER COLUMN region SET NOT NULL;\n",
            "expand-step-1",
        ),
    ];
    for (name, setup, migration, point) in cases {
        let p = Project::new(Server::Postgres).await;
        p.db.pg().await.batch_execute(setup).await.unwrap();
        p.write("1_change.sql", migration);
        let r = p.run_crashing(&["up"], point);
        assert!(r.stderr.contains(point), "{name}: {r:?}");
        let left = helpers(&p).await;
        assert_ne!(left, "", "{name}: the cut-off run left helpers");
        let cut = dump(&p);
        for attempt in 1..=2 {
            let aw = p.run(&["up", "--as-written"]);
            assert_eq!(aw.code, 11, "{name}, attempt {attempt}: {aw:?}");
            assert!(
                aw.stderr.contains("was cut off in sluice's own steps")
                    && aw.stderr.contains("sluice rollback")
                    && aw.stderr.contains("sluice_"),
                "{name}: {aw:?}"
            );
            assert_eq!(dump(&p), cut, "{name}: nothing changed");
        }
        ok(&p.run(&["rollback"]), &format!("{name}: rollback"));
        ok(
            &p.run(&["up", "--as-written"]),
            &format!("{name}: as written"),
        );
        assert_eq!(p.states(), vec![(1, "applied".to_string())], "{name}");
        assert_eq!(helpers(&p).await, "", "{name}: no helper left");
    }
}

/// A swap that fails (a reader holds the table past the retries): its cleanup removes every
/// helper in one transaction, or none when a lock is not granted at once — never the trigger
/// without its column. Then `down --failed` points to `rollback` (nothing of the migration ran
/// but the helpers), and `rollback` leaves the schema as before.
#[tokio::test]
async fn a_failed_swap_leaves_all_its_helpers_or_none_and_down_points_to_rollback() {
    let p = Project::new(Server::Postgres).await;
    p.db.pg().await.batch_execute(PARENT_CHILD).await.unwrap();
    let before = dump(&p);
    p.write("1_widen.sql", VIEW_SHAPE);
    let reader = p.db.pg().await;
    reader
        .batch_execute("BEGIN; SELECT count(*) FROM t")
        .await
        .unwrap();
    let up = p.run(&["up", "--lock-retry-for", "1"]);
    assert_ne!(up.code, 0, "the swap cannot get its lock: {up:?}");
    assert!(
        up.stderr.contains("none of it was removed")
            && up.stderr.contains("`sluice rollback` removes them"),
        "the cleanup could not take its locks at once: {up:?}"
    );
    // All or nothing: the sync trigger is there beside its shadow column (the first swap to fail
    // is the referencing table's, which locks t too).
    let left = helpers(&p).await;
    assert!(
        left.contains("c.tid_sluice_new") && left.contains("zz_c_tid_sluice_sync"),
        "{left}"
    );
    reader.batch_execute("COMMIT").await.unwrap();
    assert_eq!(p.states(), vec![(1, "failed".to_string())]);
    let cut = dump(&p);
    for args in [
        &["down", "--failed"][..],
        &["down"][..],
        &["down", "--failed"][..],
    ] {
        let d = p.run(args);
        assert_ne!(d.code, 0, "{args:?}: {d:?}");
        assert!(
            d.stderr.contains("`sluice rollback` removes them"),
            "{args:?}: {d:?}"
        );
        assert_eq!(dump(&p), cut, "{args:?}: nothing changed");
    }
    ok(&p.run(&["rollback"]), "rollback");
    assert_eq!(dump(&p), before, "as before the migration");
    assert_eq!(helpers(&p).await, "");
    ok(&p.run(&["up"]), "up");
    assert_eq!(p.states(), vec![(1, "expanded".to_string())]);
}

/// A column of the user's with the helper's name (the staged change's precheck refuses it):
/// `rollback` of the failed migration never drops it, empty or not (exit 11, twice).
#[tokio::test]
async fn the_rollback_never_drops_a_column_it_cannot_tell_it_made() {
    for fill in ["", "UPDATE t SET w_sluice_new = 'mine' WHERE id = 1;"] {
        let p = Project::new(Server::Postgres).await;
        p.db.pg()
            .await
            .batch_execute(&format!("CREATE TABLE t (id int PRIMARY KEY, w int, w_sluice_new text); INSERT INTO t SELECT g, g FROM generate_series(1, 3000) g; {fill}"))
            .await
            .unwrap();
        p.write("1_widen.sql", "ALTER TABLE t ALTER COLUMN w TYPE bigint;\n");
        let up = p.run(&["up"]);
        assert_ne!(up.code, 0, "the precheck refuses the column: {up:?}");
        let cut = dump(&p);
        for attempt in 1..=2 {
            let rb = p.run(&["rollback"]);
            assert_eq!(rb.code, 11, "{fill:?}, attempt {attempt}: {rb:?}");
            assert!(
                rb.stderr.contains("is not one sluice can tell it made"),
                "{rb:?}"
            );
            assert_eq!(dump(&p), cut, "{fill:?}: nothing changed");
        }
        assert!(cut.contains("w_sluice_new text"), "the column is kept");
    }
}

/// `plan` of a two-phase DROP TABLE says that the table's own foreign keys stay until complete
/// (the new version's deletes of the rows they reference still fail until then).
#[tokio::test]
async fn plan_says_the_dropped_tables_own_foreign_keys_stay_until_complete() {
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute("CREATE TABLE p (id int PRIMARY KEY); CREATE TABLE a (id int PRIMARY KEY, pid int CONSTRAINT a_pid_fk REFERENCES p (id));")
        .await
        .unwrap();
    p.write("1_drop.sql", "DROP TABLE a;\n");
    let plan = p.run(&["plan"]);
    ok(&plan, "plan");
    assert!(
        plan.all().contains(
            "The table's own foreign keys stay until `sluice complete` (a_pid_fk (to p))"
        ),
        "{plan:?}"
    );
    // Without one, nothing is said.
    p.db.pg()
        .await
        .batch_execute("ALTER TABLE a DROP CONSTRAINT a_pid_fk")
        .await
        .unwrap();
    let plan = p.run(&["plan"]);
    ok(&plan, "plan");
    assert!(!plan.all().contains("own foreign keys"), "{plan:?}");
}

/// A referencing column that had the new type before the migration is not one the cut-off run
/// widened: the rollback goes ahead (its run left no checkpoint for it).
#[tokio::test]
async fn a_referencing_column_of_the_new_type_from_before_does_not_refuse_the_rollback() {
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute(&format!(
            "{PARENT_CHILD} CREATE TABLE b (bid int PRIMARY KEY, tid bigint REFERENCES t (id)); INSERT INTO b VALUES (1, 1);"
        ))
        .await
        .unwrap();
    let before = dump(&p);
    p.write("1_widen.sql", VIEW_SHAPE);
    let r = p.run_crashing(&["up"], "child-step-done@1");
    assert!(r.stderr.contains("child-step-done"), "{r:?}");
    ok(&p.run(&["rollback"]), "rollback");
    assert_eq!(dump(&p), before, "as before the migration");
    assert_eq!(helpers(&p).await, "");
}

/// A type change cut off after its referencing column's helpers were made, then edited to a type
/// that widens no child (`bigint` → `numeric(20,0)`): neither `up` nor `rollback` of the edited
/// statement knows those helpers, so `up` is refused naming them and the way out (twice, nothing
/// changed); the statement restored, `rollback` removes them, and the edited one then runs.
#[tokio::test]
async fn an_edited_cut_off_statement_does_not_orphan_its_first_attempts_helpers() {
    let p = Project::new(Server::Postgres).await;
    p.db.pg().await.batch_execute(PARENT_CHILD).await.unwrap();
    p.db.pg().await.batch_execute("DROP VIEW tv").await.unwrap();
    let before = dump(&p);
    let first = "ALTER TABLE t ALTER COLUMN id TYPE bigint;\n";
    p.write("1_widen.sql", first);
    let r = p.run_crashing(&["up"], "child-step-done@2");
    assert!(r.stderr.contains("child-step-done"), "{r:?}");
    assert!(helpers(&p).await.contains("zz_c_tid_sluice_sync"));
    p.write(
        "1_widen.sql",
        "ALTER TABLE t ALTER COLUMN id TYPE numeric(20,0);\n",
    );
    let cut = dump(&p);
    for attempt in 1..=2 {
        let up = p.run(&["up"]);
        assert_ne!(up.code, 0, "attempt {attempt}: {up:?}");
        assert!(
            up.stderr
                .contains("left helpers of a referencing column's staged change (trigger zz_c_tid_sluice_sync on public.c)"),
            "{up:?}"
        );
        assert_eq!(dump(&p), cut, "nothing changed");
    }
    p.write("1_widen.sql", first);
    ok(&p.run(&["rollback"]), "rollback of the statement as it was");
    assert_eq!(dump(&p), before, "as before the migration");
    assert_eq!(helpers(&p).await, "");
    p.write(
        "1_widen.sql",
        "ALTER TABLE t ALTER COLUMN id TYPE numeric(20,0);\n",
    );
    ok(&p.run(&["up"]), "the edited statement");
}

/// A referencing column whose table and column join to the key's helper function name
/// (`customer`.`address_id`, `customer_address`.`id`): the kept swap's reverse functions would
/// have had one name, the second replacing the first, and every write to `customer` then failed.
/// Refused before anything runs (twice, nothing changed).
#[tokio::test]
async fn a_referencing_column_whose_helper_names_collide_is_refused() {
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute(
            "CREATE TABLE customer_address (id int PRIMARY KEY, street text);
             CREATE TABLE customer (cid int PRIMARY KEY, address_id int REFERENCES customer_address (id));
             INSERT INTO customer_address SELECT g, 's' FROM generate_series(1, 2000) g;
             INSERT INTO customer SELECT g, g FROM generate_series(1, 2000) g;",
        )
        .await
        .unwrap();
    let before = dump(&p);
    p.write(
        "1_widen.sql",
        "ALTER TABLE customer_address ALTER COLUMN id TYPE bigint;\n",
    );
    for attempt in 1..=2 {
        let r = p.run(&["up"]);
        assert_ne!(r.code, 0, "attempt {attempt}: {r:?}");
        assert!(
            r.stderr.contains("would have one name"),
            "attempt {attempt}: {r:?}"
        );
        assert_eq!(dump(&p), before, "nothing changed");
    }
}
