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
    /// Milliseconds a step holding ACCESS EXCLUSIVE on an existing table (meant to be instant) may
    /// run before the server cancels it and rolls it back; 0: no limit (default 5000).
    #[arg(long, global = true, value_name = "MS")]
    pub exclusive_timeout: Option<u64>,
    #[command(flatten)]
    pub pacing: PacingArgs,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

/// What a backfill (in `up` or `sluice backfill`) paces itself on.
#[derive(Args)]
pub struct PacingArgs {
    /// `latency`: back off while a probe query runs slower than --latency-factor times its idle
    /// latency (the default); `speed`: only the batch duration target.
    #[arg(long, global = true, value_enum, default_value_t = Pace::Latency)]
    pub pace: Pace,
    /// With --pace latency: how much slower the probe may get while batches run.
    #[arg(long, global = true, default_value_t = 1.5, value_name = "FACTOR")]
    pub latency_factor: f64,
    /// The probe (default: a point read by primary key on the table being backfilled).
    #[arg(long, global = true, value_name = "SQL")]
    pub probe_query: Option<String>,
    /// Pause while a replica replays more than this far behind (0: never).
    #[arg(long, global = true, default_value_t = 5000, value_name = "MS")]
    pub max_replica_lag_ms: u64,
    /// Pause while this query returns true or a number above zero.
    #[arg(long, global = true, value_name = "SQL")]
    pub throttle_query: Option<String>,
    /// The batch duration a backfill's batch size adapts to.
    #[arg(long, global = true, default_value_t = 50, value_name = "MS")]
    pub target_batch_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    Latency,
    Speed,
}

impl PacingArgs {
    fn pacing(&self) -> sluice_core::engine::Pacing {
        sluice_core::engine::Pacing {
            latency_factor: (self.pace == Pace::Latency).then_some(self.latency_factor.max(1.0)),
            probe: self.probe_query.clone(),
            max_replica_lag: (self.max_replica_lag_ms > 0)
                .then(|| Duration::from_millis(self.max_replica_lag_ms)),
            throttle_query: self.throttle_query.clone(),
            target_batch: Duration::from_millis(self.target_batch_ms.max(1)),
        }
    }
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
        /// Run a reviewed plan written by `sluice plan --out FILE`, with its options, and only when
        /// nothing changed since it was written (else exit 4, naming each difference).
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
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
        /// Judge the statements as they would run verbatim (another tool, or `up --as-written`),
        /// not as `sluice up` runs them.
        #[arg(long)]
        as_written: bool,
    },
    /// Show what `up` would do to the live database: per statement the lock, duration class,
    /// estimated time on the live table, what it blocks, and the safe steps.
    Plan {
        #[arg(long, value_name = "VERSION")]
        to: Option<i64>,
        #[arg(long)]
        out_of_order: bool,
        /// Plan running every statement exactly as written (`up --as-written`).
        #[arg(long)]
        as_written: bool,
        #[arg(long)]
        json: bool,
        /// Also write the exact steps, the files' checksums and the database's schema fingerprint
        /// to FILE, for review; `sluice up --plan FILE` runs exactly that.
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
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
        /// Pause between batches.
        #[arg(long, default_value_t = 0)]
        pause_ms: u64,
    },
    /// Would users notice? Apply the pending migrations to a scratch clone of the database while
    /// a workload runs against it, and judge latency, stalls and errors against a baseline
    /// (exit 8 when users would notice).
    Rehearse(Box<RehearseArgs>),
    /// Show the append-only event log (up, down, failed, repair, baseline, drift-capture).
    Log {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args)]
