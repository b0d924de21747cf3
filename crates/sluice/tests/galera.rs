//! The sluice command against a real 3-node MariaDB Galera cluster on loopback (started by
//! `crates/sluice-mysql/tests/galera.sh`), with clients writing on every node. Skipped where the
//! Galera provider is not installed (it ships with Debian's mariadb-server).

use mysql_async::prelude::Queryable;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const PROVIDER: &str = "/usr/lib/galera/libgalera_smm.so";
const DB: &str = "sluice_galera";
/// Where the statements are applied as written, for the definition they must give.
const TWIN_DB: &str = "sluice_galera_twin";
const ROWS: u64 = 30_000;
/// What plan and up say of an ALTER that reads the whole table under TOI.
const TOI_STALL: &str = "runs under TOI: commits on every node wait until it ends";
/// A statement or query of the test that takes longer than this fails the test.
const BOUND: Duration = Duration::from_secs(120);
/// The first test's clients send their statements as text: the server re-runs an autocommit text
/// statement a DDL under TOI aborts (once), so a long DDL such as a rebuild gives them no error
/// (prepared statements and explicit transactions get 1213 from any DDL under TOI, the ALTER as
/// written included; a short DDL can abort the re-run too, `bench/galera_toi_aborts.sh`).
const TEXT: bool = true;
/// Set to run the opted-in lock-free copy in the first test. Not by default: in it and in
/// `bench/galera_copy.sh` autocommit clients still get 1213 now and then, each within 10–110 ms of
/// one of the copy's DDLs on the table under TOI (README "Galera clusters").
const GALERA_COPY: &str = "SLUICE_TEST_GALERA_COPY";

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

/// Milliseconds since the test started.
fn since_start(t: Instant) -> u128 {
    t.saturating_duration_since(*START.get_or_init(Instant::now))
        .as_millis()
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../sluice-mysql/tests/galera.sh")
}

/// The cluster: stopped and its directory removed on drop, also when the test fails.
struct Cluster {
    dir: PathBuf,
    urls: Vec<String>,
}

