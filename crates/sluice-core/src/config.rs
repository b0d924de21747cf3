//! `sluice.toml`: the project's settings. Command-line flags and environment variables win over it.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::{Path, PathBuf};

pub const CONFIG_FILE: &str = "sluice.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Prefer `DATABASE_URL` for URLs with passwords, so they stay out of version control.
    pub database_url: Option<String>,
    pub migrations_dir: Option<PathBuf>,
    /// Seconds a run waits for another run's lock before giving up.
    pub lock_wait_secs: Option<u64>,
    /// Milliseconds a statement may wait for a table lock before stepping back and retrying.
    pub lock_timeout_ms: Option<u64>,
    /// Seconds sluice keeps retrying a statement that cannot get its lock.
    pub lock_retry_secs: Option<u64>,
    /// Milliseconds a step holding ACCESS EXCLUSIVE may run before the server cancels it.
    pub exclusive_timeout_ms: Option<u64>,
    /// Engine and version `sluice lint` assumes offline, e.g. `postgres:15`, `mariadb:10.11`, `mysql:8.0.36`.
    pub target: Option<String>,
    /// Tables with fewer rows run rewriting type changes and copies as written (0: never).
    pub as_written_below_rows: Option<u64>,
    /// Whose directory layout the migrations follow (`sluice`, `diesel`, `sqlx`, `golang-migrate`,
    /// `dbmate`, `goose`, `flyway`); detected from the files when unset.
    pub layout: Option<String>,
    /// The code `sluice refs` searches for names a migration changes (default: the current directory).
    pub code_path: Option<PathBuf>,
    /// `rehearse --fail-on plan-regression`: an after-plan whose estimated cost is at least this
    /// many times the before-plan's is a regression (default 2.0; `--plan-regression-ratio` wins).
    pub plan_regression_ratio: Option<f64>,
    /// Server settings applied on every session sluice opens for migration work (`[session]`:
    /// `sql_mode = ""`, `search_path = "app, public"`, `timezone = "UTC"`), in name order.
    pub session: Option<std::collections::BTreeMap<String, crate::session::SessionValue>>,
    /// Logical replication (PostgreSQL): this publisher's subscribers, checked before a column is
    /// added to a published table (`--subscriber-url` wins). Prefer the variable for passwords.
    pub subscriber_urls: Option<Vec<String>>,
}

impl Config {
    /// Reads `sluice.toml` from `path` when given, else from the current directory when present.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        let (path, required) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(CONFIG_FILE), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
                return Ok(Config::default())
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        let config: Config = toml::from_str(&text).map_err(|e| Error::MigrationFile {
            path: path.clone(),
            line: e.span().map(|s| line_of(&text, s.start)),
            message: describe(&text, &e),
            help: "see `sluice init` for a commented example; known keys: database_url, migrations_dir, lock_wait_secs, lock_timeout_ms, lock_retry_secs, exclusive_timeout_ms, target, as_written_below_rows, layout, code_path, plan_regression_ratio, subscriber_urls, [session]".into(),
        })?;
        if let Some(raw) = &config.layout {
            crate::layout::Layout::parse(raw).map_err(|m| Error::MigrationFile {
                path: path.clone(),
                line: text
                    .lines()
                    .position(|l| l.trim_start().starts_with("layout"))
                    .map(|i| i + 1),
                message: format!("`layout`: {m}"),
                help:
                    "name the tool that wrote the migration files, or remove the key to detect it"
                        .into(),
            })?;
        }
        for key in config.session.iter().flat_map(|s| s.keys()) {
            crate::session::check_key(key).map_err(|m| Error::MigrationFile {
                path: path.clone(),
                line: text
                    .lines()
                    .position(|l| {
                        l.trim_start()
                            .trim_start_matches(['"', '\''])
                            .starts_with(key.as_str())
                    })
                    .map(|i| i + 1),
                message: format!("[session]: {m}"),
                help: "name a server setting, e.g. sql_mode, search_path or timezone".into(),
            })?;
        }
        Ok(config)
    }

    /// The `[session]` settings, in name order.
    pub fn session(&self) -> Vec<crate::session::SessionSetting> {
        self.session
            .iter()
            .flatten()
            .map(|(k, v)| crate::session::SessionSetting {
                key: k.clone(),
                value: v.clone(),
            })
            .collect()
    }

    /// The configured layout, already checked by `load`.
    pub fn layout(&self) -> Option<crate::layout::Layout> {
        self.layout
            .as_deref()
            .and_then(|l| crate::layout::Layout::parse(l).ok())
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The error with its line and key. A wrong-typed value is never quoted back: it may be a URL with a
/// password (`database_url = 5` is harmless, `lock_wait_secs = "postgres://u:pw@h"` is not).
fn describe(text: &str, e: &toml::de::Error) -> String {
    let msg = e.message().trim();
    let Some(span) = e.span() else {
        return format!("invalid configuration: {msg}");
    };
    let line = line_of(text, span.start);
    let key = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once('='))
        .map(|(k, _)| k.trim().trim_matches(['"', '\'']).to_string())
        .filter(|k| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        });
    let wrong_value = msg.starts_with("invalid type") || msg.starts_with("invalid value");
    match (key, wrong_value) {
        (Some(key), true) => {
            let expected = msg
                .find("expected ")
                .map(|i| &msg[i..])
                .unwrap_or("a different type");
            format!("line {line}: `{key}` has a value of the wrong type: {expected}")
        }
        (Some(key), false) => format!("line {line}: `{key}`: {msg}"),
        (None, _) if wrong_value => format!("line {line}: a value of the wrong type"),
        (None, _) => format!("line {line}: {msg}"),
    }
}