pub struct RehearseArgs {
    /// Server on which to create the scratch database (its own database is only used to create
    /// and drop the scratch one). Default: the source's server.
    #[arg(long, value_name = "URL")]
    pub scratch_url: Option<String>,
    /// Copy a random sample of every table, e.g. 10% (default: 100%, a full copy).
    #[arg(long, value_name = "PERCENT", conflicts_with_all = ["sample_rows", "synthetic"])]
    pub sample: Option<String>,
    /// Copy a random sample of at most N rows per table.
    #[arg(long, value_name = "N", conflicts_with = "synthetic")]
    pub sample_rows: Option<u64>,
    /// Synthesise rows from column types and statistics instead of copying them.
    #[arg(long)]
    pub synthetic: bool,
    /// With --synthetic: rows per table.
    #[arg(long, value_name = "N", requires = "synthetic")]
    pub rows: Option<u64>,
    /// With --synthetic: the source's row counts times F (default 1).
    #[arg(
        long,
        value_name = "F",
        requires = "synthetic",
        conflicts_with = "rows"
    )]
    pub scale: Option<f64>,
    /// Keep the scratch database(s) afterwards.
    #[arg(long)]
    pub keep: bool,
    /// Concurrent clients, each on its own connection.
    #[arg(long, default_value_t = 8)]
    pub clients: usize,
    /// Total transactions per second over all clients (open-loop).
    #[arg(long, default_value_t = 2000.0)]
    pub rate: f64,
    /// Weights of the derived workload's queries by primary key.
    #[arg(long, default_value = "read=80,update=15,insert=5")]
    pub mix: String,
    /// A pgbench-like script instead: `\set id random(1, 100000)` lines and SQL using `:id`;
    /// or `pg_stat_statements`: replay the source's top statements (PostgreSQL).
    #[arg(long, value_name = "FILE|pg_stat_statements")]
    pub workload: Option<PathBuf>,
    /// Workload before the migration starts.
    #[arg(long, default_value = "5s")]
    pub baseline: String,
    /// Workload after the migration ends.
    #[arg(long, default_value = "2s")]
    pub cooldown: String,
    /// p99 latency limit during the migration (default: max(2 × baseline p99, baseline p99 + 50 ms)).
    #[arg(long, value_name = "MS")]
    pub max_p99_ms: Option<f64>,
    /// Longest stall allowed: time in which a query was due and none completed.
    #[arg(long, value_name = "MS", default_value_t = 1000.0)]
    pub max_stall_ms: f64,
    /// Client errors allowed during the migration and cool-down.
    #[arg(long, default_value_t = 0)]
    pub max_errors: u64,
    /// `as-written`: rehearse twice on fresh clones, as written and the way sluice runs it.
    #[arg(long, value_name = "MODE", value_parser = ["as-written"])]
    pub compare: Option<String>,
    /// Rehearse running every statement exactly as written.
    #[arg(long, conflicts_with = "compare")]
    pub as_written: bool,
    /// Apply up to and including this version.
    #[arg(long, value_name = "VERSION")]
    pub to: Option<i64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML report with charts.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
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
            pacing: self.global.pacing.pacing(),
            exclusive_timeout: Duration::from_millis(
                self.global
                    .exclusive_timeout
                    .or(self.config.exclusive_timeout_ms)
                    .unwrap_or(5000),
            ),
        }
    }
}

fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_else(|_| "unknown".into());
    let host = sluice_core::engine::LockHolder::me().host;
    match ci_run() {
        Some(ci) => format!("{user}@{host} ({ci})"),
        None => format!("{user}@{host}"),
    }
}