impl Cluster {
    /// `slot`: one per test of this file, so tests running side by side do not meet either.
    fn start(slot: u32) -> Cluster {
        let pid = std::process::id();
        // Per-process ports and directory, so two test runs on one host do not meet. Ports stay
        // below 32768 (the ephemeral range starts there).
        let base = 20000 + ((pid + slot) % 300) * 40;
        let dir = PathBuf::from(format!("/tmp/sluice-galera-{pid}-{slot}"));
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

/// Runs sluice off the async workers (the writers keep writing meanwhile), killed by the
/// `SLUICE_CRASH_AT` hook at `crash` if given, and at the latest after `BOUND`.
async fn sluice(project: &Path, url: &str, args: &[&str], crash: Option<&str>) -> Run {
    sluice_with(project, url, args, crash, "1").await
}

/// [`sluice`] with `SLUICE_GALERA_COPY` set to `opt_in` (the experimental lock-free copy is
/// opt-in; the tests of it opt in).
async fn sluice_with(
    project: &Path,
    url: &str,
    args: &[&str],
    crash: Option<&str>,
    opt_in: &str,
) -> Run {
    let opt_in = opt_in.to_string();
    let project = project.to_path_buf();
    let url = url.to_string();
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let crash = crash.map(String::from);
    tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
        cmd.args(&args)
            .current_dir(&project)
            .env("DATABASE_URL", &url)
            .env("SLUICE_APP_VERSION", "test-app-1")
            // The table is small: without this the copying change would run as written.
            .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
            .env_remove("SLUICE_LOG")
            .env_remove("SLUICE_CRASH_AT")
            .env("SLUICE_GALERA_COPY", &opt_in)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(point) = &crash {
            cmd.env("SLUICE_CRASH_AT", point);
        }
        let mut child = cmd.spawn().expect("run sluice");
        let pid = child.id();
        // Each line of sluice's stderr stamped with the test's clock, to set beside the clients'.
        let err = child.stderr.take().unwrap();
        let lines = std::thread::spawn(move || {
            use std::io::BufRead;
            std::io::BufReader::new(err)
                .lines()
                .map_while(|l| l.ok())
                .map(|l| format!("[{} ms] {l}\n", since_start(Instant::now())))
                .collect::<String>()
        });
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let o = child.wait_with_output().map(|mut o| {
                o.stderr = lines.join().unwrap().into_bytes();
                o
            });
            let _ = tx.send(o);
        });
        let o = match rx.recv_timeout(BOUND) {
            Ok(o) => o.expect("sluice ran"),
            Err(_) => {
                let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
                panic!("sluice {args:?} ran longer than {BOUND:?}");
            }
        };
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

async fn bounded<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(BOUND, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took longer than {BOUND:?}"))
}

/// A session whose reads wait until the node has applied everything the cluster committed before
/// them: other nodes apply a replicated change a moment after the node that ran it returns.
async fn causal(url: &str) -> mysql_async::Conn {
    bounded("connecting", async {
        let mut c = mysql_async::Conn::from_url(url).await.unwrap();
        c.query_drop("SET SESSION wsrep_sync_wait = 1")
            .await
            .unwrap();
        c
    })
    .await
}

async fn column_type(url: &str, column: &str) -> Option<String> {
    let mut c = causal(url).await;
    let t: Option<String> = bounded(
        "reading a column type",
        c.exec_first(
            "SELECT COLUMN_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME = 'accounts' AND COLUMN_NAME = ?",
            (column,),
        ),
    )
    .await
    .unwrap();
    let _ = c.disconnect().await;
    t
}

/// What sluice's online copy would leave behind on a node: tables other than the test's and
/// sluice's bookkeeping (`sluice_*`), and triggers.
async fn copy_objects(url: &str) -> Vec<String> {
    let mut c = causal(url).await;
    let mut objects: Vec<String> = bounded(
        "listing objects",
        c.query(
            "SELECT CONCAT('table ', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() \
             AND TABLE_NAME <> 'accounts' AND TABLE_NAME NOT LIKE 'sluice\\_%' \
             UNION ALL SELECT CONCAT('trigger ', TRIGGER_NAME) FROM information_schema.TRIGGERS \
             WHERE TRIGGER_SCHEMA = DATABASE() AND TRIGGER_NAME NOT LIKE 'sluice\\_%'",
        ),
    )
    .await
    .unwrap();
    objects.sort();
    let _ = c.disconnect().await;
    objects
}

/// `SHOW CREATE TABLE` of `db`.`table` on a node.
async fn show_create(url: &str, db: &str, table: &str) -> String {
    let mut c = causal(url).await;
    let row: Option<(String, String)> = bounded(
        "SHOW CREATE TABLE",
        c.query_first(format!("SHOW CREATE TABLE `{db}`.`{table}`")),
    )
    .await
    .unwrap();
    let _ = c.disconnect().await;
    row.unwrap().1
}

/// (rows, checksum of every column) of `accounts` on a node.
async fn checksum(url: &str) -> (i64, i64) {
    let mut c = causal(url).await;
    let sum: Option<(i64, i64)> = bounded(
        "checksumming the table",
        c.query_first(
            "SELECT COUNT(*), CAST(BIT_XOR(CRC32(CONCAT_WS('|', id, balance, IFNULL(note, '-'), IFNULL(flag, '-')))) AS SIGNED) \
             FROM accounts",
        ),
    )
    .await
    .unwrap();
    let _ = c.disconnect().await;
    sum.unwrap()
}

/// Every row of `accounts` on a node: id → balance.
async fn balances(url: &str) -> BTreeMap<u64, i64> {
    let mut c = causal(url).await;
    let rows: Vec<(u64, i64)> = bounded(
        "reading the rows",
        c.query("SELECT id, CAST(balance AS SIGNED) FROM accounts ORDER BY id"),
    )
    .await
    .unwrap();
    let _ = c.disconnect().await;
    rows.into_iter().collect()
}

/// Error messages a window keeps (when, which statement, what error); later ones are counted only.
const SAMPLES: usize = 10;
/// Write latency buckets: up to 1 ms, 2 ms, 4 ms, … 2^(BUCKETS-2) ms, and longer.
const BUCKETS: usize = 14;

/// What one client saw over a stretch of the run, in a fixed size whatever its length: counts, the
/// longest wait between two writes that returned, a latency histogram and the first few errors.
/// Never one entry per write: a client left on a closed connection once recorded millions of
/// errors a second and the test process grew to 23 GB.
#[derive(Clone)]
struct Window {
    from: Instant,
    /// When the last write returned (`from` before the first).
    last: Instant,
    worst: Duration,
    writes: u64,
    errors: u64,
    /// Errors other than 1213 (deadlock; what a DDL under TOI gives an open transaction).
    not_deadlock: u64,
    samples: Vec<String>,
    latency: [u64; BUCKETS],
    /// Set by `end`: what returns after it is not this window's.
    to: Option<Instant>,
}

impl Window {
    fn new(from: Instant) -> Window {
        Window {
            from,
            last: from,
            worst: Duration::ZERO,
            writes: 0,
            errors: 0,
            not_deadlock: 0,
            samples: Vec::new(),
            latency: [0; BUCKETS],
            to: None,
        }
    }

    fn done(&mut self, sent: Instant, now: Instant) {
        if self.to.is_some() {
            return;
        }
        self.writes += 1;
        self.worst = self.worst.max(now - self.last);
        self.last = now;
        let ms = (now - sent).as_millis() as u64;
        let bucket = (u64::BITS - ms.leading_zeros()) as usize;
        self.latency[bucket.min(BUCKETS - 1)] += 1;
    }

    fn failed(&mut self, now: Instant, what: &str, deadlock: bool) {
        if self.to.is_some() {
            return;
        }
        self.errors += 1;
        if !deadlock {
            self.not_deadlock += 1;
        }
        if self.samples.len() < SAMPLES {
            self.samples
                .push(format!("[{} ms] {what}", since_start(now)));
        }
    }

    /// Closes the window at `to`: the wait from the last write returned to `to` counts too.
    fn end(&mut self, to: Instant) {
        if self.to.is_none() {
            self.worst = self.worst.max(to - self.last);
            self.to = Some(to);
        }
    }

