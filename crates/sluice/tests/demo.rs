//! `sluice demo` end to end on both engines: the side-by-side table and the HTML report, and
//! nothing left behind, whether it runs to the end or is stopped by Ctrl-C or SIGTERM in any phase.

mod common;

use common::Run;
use mysql_async::prelude::Queryable;
use sluice_testkit::Server;
use std::io::BufRead;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const ENGINES: [Server; 2] = [Server::Postgres, Server::MariaDb];

fn admin(server: Server) -> String {
    match server {
        Server::Postgres => sluice_testkit::postgres_admin_url(),
        Server::MariaDb => sluice_testkit::mysql_admin_url(),
    }
}

/// `sluice demo ARGS` with its temporary directory (where the migrations and the default report
/// go) set to `tmp`, and no DATABASE_URL from the environment.
fn demo(tmp: &std::path::Path, args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_sluice"));
    c.arg("demo")
        .args(args)
        .current_dir(tmp)
        .env("TMPDIR", tmp)
        .env_remove("DATABASE_URL")
        .env_remove("SLUICE_LOG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

/// The databases a demo run (process `pid`) created and still has on the server.
async fn left_behind(server: Server, pid: u32) -> Vec<String> {
    let pattern = format!("sluice\\_rehearse\\_%\\_{pid}\\_%");
    match server {
        Server::Postgres => {
            let (c, conn) = tokio_postgres::connect(&admin(server), tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            c.query(
                "SELECT datname::text FROM pg_database WHERE datname LIKE $1",
                &[&pattern],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
        }
        Server::MariaDb => {
            let mut c = mysql_async::Conn::from_url(admin(server)).await.unwrap();
            let names: Vec<String> = c
                .exec(
                    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME LIKE ?",
                    (pattern,),
                )
                .await
                .unwrap();
            c.disconnect().await.ok();
            names
        }
    }
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// On each engine, a small demo runs to the end: exit 0, both runs in the side-by-side table
/// with every row, the HTML report at the default path, and nothing else left anywhere.
#[tokio::test]
async fn demo_runs_end_to_end_on_both_engines() {
    for server in ENGINES {
        let tmp = tempfile::tempdir().unwrap();
        let child = demo(
            tmp.path(),
            &["--rows", "20000", "--database-url", &admin(server)],
        )
        .spawn()
        .unwrap();
        let pid = child.id();
        let r = common::wait_bounded(child, 300, "sluice demo");
        assert_eq!(r.code, 0, "{server:?}: {r:?}");
        // The side-by-side table: a header naming both runs, then one line per measure with a
        // value for each run.
        let lines: Vec<&str> = r.stdout.lines().collect();
        let head = lines
            .iter()
            .position(|l| l.starts_with("during the migration"))
            .unwrap_or_else(|| panic!("{server:?}: no side-by-side table: {r:?}"));
        let cols: Vec<&str> = lines[head].split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "during",
                "the",
                "migration",
                "as",
                "written",
                "sluice",
                "ratio"
            ],
            "{server:?}: {r:?}"
        );
        // Each row: the measure in 24 columns, then 12 for each run and 12 for their ratio (the
        // verdict has no ratio).
        let measures = [
            "p99",
            "max",
            "longest stall",
            "errors",
            "tx/s",
            "migration time",
            "verdict",
        ];
        for (i, measure) in measures.iter().enumerate() {
            let row: Vec<char> = lines[head + 1 + i].chars().collect();
            let cell = |k: usize| -> String {
                row[(26 + 12 * k).min(row.len())..(26 + 12 * (k + 1)).min(row.len())]
                    .iter()
                    .collect::<String>()
                    .trim()
                    .to_string()
            };
            let name: String = row[..26.min(row.len())].iter().collect();
            assert_eq!(name.trim(), *measure, "{server:?}: row {i}: {r:?}");
            let cells = if *measure == "verdict" { 2 } else { 3 };
            assert_eq!(row.len(), 26 + 12 * cells, "{server:?}: {measure}: {r:?}");
            for k in 0..cells {
                assert!(!cell(k).is_empty(), "{server:?}: {measure} cell {k}: {r:?}");
            }
            if *measure == "verdict" {
                for k in 0..2 {
                    assert!(
                        ["pass", "FAIL"].contains(&cell(k).as_str()),
                        "{server:?}: {r:?}"
                    );
                }
            }
        }
        assert!(
            r.stdout.contains("20000 row(s)"),
            "{server:?}: the clones hold every row: {r:?}"
        );
        let report = tmp.path().join("sluice-demo.html");
        assert!(
            r.stdout
                .contains(&format!("report: {} (open it", report.display())),
            "{server:?}: the report's path is printed: {r:?}"
        );
        let page = std::fs::read_to_string(&report).unwrap();
        assert!(
            page.starts_with("<!doctype html>") && page.trim_end().ends_with("</html>"),
            "{server:?}: not an HTML page"
        );
        assert!(page.contains("As written vs. sluice"), "{server:?}");
        in_a_browser(&report, &page, tmp.path());
        // The migrations' directory went with the databases: only the report stays.
        assert_eq!(files_in(tmp.path()), ["sluice-demo.html"], "{server:?}");
        assert_eq!(left_behind(server, pid).await, Vec::<String>::new());
    }
}

/// The report as a real browser renders it: headless Chromium loads the file, logs no console
/// message, keeps every table and chart in its DOM, and paints a screenshot. Chromium is not on a
/// fresh machine: CI installs it and sets SLUICE_REQUIRE_BROWSER, so there a missing browser fails;
/// elsewhere the check says it was skipped.
fn in_a_browser(report: &std::path::Path, page: &str, tmp: &std::path::Path) {
    let Some(browser) = ["chromium", "chromium-browser", "google-chrome"]
        .into_iter()
        .find(|b| {
            Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
    else {
        assert!(
            std::env::var_os("SLUICE_REQUIRE_BROWSER").is_none(),
            "no headless browser: install Debian's chromium (`.ci/run` does)"
        );
        eprintln!("skipped the browser check: no chromium on this machine");
        return;
    };
    let shot = tmp.join("report.png");
    let run = |extra: &[&str]| {
        let out = Command::new(browser)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--window-size=1280,2000",
            ])
            .arg(format!(
                "--user-data-dir={}",
                tmp.join("browser-profile").display()
            ))
            .args(["--enable-logging=stderr", "--v=0"])
            .args(extra)
            .arg(format!("file://{}", report.display()))
            .stdin(Stdio::null())
            .output()
            .expect("start the browser");
        assert!(out.status.success(), "{browser}: {out:?}");
        let log = String::from_utf8_lossy(&out.stderr).into_owned();
        // Console messages (errors included) are logged as CONSOLE lines; the page has no
        // script, so any one is a fault of the page.
        let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
        assert!(
            console.is_empty(),
            "the report logged to the console: {console:?}"
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let dom = run(&["--dump-dom"]);
    for element in ["<table", "<svg", "<h1", "<h2"] {
        assert_eq!(
            dom.matches(element).count(),
            page.matches(element).count(),
            "the browser's DOM lost some {element}: the page does not parse as written"
        );
    }
    let screenshot = format!("--screenshot={}", shot.display());
    run(&[screenshot.as_str()]);
    let png = std::fs::read(&shot).expect("the browser wrote a screenshot");
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 20_000,
        "a screenshot of a blank page ({} bytes)",
        png.len()
    );
    if let Some(keep) = std::env::var_os("SLUICE_KEEP_SCREENSHOT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    std::fs::remove_file(&shot).unwrap();
    std::fs::remove_dir_all(tmp.join("browser-profile")).unwrap();
}

/// A demo running in the background, its stderr read line by line as it comes.
struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn start(tmp: &std::path::Path, args: &[&str]) -> Running {
        let mut child = demo(tmp, args).spawn().unwrap();
        let err = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(err).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Running {
            child,
            lines,
            seen: vec![],
        }
    }

    /// Waits for a stderr line containing `text`.
    fn wait_for(&mut self, text: &str, secs: u64) {
        let deadline = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < deadline {
            if let Ok(l) = self.lines.recv_timeout(Duration::from_millis(100)) {
                let hit = l.contains(text);
                self.seen.push(l);
                if hit {
                    return;
                }
            }
        }
        panic!(
            "no `{text}` within {secs}s; stderr so far:\n{}",
            self.seen.join("\n")
        );
    }

    fn finish(mut self, secs: u64) -> Run {
        let r = common::wait_bounded(self.child, secs, "interrupted sluice demo");
        self.seen.extend(self.lines.iter());
        Run {
            stderr: self.seen.join("\n"),
            ..r
        }
    }
}

/// Ctrl-C and SIGTERM in each phase, on each engine: while the table is filled (the demo's own
/// work) and while the workload runs on a clone (the rehearsal's): exit 130 or 143 as shells report
/// the signal, and every database and file the demo made is gone.
#[tokio::test]
async fn a_signal_drops_everything_in_every_phase() {
    // (the stderr line that shows the phase has begun, rows: enough to still be in it)
    let phases = [
        ("filling accounts with", "5000000"),
        ("[as written] workload:", "20000"),
    ];
    // (kill's signal name, exit code, what the error says)
    let signals = [
        (
            "INT",
            130,
            "error: interrupted (Ctrl-C): the demo stopped and dropped the databases it created",
        ),
        (
            "TERM",
            143,
            "error: terminated (SIGTERM): the demo stopped and dropped the databases it created",
        ),
    ];
    for server in ENGINES {
        for (phase, rows) in phases {
            for (signal, code, says) in signals {
                let case = format!("{server:?}, SIG{signal} while `{phase}`");
                let tmp = tempfile::tempdir().unwrap();
                let mut run = Running::start(
                    tmp.path(),
                    &["--rows", rows, "--database-url", &admin(server)],
                );
                run.wait_for(phase, 120);
                let pid = run.child.id();
                assert!(
                    !left_behind(server, pid).await.is_empty(),
                    "{case}: the demo database exists before the signal"
                );
                let sent = Command::new("kill")
                    .args([&format!("-{signal}"), &pid.to_string()])
                    .status()
                    .unwrap();
                assert!(sent.success());
                let r = run.finish(60);
                assert_eq!(r.code, code, "{case}: {r:?}");
                assert!(r.stderr.contains(says), "{case}: {r:?}");
                assert!(
                    !r.stdout.contains("during the migration"),
                    "{case}: no table after a signal: {r:?}"
                );
                assert_eq!(
                    left_behind(server, pid).await,
                    Vec::<String>::new(),
                    "{case}"
                );
                assert_eq!(files_in(tmp.path()), Vec::<String>::new(), "{case}");
            }
        }
    }
}

/// Bad input fails before anything is created: exit 2, the cause and the fix.
#[tokio::test]
async fn bad_input_is_refused_before_anything_is_created() {
    let cases: [(&[&str], &str); 3] = [
        (&["--rows", "0"], "--rows must be at least 1"),
        (&["--rows", "many"], "invalid value 'many' for '--rows <N>'"),
        (
            &["--database-url", "redis://127.0.0.1/0"],
            "unsupported database URL scheme `redis://`",
        ),
    ];
    for (args, cause) in cases {
        let tmp = tempfile::tempdir().unwrap();
        let child = demo(tmp.path(), args).spawn().unwrap();
        let pid = child.id();
        let r = common::wait_bounded(child, 30, "sluice demo");
        assert_eq!(r.code, 2, "{args:?}: {r:?}");
        assert!(r.stderr.contains(cause), "{args:?}: {r:?}");
        assert_eq!(
            left_behind(Server::Postgres, pid).await,
            Vec::<String>::new()
        );
        assert_eq!(files_in(tmp.path()), Vec::<String>::new());
    }
}
