//! Issue 15, fleets: `sluice fleet` runs the same migrations on many databases from a targets file
//! — canary group first, a concurrency limit, stop on the first failure, phase gating for
//! `complete`, an unreachable target reported without stopping the rest, a resume after kill -9
//! that runs nothing twice, and no secret of a target URL in any output.

mod common;

use common::fleet_json as json;
use common::Run;
use sluice_testkit::TestDb;
use std::process::{Command, Stdio};

const TARGETS: usize = 10;

fn fleet(dir: &std::path::Path, args: &[&str]) -> Run {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("fleet")
        .args(args)
        .current_dir(dir)
        .env_remove("DATABASE_URL")
        .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
        .env("SLUICE_APP_VERSION", "fleet-test")
        .stdin(Stdio::null())
        .output()
        .expect("run sluice fleet")
        .into()
}

/// Each target's outcome in the JSON summary, in file order.
fn outcomes(v: &serde_json::Value) -> Vec<(String, String)> {
    common::fleet_targets(v)
        .into_iter()
        .map(|t| (t.target, t.outcome))
        .collect()
}

/// (version, state, applied_at) of every history row of one target.
async fn history(db: &TestDb) -> Vec<(i64, String, String)> {
    let c = db.pg().await;
    let made: bool = c
        .query_one("SELECT to_regclass('sluice.migrations') IS NOT NULL", &[])
        .await
        .unwrap()
        .get(0);
    if !made {
        return vec![];
    }
    c.query(
        "SELECT version, state, coalesce(finished_at::text, '') FROM sluice.migrations ORDER BY version",
        &[],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2)))
    .collect()
}