    /// The latency histogram, non-empty buckets only: "≤1 ms 812, ≤2 ms 40, … >4096 ms 1".
    fn histogram(&self) -> String {
        self.latency
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(b, n)| match b {
                b if b == BUCKETS - 1 => format!(">{} ms {n}", 1u64 << (b - 1)),
                b => format!("≤{} ms {n}", 1u64 << b),
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// What one client saw: the whole run, the current phase (`begin`/`end`), and the rows it owns as
/// its successful writes left them (id → balance; bounded by the table, not by the writes).
struct Seen {
    run: Window,
    phase: Window,
    rows: BTreeMap<u64, i64>,
}

impl Default for Seen {
    fn default() -> Seen {
        let now = Instant::now();
        Seen {
            run: Window::new(now),
            phase: Window::new(now),
            rows: BTreeMap::new(),
        }
    }
}

impl Seen {
    fn done(&mut self, sent: Instant, now: Instant) {
        self.run.done(sent, now);
        self.phase.done(sent, now);
    }

    fn failed(&mut self, now: Instant, what: &str, e: &mysql_async::Error) {
        let deadlock = matches!(e, mysql_async::Error::Server(s) if s.code == 1213);
        let what = format!("{what}: {e}");
        self.run.failed(now, &what, deadlock);
        self.phase.failed(now, &what, deadlock);
    }
}

type Shared = Arc<Mutex<Seen>>;

/// Starts a phase on every client's record; returns when.
fn begin(clients: &[Shared]) -> Instant {
    let now = Instant::now();
    for s in clients {
        s.lock().unwrap().phase = Window::new(now);
    }
    now
}

/// Ends the phase on every client's record; returns when.
fn end(clients: &[Shared]) -> Instant {
    let now = Instant::now();
    for s in clients {
        s.lock().unwrap().phase.end(now);
    }
    now
}

/// After a failed write: a pause growing with the errors in a row (20 ms to 1.3 s), and a new
/// connection when the old one is gone, so a failing client neither spins nor stops for good.
async fn back_off(c: &mut mysql_async::Conn, url: &str, gone: bool, streak: &mut u32) {
    *streak += 1;
    tokio::time::sleep(Duration::from_millis(10 << (*streak).min(7))).await;
    if gone {
        if let Ok(Ok(fresh)) =
            tokio::time::timeout(Duration::from_secs(5), mysql_async::Conn::from_url(url)).await
        {
            drop(std::mem::replace(c, fresh));
        }
    }
}

/// Whether an error leaves the connection unusable (closed, broken pipe, no answer).
fn gone(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Io(_) | mysql_async::Error::Driver(_))
}

/// The seed rows a client owns: `id % 4 == owner`. No two clients touch one row, so any error a
/// client sees is sluice's (or the server's DDL's) doing, not a conflict between clients.
fn owned(owner: u64) -> Vec<u64> {
    (1..=ROWS).filter(|id| id % 4 == owner).collect()
}

/// An autocommit client on one node (`node` 0..3, owner of `id % 4 == node`): updates its seed
/// rows, inserts rows of its own, deletes and updates some of those.
fn writer(
    url: String,
    node: u64,
    stop: Arc<AtomicBool>,
    text: bool,
) -> (tokio::task::JoinHandle<()>, Shared) {
    let seen: Shared = Arc::default();
    let mine = owned(node);
    seen.lock()
        .unwrap()
        .rows
        .extend(mine.iter().map(|&id| (id, 100)));
    let s = seen.clone();
    let h = tokio::spawn(async move {
        let mut c = mysql_async::Conn::from_url(&url).await.unwrap();
        let mut inserted: std::collections::VecDeque<u64> = Default::default();
        let mut i: u64 = 0;
        let mut streak = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let (sql, id, change): (&str, u64, Option<i64>) = match i % 10 {
                6 | 7 => (
                    "INSERT INTO accounts (id, balance, note) VALUES (?, 1, 'w')",
                    10_000_000 * (node + 1) + i,
                    Some(1),
                ),
                8 if inserted.len() > 5 => ("DELETE FROM accounts WHERE id = ?", inserted[0], None),
                9 if !inserted.is_empty() => (
                    "UPDATE accounts SET balance = balance + 5, note = 'u' WHERE id = ?",
                    *inserted.back().unwrap(),
                    Some(5),
                ),
                _ => (
                    "UPDATE accounts SET balance = balance + 1 WHERE id = ?",
                    mine[(i as usize * 7) % mine.len()],
                    Some(1),
                ),
            };
            // `text`: the statements over the text protocol (values inlined), which the server
            // re-runs when a DDL under TOI aborts them; else as prepared statements.
            let sent = Instant::now();
            let r = if text {
                tokio::time::timeout(BOUND, c.query_drop(sql.replace('?', &id.to_string()))).await
            } else {
                tokio::time::timeout(BOUND, c.exec_drop(sql, (id,))).await
            };
            let now = Instant::now();
            let what = || format!("node {}: `{}`", node + 1, sql.replace('?', &id.to_string()));
            let lost = {
                let mut s = s.lock().unwrap();
                match r {
                    Ok(Ok(())) => {
                        s.done(sent, now);
                        if sql.starts_with("INSERT") {
                            inserted.push_back(id);
                            s.rows.insert(id, 1);
                        } else if sql.starts_with("DELETE") {
                            inserted.pop_front();
                            s.rows.remove(&id);
                        } else {
                            *s.rows.get_mut(&id).unwrap() += change.unwrap();
                        }
                        None
                    }
                    Ok(Err(e)) => {
                        s.failed(now, &what(), &e);
                        Some(gone(&e))
                    }
                    Err(_) => {
                        let e = mysql_async::Error::Other(format!("no answer in {BOUND:?}").into());
                        s.failed(now, &what(), &e);
                        Some(true)
                    }
                }
            };
            match lost {
                Some(gone) => back_off(&mut c, &url, gone, &mut streak).await,
                None => {
                    streak = 0;
                    // Leaves the two cores some room for the cluster and sluice.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
            }
        }
        let _ = c.disconnect().await;
    });
    (h, seen)
}

/// A client of multi-statement transactions on node 2 (owner of `id % 4 == 3`): two updates and
/// an insert, then COMMIT. A DDL under TOI aborts the transactions open on its table on every
/// node, which the server does not re-run: this client's errors are counted on their own.
fn tx_writer(
    url: String,
    stop: Arc<AtomicBool>,
    text: bool,
) -> (tokio::task::JoinHandle<()>, Shared) {
    let seen: Shared = Arc::default();
    let mine = owned(3);
    seen.lock()
        .unwrap()
        .rows
        .extend(mine.iter().map(|&id| (id, 100)));
    let s = seen.clone();
    let h = tokio::spawn(async move {
        let mut c = mysql_async::Conn::from_url(&url).await.unwrap();
        let mut i: u64 = 0;
        let mut streak = 0;
        while !stop.load(Ordering::Relaxed) {
            i += 1;
            let sent = Instant::now();
            let a = mine[(i as usize * 2) % mine.len()];
            let b = mine[(i as usize * 2 + 1) % mine.len()];
            let new = 90_000_000 + i;
            let r: Result<Result<(), mysql_async::Error>, _> = tokio::time::timeout(BOUND, async {
                c.query_drop("START TRANSACTION").await?;
                if text {
                    for sql in [
                        format!("UPDATE accounts SET balance = balance + 1 WHERE id = {a}"),
                        format!("UPDATE accounts SET balance = balance + 1 WHERE id = {b}"),
                        format!("INSERT INTO accounts (id, balance, note) VALUES ({new}, 7, 't')"),
                    ] {
                        c.query_drop(sql).await?;
                    }
                } else {
                    c.exec_drop(
                        "UPDATE accounts SET balance = balance + 1 WHERE id = ?",
                        (a,),
                    )
                    .await?;
                    c.exec_drop(
                        "UPDATE accounts SET balance = balance + 1 WHERE id = ?",
                        (b,),
                    )
                    .await?;
                    c.exec_drop(
                        "INSERT INTO accounts (id, balance, note) VALUES (?, 7, 't')",
                        (new,),
                    )
                    .await?;
                }
                c.query_drop("COMMIT").await
            })
            .await;
            let now = Instant::now();
            let what = format!("node 2 (transaction {a}, {b}, {new})");
            let lost = {
                let mut s = s.lock().unwrap();
                match r {
                    Ok(Ok(())) => {
                        s.done(sent, now);
                        *s.rows.get_mut(&a).unwrap() += 1;
                        *s.rows.get_mut(&b).unwrap() += 1;
                        s.rows.insert(new, 7);
                        None
                    }
                    Ok(Err(e)) => {
                        s.failed(now, &what, &e);
                        Some(gone(&e))
                    }
                    Err(_) => {
                        let e = mysql_async::Error::Other(format!("no answer in {BOUND:?}").into());
                        s.failed(now, &what, &e);
                        Some(true)
                    }
                }
            };
            match lost {
                Some(gone) => {
                    let _ = c.query_drop("ROLLBACK").await;
                    back_off(&mut c, &url, gone, &mut streak).await;
                }
                None => {
                    streak = 0;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
        let _ = c.disconnect().await;
    });
    (h, seen)
}

/// What the clients saw in one phase (closed by `end`).
struct Tally {
    /// The autocommit clients' errors, per node.
    auto: [u64; 3],
    /// The transaction client's errors.
    tx: u64,
    /// The first errors of each autocommit client (when, statement, error).
    samples: Vec<String>,
}

/// One phase of the run as the clients saw it: per node worst gap, the autocommit clients' errors
/// and the transaction client's.
fn report(label: &str, clients: &[Shared]) -> Tally {
    let mut tally = Tally {
        auto: [0; 3],
        tx: 0,
        samples: Vec::new(),
    };
    let mut gaps = Vec::new();
    for (n, s) in clients[..3].iter().enumerate() {
        let w = &s.lock().unwrap().phase;
        gaps.push(format!("node {} {} ms", n + 1, w.worst.as_millis()));
        tally.auto[n] = w.errors;
        tally.samples.extend(w.samples.iter().cloned());
    }
    let w = clients[3].lock().unwrap().phase.clone();
    tally.tx = w.errors;
    for e in tally.samples.iter().chain(&w.samples) {
        eprintln!("galera: {label}: {e}");
    }
    eprintln!(
        "galera: {label}: {:.1} s; worst write gap {}; transaction client worst gap {} ms; \
         autocommit errors {:?}, transaction errors {} ({} committed)",
        (w.to.unwrap_or_else(Instant::now) - w.from).as_secs_f64(),
        gaps.join(", "),
        w.worst.as_millis(),
        tally.auto,
        tally.tx,
        w.writes
    );
    tally
}

async fn exec(url: &str, sql: &str) {
    let mut c = bounded("connecting", mysql_async::Conn::from_url(url))
        .await
        .unwrap();
    bounded(sql, c.query_drop(sql))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    let _ = c.disconnect().await;
}

/// The DDLs sluice ran on `accounts` while it was the table clients write, from node 1's general
/// log (sluice connects there): CREATE/DROP TRIGGER, ALTER and RENAME of it. A DROP TRIGGER after
/// the RENAME is on the renamed-away table, which no client writes any more, so it is not counted.
/// Each DDL on the written table under TOI aborts the statements open on it on every node.
async fn hot_table_ddls(admin: &str) -> Vec<String> {
    let mut c = bounded("connecting", mysql_async::Conn::from_url(admin))
        .await
        .unwrap();
    // The CSV log table returns its rows in the order they were logged.
    let stmts: Vec<String> = bounded(
        "reading the general log",
        c.query(
            "SELECT CONVERT(argument USING utf8mb4) FROM mysql.general_log \
             WHERE command_type IN ('Query', 'Execute') \
             AND CONVERT(argument USING utf8mb4) REGEXP '^(CREATE|DROP|ALTER|RENAME)[[:space:]]'",
        ),
    )
    .await
    .unwrap();
    let _ = c.disconnect().await;
    let mut renamed = false;
    let mut hot = Vec::new();
    for s in stmts {
        let up = s.to_uppercase();
        let rename = up.starts_with("RENAME TABLE `ACCOUNTS`");
        if (up.starts_with("CREATE TRIGGER") && up.contains(" ON `ACCOUNTS` "))
            || up.starts_with("ALTER TABLE `ACCOUNTS`")
            || rename
            || (up.starts_with("DROP TRIGGER") && !renamed)
        {
            hot.push(s.chars().take(80).collect());
        }
        renamed |= rename;
    }
    hot
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn galera_online_copy_with_writers_on_every_node_no_errors_kills_converge() {
    if !Path::new(PROVIDER).exists() {
        eprintln!("skipped: no Galera provider at {PROVIDER}");
        return;
    }
    let t0 = *START.get_or_init(Instant::now);
    let cluster = Cluster::start(0);
    let started = t0.elapsed();
    let urls = &cluster.urls;
    let admin = urls[0].replace(&format!("/{DB}"), "/mysql");
    for sql in [
        format!("CREATE DATABASE `{DB}`"),
        format!("CREATE DATABASE `{TWIN_DB}`"),
        format!("CREATE TABLE `{DB}`.accounts (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50))"),
        format!("INSERT INTO `{DB}`.accounts SELECT seq, 100, 'seed' FROM seq_1_to_{ROWS}"),
    ] {
        exec(&admin, &sql).await;
    }

    let project = tempfile::tempdir().unwrap();
    let mig = project.path().join("migrations");
    std::fs::create_dir(&mig).unwrap();
    let p = project.path();
    let write = |name: &str, sql: &str| {
        std::fs::write(mig.join(name), format!("-- sluice:up\n{sql}\n")).unwrap();
    };
    write(
        "1_add_flag.sql",
        "ALTER TABLE accounts ADD COLUMN flag INT NULL;",
    );
    let galera = "Galera cluster of 3 nodes, OSU method TOI (this node: Synced)";

    // Detection: plan and status name the cluster.
    let plan = sluice(p, &urls[0], &["plan"], None).await;
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stderr.contains(galera), "{plan:?}");
    let status = sluice(p, &urls[1], &["status"], None).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert!(status.stderr.contains(galera), "{status:?}");

    // An INSTANT change runs online and reaches every node.
    let up = sluice(p, &urls[0], &["up"], None).await;
    assert_eq!(up.code, 0, "{up:?}");
    assert!(up.stderr.contains(galera), "{up:?}");
    assert!(up.stderr.contains("ran with ALGORITHM=INSTANT"), "{up:?}");
    // Metadata only: nothing to wait for under TOI, so nothing said.
    assert!(!plan.stderr.contains(TOI_STALL), "{plan:?}");
    assert!(!up.stderr.contains(TOI_STALL), "{up:?}");
    for url in urls {
        assert_eq!(
            column_type(url, "flag").await.as_deref(),
            Some("int(11)"),
            "{url}"
        );
    }
    // The twin: the statements applied as written, for the definition each must give.
    exec(
        &admin,
        &format!("CREATE TABLE `{TWIN_DB}`.accounts LIKE `{DB}`.accounts"),
    )
    .await;

    // Clients on every node from here on.
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut clients = Vec::new();
    for n in 0..3u64 {
        let (h, s) = writer(urls[n as usize].clone(), n, stop.clone(), TEXT);
        handles.push(h);
        clients.push(s);
    }
    let (h, s) = tx_writer(urls[1].clone(), stop.clone(), TEXT);
    handles.push(h);
    clients.push(s);
    tokio::time::sleep(Duration::from_millis(1000)).await;

    // 1. An index build runs online (NOCOPY, LOCK=NONE) but under TOI, where every node's commits
    // wait for the whole build: said by plan, up --dry-run and up (the table is above the
    // small-table row count, 0 here), not below it; measured as the clients see it.
    write(
        "2_add_index.sql",
        "ALTER TABLE accounts ADD INDEX note_idx (note);",
    );
    for args in [
        vec!["plan"],
        vec!["up", "--dry-run"],
        vec!["plan", "--as-written-below-rows", "100000"],
    ] {
        let r = sluice(p, &urls[0], &args, None).await;
        assert_eq!(r.code, 0, "{args:?}: {r:?}");
        let said = format!("{}{}", r.stdout, r.stderr).contains(TOI_STALL);
        assert_eq!(said, args.len() < 3, "{args:?}: {r:?}");
    }
    begin(&clients);
    let up = sluice(p, &urls[0], &["up"], None).await;
    end(&clients);
    assert_eq!(up.code, 0, "{up:?}");
    assert!(up.stderr.contains(TOI_STALL), "{up:?}");
    assert!(up.stderr.contains("ran with ALGORITHM=NOCOPY"), "{up:?}");
    exec(
        &admin,
        &format!("ALTER TABLE `{TWIN_DB}`.accounts ADD INDEX note_idx (note)"),
    )
    .await;
    report("ADD INDEX online (NOCOPY under TOI)", &clients);

    // 2. A copying change, with clients writing on every node: refused without the opt-in; with it
    // (`GALERA_COPY`) sluice's online copy in its Galera mode (no table lock anywhere), said by
    // plan; else as written. The autocommit clients must see no error either way.
    let widen = "ALTER TABLE accounts MODIFY balance BIGINT NOT NULL;";
    write("3_widen_balance.sql", widen);
    let mode = "the copy takes no table lock";
    // Not opted in (the default): refused before anything is made, twice alike; a value other
    // than 1 or 0 is an error, not a silent no.
    for (opt_in, code, said) in [
        ("0", 2, "not yet the default on a Galera cluster"),
        ("", 2, "not yet the default on a Galera cluster"),
        ("yes", 2, "SLUICE_GALERA_COPY is \"yes\""),
    ] {
        for args in [vec!["plan"], vec!["up"], vec!["up"]] {
            let r = sluice_with(p, &urls[0], &args, None, opt_in).await;
            let all = format!("{}{}", r.stdout, r.stderr);
            if args == ["plan"] && opt_in != "yes" {
                // plan reports the refusal as a finding of the statement.
                assert!(all.contains(said), "{opt_in:?} {args:?}: {r:?}");
                continue;
            }
            assert_eq!(r.code, code, "{opt_in:?} {args:?}: {r:?}");
            assert!(all.contains(said), "{opt_in:?} {args:?}: {r:?}");
            assert_eq!(
                column_type(&urls[0], "balance").await.as_deref(),
                Some("int(11)"),
                "{opt_in:?}: nothing changed"
            );
        }
    }
    // The opted-in copy runs only with SLUICE_TEST_GALERA_COPY=1: it does not yet meet its bar
    // (0 autocommit errors), see `GALERA_COPY`. Without it both copying changes run as written.
    let copy_on = std::env::var_os(GALERA_COPY).is_some();
    if copy_on {
        for args in [vec!["plan"], vec!["up", "--dry-run"]] {
            let r = sluice(p, &urls[0], &args, None).await;
            assert_eq!(r.code, 0, "{args:?}: {r:?}");
            let said = format!("{}{}", r.stdout, r.stderr);
            assert!(said.contains(mode), "{args:?}: {r:?}");
            assert!(said.contains("1213"), "{args:?}: {r:?}");
        }
    } else {
        eprintln!("galera: the lock-free copy not run (set {GALERA_COPY}=1): both copying changes run as written");
    }
    if copy_on {
        for sql in [
            "SET GLOBAL log_output = 'TABLE'",
            "TRUNCATE TABLE mysql.general_log",
            "SET GLOBAL general_log = 1",
        ] {
            exec(&admin, sql).await;
        }
    }
    begin(&clients);
    let up = match copy_on {
        true => sluice(p, &urls[0], &["up"], None).await,
        false => sluice(p, &urls[0], &["up", "--as-written"], None).await,
    };
    end(&clients);
    assert_eq!(up.code, 0, "{up:?}");
    if copy_on {
        exec(&admin, "SET GLOBAL general_log = 0").await;
        // The three log triggers and the RENAME: the switch to writing the shadow directly is a
        // row of the control table, and the triggers go after the RENAME (off the written table).
        let hot = hot_table_ddls(&admin).await;
        eprintln!("galera: DDLs on the written table during the copy: {hot:#?}");
        assert_eq!(hot.len(), 4, "DDLs on the written table: {hot:#?}");
        exec(&admin, "TRUNCATE TABLE mysql.general_log").await;
    }
    assert_eq!(
        up.stderr.contains("(Galera, no table lock)"),
        copy_on,
        "{up:?}"
    );
    exec(&admin, &format!("ALTER TABLE `{TWIN_DB}`.{}", &widen[12..])).await;
    let copy = report(
        if copy_on {
            "sluice up, online copy (Galera mode)"
        } else {
            "the widening as written (TOI)"
        },
        &clients,
    );
    assert_eq!(
        copy.auto, [0; 3],
        "autocommit clients saw errors: {:?}",
        copy.samples
    );
    for url in urls {
        assert_eq!(
            column_type(url, "balance").await.as_deref(),
            Some("bigint(20)"),
            "{url}"
        );
    }

    // 3. Another copying change, killed at each step of the cut-over in turn (the triggers
    // switched to writing the shadow, the log drained, both tables checksummed, the RENAME run): each rerun goes
    // on from there, the last one finishes, and one more finds nothing to do.
    let decimal = "ALTER TABLE accounts MODIFY balance DECIMAL(20,0) NOT NULL;";
    write("4_decimal_balance.sql", decimal);
    begin(&clients);
    let points = [
        "galera-direct",
        "galera-unlogged",
        "galera-verified",
        "cutover-renamed",
    ];
    if !copy_on {
        let up = sluice(p, &urls[0], &["up", "--as-written"], None).await;
        assert_eq!(up.code, 0, "{up:?}");
    }
    for point in points.into_iter().filter(|_| copy_on) {
        let r = sluice(p, &urls[0], &["up"], Some(point)).await;
        eprintln!("galera: killed at {point}:\n{}", r.stderr);
        assert_ne!(r.code, 0, "{point}: {r:?}");
        assert!(
            r.stderr.contains(&format!("SLUICE_CRASH_AT={point}")),
            "{point}: {r:?}"
        );
    }
    for round in 0..2 {
        let r = sluice(p, &urls[0], &["up"], None).await;
        eprintln!("galera: rerun {round}:\n{}", r.stderr);
        assert_eq!(r.code, 0, "rerun {round}: {r:?}");
    }
    end(&clients);
    exec(
        &admin,
        &format!("ALTER TABLE `{TWIN_DB}`.{}", &decimal[12..]),
    )
    .await;
    let kills = report(
        if copy_on {
            "kills at the cut-over steps and reruns"
        } else {
            "the DECIMAL change as written (TOI)"
        },
        &clients,
    );
    assert_eq!(
        kills.auto, [0; 3],
        "autocommit clients saw errors: {:?}",
        kills.samples
    );

    // 4. The old table (kept by the swaps) dropped by `sluice cleanup`, clients still writing.
    begin(&clients);
    let r = sluice(p, &urls[0], &["cleanup"], None).await;
    end(&clients);
    assert_eq!(r.code, 0, "{r:?}");
    let clean = report("sluice cleanup", &clients);
    assert_eq!(
        clean.auto, [0; 3],
        "autocommit clients saw errors: {:?}",
        clean.samples
    );

    // 5. For comparison, the ALTER as written (TOI): writes on every node wait for its whole
    // duration.
    let back = "ALTER TABLE accounts MODIFY balance BIGINT NOT NULL;";
    write("5_back_to_bigint.sql", back);
    begin(&clients);
    let up = sluice(p, &urls[0], &["up", "--as-written"], None).await;
    end(&clients);
    assert_eq!(up.code, 0, "{up:?}");
    exec(&admin, &format!("ALTER TABLE `{TWIN_DB}`.{}", &back[12..])).await;
    let toi = report("the ALTER as written (TOI)", &clients);

    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        bounded("stopping a client", h).await.unwrap();
    }

    // Every node holds exactly the rows the clients' successful writes made, under the
    // definition the statements give as written.
    let mut want = BTreeMap::new();
    let mut writes = 0;
    let mut errors = Vec::new();
    for (n, s) in clients.iter().enumerate() {
        let mut s = s.lock().unwrap();
        want.extend(s.rows.iter().map(|(k, v)| (*k, *v)));
        s.run.end(Instant::now());
        let w = &s.run;
        writes += w.writes;
        eprintln!(
            "galera: client {} over the run: {} writes, {} errors, worst gap {} ms; latency {}",
            if n < 3 {
                format!("node {}", n + 1)
            } else {
                "node 2 (transactions)".into()
            },
            w.writes,
            w.errors,
            w.worst.as_millis(),
            w.histogram()
        );
        errors.push((w.errors, w.not_deadlock, w.samples.clone()));
    }
    // The copy's bar, 0 autocommit errors, is asserted per phase above (the copy, the kills and
    // reruns, cleanup). Over the whole run the ALTERs as written (the ADD INDEX, the last ALTER,
    // and both copying changes unless the copy runs) are the server's under TOI alone: it re-runs
    // an aborted autocommit statement once, and a second abort reaches the client as 1213 (seen
    // once in a full-suite run, and once in the last ALTER of a run with the copy on;
    // bench/galera_toi_aborts.sh shows the same without sluice). So any error but 1213 fails the
    // test. The transaction client may get 1213 only: each DDL under TOI aborts the transactions
    // open on the table on every node, which the server cannot re-run (theirs to retry).
    for (n, (_, not_deadlock, samples)) in errors[..3].iter().enumerate() {
        assert_eq!(
            *not_deadlock,
            0,
            "node {}: autocommit errors other than 1213: {samples:?}",
            n + 1
        );
    }
    assert_eq!(
        errors[3].1, 0,
        "transaction client: errors other than 1213: {:?}",
        errors[3].2
    );
    let mut sums = Vec::new();
    for url in urls {
        let got = balances(url).await;
        assert_eq!(got.len(), want.len(), "{url}: row count");
        let wrong: Vec<_> = want
            .iter()
            .filter(|(k, v)| got.get(k) != Some(v))
            .take(5)
            .map(|(k, v)| (k, v, got.get(k)))
            .collect();
        assert!(
            wrong.is_empty(),
            "{url}: rows differ (id, want, got): {wrong:?}"
        );
        assert_eq!(
            show_create(url, DB, "accounts").await,
            show_create(url, TWIN_DB, "accounts").await,
            "{url}"
        );
        assert_eq!(copy_objects(url).await, Vec::<String>::new(), "{url}");
        sums.push(checksum(url).await);
    }
    // Every column, not only the balances: the three nodes hold the same table.
    assert!(
        sums.iter().all(|c| *c == sums[0]),
        "checksums differ between nodes: {sums:?}"
    );
    // A DROP COLUMN, which runs in two phases elsewhere (issue 14): refused on Galera before
    // anything changes (twice), with the cause and `--as-written` as the way to drop in one step.
    std::fs::write(
        mig.join("6_drop_note.sql"),
        "-- sluice:up\nALTER TABLE accounts DROP COLUMN note;\n",
    )
    .unwrap();
    for round in 0..2 {
        let r = sluice(p, &urls[0], &["up"], None).await;
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
    let up = sluice(p, &urls[0], &["up", "--as-written"], None).await;
    assert_eq!(up.code, 0, "{up:?}");
    for url in urls {
        assert_eq!(column_type(url, "note").await, None, "{url}");
    }
    // A table rename, which runs in two phases elsewhere (issue 14): refused the same way, the
    // table unchanged on every node (its columns still read under the old name).
    std::fs::write(
        mig.join("7_rename.sql"),
        "-- sluice:up\nRENAME TABLE accounts TO clients;\n",
    )
    .unwrap();
    for round in 0..2 {
        let r = sluice(p, &urls[0], &["up"], None).await;
        assert_eq!(r.code, 2, "round {round}: {r:?}");
        assert!(r.stderr.contains("the server is a Galera node"), "{r:?}");
        assert!(r.stderr.contains("--as-written"), "{r:?}");
        for url in urls {
            assert!(column_type(url, "id").await.is_some(), "{url}");
        }
    }
    // A lone DROP TABLE (the same version, its file rewritten), in two phases elsewhere too:
    // refused the same way.
    std::fs::write(
        mig.join("7_rename.sql"),
        "-- sluice:up\nDROP TABLE accounts;\n",
    )
    .unwrap();
    for round in 0..2 {
        let r = sluice(p, &urls[0], &["up"], None).await;
        assert_eq!(r.code, 2, "round {round}: {r:?}");
        assert!(r.stderr.contains("the server is a Galera node"), "{r:?}");
        for url in urls {
            assert!(column_type(url, "id").await.is_some(), "{url}");
        }
    }
    eprintln!(
        "galera: cluster up in {:.1} s, test {:.1} s, {writes} client writes; the ALTER as written: {:?} autocommit \
         error(s), {} transaction error(s)",
        started.as_secs_f64(),
        t0.elapsed().as_secs_f64(),
        toi.auto,
        toi.tx
    );
}

/// The README's open problem reduced (fact finding, not run by default: set
/// SLUICE_TEST_GALERA_TRIGGER=1): prepared-statement clients on every node while node 1 creates a
/// log table and an AFTER UPDATE trigger writing into it under TOI, then (second kind of round)
/// replaces it with `CREATE OR REPLACE TRIGGER` writing into another table, as the tried lock-free
/// copy did. Prints each round's gaps and errors. Measured once: 1213 on every node, no 1146, and
/// the DROP TABLE after the first replace round hung over `BOUND` (README "Galera clusters").
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn galera_trigger_created_under_toi_with_prepared_statement_clients() {
    if !Path::new(PROVIDER).exists() || std::env::var_os("SLUICE_TEST_GALERA_TRIGGER").is_none() {
        eprintln!("skipped: needs the Galera provider and SLUICE_TEST_GALERA_TRIGGER=1");
        return;
    }
    START.get_or_init(Instant::now);
    let cluster = Cluster::start(1);
    let urls = &cluster.urls;
    let admin = urls[0].replace(&format!("/{DB}"), "/mysql");
    for sql in [
        format!("CREATE DATABASE `{DB}`"),
        format!("CREATE TABLE `{DB}`.accounts (id BIGINT PRIMARY KEY, balance INT NOT NULL, note VARCHAR(50))"),
        format!("INSERT INTO `{DB}`.accounts SELECT seq, 100, 'seed' FROM seq_1_to_{ROWS}"),
    ] {
        exec(&admin, &sql).await;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut handles = Vec::new();
    let mut clients = Vec::new();
    for n in 0..3u64 {
        let (h, s) = writer(
            urls[n as usize].clone(),
            n,
            stop.clone(),
            std::env::var_os("SLUICE_TEST_GALERA_TEXT").is_some(),
        );
        handles.push(h);
        clients.push(s);
    }
    let (h, s) = tx_writer(
        urls[1].clone(),
        stop.clone(),
        std::env::var_os("SLUICE_TEST_GALERA_TEXT").is_some(),
    );
    handles.push(h);
    clients.push(s);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let log = "CREATE TRIGGER accounts_log AFTER UPDATE ON accounts FOR EACH ROW \
               INSERT INTO accounts_chg (id) VALUES (NEW.id)";
    let mut total = (0, 0);
    for round in 0..6 {
        let replace = round % 2 == 1;
        begin(&clients);
        exec(
            &urls[0],
            "CREATE TABLE accounts_chg (n BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL)",
        )
        .await;
        exec(&urls[0], log).await;
        if replace {
            tokio::time::sleep(Duration::from_millis(500)).await;
            exec(
                &urls[0],
                "CREATE TABLE accounts_shadow (id BIGINT PRIMARY KEY, balance INT NOT NULL)",
            )
            .await;
            exec(
                &urls[0],
                "CREATE OR REPLACE TRIGGER accounts_log AFTER UPDATE ON accounts FOR EACH ROW \
                 REPLACE INTO accounts_shadow (id, balance) VALUES (NEW.id, NEW.balance)",
            )
            .await;
        }
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let label = if replace {
            "trigger created, then replaced, under TOI"
        } else {
            "trigger created under TOI"
        };
        end(&clients);
        let tally = report(label, &clients);
        total.0 += tally.auto.iter().sum::<u64>();
        total.1 += tally.tx;
        exec(&urls[0], "DROP TRIGGER accounts_log").await;
        exec(&urls[0], "DROP TABLE accounts_chg").await;
        if replace {
            exec(&urls[0], "DROP TABLE accounts_shadow").await;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        bounded("stopping a client", h).await.unwrap();
    }
    eprintln!(
        "galera: triggers under TOI, 6 rounds: {} autocommit error(s), {} transaction error(s)",
        total.0, total.1
    );
}
