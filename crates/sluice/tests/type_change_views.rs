//! Issue 13 point 3 (PostgreSQL): a staged type change of a column that views or policies use,
//! written the way PostgreSQL needs it (`DROP VIEW v; ALTER TABLE … TYPE …; CREATE VIEW v AS …`,
//! the same with DROP POLICY / CREATE POLICY). sluice keeps the views and policies in place
//! through the backfill and runs the drops and the re-creations (with the GRANTs on the
//! re-created views that follow them) inside the swap's short transaction.
//!
//! Each case runs on twin databases: the staged one with a writer (inserts, updates, deletes)
//! and a reader of the view (or of the table under its policy, as a role the policy filters)
//! throughout, 0 errors and never an empty read allowed; the twin gets the writer's statements
//! and the migration as written. Then the schema (`pg_dump --schema-only`, each table's column
//! lines sorted: the staged column moves to the end) and the rows must be equal, after `up` and
//! after `down`. Kill -9 at the swap's kill points (and during the backfill) converges on rerun.

mod common;

use common::pg_clients::{bound, Clients, Round};
use common::{wait_bounded, Project};
use sluice_testkit::Server;
use std::time::Duration;
use tokio_postgres::Client;

const ROWS: i64 = 20_000;
/// The writer's new keys start above the table's own.
const WRITTEN: i64 = 1_000_000;

const BASE: &str = "CREATE TABLE t (id int PRIMARY KEY, k int NOT NULL UNIQUE, hits int NOT NULL DEFAULT 0, note text);
INSERT INTO t (id, k, note) SELECT g, g, 'n' || g FROM generate_series(1, 20000) g;";

struct Case {
    name: &'static str,
    /// After BASE; `{r}` is a role of the test's own.
    setup: &'static str,
    up: &'static str,
    down: &'static str,
    /// Must return a count above 0 at every moment.
    read: &'static str,
    /// The reader runs as `{r}` (else as the tables' owner).
    as_role: bool,
    /// A third client's INSERT (`{k}`: its key), every one of which must succeed.
    insert: Option<&'static str>,
}

/// A view, the function of its INSTEAD OF trigger, the trigger and comments on both.
macro_rules! view_with_trigger {
    () => {
        "CREATE VIEW v AS SELECT DISTINCT id, k, note FROM t;
CREATE OR REPLACE FUNCTION v_insert() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO t (id, k, note) VALUES (NEW.id, NEW.k, NEW.note); RETURN NEW; END$$;
CREATE TRIGGER v_insert INSTEAD OF INSERT ON v FOR EACH ROW EXECUTE FUNCTION v_insert();
COMMENT ON VIEW v IS 'the rows';
COMMENT ON COLUMN v.note IS 'a note';"
    };
}

