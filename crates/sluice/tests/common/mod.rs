//! Helpers for driving the `sluice` binary against real databases.
#![allow(dead_code)]

pub mod mariadb_two_versions;
pub mod pg_clients;

use sluice_testkit::{Server, TestDb};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

pub struct Project {
    pub dir: tempfile::TempDir,
    pub db: TestDb,
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
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

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Project {
    pub async fn new(server: Server) -> Project {
        let db = match server {
            Server::Postgres => TestDb::postgres().await,
            Server::MariaDb => TestDb::mariadb().await,
        };
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir(dir.path().join("migrations")).unwrap();
        Project { dir, db }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The tables and views of the test database (its current schema), sorted.
    #[allow(dead_code)]
    pub async fn table_names(&self) -> Vec<String> {
        use mysql_async::prelude::Queryable;
        let q = "SELECT table_name FROM information_schema.tables WHERE table_schema = ";
        let mut names: Vec<String> = match self.db.server {
            Server::Postgres => self
                .db
                .pg()
                .await
                .query(&format!("{q} current_schema()"), &[])
                .await
                .unwrap()
                .iter()
                .map(|r| r.get(0))
                .collect(),
            Server::MariaDb => self
                .db
                .my()
                .await
                .query(format!("{q} DATABASE()"))
                .await
                .unwrap(),
        };
        names.sort();
        names
    }

    pub fn migration_path(&self, file: &str) -> PathBuf {
        self.path().join("migrations").join(file)
    }

    pub fn write(&self, file: &str, text: &str) {
        std::fs::write(self.migration_path(file), text).unwrap();
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
        c.args(args)
            .current_dir(self.path())
            .env("DATABASE_URL", &self.db.url)
            .env("SLUICE_APP_VERSION", "test-app-1")
            // Test tables are tiny: without this every rewrite and online copy under test would
            // run as written. The tests of that threshold set it themselves.
            .env("SLUICE_AS_WRITTEN_BELOW_ROWS", "0")
            .env_remove("SLUICE_LOG")
            .stdin(Stdio::null());
        c
    }

    /// Runs sluice to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run sluice").into()
    }

    /// Runs sluice with the test hook `SLUICE_CRASH_AT=point` (it exits where the point is
    /// reached, as a kill -9 there would leave things), bounded so a hang fails the test.
    pub fn run_crashing(&self, args: &[&str], point: &str) -> Run {
        let child = self
            .command(args)
            .env("SLUICE_CRASH_AT", point)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice");
        wait_bounded(child, 300, &format!("sluice {args:?} crashing at {point}"))
    }

    /// Starts sluice in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice")
    }

    /// `pg_dump --schema-only --no-owner` without sluice's own schema, and without the random key
    /// of `\restrict` / `\unrestrict` (so two dumps of one schema are equal).
    pub fn pg_dump_schema(&self) -> String {
        let o = Command::new("pg_dump")
            .args([
                "--schema-only",
                "--no-owner",
                "--exclude-schema=sluice",
                &self.db.url,
            ])
            .output()
            .expect("pg_dump");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("\\restrict") && !l.starts_with("\\unrestrict"))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn status_json(&self) -> serde_json::Value {
        let r = self.run(&["status", "--json"]);
        assert_eq!(r.code, 0, "{r:?}");
        serde_json::from_str(&r.stdout).expect("status json")
    }

    /// The one value a PostgreSQL query of one row and one column gives, as text (NULL: None).
    pub async fn pg_text(&self, sql: &str) -> Option<String> {
        self.db
            .pg()
            .await
            .query_one(&format!("SELECT ({sql})::text"), &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
            .get(0)
    }

    /// The state `sluice status --json` gives migration `v`, if it lists it.
    pub fn state_of(&self, v: i64) -> Option<String> {
        self.states()
            .into_iter()
            .find(|(x, _)| *x == v)
            .map(|(_, s)| s)
    }

    /// `version -> state` from `sluice status --json`.
    pub fn states(&self) -> Vec<(i64, String)> {
        self.status_json()["migrations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["version"].as_i64().unwrap(),
                    m["status"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }
}

/// The JSON summary `sluice fleet ... --json` prints, parsed (the run shown when it is not JSON).
pub fn fleet_json(r: &Run) -> serde_json::Value {
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"))
}

/// One target of a fleet's JSON summary.
#[derive(Debug, Clone, PartialEq)]
pub struct FleetTarget {
    pub target: String,
    pub outcome: String,
    /// -1 when the summary gives none.
    pub exit_code: i64,
    pub detail: Option<String>,
}

/// Each target of a fleet's JSON summary, in the targets file's order.
pub fn fleet_targets(v: &serde_json::Value) -> Vec<FleetTarget> {
    v["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| FleetTarget {
            target: t["target"].as_str().unwrap().to_string(),
            outcome: t["outcome"].as_str().unwrap().to_string(),
            exit_code: t["exit_code"].as_i64().unwrap_or(-1),
            detail: t["detail"].as_str().map(str::to_string),
        })
        .collect()
}

/// Waits for a child with a generous bound, so a hang fails the test instead of blocking CI.
pub fn wait_bounded(mut child: Child, secs: u64, what: &str) -> Run {
    // The pipes are read while the child runs: a child that writes more than a pipe holds (64 KiB)
    // would otherwise block on its write and never exit.
    let drain = |pipe: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut bytes = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut bytes);
            }
            String::from_utf8_lossy(&bytes).into_owned()
        })
    };
    let out = drain(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let err = drain(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn std::io::Read + Send>),
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let (code, timed_out) = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break (status.code().unwrap_or(-1), false);
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let status = child.wait().unwrap();
            break (status.code().unwrap_or(-1), true);
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let run = Run {
        code,
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    if timed_out {
        panic!("{what} did not finish within {secs}s (hung?): {run:?}");
    }
    run
}

/// Where two texts (a twin's rows as written, then staged) first differ: the byte, and `context`
/// bytes around it in each, for a failure message.
pub fn first_difference(written: &str, staged: &str, context: usize) -> String {
    let at = written
        .bytes()
        .zip(staged.bytes())
        .position(|(a, b)| a != b)
        .unwrap_or(written.len().min(staged.len()));
    let around = |s: &'_ str| -> String {
        let (mut from, mut to) = (at.saturating_sub(context), (at + context).min(s.len()));
        while !s.is_char_boundary(from) {
            from -= 1;
        }
        while !s.is_char_boundary(to) {
            to += 1;
        }
        s[from..to].to_string()
    };
    format!(
        "at byte {at}:\n  as written: {}\n  staged:     {}",
        around(written),
        around(staged)
    )
}