pub const TEMPLATE: &str = r#"# sluice configuration. Flags and environment variables override these settings.

# The database to migrate. Prefer the DATABASE_URL environment variable when the URL holds a password.
# database_url = "postgres://postgres@127.0.0.1:5432/app"

# Where migration files live.
migrations_dir = "migrations"

# How long a run waits for another run's lock before exiting with code 3.
lock_wait_secs = 60

# How long a statement may wait for a table lock before it steps back (so live queries never queue
# behind it for longer), and how long sluice keeps retrying before it fails.
lock_timeout_ms = 1000
lock_retry_secs = 600

# How long a step holding ACCESS EXCLUSIVE on an existing table (meant to be instant: adding a
# nullable column, NOT VALID constraints, SET NOT NULL after a validated check) may run before the
# server cancels it and rolls it back, rather than stop every query on the table. 0: no limit.
exclusive_timeout_ms = 5000

# The engine and version `sluice lint` checks against when not connected.
# target = "postgres:15"

# A rewriting type change (PostgreSQL) or a table copy (MariaDB/MySQL) on a table with fewer rows
# than this runs as written: it takes milliseconds, and `plan`, `--dry-run` and the log say so.
# Read from the live table when the statement runs (a table created earlier in the run is empty).
# 0: never.
as_written_below_rows = 10000

# Whose layout the migration files follow: sluice, diesel, sqlx, golang-migrate, dbmate, goose
# or flyway.
# Detected from the files when unset; `sluice status` shows which.
# layout = "diesel"

# The application code `sluice refs` searches for the tables and columns a migration renames, drops
# or retypes (honouring .gitignore). Default: the current directory.
# code_path = "src"

# `sluice rehearse --explain --fail-on plan-regression` exits 12 when a workload statement's plan is
# estimated at least this many times costlier after the migration (or fails). Default 2.0.
# plan_regression_ratio = 2.0

# Server settings applied on every session sluice opens for migration work (the work session, online
# copies, backfills), when the history was written for them; a setting the server rejects stops the
# run before any work (exit 2), and each migration's events record the settings it ran with.
# PostgreSQL logical replication, on a publisher: its subscribers. Before a column is added to a
# published table, sluice checks that every subscriber has it and refuses otherwise. Prefer the
# SLUICE_SUBSCRIBER_URLS variable (space-separated) when a URL holds a password.
# subscriber_urls = ["postgres://sluice@subscriber:5432/app"]

# [session]
# sql_mode = "NO_ENGINE_SUBSTITUTION"   # MariaDB/MySQL
# search_path = "app, public"           # PostgreSQL
# timezone = "UTC"                      # PostgreSQL (MariaDB/MySQL: time_zone = "+00:00")
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_parses_and_unknown_keys_are_rejected() {
        let c: Config = toml::from_str(TEMPLATE).unwrap();
        assert_eq!(c.migrations_dir.as_deref(), Some(Path::new("migrations")));
        assert_eq!(c.lock_wait_secs, Some(60));
        let dir = std::env::temp_dir().join(format!("sluice-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join("sluice.toml");
        std::fs::write(&p, "databse_url = 'x'\n").unwrap();
        let e = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("unknown field `databse_url`"), "{e}");
        // Every key with a wrong-typed value: the message names the line and the key, never the value.
        for (key, bad) in [
            ("database_url", "5"),
            ("migrations_dir", "[1]"),
            ("lock_wait_secs", "\"postgres://u:hunter2@h/db\""),
            ("lock_timeout_ms", "-1"),
            ("lock_retry_secs", "1.5"),
            ("exclusive_timeout_ms", "true"),
            ("target", "{ a = \"hunter2\" }"),
            ("as_written_below_rows", "\"10k\""),
            ("layout", "5"),
            ("plan_regression_ratio", "\"2x\""),
            ("session", "\"hunter2\""),
        ] {
            std::fs::write(&p, format!("# settings\n\n# more\n{key} = {bad}\n")).unwrap();
            let err = Config::load(Some(&p)).unwrap_err();
            let e = err.to_string();
            assert!(
                e.contains(&format!("line 4: `{key}` has a value of the wrong type")),
                "{key}: {e}"
            );
            assert!(!e.contains("hunter2"), "{key}: {e}");
            assert_eq!(err.exit_code(), crate::error::exit::BAD_INPUT);
        }
        std::fs::write(&p, "# x\nlayout = \"flyway2\"\n").unwrap();
        let err = Config::load(Some(&p)).unwrap_err();
        let e = err.to_string();
        assert!(e.contains("unknown layout `flyway2`"), "{e}");
        assert_eq!(err.exit_code(), crate::error::exit::BAD_INPUT);
        for l in crate::layout::Layout::ALL {
            std::fs::write(&p, format!("layout = \"{l}\"\n")).unwrap();
            assert_eq!(Config::load(Some(&p)).unwrap().layout(), Some(l));
        }
        std::fs::write(&p, "lock_wait_secs = 5\nlock_wait_secs = 6\n").unwrap();
        let e = Config::load(Some(&p)).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