/// The migration of [`view_with_trigger`]'s view changing `t.id` to `$type`.
macro_rules! migration_of_view_with_trigger {
    ($type:literal) => {
        concat!(
            "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE ",
            $type,
            ";\n",
            view_with_trigger!()
        )
    };
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "a view on the column",
            setup: "CREATE VIEW v AS SELECT id, note FROM t WHERE id > 0;",
            up: "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE VIEW v AS SELECT id, note FROM t WHERE id > 0;",
            down: "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE integer;\nCREATE VIEW v AS SELECT id, note FROM t WHERE id > 0;",
            read: "SELECT count(*) FROM v",
            as_role: false,
            insert: None,
        },
        Case {
            name: "a view over a view on the column (both dropped and re-created)",
            setup: "CREATE VIEW v AS SELECT id, note FROM t;
                    CREATE VIEW w AS SELECT id FROM v WHERE id % 2 = 0;",
            up: "DROP VIEW w;\nDROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE VIEW v AS SELECT id, note FROM t;\nCREATE VIEW w AS SELECT id FROM v WHERE id % 2 = 0;",
            down: "DROP VIEW w;\nDROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE integer;\nCREATE VIEW v AS SELECT id, note FROM t;\nCREATE VIEW w AS SELECT id FROM v WHERE id % 2 = 0;",
            read: "SELECT count(*) FROM w",
            as_role: false,
            insert: None,
        },
        Case {
            name: "a row-level security policy on the column",
            setup: "ALTER TABLE t ENABLE ROW LEVEL SECURITY;
                    CREATE POLICY p ON t FOR SELECT USING (id > 0);
                    GRANT SELECT ON t TO {r};",
            up: "DROP POLICY p ON t;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE POLICY p ON t FOR SELECT USING (id > 0);",
            down: "DROP POLICY p ON t;\nALTER TABLE t ALTER COLUMN id TYPE integer;\nCREATE POLICY p ON t FOR SELECT USING (id > 0);",
            // Without the policy the role sees no row at all.
            read: "SELECT count(*) FROM t",
            as_role: true,
            insert: None,
        },
        Case {
            name: "a view with grants, granted again by the migration",
            setup: "CREATE VIEW v AS SELECT id, note FROM t;
                    GRANT SELECT ON v TO {r};",
            up: "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE VIEW v AS SELECT id, note FROM t;\nGRANT SELECT ON v TO {r};",
            down: "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE integer;\nCREATE VIEW v AS SELECT id, note FROM t;\nGRANT SELECT ON v TO {r};",
            read: "SELECT count(*) FROM v",
            as_role: true,
            insert: None,
        },
        // Statements sluice's parser does not parse: found from their tokens (issue 13 review).
        Case {
            name: "a view WITH LOCAL CHECK OPTION",
            setup: "CREATE VIEW v AS SELECT id, note FROM t WHERE id > 0 WITH LOCAL CHECK OPTION;",
            up: "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE VIEW v AS SELECT id, note FROM t WHERE id > 0 WITH LOCAL CHECK OPTION;",
            down: "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE integer;\nCREATE VIEW v AS SELECT id, note FROM t WHERE id > 0 WITH LOCAL CHECK OPTION;",
            read: "SELECT count(*) FROM v WHERE id < 100",
            as_role: false,
            insert: None,
        },
        Case {
            name: "a recursive view",
            setup: "CREATE RECURSIVE VIEW v (id, depth) AS SELECT id, 0 FROM t WHERE id <= 3 UNION ALL SELECT id, depth + 1 FROM v WHERE depth < 2;",
            up: "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE RECURSIVE VIEW v (id, depth) AS SELECT id, 0 FROM t WHERE id <= 3 UNION ALL SELECT id, depth + 1 FROM v WHERE depth < 2;",
            down: "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE integer;\nCREATE RECURSIVE VIEW v (id, depth) AS SELECT id, 0 FROM t WHERE id <= 3 UNION ALL SELECT id, depth + 1 FROM v WHERE depth < 2;",
            read: "SELECT count(*) FROM v",
            as_role: false,
            insert: None,
        },
        // A view no INSERT could reach without its INSTEAD OF trigger (DISTINCT: not
        // updatable), re-created with the function it needs, its trigger and its comments.
        Case {
            name: "a view with an INSTEAD OF trigger and comments",
            setup: view_with_trigger!(),
            up: migration_of_view_with_trigger!("bigint"),
            down: migration_of_view_with_trigger!("integer"),
            read: "SELECT count(*) FROM v WHERE id < 100",
            as_role: false,
            insert: Some("INSERT INTO v (id, k, note) VALUES ({k}, {k}, 'v')"),
        },
    ]
}

/// A role of the test's own (roles are the server's): dropped by [`drop_role`].
async fn role(p: &Project) -> String {
    let r = format!("r_{}", p.db.name);
    p.db.pg_su()
        .await
        .batch_execute(&format!("CREATE ROLE {r}"))
        .await
        .unwrap();
    r
}

async fn drop_role(ps: &[&Project], r: &str) {
    for p in ps {
        let _ =
            p.db.pg_su()
                .await
                .batch_execute(&format!("DROP OWNED BY {r}"))
                .await;
    }
    let _ = ps[0]
        .db
        .pg_su()
        .await
        .batch_execute(&format!("DROP ROLE IF EXISTS {r}"))
        .await;
}

async fn prepare(p: &Project, case: &Case, r: &str) {
    p.db.pg()
        .await
        .batch_execute(&format!("{BASE}\n{}", case.setup.replace("{r}", r)))
        .await
        .unwrap();
    p.write(
        "1_type.sql",
        &format!(
            "-- sluice:up\n{}\n-- sluice:down\n{}\n",
            case.up.replace("{r}", r),
            case.down.replace("{r}", r)
        ),
    );
}

/// The writer (its committed statements in order) or the reader of the view.
enum Role {
    Writer {
        base: i64,
        x: u64,
        log: Vec<String>,
    },
    Reader {
        read: &'static str,
        reads: u64,
    },
    Inserter {
        sql: &'static str,
        base: i64,
        log: Vec<String>,
    },
}