/// The CI run applying the migration, from the variables the common CI systems set, so the history
/// says which pipeline run did it. Only ids and URLs of runs: never a token.
fn ci_run() -> Option<String> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let id = |v: String| -> String {
        v.chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_.:/".contains(*c))
            .take(120)
            .collect()
    };
    if let Some(run) = var("GITHUB_RUN_ID") {
        let repo = var("GITHUB_REPOSITORY").map(id).unwrap_or_default();
        return Some(format!("ci: github {repo} run {}", id(run)));
    }
    for (name, key) in [
        ("gitlab job", "CI_JOB_ID"),
        ("buildkite build", "BUILDKITE_BUILD_ID"),
        ("circleci build", "CIRCLE_BUILD_NUM"),
        ("jenkins build", "BUILD_TAG"),
        ("azure build", "BUILD_BUILDID"),
    ] {
        if let Some(v) = var(key) {
            return Some(format!("ci: {name} {}", id(v)));
        }
    }
    var("CI").map(|_| "ci".to_string())
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
            plan: Some(plan),
            online,
        } => {
            // The plan carries the options that decide what runs; others would contradict it.
            for (set, flag) in [
                (to.is_some(), "--to"),
                (out_of_order, "--out-of-order"),
                (as_written, "--as-written"),
                (create_database, "--create-database"),
            ] {
                if set {
                    return Err(Error::usage(
                        format!("{flag} cannot be combined with --plan: the plan records the options it was made with"),
                        format!("run `sluice up --plan {}` alone, or write a new plan with `sluice plan {flag} ... --out {}` and review it", plan.display(), plan.display()),
                    ));
                }
            }
            let (doc, id) = sluice_core::planfile::PlanFile::read(&plan)?;
            let files = r.files()?;
            let url = r.url()?;
            let mut engine = connect::engine(&url, false).await?;
            let mut ctx = r.context();
            online.apply(&mut ctx);
            // The history and events say which reviewed plan applied each migration.
            ctx.actor = format!("{} plan {id}", ctx.actor);
            let outcome = runner::up_with_plan(
                engine.as_mut(),
                &files,
                &doc,
                &plan,
                &url.database(),
                dry_run,
                &ctx,
            )
            .await?;
            match outcome {
                runner::PlanRun::Ran(report) if dry_run => {
                    render::say(&format!(
                        "plan {} ({id}) matches the database and the files",
                        plan.display()
                    ));
                    render::plan(&report.planned, "apply");
                }
                runner::PlanRun::Ran(report) => render::say(&format!(
                    "done: {} migration(s) applied as planned in {} ({id})",
                    report.applied.len(),
                    plan.display()
                )),
                runner::PlanRun::AlreadyApplied {
                    versions,
                    others_pending,
                } => {
                    let list: Vec<String> = versions.iter().map(|v| v.to_string()).collect();
                    render::say(&format!(
                        "plan {} ({id}) is already applied ({}): nothing to do",
                        plan.display(),
                        list.join(", ")
                    ));
                    if others_pending > 0 {
                        render::say(&format!(
                            "{others_pending} other migration(s) are pending and not in this plan: write and review a new plan for them"
                        ));
                    }
                }
            }
            Ok(exit::OK)
        }
        Command::Up {
            to,
            dry_run,
            out_of_order,
            create_database,
            as_written,
            plan: None,
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
            as_written,
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
                staged: !as_written,
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
            as_written,
            json,
            out,
        } => {
            let files = r.files()?;
            let url = r.url()?;
            let mut engine = connect::engine(&url, false).await?;
            let opts = UpOptions {
                to,
                dry_run: true,
                allow_out_of_order: out_of_order,
                as_written,
            };
            let report = runner::plan(engine.as_mut(), &files, &opts).await?;
            render::plan_report(&report, json);
            if let Some(path) = out {
                let doc =
                    runner::plan_file(engine.as_mut(), &files, &opts, &url.database()).await?;
                let text = doc.to_json();
                // Written aside and renamed, so a reviewer never sees half a plan.
                let tmp = path.with_extension("sluice-tmp");
                std::fs::write(&tmp, &text)
                    .and_then(|_| std::fs::rename(&tmp, &path))
                    .map_err(|e| Error::io(format!("writing the plan {}", path.display()), e))?;
                render::say(&format!(
                    "wrote the plan to {} ({}, {} migration(s)); after review, run it with `sluice up --plan {}`",
                    path.display(),
                    sluice_core::planfile::PlanFile::id_of(&text),
                    doc.migrations.len(),
                    path.display()
                ));
            }
            let errors = report
                .migrations
                .iter()
                .flat_map(|m| &m.findings)
                .any(|f| f.severity == sluice_core::analysis::Severity::Error);
            Ok(if errors { exit::LINT_ERRORS } else { exit::OK })
        }
        Command::Rules { id, markdown } => {
            match id {
                _ if markdown => out!("{}", sluice_core::rules::markdown()),
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
            pause_ms,
        } => {
            let mut engine = connect::engine(&r.url()?, false).await?;
            let spec = sluice_core::engine::BackfillSpec {
                table,
                set,
                filter,
                batch_rows,
                target_batch: Duration::from_millis(r.global.pacing.target_batch_ms.max(1)),
                pause: Duration::from_millis(pause_ms),
                progress: render::progress_bar(),
                pacing: r.global.pacing.pacing(),
            };
            runner::backfill(engine.as_mut(), &spec, &r.context()).await?;
            render::finish_progress();
            Ok(exit::OK)
        }
        Command::Rehearse(args) => rehearse(&r, &args).await,
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
    outln!("{}", path.display());
    Ok(exit::OK)
}

