//! Helpers for driving the `sluice` binary against real databases.
#![allow(dead_code)]

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
            .env_remove("SLUICE_LOG")
            .stdin(Stdio::null());
        c
    }

    /// Runs sluice to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        self.command(args).output().expect("run sluice").into()
    }

    /// Starts sluice in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice")
    }

    pub fn status_json(&self) -> serde_json::Value {
        let r = self.run(&["status", "--json"]);
        assert_eq!(r.code, 0, "{r:?}");
        serde_json::from_str(&r.stdout).expect("status json")
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

/// Waits for a child with a generous bound, so a hang fails the test instead of blocking CI.
pub fn wait_bounded(mut child: Child, secs: u64, what: &str) -> Run {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    loop {
        if let Some(_status) = child.try_wait().unwrap() {
            return child.wait_with_output().unwrap().into();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out: Run = child.wait_with_output().unwrap().into();
            panic!("{what} did not finish within {secs}s (hung?): {out:?}");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
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