impl Round for Role {
    async fn round(&mut self, db: &Client, n: u64, errors: &mut Vec<String>) -> bool {
        match self {
            Role::Writer { base, x, log } => {
                let n = n as i64;
                *x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let key = 1 + (*x >> 33) as i64 % ROWS;
                let k = *base + n;
                let mut v = vec![
                    format!("INSERT INTO t (id, k, note) VALUES ({k}, {k}, 'w')"),
                    format!("UPDATE t SET hits = hits + 1, note = 'u{n}' WHERE k = {key}"),
                ];
                if n % 3 == 0 {
                    v.push(format!("DELETE FROM t WHERE k = {}", k - 2));
                }
                for sql in v {
                    match db.batch_execute(&sql).await {
                        Ok(()) => log.push(sql),
                        Err(e) => errors.push(format!("{sql}: {e:?}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
            Role::Reader { read, reads } => {
                match db.query_one(*read, &[]).await {
                    Ok(row) if row.get::<_, i64>(0) > 0 => *reads += 1,
                    Ok(_) => errors.push(format!("{read}: no row")),
                    Err(e) => errors.push(format!("{read}: {e:?}")),
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Role::Inserter { sql, base, log } => {
                let sql = sql.replace("{k}", &(*base + n as i64).to_string());
                match db.batch_execute(&sql).await {
                    Ok(()) => log.push(sql),
                    Err(e) => errors.push(format!("{sql}: {e:?}")),
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }
        true
    }
}

/// A writer and a reader of the view.
struct Load(Clients<Role>);

impl Load {
    async fn start(p: &Project, case: &Case, r: &str, base: i64) -> Load {
        let mut clients = Clients::default();
        let w = p.db.pg().await;
        bound(&w, "60s").await;
        clients.spawn(
            Role::Writer {
                base,
                x: 7,
                log: Vec::new(),
            },
            w,
        );
        let rd = if case.as_role {
            let c = p.db.pg_su().await;
            c.batch_execute(&format!("SET ROLE {r}")).await.unwrap();
            c
        } else {
            p.db.pg().await
        };
        bound(&rd, "60s").await;
        clients.spawn(
            Role::Reader {
                read: case.read,
                reads: 0,
            },
            rd,
        );
        if let Some(sql) = case.insert {
            let c = p.db.pg().await;
            bound(&c, "60s").await;
            // Keys of its own, apart from the writer's.
            clients.spawn(
                Role::Inserter {
                    sql,
                    base: base + WRITTEN / 2,
                    log: Vec::new(),
                },
                c,
            );
        }
        Load(clients)
    }

    /// The writer's statements; panics on any error of the writer or the reader.
    async fn finish(self, what: &str) -> Vec<String> {
        let (mut errors, mut log, mut reads) = (Vec::new(), Vec::new(), 0);
        for (role, e) in self.0.stop().await {
            errors.extend(e);
            match role {
                Role::Writer { log: l, .. } | Role::Inserter { log: l, .. } => log.extend(l),
                Role::Reader { reads: n, .. } => reads = n,
            }
        }
        assert!(
            errors.is_empty(),
            "{what}: {} errors, first: {:?}",
            errors.len(),
            &errors[..errors.len().min(3)]
        );
        assert!(
            log.len() > 5 && reads > 5,
            "{what}: the load ran ({} writes, {reads} reads)",
            log.len()
        );
        log
    }
}

/// `pg_dump --schema-only`, each CREATE TABLE's column lines sorted (a staged change moves the
/// column to the end of the table: the one difference from the ALTER as written), the test's
/// role `r` and the database's own login named alike in both twins.
fn dump(p: &Project, r: &str) -> String {
    let o = std::process::Command::new("pg_dump")
        .args([
            "--schema-only",
            "--no-owner",
            "--exclude-schema=sluice",
            &p.db.url,
        ])
        .output()
        .expect("pg_dump");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8(o.stdout).unwrap();
    let mut out = Vec::new();
    let mut table: Option<Vec<String>> = None;
    for l in text.lines() {
        if l.starts_with("\\restrict") || l.starts_with("\\unrestrict") || l.starts_with("--") {
            continue;
        }
        match &mut table {
            Some(cols) if l.starts_with(')') => {
                cols.sort();
                out.append(cols);
                out.push(l.to_string());
                table = None;
            }
            Some(cols) => cols.push(l.trim_end_matches(',').to_string()),
            None => {
                out.push(l.to_string());
                if l.starts_with("CREATE TABLE ") {
                    table = Some(Vec::new());
                }
            }
        }
    }
    out.join("\n")
        .replace(r, "ROLE")
        .replace(&p.db.name, "LOGIN")
}

/// Every row, and the views' column types (the re-created views show the new type).
async fn rows(p: &Project) -> String {
    p.db.pg()
        .await
        .query_one(
            "SELECT coalesce((SELECT jsonb_agg(to_jsonb(t) ORDER BY k)::text FROM t), '')
                 || coalesce((SELECT string_agg(format('%s.%s %s', a.attrelid::regclass, a.attname, format_type(a.atttypid, a.atttypmod)), ', ' ORDER BY c.relname, a.attnum)
                                FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
                               WHERE c.relkind = 'v' AND c.relnamespace = 'public'::regnamespace AND a.attnum > 0), '')",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

async fn compare(what: &str, written: &Project, staged: &Project, r: &str) -> Vec<String> {
    let mut out = Vec::new();
    let (a, b) = (dump(written, r), dump(staged, r));
    if a != b {
        out.push(format!(
            "{what}: schema differs {}",
            common::first_difference(&a, &b, 200)
        ));
    }
    let (a, b) = (rows(written).await, rows(staged).await);
    if a != b {
        out.push(format!(
            "{what}: rows differ {}",
            common::first_difference(&a, &b, 120)
        ));
    }
    out
}

async fn replay(p: &Project, log: &[String], args: &[&str]) {
    let c = p.db.pg().await;
    for sql in log {
        c.batch_execute(sql).await.unwrap();
    }
    let r = p.run(args);
    assert_eq!(r.code, 0, "as written {args:?}: {r:?}");
}

/// Every case: plan shows the drops and re-creations in the swap step; `up`, `down` and `up`
/// again under the load equal the migration as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn views_and_policies_stay_readable_through_a_staged_type_change() {
    let mut failures = Vec::new();
    for case in cases() {
        let name = case.name;
        let written = Project::new(Server::Postgres).await;
        let staged = Project::new(Server::Postgres).await;
        let r = role(&staged).await;
        prepare(&written, &case, &r).await;
        prepare(&staged, &case, &r).await;

        let plan = staged.run(&["plan"]);
        assert_eq!(plan.code, 0, "{name}: {plan:?}");
        let all = plan.all();
        assert!(
            all.contains("with the migration's statement(s)")
                && all.contains("runs inside the swap of the staged type change after it"),
            "{name}: plan shows the drop and the re-creation in the swap: {plan:?}"
        );
        let dry = staged.run(&["up", "--dry-run"]);
        assert_eq!(dry.code, 0, "{name}: {dry:?}");
        let drop = case.up.lines().next().unwrap().trim_end_matches(';');
        assert!(
            dry.all()
                .lines()
                .any(|l| l.contains(drop) && l.contains("RENAME COLUMN")),
            "{name}: the swap step runs `{drop}`: {dry:?}"
        );
        assert!(
            dry.all().contains(
                "runs as: (nothing)  (runs inside the swap of the staged type change after it"
            ) && dry.all().contains(
                "runs as: (nothing)  (runs inside the swap of the staged type change before it"
            ),
            "{name}: the dry run says the drop and the re-creation run in the swap: {dry:?}"
        );

        // The old column is kept with the views and policies moved around the swap: `up` leaves
        // the migration expanded, `rollback` restores the schema before it exactly (the twin: the
        // same writes, no migration), `complete` equals the migration as written, and `down`
        // (its down part, staged) equals the down part as written. The twin runs `status` for
        // nothing; it is compared only where the staged side is settled.
        for (round, (what, args, as_written, state, settled)) in [
            (
                "up",
                &["up", "--pace", "speed"][..],
                &["status"][..],
                "expanded",
                false,
            ),
            (
                "rollback",
                &["rollback"][..],
                &["status"][..],
                "pending",
                true,
            ),
            ("up again", &["up"][..], &["status"][..], "expanded", false),
            (
                "complete",
                &["complete"][..],
                &["up", "--as-written"][..],
                "applied",
                true,
            ),
            (
                "down",
                &["down"][..],
                &["down", "--as-written"][..],
                "pending",
                true,
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let load = Load::start(&staged, &case, &r, WRITTEN * (round as i64 + 1)).await;
            let run = staged.run(args);
            tokio::time::sleep(Duration::from_millis(200)).await;
            let log = load.finish(&format!("{name} ({what})")).await;
            assert_eq!(run.code, 0, "{name}: staged {what}: {run:?}");
            if what != "rollback" && what != "complete" {
                assert!(
                    run.all().contains("staged type change"),
                    "{name}: {what}: {run:?}"
                );
            }
            assert_eq!(
                staged.states(),
                vec![(1, state.to_string())],
                "{name}: {what}"
            );
            replay(&written, &log, as_written).await;
            if settled {
                failures.extend(compare(&format!("{name} ({what})"), &written, &staged, &r).await);
            }
        }
        drop_role(&[&staged, &written], &r).await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// kill -9 during the backfill and at each of the swap's kill points (before it, run but not
/// committed, committed), with the load running throughout: the view is there at every moment,
/// and the rerun converges on the migration as written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kills_around_the_swap_converge_and_the_view_never_goes_missing() {
    let points = [
        "backfill",
        "staged-swap",
        "staged-swap-uncommitted",
        "staged-swap-committed",
    ];
    let mut failures = Vec::new();
    // Views over views; a view the parser leaves out (CHECK OPTION); a view with its trigger.
    let chosen = ["view over a view", "CHECK OPTION", "INSTEAD OF"];
    let cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| chosen.iter().any(|n| c.name.contains(n)))
        .collect();
    assert_eq!(cases.len(), chosen.len());
    for (case, point) in cases
        .iter()
        .flat_map(|c| points.iter().map(move |p| (c, *p)))
    {
        let what = format!("{}, kill at {point}", case.name);
        let written = Project::new(Server::Postgres).await;
        let staged = Project::new(Server::Postgres).await;
        let r = role(&staged).await;
        prepare(&written, case, &r).await;
        prepare(&staged, case, &r).await;
        let load = Load::start(&staged, case, &r, WRITTEN).await;
        cut_off(&staged, point).await;
        // Before the rerun: what the swap runs committed with it, or not at all.
        let seen = staged.db.pg().await.query_one(case.read, &[]).await;
        assert!(
            seen.as_ref().is_ok_and(|r| r.get::<_, i64>(0) > 0),
            "{what}: `{}` right after the kill: {seen:?}",
            case.read
        );
        let rerun = wait_bounded(staged.spawn(&["up", "--pace", "speed"]), 300, "rerun");
        let again = staged.run(&["up"]);
        assert_eq!(rerun.code, 0, "{what}: rerun: {rerun:?}");
        assert_eq!(again.code, 0, "{what}: and once more: {again:?}");
        assert_eq!(staged.states(), vec![(1, "expanded".to_string())], "{what}");
        let complete = staged.run(&["complete"]);
        let log = load.finish(&what).await;
        assert_eq!(complete.code, 0, "{what}: complete: {complete:?}");
        replay(&written, &log, &["up", "--as-written"]).await;
        failures.extend(compare(&what, &written, &staged, &r).await);
        let status = staged.states();
        assert_eq!(status, vec![(1, "applied".to_string())], "{what}");
        drop_role(&[&staged, &written], &r).await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// What cannot move is refused before anything runs, naming the fix: a bare ALTER with a view
/// (the DROP/ALTER/CREATE shape), a view over the dropped view that stays (drop it too), a
/// materialised view (`--as-written`). Again on the rerun; nothing of sluice's is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_cannot_move_is_refused_with_the_fix() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "a bare ALTER with a view on the column",
            "CREATE VIEW v AS SELECT id FROM t;",
            "ALTER TABLE t ALTER COLUMN id TYPE bigint;",
            &["view v depends on it", "DROP VIEW v; ALTER TABLE"],
        ),
        (
            "a bare ALTER with a policy on the column",
            "CREATE POLICY p ON t USING (id > 0);",
            "ALTER TABLE t ALTER COLUMN id TYPE bigint;",
            &["policy p on table t depends on it", "DROP POLICY p ON t"],
        ),
        (
            "the view over the dropped view stays",
            "CREATE VIEW v AS SELECT id FROM t; CREATE VIEW w AS SELECT id FROM v;",
            "DROP VIEW v;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE VIEW v AS SELECT id FROM t;",
            &["view public.w is over a view the migration drops"],
        ),
        (
            "a materialised view",
            "CREATE MATERIALIZED VIEW m AS SELECT id FROM t;",
            "DROP MATERIALIZED VIEW m;\nALTER TABLE t ALTER COLUMN id TYPE bigint;\nCREATE MATERIALIZED VIEW m AS SELECT id FROM t;",
            &["materialized view m", "--as-written"],
        ),
    ];
    for (name, setup, up, expect) in cases {
        let p = Project::new(Server::Postgres).await;
        p.db.pg()
            .await
            .batch_execute(&format!("{BASE}\n{setup}"))
            .await
            .unwrap();
        p.write("1_type.sql", &format!("-- sluice:up\n{up}\n"));
        for attempt in ["first", "rerun"] {
            let r = p.run(&["up"]);
            assert_ne!(r.code, 0, "{name} ({attempt}): {r:?}");
            for e in *expect {
                assert!(r.stderr.contains(e), "{name} ({attempt}): `{e}`: {r:?}");
            }
        }
        let left: i64 = p
            .db
            .pg()
            .await
            .query_one(
                "SELECT count(*) FROM pg_attribute WHERE attrelid = 't'::regclass AND attname LIKE '%sluice%'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(left, 0, "{name}: nothing of sluice's");
        let plan = p.run(&["plan"]);
        assert!(plan.all().contains(expect[0]), "{name}: plan: {plan:?}");
    }
}

/// A staged backfill fires the table's own UPDATE triggers where the role may not set
/// session_replication_role: `plan` says so as a warning finding on the statement and `up
/// --dry-run` on its step; as the server's administrator (who may) neither says it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn plan_warns_when_the_backfill_will_fire_the_tables_triggers() {
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute(&format!(
            "{BASE}
             CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN NEW.hits := NEW.hits + 1; RETURN NEW; END';
             CREATE TRIGGER touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();"
        ))
        .await
        .unwrap();
    p.write(
        "1_type.sql",
        "-- sluice:up\nALTER TABLE t ALTER COLUMN id TYPE bigint;\n",
    );
    let says = "UPDATE trigger(s) touch once for every row";
    for (who, url, warned) in [
        ("login", &p.db.url, true),
        ("administrator", &p.db.su_url, false),
    ] {
        for args in [&["plan"][..], &["up", "--dry-run"][..]] {
            let r: common::Run = p
                .command(args)
                .env("DATABASE_URL", url)
                .output()
                .unwrap()
                .into();
            assert!(r.code == 0 || args[0] == "plan", "{who} {args:?}: {r:?}");
            assert_eq!(r.all().contains(says), warned, "{who} {args:?}: {r:?}");
            if warned && args[0] == "plan" {
                assert!(r.all().contains("backfill-fires-triggers"), "{r:?}");
            }
        }
    }
}

/// `backfill-fires-triggers` is a finding only `plan` makes, yet `-- sluice:ignore` silences it
/// as it does a lint rule's (lint accepts the id and leaves the matching to plan); a misspelt id
/// is still the unknown-rule warning, and the finding stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_backfill_trigger_finding_can_be_ignored_and_a_misspelt_id_cannot() {
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute(&format!(
            "{BASE}
             CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS 'BEGIN NEW.hits := NEW.hits + 1; RETURN NEW; END';
             CREATE TRIGGER touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION touch();"
        ))
        .await
        .unwrap();
    for (id, ignored) in [
        ("backfill-fires-triggers", true),
        ("backfill-fire-triggers", false),
    ] {
        p.write(
            "1_type.sql",
            &format!(
                "-- sluice:up\n-- sluice:ignore {id} the trigger only counts hits\nALTER TABLE t ALTER COLUMN id TYPE bigint;\n"
            ),
        );
        let unknown = format!("`-- sluice:ignore {id}`: no rule has this id");
        let lint = p.run(&["lint", "--target", "postgres:15"]);
        assert_ne!(lint.code, 2, "{id}: lint: {lint:?}");
        assert_eq!(
            lint.all().contains(&unknown),
            !ignored,
            "{id}: lint: {lint:?}"
        );
        assert!(
            !lint.all().contains("matches no finding"),
            "{id}: lint: {lint:?}"
        );
        let plan = p.run(&["plan"]);
        assert_eq!(
            plan.all().contains(&unknown),
            !ignored,
            "{id}: plan: {plan:?}"
        );
        assert_eq!(
            plan.all()
                .contains("UPDATE trigger(s) touch once for every row"),
            !ignored,
            "{id}: plan: {plan:?}"
        );
        assert!(
            !plan.all().contains("matches no finding"),
            "{id}: plan: {plan:?}"
        );
    }
    // Nothing to silence (no trigger): the ignore is reported unused, by plan.
    p.db.pg()
        .await
        .batch_execute("DROP TRIGGER touch ON t")
        .await
        .unwrap();
    p.write(
        "1_type.sql",
        "-- sluice:up\n-- sluice:ignore backfill-fires-triggers the trigger only counts hits\nALTER TABLE t ALTER COLUMN id TYPE bigint;\n",
    );
    let plan = p.run(&["plan"]);
    assert!(
        plan.all().contains(
            "`-- sluice:ignore backfill-fires-triggers` matches no finding on the next statement"
        ),
        "{plan:?}"
    );
}

/// Stops `sluice up` at `point`: killed during the backfill, or at a crash point of the swap.
async fn cut_off(p: &Project, point: &str) {
    if point == "backfill" {
        let poll = p.db.pg().await;
        let mut child = p.spawn(&["up", "--pace", "speed"]);
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let mut seen = false;
        while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
            let q = "SELECT to_regclass('sluice.backfills') IS NOT NULL AND EXISTS (SELECT FROM sluice.backfills WHERE state = 'running')";
            if let Ok(row) = poll.query_one(q, &[]).await {
                if row.get::<_, bool>(0) {
                    seen = true;
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = child.kill();
        let _ = child.wait();
        assert!(seen, "the kill landed in the backfill");
    } else {
        let crashed = p.run_crashing(&["up", "--pace", "speed"], point);
        assert_ne!(crashed.code, 0, "{point}: {crashed:?}");
        assert!(crashed.stderr.contains(point), "{point}: {crashed:?}");
    }
}

/// `sluice rollback` of the migration (drops, ALTER, re-creations) cut off before its swap, for
/// every case and every kill point before the swap commits, under the load: the schema is the
/// one before the migration (the views never went: their drops run in the swap), every write
/// kept, the migration pending; rollback again has nothing to do; `up` then equals the migration
/// as written. Killed after the swap committed, the old column is kept: the rollback is the kept
/// lifecycle's swap back, to the same end.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_of_the_migration_cut_off_before_its_swap_restores_the_schema_at_every_kill_point()
{
    let mut failures = Vec::new();
    for case in cases() {
        for point in [
            "backfill",
            "staged-swap",
            "staged-swap-uncommitted",
            "staged-swap-committed",
        ] {
            let what = format!("{}, killed at {point}", case.name);
            let written = Project::new(Server::Postgres).await;
            let staged = Project::new(Server::Postgres).await;
            let r = role(&staged).await;
            prepare(&written, &case, &r).await;
            prepare(&staged, &case, &r).await;
            let load = Load::start(&staged, &case, &r, WRITTEN).await;
            cut_off(&staged, point).await;
            // Before any rerun: the statements the swap runs committed with it, or not at all.
            let seen = staged.db.pg().await.query_one(case.read, &[]).await;
            assert!(
                seen.as_ref().is_ok_and(|r| r.get::<_, i64>(0) > 0),
                "{what}: `{}` right after the kill: {seen:?}",
                case.read
            );
            let state = staged.states();
            assert_eq!(state.len(), 1, "{what}: {state:?}");
            assert_ne!(state[0].1, "applied", "{what}: cut off");
            let committed = point == "staged-swap-committed";
            let rb = wait_bounded(staged.spawn(&["rollback"]), 120, "rollback");
            assert_eq!(rb.code, 0, "{what}: {rb:?}");
            // Killed after the swap committed, the old column is kept: the kept
            // lifecycle's rollback swaps it back (the views moved around it again).
            let said = if committed {
                "only the old application version may run; the migration is pending again"
            } else {
                "the table is as before the migration"
            };
            assert!(rb.all().contains(said), "{what}: {rb:?}");
            assert_eq!(
                staged.states(),
                vec![(1, "pending".to_string())],
                "{what}: pending again"
            );
            // Writes go on after the rollback too, then the twin gets them all, no ALTER.
            tokio::time::sleep(Duration::from_millis(200)).await;
            let log = load.finish(&what).await;
            replay(&written, &log, &["status"]).await;
            failures.extend(compare(&format!("{what}: rolled back"), &written, &staged, &r).await);
            let again = staged.run(&["rollback"]);
            assert_eq!(again.code, 0, "{what}: rollback again: {again:?}");
            assert!(
                again.all().contains("nothing to roll back"),
                "{what}: {again:?}"
            );
            let up = staged.run(&["up", "--pace", "speed"]);
            assert_eq!(up.code, 0, "{what}: up after the rollback: {up:?}");
            let complete = staged.run(&["complete"]);
            assert_eq!(complete.code, 0, "{what}: complete: {complete:?}");
            replay(&written, &[], &["up", "--as-written"]).await;
            failures.extend(compare(&format!("{what}: up again"), &written, &staged, &r).await);
            assert_eq!(staged.states(), vec![(1, "applied".to_string())], "{what}");
            drop_role(&[&staged, &written], &r).await;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// The rollback of the kept change re-creates the views and policies with the migration's own
/// statements over the old column and checks, in the swap back, that they equal what the
/// migration dropped. Where they cannot (the migration re-creates another definition, leaves out
/// a grant or an option, changes a policy), it is refused (exit 11, twice, nothing changed, the
/// migration stays expanded) and `complete` then finishes as the migration is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_rollback_that_cannot_recreate_the_views_as_they_were_is_refused() {
    let alter = "ALTER TABLE t ALTER COLUMN id TYPE bigint;";
    let cases = [
        (
            "another definition",
            "CREATE VIEW v AS SELECT id, note FROM t;",
            "DROP VIEW v;\n{alter}\nCREATE VIEW v AS SELECT id, note FROM t WHERE id > 5;",
        ),
        (
            "a grant the migration does not give again",
            "CREATE VIEW v AS SELECT id, note FROM t; GRANT SELECT ON v TO {r};",
            "DROP VIEW v;\n{alter}\nCREATE VIEW v AS SELECT id, note FROM t;",
        ),
        (
            "an option the migration leaves out",
            "CREATE VIEW v WITH (security_barrier) AS SELECT id, note FROM t;",
            "DROP VIEW v;\n{alter}\nCREATE VIEW v AS SELECT id, note FROM t;",
        ),
        (
            "a policy re-created with another expression",
            "ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON t FOR SELECT USING (id > 0);",
            "DROP POLICY p ON t;\n{alter}\nCREATE POLICY p ON t FOR SELECT USING (id > 1);",
        ),
        (
            "a policy's comment the migration does not give again",
            "ALTER TABLE t ENABLE ROW LEVEL SECURITY; CREATE POLICY p ON t FOR SELECT USING (id > 0); COMMENT ON POLICY p ON t IS 'mine';",
            "DROP POLICY p ON t;\n{alter}\nCREATE POLICY p ON t FOR SELECT USING (id > 0);",
        ),
    ];
    let mut failures = Vec::new();
    for (name, setup, up) in cases {
        let up: &'static str = Box::leak(up.replace("{alter}", alter).into_boxed_str());
        let case = Case {
            name,
            setup,
            up,
            down: "SELECT 1;",
            read: "SELECT 1::bigint",
            as_role: false,
            insert: None,
        };
        let written = Project::new(Server::Postgres).await;
        let staged = Project::new(Server::Postgres).await;
        let r = role(&staged).await;
        prepare(&written, &case, &r).await;
        prepare(&staged, &case, &r).await;
        let run = staged.run(&["up", "--pace", "speed"]);
        assert_eq!(run.code, 0, "{name}: {run:?}");
        assert_eq!(staged.states(), vec![(1, "expanded".to_string())], "{name}");
        let schema = dump(&staged, &r);
        for attempt in 1..=2 {
            let rb = staged.run(&["rollback"]);
            assert_eq!(rb.code, 11, "{name}, attempt {attempt}: {rb:?}");
            // The refusal names what differs.
            let what = if up.contains("POLICY") {
                "policy p on \"t\""
            } else {
                "view \"v\""
            };
            assert!(
                rb.all()
                    .contains("cannot restore the views and policies its type change moved")
                    && rb
                        .all()
                        .contains("they differ from those the migration dropped")
                    && rb.all().contains(what)
                    && rb
                        .all()
                        .contains("finish it with `sluice complete` instead"),
                "{name}: {rb:?}"
            );
            assert_eq!(dump(&staged, &r), schema, "{name}: nothing changed");
            assert_eq!(
                staged.states(),
                vec![(1, "expanded".to_string())],
                "{name}: still expanded"
            );
        }
        let complete = staged.run(&["complete"]);
        assert_eq!(complete.code, 0, "{name}: {complete:?}");
        replay(&written, &[], &["up", "--as-written"]).await;
        failures.extend(compare(name, &written, &staged, &r).await);
        drop_role(&[&staged, &written], &r).await;
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Review findings on the kept change with views (each refusal run twice, nothing changed):
/// - a later migration's `CREATE OR REPLACE VIEW` and grant on the view: the rollback of the
///   first would undo them without a word; it is refused, naming the view, and `complete` works;
/// - a re-created view that lists `*` would list the kept column too (and `complete` could not
///   drop it): such a migration does not keep the old column (applied, equal to as written);
/// - a swap back that fails on the migration's own statements (a function now depends on the
///   view): what the rollback built on the kept column goes with it, so a new-version write of
///   a value the old type cannot take still works; once the function is gone the rollback runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_kept_change_with_views_never_undoes_later_work_or_leaves_checks_behind() {
    let alter = "ALTER TABLE t ALTER COLUMN id TYPE bigint;";
    let view = "CREATE VIEW v AS SELECT id, note FROM t;";
    let up = format!("DROP VIEW v;\n{alter}\n{view}");

    // A later migration changes the view.
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute(&format!("{BASE}\n{view}"))
        .await
        .unwrap();
    let r = role(&p).await;
    p.write("1_type.sql", &format!("-- sluice:up\n{up}\n"));
    p.write(
        "2_view.sql",
        &format!("-- sluice:up\nCREATE OR REPLACE VIEW v AS SELECT id, note, upper(note) AS loud FROM t;\nGRANT SELECT ON v TO {r};\n"),
    );
    let run = p.run(&["up", "--pace", "speed"]);
    assert_eq!(run.code, 0, "{run:?}");
    let schema = dump(&p, &r);
    for attempt in 1..=2 {
        let rb = p.run(&["rollback", "1"]);
        assert_eq!(rb.code, 11, "attempt {attempt}: {rb:?}");
        assert!(
            rb.all()
                .contains("were changed since the migration re-created them")
                && rb.all().contains("view \"v\""),
            "{rb:?}"
        );
        assert_eq!(dump(&p, &r), schema, "nothing changed");
    }
    assert_eq!(
        p.states(),
        vec![(1, "expanded".to_string()), (2, "applied".to_string())]
    );
    let complete = p.run(&["complete"]);
    assert_eq!(complete.code, 0, "{complete:?}");
    assert!(dump(&p, &r).contains("AS loud"), "the later view stays");
    drop_role(&[&p], &r).await;

    // `SELECT *`: not kept.
    let star = "CREATE VIEW v AS SELECT * FROM t;";
    let staged = Project::new(Server::Postgres).await;
    for p in [&staged] {
        p.db.pg()
            .await
            .batch_execute(&format!("{BASE}\n{star}"))
            .await
            .unwrap();
        p.write(
            "1_type.sql",
            &format!("-- sluice:up\nDROP VIEW v;\n{alter}\n{star}\n"),
        );
    }
    let run = staged.run(&["up", "--pace", "speed"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(staged.states(), vec![(1, "applied".to_string())]);
    // (Its view lists the table's columns in their staged order, the changed one last: stated.)
    let schema = dump(&staged, "no role");
    assert!(
        !schema.contains("sluice") && schema.contains("id bigint NOT NULL"),
        "nothing kept: {schema}"
    );

    // The swap back fails on the migration's own DROP VIEW: nothing is left on the kept column.
    let p = Project::new(Server::Postgres).await;
    p.db.pg()
        .await
        .batch_execute(&format!("{BASE}\n{view}"))
        .await
        .unwrap();
    p.write("1_type.sql", &format!("-- sluice:up\n{up}\n"));
    let run = p.run(&["up", "--pace", "speed"]);
    assert_eq!(run.code, 0, "{run:?}");
    let c = p.db.pg().await;
    c.batch_execute("CREATE FUNCTION f() RETURNS SETOF v LANGUAGE sql AS 'SELECT * FROM v'")
        .await
        .unwrap();
    let schema = dump(&p, "no role");
    for attempt in 1..=2 {
        let rb = p.run(&["rollback"]);
        assert_eq!(rb.code, 1, "attempt {attempt}: {rb:?}");
        assert!(
            rb.all().contains("as it was before the rollback")
                && rb
                    .all()
                    .contains("or finish the migration with `sluice complete`"),
            "{rb:?}"
        );
        assert_eq!(dump(&p, "no role"), schema, "nothing left of the rollback");
        c.batch_execute(&format!(
            "INSERT INTO t (id, k, note) VALUES ({0}, {1}, 'big'); DELETE FROM t WHERE id = {0}",
            3_000_000_000i64 + attempt,
            -attempt
        ))
        .await
        .unwrap_or_else(|e| panic!("a new-version write after the failed rollback: {e:?}"));
    }
    c.batch_execute("DROP FUNCTION f()").await.unwrap();
    let rb = p.run(&["rollback"]);
    assert_eq!(rb.code, 0, "{rb:?}");
    assert_eq!(p.states(), vec![(1, "pending".to_string())]);
}
