//! A private mariadbd in a temporary directory, for tests that need server-wide settings the shared
//! server must not get (a binary log, the general log, a replica): bootstrapped with the installed
//! `mariadb-install-db`, started on a free port, stopped and removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct PrivateMariaDb {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl Drop for PrivateMariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The installed server binary `name`, where Debian and the tarballs put it.
pub fn mariadb_binary(name: &str) -> Option<String> {
    [
        "/usr/sbin",
        "/usr/bin",
        "/usr/local/bin",
        "/usr/local/mysql/bin",
    ]
    .iter()
    .map(|d| format!("{d}/{name}"))
    .find(|p| Path::new(p).exists())
}

/// A port below 32768 that is free now (the ephemeral range is left to the clients, whose
/// outgoing connections could take it between this check and the server's bind).
/// Each call starts elsewhere, so two servers started at once by one test do not both pick it.
fn free_port() -> u16 {
    static CALLS: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);
    let call = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let seed = (std::process::id() as u16).wrapping_add(call.wrapping_mul(997));
    (0..2000)
        .map(|i| 20000 + (seed.wrapping_add(i * 7)) % 12000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 32768")
}

impl PrivateMariaDb {
    /// Bootstraps and starts a server with `args` added to mariadbd's own (`{dir}` in an argument
    /// is the server's directory). None when the server binaries are not installed.
    pub async fn start(args: &[&str]) -> Option<PrivateMariaDb> {
        let (install, server) = (
            mariadb_binary("mariadb-install-db")?,
            mariadb_binary("mariadbd")?,
        );
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path().to_path_buf();
        let data = d.join("data");
        // Its own tmpdir: bootstraps and servers sharing /tmp collide on their temporary tables
        // (`#sql-temptable-…`), and a bootstrap then fails with 1051 on mysql.tmp_user_sys.
        let tmp = d.join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        // mariadbd refuses to run as root unless told to; otherwise it runs as whoever runs the test.
        let user = String::from_utf8_lossy(&Command::new("id").arg("-un").output().unwrap().stdout)
            .trim()
            .to_string();
        let out = Command::new(install)
            .args([
                "--no-defaults",
                "--auth-root-authentication-method=normal",
                "--skip-test-db",
            ])
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--user={user}"))
            .arg(format!("--tmpdir={}", tmp.display()))
            .output()
            .unwrap();
        assert!(out.status.success(), "mariadb-install-db: {out:?}");
        let port = free_port();
        let child = Command::new(server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--port={port}"))
            .arg("--bind-address=127.0.0.1")
            .arg(format!("--socket={}", d.join("s.sock").display()))
            .arg(format!("--pid-file={}", d.join("p.pid").display()))
            .arg(format!("--log-error={}", d.join("err.log").display()))
            .arg(format!("--tmpdir={}", tmp.display()))
            .arg(format!("--user={user}"))
            .arg("--innodb-buffer-pool-size=32M")
            .args(
                args.iter()
                    .map(|a| a.replace("{dir}", &d.display().to_string())),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let s = PrivateMariaDb { port, child, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(c) = mysql_async::Conn::from_url(s.url("mysql")).await {
                let _ = c.disconnect().await;
                return Some(s);
            }
            assert!(
                Instant::now() < deadline,
                "private mariadbd on {port} did not start: {}",
                std::fs::read_to_string(s.dir().join("err.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn url(&self, db: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{db}", self.port)
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
}
