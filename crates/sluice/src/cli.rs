//! Command-line interface.

use crate::{connect, render};
use clap::{Args, Parser, Subcommand};
use sluice_core::config::{self, Config};
use sluice_core::dburl::DbUrl;
use sluice_core::error::{exit, Error, Result};
use sluice_core::migration::{self, Migration};
use sluice_core::runner::{self, DownOptions, RunContext, UpOptions};
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Zero-downtime schema migrations for PostgreSQL and MariaDB/MySQL"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Args)]
pub struct Global {
    /// Database URL (postgres://, postgresql://, mysql://, mariadb://). Also DATABASE_URL or sluice.toml.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Path of the configuration file (default: ./sluice.toml when present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Directory of migration files (default: `migrations`).
    #[arg(long, global = true)]
    pub migrations_dir: Option<PathBuf>,
    /// Application version recorded with each migration (default: `git describe --always --dirty`).
    #[arg(long, global = true, env = "SLUICE_APP_VERSION")]
    pub app_version: Option<String>,
    /// Seconds to wait for another sluice run's lock before exiting with code 3 (default 60).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub lock_wait: Option<u64>,
    /// Milliseconds a statement may wait for a table lock before it steps back and retries, so
    /// live queries never queue behind sluice for longer (default 1000).
    #[arg(long, global = true, value_name = "MS")]
    pub lock_timeout: Option<u64>,
    /// Seconds sluice keeps retrying a statement that cannot get its lock before failing (default 600).
    #[arg(long, global = true, value_name = "SECONDS")]
    pub lock_retry_for: Option<u64>,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// Create sluice.toml and the migrations directory.
    Init,
    /// Create a new migration file `<timestamp>_<name>.sql` with an up and a down part.
    New { name: String },
    /// Show every migration's state, its app version, and whether the live schema drifted.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Apply pending migrations (and resume a failed or interrupted one).
    Up {
        /// Apply up to and including this version.
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
        /// Print what would run, run nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply pending migrations older than the latest applied one.
        #[arg(long)]
        out_of_order: bool,
        /// Create the database first when it does not exist.
        #[arg(long)]
        create_database: bool,
        /// Run every statement exactly as written (index builds and drops are not made CONCURRENT).
        #[arg(long)]
        as_written: bool,
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// MariaDB/MySQL: swap every verified online copy (from `up --postpone-cutover`) into place,
    /// then run `sluice up` to record the migration.
    Cutover {
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// MariaDB/MySQL: drop the `_<table>_old` tables kept by online changes.
    Cleanup {
        /// Also abandon unfinished online copies (drop their triggers, change log and shadow table).
        #[arg(long)]
        abort: bool,
    },
    /// Roll back applied migrations with their down parts (default: the latest one).
    Down {
        /// Roll back every migration newer than this version.
        #[arg(long, value_name = "VERSION", conflicts_with = "steps")]
        to: Option<i64>,
        /// Roll back this many migrations.
        #[arg(long)]
        steps: Option<usize>,
        #[arg(long)]
        dry_run: bool,
        /// Run every statement exactly as written.
        #[arg(long)]
        as_written: bool,
    },
    /// Check that applied migrations still match their files (exit 4 when not).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Accept intentional edits of applied migrations: re-record their checksums (logged).
    Repair,
    /// Adopt an existing database: record migrations up to VERSION as applied without running them.
    Baseline { version: i64 },
    /// Compare the live schema with the snapshot sluice recorded (exit 4 when it drifted).
    Drift {
        #[arg(long)]
        json: bool,
        /// Write the drift as a new migration and record it as applied here.
        #[arg(long)]
        write_migration: bool,
    },
    /// Check migrations for statements that lock, rewrite or scan live tables (offline by default).
    Lint {
        /// Files or directories (default: the migrations directory).
        paths: Vec<PathBuf>,
        /// Engine and version, e.g. postgres:15, mariadb:10.11, mysql:8.0.36 (or `target` in sluice.toml).
        #[arg(long)]
        target: Option<String>,
        #[arg(long, value_enum, default_value = "human")]
        format: crate::lint::Format,
        /// Also lint the down parts.
        #[arg(long)]
        include_down: bool,
        /// Connect to the database: its version is the target and its table sizes make size-aware
        /// rules precise.
        #[arg(long)]
        connect: bool,
    },
    /// Show what `up` would do to the live database: per statement the lock, duration class,
    /// estimated time on the live table, what it blocks, and the safe steps.
    Plan {
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
        #[arg(long)]
        out_of_order: bool,
        #[arg(long)]
        json: bool,
    },
    /// List the lint rules, or explain one.
    Rules {
        id: Option<String>,
        /// Print the whole catalog as Markdown (the source of docs/rules.md).
        #[arg(long)]
        markdown: bool,
    },
    /// Update existing rows in batches (one short transaction each, checkpointed, resumable):
    /// `UPDATE <table> SET <set> [WHERE <where>]` without holding long locks.
    Backfill {
        /// The table (schema-qualified if it is not on the search_path).
        #[arg(long)]
        table: String,
        /// The SET list, e.g. "token = md5(random()::text)".
        #[arg(long)]
        set: String,
        /// Only rows matching this condition.
        #[arg(long = "where", value_name = "CONDITION")]
        filter: Option<String>,
        /// A fixed batch size (default: adapted to --target-batch-ms).
        #[arg(long)]
        batch_rows: Option<i64>,
        /// Aim each batch at this duration.
        #[arg(long, default_value_t = 200)]
        target_batch_ms: u64,
        /// Pause between batches.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
    /// Show the append-only event log (up, down, failed, repair, baseline, drift-capture).
    Log {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

/// How MariaDB/MySQL ALTERs that need a table copy run online.
#[derive(Args, Clone, Default)]
pub struct OnlineArgs {
    /// Copy and verify, then stop before the swap; `sluice cutover` swaps later.
    #[arg(long)]
    postpone_cutover: bool,
    /// Aim each copy chunk at this duration (default 200).
    #[arg(long, value_name = "MS")]
    chunk_ms: Option<u64>,
    /// Pause the copy while the server's Threads_running is above this.
    #[arg(long, value_name = "N")]
    max_threads_running: Option<u64>,
    /// A replica whose lag pauses the copy (repeatable).
    #[arg(long, value_name = "URL")]
    replica_url: Vec<String>,
    /// Replica lag that pauses the copy (default 1).
    #[arg(long, value_name = "SECONDS")]
    max_replica_lag: Option<u64>,
}

impl OnlineArgs {
    fn apply(&self, ctx: &mut RunContext) {
        let o = &mut ctx.online;
        o.postpone_cutover = self.postpone_cutover;
        o.lock_timeout = ctx.lock_timeout;
        o.lock_retry_for = ctx.lock_retry_for;
        if let Some(ms) = self.chunk_ms {
            o.target_chunk = Duration::from_millis(ms.max(1));
        }
        o.max_threads_running = self.max_threads_running;
        o.replica_urls = self.replica_url.clone();
        if let Some(s) = self.max_replica_lag {
            o.max_replica_lag = Duration::from_secs(s);
        }
    }
}

struct Resolved {
    config: Config,
    global: Global,
}

impl Resolved {
    fn migrations_dir(&self) -> PathBuf {
        self.global
            .migrations_dir
            .clone()
            .or_else(|| self.config.migrations_dir.clone())
            .unwrap_or_else(|| PathBuf::from("migrations"))
    }

    fn url(&self) -> Result<DbUrl> {
        let raw = self
            .global
            .database_url
            .clone()
            .or_else(|| self.config.database_url.clone())
            .ok_or_else(|| {
                Error::usage(
                    "no database URL given",
                    "pass --database-url, set DATABASE_URL, or set database_url in sluice.toml",
                )
            })?;
        DbUrl::parse(&raw)
    }

    fn files(&self) -> Result<Vec<Migration>> {
        migration::discover(&self.migrations_dir())
    }

    fn context(&self) -> RunContext {
        RunContext {
            actor: actor(),
            app_version: self.global.app_version.clone().or_else(git_describe),
            lock_timeout: Duration::from_millis(
                self.global
                    .lock_timeout
                    .or(self.config.lock_timeout_ms)
                    .unwrap_or(1000),
            ),
            lock_retry_for: Duration::from_secs(
                self.global
                    .lock_retry_for
                    .or(self.config.lock_retry_secs)
                    .unwrap_or(600),
            ),
            lock_wait: Duration::from_secs(
                self.global
                    .lock_wait
                    .or(self.config.lock_wait_secs)
                    .unwrap_or(60),
            ),
            say: Box::new(render::say),
            online: Default::default(),
        }
    }
}

fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = sluice_core::engine::LockHolder::me().host;
    format!("{user}@{host}")
}

/// `git describe --always --dirty` of the working directory, when it is a git checkout.
fn git_describe() -> Option<String> {
    let out = std::process::Command::new("git")
        .args(["describe", "--always", "--dirty"])
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (!v.is_empty()).then_some(v)
}

pub async fn run(cli: Cli) -> Result<i32> {
    let config = Config::load(cli.global.config.as_deref())?;
    let r = Resolved {
        config,
        global: cli.global,
    };
    match cli.command {
        Command::Init => init(&r),
        Command::New { name } => new(&r, &name),
        Command::Status { json } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            let report = runner::status(engine.as_mut(), &files).await?;
            render::status(&report, json);
            Ok(exit::OK)
        }
        Command::Up {
            to,
            dry_run,
            out_of_order,
            create_database,
            as_written,
            online,
        } => {
            let files = r.files()?;
            let url = r.url()?;
            let mut engine = connect::engine(&url, create_database && !dry_run).await?;
            let mut ctx = r.context();
            online.apply(&mut ctx);
            let opts = UpOptions {
                to,
                dry_run,
                allow_out_of_order: out_of_order,
                as_written,
            };
            let report = runner::up(engine.as_mut(), &files, &opts, &ctx).await?;
            if dry_run {
                render::plan(&report.planned, "apply");
            } else if !report.applied.is_empty() {
                render::say(&format!(
                    "done: {} migration(s) applied",
                    report.applied.len()
                ));
            }
            Ok(exit::OK)
        }
        Command::Cutover { online } => {
            let mut ctx = r.context();
            online.apply(&mut ctx);
            let lines = connect::online_cutover(&r.url()?, &ctx).await?;
            if lines.is_empty() {
                render::say("no online copy waits for its swap");
            }
            for l in lines {
                render::say(&l);
            }
            Ok(exit::OK)
        }
        Command::Cleanup { abort } => {
            let ctx = r.context();
            let lines = connect::online_cleanup(&r.url()?, abort, &ctx).await?;
            if lines.is_empty() {
                render::say("nothing to clean up");
            }
            for l in lines {
                render::say(&l);
            }
            Ok(exit::OK)
        }
        Command::Down {
            to,
            steps,
            dry_run,
            as_written,
        } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            let ctx = r.context();
            let planned = runner::down(
                engine.as_mut(),
                &files,
                &DownOptions {
                    to,
                    steps,
                    dry_run,
                    as_written,
                },
                &ctx,
            )
            .await?;
            if dry_run {
                render::plan(&planned, "roll back");
            } else if !planned.is_empty() {
                render::say(&format!("done: {} migration(s) rolled back", planned.len()));
            }
            Ok(exit::OK)
        }
        Command::Verify { json } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            let report = runner::verify(engine.as_mut(), &files).await?;
            render::verify(&report, json);
            Ok(
                if report.edited.is_empty() && report.missing_files.is_empty() {
                    exit::OK
                } else {
                    exit::CHECKSUM_OR_DRIFT
                },
            )
        }
        Command::Repair => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            runner::repair(engine.as_mut(), &files, &r.context()).await?;
            Ok(exit::OK)
        }
        Command::Baseline { version } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            runner::baseline(engine.as_mut(), &files, version, &r.context()).await?;
            Ok(exit::OK)
        }
        Command::Drift {
            json,
            write_migration,
        } => {
            let mut engine = connect::engine(&r.url()?, false).await?;
            if write_migration {
                match runner::capture_drift(engine.as_mut(), &r.migrations_dir(), &r.context()).await? {
                    Some(m) => render::say(&format!(
                        "wrote {} and recorded it as applied; commit it. `sluice down` here reverts the drift",
                        m.path.display()
                    )),
                    None => render::say("no drift: nothing to write"),
                }
                return Ok(exit::OK);
            }
            let report = runner::drift(engine.as_mut()).await?;
            render::drift(&report, json);
            Ok(if report.differences.is_empty() {
                exit::OK
            } else {
                exit::CHECKSUM_OR_DRIFT
            })
        }
        Command::Lint {
            paths,
            target,
            format,
            include_down,
            connect,
        } => {
            // Paths only: files are read one at a time, so memory stays flat however many there are.
            let mut inputs: Vec<PathBuf> = Vec::new();
            for p in if paths.is_empty() {
                vec![r.migrations_dir()]
            } else {
                paths
            } {
                if p.is_dir() {
                    inputs.extend(migration::discover_paths(&p)?);
                } else {
                    inputs.push(p);
                }
            }
            let mut opts = sluice_core::analysis::LintOptions {
                include_down,
                ..Default::default()
            };
            let target = if connect {
                let mut engine = connect::engine(&r.url()?, false).await?;
                opts.stats = Some(engine.table_stats().await?);
                let live = engine.introspect().await?;
                for (tname, t) in &live.tables {
                    let short = tname.rsplit('.').next().unwrap_or(tname).to_string();
                    for c in &t.columns {
                        opts.live_columns
                            .insert((short.clone(), c.name.clone()), c.data_type.clone());
                    }
                }
                engine.target()
            } else {
                let raw = target.or_else(|| r.config.target.clone()).ok_or_else(|| {
                    Error::usage(
                        "lint needs to know the engine and version",
                        "pass --target postgres:15 (or mariadb:10.11, mysql:8.0.36), set `target` in sluice.toml, or use --connect",
                    )
                })?;
                sluice_core::target::Target::parse(&raw).map_err(|e| {
                    Error::usage(format!("--target: {e}"), "e.g. --target postgres:15")
                })?
            };
            let mut linter = sluice_core::analysis::Linter::new(target, opts);
            let mut out = crate::lint::Output::new(format, &target.to_string());
            for path in &inputs {
                let m = migration::load_any(path)?;
                let findings = linter.lint_migration(&m);
                out.file(&m, findings);
            }
            let errors = out.finish(&linter);
            Ok(crate::lint::exit_code(errors))
        }
        Command::Plan {
            to,
            out_of_order,
            json,
        } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            let report = runner::plan(
                engine.as_mut(),
                &files,
                &UpOptions {
                    to,
                    dry_run: true,
                    allow_out_of_order: out_of_order,
                    as_written: false,
                },
            )
            .await?;
            render::plan_report(&report, json);
            let errors = report
                .migrations
                .iter()
                .flat_map(|m| &m.findings)
                .any(|f| f.severity == sluice_core::analysis::Severity::Error);
            Ok(if errors { exit::LINT_ERRORS } else { exit::OK })
        }
        Command::Rules { id, markdown } => {
            match id {
                _ if markdown => print!("{}", sluice_core::rules::markdown()),
                None => crate::lint::list_rules(),
                Some(id) => crate::lint::explain_rule(&id)?,
            }
            Ok(exit::OK)
        }
        Command::Backfill {
            table,
            set,
            filter,
            batch_rows,
            target_batch_ms,
            pause_ms,
        } => {
            let mut engine = connect::engine(&r.url()?, false).await?;
            let spec = sluice_core::engine::BackfillSpec {
                table,
                set,
                filter,
                batch_rows,
                target_batch: Duration::from_millis(target_batch_ms.max(1)),
                pause: Duration::from_millis(pause_ms),
                progress: render::progress_bar(),
            };
            runner::backfill(engine.as_mut(), &spec, &r.context()).await?;
            render::finish_progress();
            Ok(exit::OK)
        }
        Command::Log { limit, json } => {
            let mut engine = connect::engine(&r.url()?, false).await?;
            let events = engine.events(limit).await?;
            render::events(&events, json);
            Ok(exit::OK)
        }
    }
}

