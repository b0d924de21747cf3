//! The command line as a user meets it: each subcommand's help lists the options it reads, shell
//! completions and man pages are generated for every subcommand. No database needed.

use std::process::Command;

fn sluice(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .expect("run sluice");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The subcommands, read from `sluice --help` (so a new one is covered without a row here).
fn subcommands() -> Vec<String> {
    let (code, help, _) = sluice(&["--help"]);
    assert_eq!(code, 0);
    let list = help
        .split("Commands:\n")
        .nth(1)
        .expect("a Commands section")
        .split("\n\n")
        .next()
        .unwrap();
    let subs: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next().map(str::to_string))
        .filter(|s| s != "help")
        .collect();
    assert!(subs.len() >= 19, "{subs:?}");
    subs
}

/// The options under one heading of a help text (`--long` names).
fn section(help: &str, heading: &str) -> Vec<String> {
    let Some(rest) = help.split(&format!("\n{heading}:\n")).nth(1) else {
        return vec![];
    };
    rest.split("\n\n")
        .next()
        .unwrap()
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with("--"))
                .map(|w| w.trim_end_matches(',').trim_end_matches("...").to_string())
        })
        .collect()
}

const RUN: &[&str] = &["--lock-wait", "--app-version"];
const LOCKS: &[&str] = &["--lock-timeout", "--lock-retry-for", "--exclusive-timeout"];
const PACING: &[&str] = &[
    "--pace",
    "--latency-factor",
    "--probe-query",
    "--max-replica-lag-ms",
    "--throttle-query",
    "--target-batch-ms",
];
const ONLINE: &[&str] = &[
    "--chunk-ms",
    "--copy-commit-factor",
    "--max-threads-running",
    "--replica-url",
    "--max-replica-lag",
];
const GLOBAL: &[&str] = &[
    "--database-url",
    "--config",
    "--migrations-dir",
    "--verbose",
    "--quiet",
];

/// The options under the headings Run, Lock timeouts, Backfill pacing, Online copy.
type Sections = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

/// Per subcommand, exactly the runner options its help shows, heading by heading: the commands
/// that run migrations have them, the others none.
#[test]
fn each_subcommand_lists_only_the_runner_options_it_reads() {
    let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    let cat = |parts: &[&[&str]]| v(&parts.concat());
    let online_up = cat(&[ONLINE, &["--postpone-cutover"]]);
    let none = Vec::<String>::new;
    // Every subcommand not in this table: none at all.
    let table: Vec<(&str, Sections)> = vec![
        ("up", (v(RUN), v(LOCKS), v(PACING), online_up)),
        ("down", (v(RUN), v(LOCKS), v(PACING), v(ONLINE))),
        ("complete", (v(RUN), v(LOCKS), none(), none())),
        ("rollback", (v(RUN), v(LOCKS), none(), none())),
        ("rehearse", (none(), v(LOCKS), v(PACING), v(ONLINE))),
        ("cutover", (v(&RUN[..1]), v(&LOCKS[..2]), none(), v(ONLINE))),
        (
            "backfill",
            (v(&RUN[..1]), v(&LOCKS[..1]), v(PACING), none()),
        ),
        ("repair", (v(RUN), none(), none(), none())),
        ("baseline", (v(RUN), none(), none(), none())),
        ("import", (v(RUN), none(), none(), none())),
        ("drift", (v(RUN), none(), none(), none())),
        ("cleanup", (v(&RUN[..1]), none(), none(), none())),
    ];
    let runner_flags = cat(&[RUN, LOCKS, PACING, ONLINE, &["--postpone-cutover"]]);
    for sub in subcommands() {
        let (code, help, err) = sluice(&[&sub, "--help"]);
        assert_eq!(code, 0, "{sub}: {err}");
        let want = table
            .iter()
            .find(|t| t.0 == sub)
            .map(|t| t.1.clone())
            .unwrap_or_default();
        let got = (
            section(&help, "Run"),
            section(&help, "Lock timeouts"),
            section(&help, "Backfill pacing"),
            section(&help, "Online copy (MariaDB/MySQL)"),
        );
        assert_eq!(got, want, "`sluice {sub} --help`:\n{help}");
        // No runner option hides under another heading.
        let mentioned: Vec<&String> = runner_flags
            .iter()
            .filter(|f| help.contains(&format!("{f} ")) || help.contains(&format!("{f}\n")))
            .collect();
        let listed = [&want.0, &want.1, &want.2, &want.3]
            .map(|s| s.len())
            .iter()
            .sum::<usize>();
        assert_eq!(
            mentioned.len(),
            listed,
            "`sluice {sub} --help`: {mentioned:?}"
        );
        // demo, completions and man read no project: their help hides what they do not read.
        let global: Vec<String> = match sub.as_str() {
            "demo" => v(&["--database-url", "--verbose", "--quiet"]),
            "completions" | "man" => v(&["--verbose", "--quiet"]),
            _ => v(GLOBAL),
        };
        assert_eq!(section(&help, "Global options"), global, "{sub}");
    }
}