fn no_secret(r: &Run) {
    assert!(
        !r.all().contains("hunter2"),
        "a password was printed: {r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_runs_canary_first_stops_on_failure_gates_complete_and_resumes() {
    let mut dbs = Vec::new();
    for _ in 0..TARGETS {
        dbs.push(TestDb::postgres().await);
    }
    let names: Vec<String> = dbs.iter().map(|d| d.name.clone()).collect();
    // A template with a password in it: trust authentication ignores it, no output may show it.
    let template = dbs[0]
        .url_as(&format!("{}:hunter2", dbs[0].user()))
        .replace(&names[0], "{target}");
    let dir = tempfile::tempdir().unwrap();
    let mig = dir.path().join("migrations");
    std::fs::create_dir(&mig).unwrap();
    std::fs::write(
        mig.join("1_create.sql"),
        "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY, v int);\nINSERT INTO t SELECT g, g FROM generate_series(1, 100) g;\n",
    )
    .unwrap();
    std::fs::write(
        mig.join("2_add.sql"),
        "-- sluice:up\nALTER TABLE t ADD COLUMN w int;\n",
    )
    .unwrap();
    std::fs::write(
        mig.join("3_rename.sql"),
        "-- sluice:up\nALTER TABLE t RENAME COLUMN v TO value;\n",
    )
    .unwrap();
    let quoted = |v: &[String]| {
        v.iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    std::fs::write(
        dir.path().join("fleet.toml"),
        format!(
            "url = \"{template}\"\nconcurrency = 2\n\n[[group]]\nname = \"canary\"\ntargets = [{}]\n\n[[group]]\nname = \"rest\"\ntargets = [{}]\n",
            quoted(&names[..1]),
            quoted(&names[1..])
        ),
    )
    .unwrap();
    // Target 4 will fail: a table `t` of another shape is already there.
    dbs[4]
        .pg()
        .await
        .batch_execute("CREATE TABLE t (other text)")
        .await
        .unwrap();
    // Migrations 1–2 first (3 is a two-phase rename: it needs a table that existed before its run).
    let r = fleet(dir.path(), &["up", "--json", "--", "--to", "2"]);
    no_secret(&r);
    assert_eq!(r.code, 1, "{r:?}");
    let v = json(&r);
    let got = outcomes(&v);
    assert_eq!(
        got[0],
        (names[0].clone(), "ok".into()),
        "canary first: {v:#}"
    );
    assert_eq!(got[4].1, "failed", "{v:#}");
    assert_eq!(v["targets"][4]["exit_code"], 1, "{v:#}");
    assert!(
        v["targets"][4]["detail"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{v:#}"
    );
    // Concurrency 2: once target 4 failed, at most the one running beside it and one started just
    // before could follow; the last ones never started.
    for (i, (_, o)) in got.iter().enumerate() {
        match i {
            0..=3 => assert_eq!(o, "ok", "{i}: {v:#}"),
            4 => {}
            5 | 6 => assert!(o == "ok" || o == "not-started", "{i}: {v:#}"),
            _ => assert_eq!(o, "not-started", "{i}: {v:#}"),
        }
    }
    assert!(v["not_started"].as_u64().unwrap() >= 3, "{v:#}");
    // Each target's own output went to stderr with its name in front.
    assert!(r.stderr.contains(&format!("[{}] ", names[0])), "{r:?}");
    // The text summary says the same.
    let status = fleet(dir.path(), &["status"]);
    no_secret(&status);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(
        status.stdout.contains("TARGET") && status.stdout.contains(&names[9]),
        "{status:?}"
    );

    // Phase gating: nothing is expanded anywhere and targets have pending migrations: refused.
    let gate = fleet(dir.path(), &["complete"]);
    no_secret(&gate);
    assert_eq!(gate.code, 11, "{gate:?}");
    assert!(gate.stderr.contains(&names[4]), "{gate:?}");

    // Target 4 repaired; the rerun finishes the rest and runs nothing twice.
    let before: Vec<_> = {
        let mut h = Vec::new();
        for d in &dbs[..4] {
            h.push(history(d).await);
        }
        h
    };
    dbs[4]
        .pg()
        .await
        .batch_execute("DROP TABLE t")
        .await
        .unwrap();
    let state = dir.path().join(".fleet.toml.state");
    assert!(state.exists(), "the unfinished run left its state");
    assert!(
        !std::fs::read_to_string(&state).unwrap().contains("hunter2"),
        "no secret in the state file"
    );
    let r = fleet(dir.path(), &["up", "--json", "--", "--to", "2"]);
    no_secret(&r);
    assert_eq!(r.code, 0, "{r:?}");
    let v = json(&r);
    for (i, (_, o)) in outcomes(&v).iter().enumerate() {
        // Those the first run finished are not run again at all; the rest run now.
        let want = if i < 4 { "done-earlier" } else { "ok" };
        if i == 5 || i == 6 {
            assert!(o == "ok" || o == "done-earlier", "{i}: {v:#}");
        } else {
            assert_eq!(o, want, "{i}: {v:#}");
        }
    }
    for (i, d) in dbs[..4].iter().enumerate() {
        assert_eq!(history(d).await, before[i], "target {i} ran again");
    }
    assert!(!state.exists(), "a finished run leaves no state");
    // Now the two-phase rename everywhere: expanded on every target.
    let r = fleet(dir.path(), &["up", "--json", "--concurrency", "4"]);
    no_secret(&r);
    assert_eq!(r.code, 0, "{r:?}");
    for d in &dbs {
        let h = history(d).await;
        assert_eq!(
            h.iter()
                .map(|(v, s, _)| (*v, s.as_str()))
                .collect::<Vec<_>>(),
            [(1, "applied"), (2, "applied"), (3, "expanded")],
            "{}",
            d.name
        );
    }
    let st = fleet(dir.path(), &["status", "--json"]);
    assert_eq!(st.code, 0, "{st:?}");
    for t in json(&st)["targets"].as_array().unwrap() {
        assert_eq!(t["detail"], "2 applied, 1 expanded", "{st:?}");
    }
    // Every target expanded: complete goes through, everywhere.
    let r = fleet(dir.path(), &["complete", "--json"]);
    no_secret(&r);
    assert_eq!(r.code, 0, "{r:?}");
    for d in &dbs {
        assert!(
            history(d).await.iter().all(|(_, s, _)| s == "applied"),
            "{}",
            d.name
        );
        let cols: Vec<String> = d
            .pg()
            .await
            .query(
                "SELECT column_name::text FROM information_schema.columns WHERE table_name = 't' ORDER BY 1",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(cols, ["id", "value", "w"], "{}", d.name);
    }
    // Rerun of a finished fleet: every target up to date, exit 0.
    let again = fleet(dir.path(), &["up"]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stderr.contains("nothing to apply"), "{again:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_target_is_reported_and_the_others_go_on() {
    let db = TestDb::postgres().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("migrations")).unwrap();
    std::fs::write(
        dir.path().join("migrations/1_create.sql"),
        "-- sluice:up\nCREATE TABLE t (id int PRIMARY KEY);\n",
    )
    .unwrap();
    let missing = db.url.replace(&db.name, &format!("{}_missing", db.name));
    // Plain URLs this time; the missing database listed first.
    std::fs::write(
        dir.path().join("fleet.toml"),
        format!(
            "[[group]]\nname = \"all\"\ntargets = [\"{missing}\", \"{}\"]\n",
            db.url
        ),
    )
    .unwrap();
    // The rerun does not run the reachable one again: the unfinished run's state says it is done.
    for second in ["ok", "done-earlier", "done-earlier"] {
        let r = fleet(dir.path(), &["up", "--json"]);
        assert_eq!(r.code, 5, "{r:?}");
        let v = json(&r);
        assert_eq!(
            outcomes(&v)
                .iter()
                .map(|(_, o)| o.as_str())
                .collect::<Vec<_>>(),
            ["unreachable", second],
            "{v:#}"
        );
    }
    let n: i64 = db
        .pg()
        .await
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 0);
    // Bad input: one message, exit 2, nothing run.
    for (args, says) in [
        (vec!["up", "--targets", "nope.toml"], "cannot read it"),
        (
            vec!["up", "--", "--database-url", "postgres://x"],
            "cannot be passed on",
        ),
        (vec!["up", "--concurrency", "0"], "at least 1"),
    ] {
        let r = fleet(dir.path(), &args);
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(says), "{args:?}: {r:?}");
    }
}

/// kill -9 of the fleet in the middle: its children finish or stop where they are, and the rerun
/// converges with every migration applied exactly once on every target.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_fleet_killed_mid_run_resumes_without_running_anything_twice() {
    let mut dbs = Vec::new();
    for _ in 0..6 {
        dbs.push(TestDb::postgres().await);
    }
    let dir = tempfile::tempdir().unwrap();
    let mig = dir.path().join("migrations");
    std::fs::create_dir(&mig).unwrap();
    for k in 1..=4 {
        std::fs::write(
            mig.join(format!("{k}_step.sql")),
            format!(
                "-- sluice:up\nCREATE TABLE t{k} (id int PRIMARY KEY);\nINSERT INTO t{k} SELECT g FROM generate_series(1, 1000) g;\nSELECT pg_sleep(0.2);\n"
            ),
        )
        .unwrap();
    }
    let urls: Vec<String> = dbs.iter().map(|d| format!("\"{}\"", d.url)).collect();
    std::fs::write(
        dir.path().join("fleet.toml"),
        format!(
            "concurrency = 3\n[[group]]\nname = \"all\"\ntargets = [{}]\n",
            urls.join(", ")
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["fleet", "up"])
        .current_dir(dir.path())
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Wait until some target is part-way, then kill -9 the fleet.
    common::eventually(60, "a target part-way", || async {
        let mut any = false;
        for d in &dbs {
            any |= !history(d).await.is_empty();
        }
        any
    })
    .await;
    child.kill().unwrap();
    child.wait().unwrap();
    let mut r = fleet(dir.path(), &["up", "--json"]);
    // A child of the killed fleet may still hold its target's run lock for a moment.
    for _ in 0..5 {
        if r.code == 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(1));
        r = fleet(dir.path(), &["up", "--json"]);
    }
    assert_eq!(r.code, 0, "{r:?}");
    for (_, o) in outcomes(&json(&r)) {
        assert!(o == "ok" || o == "done-earlier", "{r:?}");
    }
    assert!(!dir.path().join(".fleet.toml.state").exists());
    for d in &dbs {
        let h = history(d).await;
        assert_eq!(h.len(), 4, "{}: {h:?}", d.name);
        assert!(h.iter().all(|(_, s, _)| s == "applied"), "{h:?}");
        for k in 1..=4 {
            let n: i64 = d
                .pg()
                .await
                .query_one(&format!("SELECT count(*) FROM t{k}"), &[])
                .await
                .unwrap()
                .get(0);
            assert_eq!(n, 1000, "{} t{k}", d.name);
        }
    }
}