fn init(r: &Resolved) -> Result<i32> {
    let cfg = r
        .global
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(config::CONFIG_FILE));
    if cfg.exists() {
        render::say(&format!("{} exists: left as it is", cfg.display()));
    } else {
        std::fs::write(&cfg, config::TEMPLATE)
            .map_err(|e| Error::io(format!("writing {}", cfg.display()), e))?;
        render::say(&format!("created {}", cfg.display()));
    }
    let dir = r.migrations_dir();
    if dir.is_dir() {
        render::say(&format!("{}/ exists: left as it is", dir.display()));
    } else {
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        render::say(&format!("created {}/", dir.display()));
    }
    render::say("next: `sluice new <name>` to write a migration, then `sluice up`");
    Ok(exit::OK)
}

fn new(r: &Resolved, name: &str) -> Result<i32> {
    let dir = r.migrations_dir();
    if !dir.is_dir() {
        return Err(Error::usage(
            format!("migrations directory {} does not exist", dir.display()),
            "run `sluice init` first, or pass --migrations-dir",
        ));
    }
    let mut now = chrono::Utc::now();
    // Versions must stay unique and increasing even when two migrations are created in one second.
    let latest = migration::discover(&dir)?
        .last()
        .map(|m| m.version)
        .unwrap_or(0);
    let mut file = migration::new_file_name(now, name)?;
    while migration::parse_file_name(&file)
        .map(|(v, _)| v <= latest)
        .unwrap_or(false)
        || dir.join(&file).exists()
    {
        now += chrono::Duration::seconds(1);
        file = migration::new_file_name(now, name)?;
    }
    let path: &Path = &dir.join(&file);
    std::fs::write(path, migration::NEW_MIGRATION_TEMPLATE)
        .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
    println!("{}", path.display());
    Ok(exit::OK)
}
