//! The sluice command against a real 3-node MariaDB Galera cluster on loopback (started by
//! `crates/sluice-mysql/tests/galera.sh`), with a client writing on every node. Skipped where the
//! Galera provider is not installed (it ships with Debian's mariadb-server).

use mysql_async::prelude::Queryable;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";
const DB: &str = "sluice_galera";
const ROWS: u64 = 3000;

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sluice-mysql/tests/galera.sh")
}

/// The cluster: stopped and its directory removed on drop, also when the test fails.
struct Cluster {
    dir: PathBuf,
    urls: Vec<String>,
}

impl Cluster {
    fn start() -> Cluster {
        let pid = std::process::id();
        // Per-process ports and directory, so two test runs on one host do not meet. Ports stay
        // below 32768 (the ephemeral range starts there).
        let base = 20000 + (pid % 300) * 40;
        let dir = PathBuf::from(format!("/tmp/sluice-galera-{pid}"));
        let out = Command::new("sh")
            .arg(script())
            .args(["start", dir.to_str().unwrap(), &base.to_string()])
            .stdin(Stdio::null())
            .output()
            .expect("run galera.sh");
        let cluster = Cluster {
            dir,
            urls: String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|u| u.replace("/mysql", &format!("/{DB}")))
                .collect(),
        };
        assert!(
            out.status.success() && cluster.urls.len() == 3,
            "galera.sh start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        cluster
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("sh")
            .arg(script())
            .args(["stop", self.dir.to_str().unwrap()])
            .status();
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn sluice(project: &Path, url: &str, args: &[&str]) -> Run {
    let o = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(project)
        .env("DATABASE_URL", url)
        .env("SLUICE_APP_VERSION", "test-app-1")
        // The table is small: without this the copying change would run as written.
        .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
        .env_remove("SLUICE_LOG")
        .stdin(Stdio::null())
        .output()
        .expect("run sluice");
    Run {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

/// A session whose reads wait until the node has applied everything the cluster committed before
/// them: other nodes apply a replicated ALTER a moment after the node that ran it returns.
async fn causal(url: &str) -> mysql_async::Conn {
    let mut c = mysql_async::Conn::from_url(url).await.unwrap();
    c.query_drop("SET SESSION wsrep_sync_wait = 1")
        .await
        .unwrap();
    c
}

async fn column_type(url: &str, column: &str) -> Option<String> {
    let mut c = causal(url).await;
    let t: Option<String> = c
        .exec_first(
            "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'accounts' AND COLUMN_NAME = ?",
            (column,),
        )
        .await
        .unwrap();
    let _ = c.disconnect().await;
    t
}

/// What sluice's online copy would leave behind on a node: tables other than `accounts` and
/// sluice's bookkeeping (`sluice_*`), and triggers.
async fn copy_objects(url: &str) -> Vec<String> {
    let mut c = causal(url).await;
    let mut objects: Vec<String> = c
        .query(
            "SELECT CONCAT('table ', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME <> 'accounts' AND TABLE_NAME NOT LIKE 'sluice\\_%' \
             UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME NOT LIKE 'sluice\\_%'",
        )
        .await
        .unwrap();
    objects.sort();
    let _ = c.disconnect().await;
    objects
}

/// A client on one node: updates its own third of the rows (clients on different nodes never
/// touch one row, so any error they see is sluice's doing) and inserts rows of its own.
fn writer(
    url: String,
    node: u64,
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    errors: Arc<std::sync::Mutex<Vec<String>>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut c = mysql_async::Conn::from_url(&url).await.unwrap();
        let mut i: u64 = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let id = (i * 3 + node) % ROWS + 1;
            let id = id - (id % 3) + node; // id % 3 == node
            let r = if i.is_multiple_of(5) {
                c.exec_drop(
                    "INSERT INTO accounts (id, balance, note) VALUES (?, 1, 'w')",
                    (1_000_000 * (node + 1) + i,),
                )
                .await
            } else {
                c.exec_drop(
                    "UPDATE accounts SET balance = balance + 1 WHERE id = ?",
                    (id,),
                )
                .await
            };
            match r {
                Ok(()) => {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => errors
                    .lock()
                    .unwrap()
                    .push(format!("node {}: {e}", node + 1)),
            }
        }
        let _ = c.disconnect().await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn galera_detected_fast_changes_run_copies_refused_before_any_work() {
    if !Path::new(PROVIDER).exists() {
        eprintln!("skipped: no Galera provider at {PROVIDER}");
        return;
    }
    let t0 = Instant::now();
    let cluster = Cluster::start();
    let started = t0.elapsed();
    let urls = &cluster.urls;
    let admin = urls[0].replace(&format!("/{DB}"), "/mysql");
    let mut c = mysql_async::Conn::from_url(&admin).await.unwrap();
    c.query_drop(format!("CREATE DATABASE `{DB}`"))
        .await
        .unwrap();
    c.query_drop(format!(
        "CREATE TABLE `{DB}`.accounts (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50))"
    ))
    .await
    .unwrap();
    c.query_drop(format!(
        "INSERT INTO `{DB}`.accounts SELECT seq, 100, 'seed' FROM seq_1_to_{ROWS}"
    ))
    .await
    .unwrap();
    let _ = c.disconnect().await;

    let project = tempfile::tempdir().unwrap();
    let mig = project.path().join("migrations");
    std::fs::create_dir(&mig).unwrap();
    std::fs::write(
        mig.join("1_add_flag.sql"),
        "-- sluice:up\nALTER TABLE accounts ADD COLUMN flag INT NULL;\n",
    )
    .unwrap();
    let p = project.path();
    let galera = "Galera cluster of 3 nodes, OSU method TOI (this node: Synced)";

    // Detection: plan and status name the cluster.
    let plan = sluice(p, &urls[0], &["plan"]);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stderr.contains(galera), "{plan:?}");
    let status = sluice(p, &urls[1], &["status"]);
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stderr.contains(galera), "{status:?}");

    // An INSTANT change runs online and reaches every node.
    let up = sluice(p, &urls[0], &["up"]);
    assert_eq!(up.code, 0, "{up:?}");
    assert!(up.stderr.contains(galera), "{up:?}");
    assert!(up.stderr.contains("ran with ALGORITHM=INSTANT"), "{up:?}");
    for url in urls {
        assert_eq!(
            column_type(url, "flag").await.as_deref(),
            Some("int(11)"),
            "{url}"
        );
    }

    // A copying change, with a client writing on every node: refused before any work.
    std::fs::write(
        mig.join("2_widen_balance.sql"),
        "-- sluice:up\nALTER TABLE accounts MODIFY balance BIGINT NOT NULL;\n",
    )
    .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let writers: Vec<_> = (0..3)
        .map(|n| {
            writer(
                urls[n as usize].clone(),
                n,
                stop.clone(),
                ok.clone(),
                errors.clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refusal =
        "`accounts` needs sluice's online copy, which is not yet safe on a Galera cluster";
    let refusals: Vec<(Vec<&str>, Run)> = [
        vec!["plan"],
        vec!["up", "--dry-run"],
        vec!["up"],
        // The rerun is refused the same way.
        vec!["up"],
    ]
    .into_iter()
    .map(|args| {
        let r = sluice(p, &urls[0], &args);
        (args, r)
    })
    .collect();
    let before_stop = ok.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await.unwrap();
    }
    for (args, r) in &refusals {
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(refusal), "{args:?}: {r:?}");
        assert!(
            r.stderr.contains("sluice up --as-written"),
            "{args:?}: {r:?}"
        );
        assert!(r.stderr.contains("wsrep_OSU_method=RSU"), "{args:?}: {r:?}");
    }
    for url in urls {
        assert_eq!(copy_objects(url).await, Vec::<String>::new(), "{url}");
        assert_eq!(
            column_type(url, "balance").await.as_deref(),
            Some("int(11)"),
            "{url}"
        );
    }
    let errors = errors.lock().unwrap().clone();
    assert!(errors.is_empty(), "clients saw errors: {errors:?}");
    assert!(before_stop > 0, "the writers wrote nothing");
    let writes = ok.load(Ordering::Relaxed);

    // The user's choice: the ALTER as written (TOI).
    let up = sluice(p, &urls[0], &["up", "--as-written"]);
    assert_eq!(up.code, 0, "{up:?}");
    for url in urls {
        assert_eq!(
            column_type(url, "balance").await.as_deref(),
            Some("bigint(20)"),
            "{url}"
        );
        assert_eq!(copy_objects(url).await, Vec::<String>::new(), "{url}");
    }
    // A DROP COLUMN, which runs in two phases elsewhere (issue 14): refused on Galera before
    // anything changes (twice), with the cause and `--as-written` as the way to drop in one step.
    std::fs::write(
        mig.join("3_drop_note.sql"),
        "-- sluice:up\nALTER TABLE accounts DROP COLUMN note;\n",
    )
    .unwrap();
    for round in 0..2 {
        let r = sluice(p, &urls[0], &["up"]);
        assert_eq!(r.code, 2, "round {round}: {r:?}");
        assert!(r.stderr.contains("the server is a Galera node"), "{r:?}");
        assert!(r.stderr.contains("--as-written"), "{r:?}");
        for url in urls {
            assert_eq!(
                column_type(url, "note").await.as_deref(),
                Some("varchar(50)"),
                "{url}"
            );
        }
    }
    let up = sluice(p, &urls[0], &["up", "--as-written"]);
    assert_eq!(up.code, 0, "{up:?}");
    for url in urls {
        assert_eq!(column_type(url, "note").await, None, "{url}");
    }
    eprintln!(
        "galera: cluster up in {:.1} s, test {:.1} s, {writes} client writes, 0 errors",
        started.as_secs_f64(),
        t0.elapsed().as_secs_f64()
    );
}