/// Polls `f` until it returns true, failing the test after `secs`.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f().await {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A private PostgreSQL 15 on a free port in a temp dir, for what the shared test server must not
/// be changed for (preloaded libraries, replication connections). Stopped on drop.
pub struct PrivatePg {
    pub dir: tempfile::TempDir,
    pub port: u16,
    pub root: bool,
}

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";

impl PrivatePg {
    pub fn tool(&self, name: &str) -> std::process::Command {
        let path = format!("{PG_BIN}/{name}");
        // initdb and postgres refuse to run as root: run them as the postgres OS user then.
        if self.root {
            let mut c = std::process::Command::new("runuser");
            c.args(["-u", "postgres", "--", &path]);
            c
        } else {
            std::process::Command::new(path)
        }
    }

    /// One that preloads pg_stat_statements.
    pub fn start() -> Option<PrivatePg> {
        Self::start_with("-c shared_preload_libraries=pg_stat_statements")
    }

    /// With `extra` server options; None where PostgreSQL 15's server binaries are missing.
    pub fn start_with(extra: &str) -> Option<PrivatePg> {
        let pg = Self::unstarted()?;
        let out = pg
            .tool("initdb")
            .args([
                "-A",
                "trust",
                "-U",
                "postgres",
                "--no-sync",
                "-E",
                "UTF8",
                "-D",
            ])
            .arg(pg.data())
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {out:?}");
        pg.launch(extra);
        Some(pg)
    }

    /// A hot standby streaming from `self` (`pg_basebackup -R`), started with `extra` options;
    /// None where the base backup cannot be taken.
    pub fn standby(&self, extra: &str) -> Option<PrivatePg> {
        let standby = Self::unstarted()?;
        let out = standby
            .tool("pg_basebackup")
            .args(["-h", "127.0.0.1", "-p", &self.port.to_string()])
            .args(["-U", "postgres", "-X", "stream", "-c", "fast", "-R", "-D"])
            .arg(standby.data())
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!("skipped: pg_basebackup failed: {out:?}");
            return None;
        }
        standby.launch(&format!("-c hot_standby=on {extra}"));
        Some(standby)
    }

    /// A temp dir the server user owns and a free port; None where PostgreSQL 15's server binaries
    /// (or, as root, the postgres user to run them as) are missing.
    fn unstarted() -> Option<PrivatePg> {
        if !std::path::Path::new(PG_BIN).join("initdb").exists() {
            return None;
        }
        let uid = std::process::Command::new("id").arg("-u").output().unwrap();
        let root = String::from_utf8_lossy(&uid.stdout).trim() == "0";
        let has_postgres_user = std::process::Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success());
        if root && !has_postgres_user {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        if root {
            let ok = std::process::Command::new("chown")
                .args(["postgres", dir.path().to_str().unwrap()])
                .status()
                .unwrap();
            assert!(ok.success());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        Some(PrivatePg { dir, port, root })
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts the server of the data directory on its port with `extra` options.
    fn launch(&self, extra: &str) {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off {extra}",
            self.port,
            self.dir.path().display()
        );
        let out = self
            .tool("pg_ctl")
            .args(["-w", "-t", "30", "-o", &opts, "-l"])
            .arg(self.dir.path().join("log"))
            .arg("-D")
            .arg(self.data())
            .arg("start")
            .output()
            .unwrap();
        assert!(out.status.success(), "pg_ctl start: {out:?}");
    }

    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }
}

impl Drop for PrivatePg {
    fn drop(&mut self) {
        let _ = self
            .tool("pg_ctl")
            .args(["-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

/// Runs `sluice <args>` held at `point` (`SLUICE_PAUSE_AT`), runs `act` there, lets it go on and
/// waits for it (`crash`: `SLUICE_CRASH_AT` too). Panics if it ends without reaching the point.
#[allow(dead_code)]
pub async fn paused_at<F, Fut>(
    p: &Project,
    args: &[&str],
    point: &str,
    crash: Option<&str>,
    act: F,
) -> Run
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let resume = p.path().join("resume");
    let paused = p.path().join("resume.paused");
    let mut cmd = p.command(args);
    cmd.env("SLUICE_PAUSE_AT", point)
        .env("SLUICE_PAUSE_FILE", &resume)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(c) = crash {
        cmd.env("SLUICE_CRASH_AT", c);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !paused.exists() {
        if child.try_wait().unwrap().is_some() || std::time::Instant::now() > deadline {
            let r = wait_bounded(child, 5, point);
            panic!("{point}: never paused there: {r:?}");
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    act().await;
    std::fs::write(&resume, "go").unwrap();
    wait_bounded(child, 120, point)
}