/// A runner option before the subcommand, or on one that does not read it, is refused with exit 2
/// and a tip naming the subcommands that have it; the global options work on either side.
#[test]
fn misplaced_runner_options_say_where_they_belong() {
    for (args, tip) in [
        (
            &["--lock-wait", "5", "up"][..],
            "tip: --lock-wait is an option of `sluice up`, `sluice complete`, `sluice rollback`, `sluice cutover`, `sluice cleanup`, `sluice down`, `sluice repair`, `sluice baseline`, `sluice import`, `sluice drift`, `sluice backfill` only: give it after the subcommand's name, e.g. `sluice up --lock-wait ...`",
        ),
        (
            &["lint", "--pace", "speed"][..],
            "tip: --pace is an option of `sluice up`, `sluice down`, `sluice backfill`, `sluice rehearse` only: give it after the subcommand's name, e.g. `sluice up --pace ...`",
        ),
        (
            &["status", "--postpone-cutover"][..],
            "tip: --postpone-cutover is an option of `sluice up` only: give it after the subcommand's name, e.g. `sluice up --postpone-cutover ...`",
        ),
    ] {
        let (code, out, err) = sluice(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(out.is_empty(), "{args:?}: {out}");
        assert!(
            err.starts_with(&format!("error: unexpected argument '{}' found", args.iter().find(|a| a.starts_with("--")).unwrap())),
            "{args:?}: {err}"
        );
        assert!(err.contains(tip), "{args:?}: {err}");
    }
    // Global options on either side of the subcommand reach it: the missing directory is named.
    for args in [
        &[
            "--migrations-dir",
            "/nonexistent-h5",
            "-q",
            "lint",
            "--target",
            "postgres:15",
        ][..],
        &[
            "lint",
            "--target",
            "postgres:15",
            "-q",
            "--migrations-dir",
            "/nonexistent-h5",
        ][..],
    ] {
        let (code, _, err) = sluice(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("/nonexistent-h5"), "{args:?}: {err}");
    }
}

#[test]
fn completions_cover_every_subcommand_in_every_shell() {
    let subs = subcommands();
    let dir = tempfile::tempdir().unwrap();
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let (code, script, err) = sluice(&["completions", shell]);
        assert_eq!(code, 0, "{shell}: {err}");
        assert!(script.len() > 1000, "{shell}: {} bytes", script.len());
        for sub in &subs {
            assert!(
                script.contains(sub.as_str()),
                "{shell} completion lacks {sub}"
            );
        }
        // Runner options complete on the subcommands that have them (fish spells them `-l lock-timeout`).
        assert!(script.contains("lock-timeout"), "{shell}");
        if shell == "bash" {
            let path = dir.path().join("sluice.bash");
            std::fs::write(&path, &script).unwrap();
            let check = Command::new("bash").arg("-n").arg(&path).output().unwrap();
            assert!(
                check.status.success(),
                "bash -n: {}",
                String::from_utf8_lossy(&check.stderr)
            );
        }
    }
    // A reader that closes early (`sluice completions bash | head`, `sluice rules | head`: every
    // command printing through the binary's output helpers) is no error.
    for args in [&["completions", "bash"][..], &["man"], &["rules"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert_eq!(String::from_utf8_lossy(&out.stderr), "", "{args:?}");
    }
    let (code, _, err) = sluice(&["completions", "tcsh"]);
    assert_eq!(code, 2);
    assert!(err.contains("invalid value 'tcsh'"), "{err}");
}

#[test]
fn man_pages_are_written_one_per_subcommand() {
    let subs = subcommands();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("man1");
    let (code, stdout, err) = sluice(&["man", "--out", out.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(stdout.is_empty(), "{stdout}");
    let mut want: Vec<String> = subs.iter().map(|s| format!("sluice-{s}.1")).collect();
    // A command with commands of its own (`fleet up`, …) gets a page for each of them too.
    for sub in &subs {
        let (_, help, _) = sluice(&[sub, "--help"]);
        if let Some(list) = help.split("Commands:\n").nth(1) {
            for l in list.split("\n\n").next().unwrap().lines() {
                match l.split_whitespace().next() {
                    Some("help") | None => {}
                    Some(nested) => want.push(format!("sluice-{sub}-{nested}.1")),
                }
            }
        }
    }
    want.push("sluice.1".into());
    want.sort();
    let mut got: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    got.sort();
    assert_eq!(got, want);
    for sub in &subs {
        let page = std::fs::read_to_string(out.join(format!("sluice-{sub}.1"))).unwrap();
        assert!(
            page.contains(&format!(".TH sluice-{sub} 1")),
            "{sub}: {}",
            &page[..page.len().min(300)]
        );
    }
    // Each page renders without a single troff warning (groff-base ships with man-db on Debian).
    for page in &want {
        let r = Command::new("groff")
            .args(["-k", "-man", "-Tutf8", "-ww", "-z"])
            .arg(out.join(page))
            .output()
            .expect("groff (Debian: groff-base)");
        assert!(r.status.success(), "{page}");
        assert_eq!(String::from_utf8_lossy(&r.stderr), "", "{page}");
    }
    let top = std::fs::read_to_string(out.join("sluice.1")).unwrap();
    for sub in &subs {
        assert!(
            top.contains(&format!("sluice\\-{sub}(1)")),
            "sluice.1 lacks {sub}"
        );
    }
    let (code, stdout, _) = sluice(&["man"]);
    assert_eq!(code, 0);
    assert_eq!(stdout, top, "`sluice man` prints sluice.1");
}

/// A global option given to a subcommand that does not read it is refused (exit 2), not ignored.
#[test]
fn a_global_option_a_subcommand_does_not_read_is_refused() {
    for (args, flag) in [
        (vec!["demo", "--config", "x.toml"], "--config"),
        (vec!["demo", "--migrations-dir", "m"], "--migrations-dir"),
        (
            vec!["completions", "bash", "--config", "x.toml"],
            "--config",
        ),
        (
            vec!["man", "--database-url", "postgres://u@h/d"],
            "--database-url",
        ),
    ] {
        let (code, _, err) = sluice(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(
            err.contains(&format!("does not read {flag}")),
            "{args:?}: {err}"
        );
    }
}

/// The online-copy flags steer MariaDB/MySQL table copies only: on a PostgreSQL URL every one of
/// them, on every subcommand that has them, is refused before anything runs (exit 2, the flag
/// named), where it used to be ignored in silence. On a MariaDB URL they pass this check (the run
/// then fails on the unreachable server, not on the flag).
#[test]
fn online_copy_flags_on_a_postgres_database_are_refused_not_ignored() {
    let dir = std::env::temp_dir().join(format!("sluice_online_flags_{}", std::process::id()));
    std::fs::create_dir_all(dir.join("migrations")).unwrap();
    let value = |flag: &str| match flag {
        "--replica-url" => Some("mysql://root@127.0.0.1:1/r"),
        "--postpone-cutover" => None,
        _ => Some("5"),
    };
    let mut checked = 0;
    for sub in subcommands() {
        let (_, help, _) = sluice(&[&sub, "--help"]);
        let flags: Vec<(String, Option<&str>)> = section(&help, "Online copy (MariaDB/MySQL)")
            .into_iter()
            .map(|f| {
                let v = value(&f);
                (f, v)
            })
            .collect();
        for (flag, v) in &flags {
            for url in ["postgres://u@127.0.0.1:1/x", "mariadb://u@127.0.0.1:1/x"] {
                let mut args: Vec<&str> = vec![&sub, flag];
                args.extend(v.iter());
                let migrations = dir.join("migrations");
                let migrations = migrations.to_str().unwrap();
                args.extend(["--database-url", url, "--migrations-dir", migrations]);
                let (code, _, err) = sluice(&args);
                let refused = err.contains("online table copies, and this database is PostgreSQL");
                if url.starts_with("postgres") {
                    assert_eq!(code, 2, "{args:?}: {err}");
                    assert!(refused && err.contains(flag.as_str()), "{args:?}: {err}");
                } else {
                    assert!(!refused, "{args:?}: {err}");
                }
                checked += 1;
            }
        }
    }
    std::fs::remove_dir_all(&dir).ok();
    // up, down, rehearse at least, each with its four online flags (and up's --postpone-cutover).
    assert!(checked >= 2 * (3 * 4 + 1), "{checked} runs");
}