async fn rehearse(r: &Resolved, a: &RehearseArgs) -> Result<i32> {
    use sluice_rehearse::clone::DataSpec;
    let bad = |flag: &str, e: String| {
        Error::usage(format!("{flag}: {e}"), "see `sluice rehearse --help`")
    };
    let data = if a.synthetic {
        DataSpec::Synthetic {
            rows: a.rows,
            scale: a.scale.unwrap_or(1.0),
        }
    } else if let Some(n) = a.sample_rows {
        DataSpec::SampleRows(n)
    } else {
        DataSpec::SampleFraction(match &a.sample {
            Some(p) => sluice_rehearse::parse_fraction(p).map_err(|e| bad("--sample", e))?,
            None => 1.0,
        })
    };
    if a.clients == 0 || a.rate <= 0.0 {
        return Err(Error::usage(
            "--clients and --rate must be above 0",
            "e.g. --clients 8 --rate 2000",
        ));
    }
    // A reserved value, not a file name (`./pg_stat_statements` names a file).
    let top_statements = a
        .workload
        .as_deref()
        .is_some_and(|p| p == std::path::Path::new("pg_stat_statements"));
    let script = match &a.workload {
        Some(_) if top_statements => None,
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
            Some(
                sluice_rehearse::workload::Script::parse(&text)
                    .map_err(|e| bad(&format!("--workload {}", p.display()), e))?,
            )
        }
        None => None,
    };
    let ctx = r.context();
    let opts = sluice_rehearse::Options {
        source: r.url()?,
        scratch_server: a.scratch_url.as_deref().map(DbUrl::parse).transpose()?,
        data,
        keep: a.keep,
        workload: sluice_rehearse::workload::WorkloadSpec {
            clients: a.clients,
            rate: a.rate,
            mix: sluice_rehearse::workload::Mix::parse(&a.mix).map_err(|e| bad("--mix", e))?,
            script,
            top_statements,
        },
        baseline: sluice_rehearse::parse_duration(&a.baseline).map_err(|e| bad("--baseline", e))?,
        cooldown: sluice_rehearse::parse_duration(&a.cooldown).map_err(|e| bad("--cooldown", e))?,
        thresholds: sluice_rehearse::metrics::Thresholds {
            max_p99_ms: a.max_p99_ms,
            max_stall_ms: a.max_stall_ms,
            max_errors: a.max_errors,
        },
        compare: a.compare.is_some(),
        as_written: a.as_written,
        files: r.files()?,
        to: a.to,
        lock_timeout: ctx.lock_timeout,
        lock_retry_for: ctx.lock_retry_for,
        exclusive_timeout: ctx.exclusive_timeout,
        pacing: ctx.pacing.clone(),
        online: ctx.online.clone(),
        actor: ctx.actor.clone(),
        say: std::sync::Arc::new(render::say),
    };
    let report = sluice_rehearse::rehearse(&opts).await?;
    if let Some(path) = &a.report {
        std::fs::write(path, sluice_rehearse::report::html(&report))
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        render::say(&format!("wrote {}", path.display()));
    }
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serialises")
        );
    } else {
        out!("{}", sluice_rehearse::report::text(&report));
    }
    let migration_failed = report
        .runs
        .iter()
        .any(|r| r.migration.error.is_some() && !r.as_written)
        || (report.runs.len() == 1 && report.runs[0].migration.error.is_some());
    Ok(if migration_failed {
        exit::MIGRATION_FAILED
    } else if report.pass {
        exit::OK
    } else {
        exit::REHEARSAL_FAILED
    })
}
