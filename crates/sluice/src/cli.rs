//! Command-line interface.
//!
//! Options come in groups (flattened `Args` structs), each attached only to the subcommands that
//! read it, so every subcommand's `--help` lists what it uses. Only [`Global`] is accepted before
//! the subcommand's name.

use crate::{connect, render};
use clap::{Args, Parser, Subcommand};
use sluice_core::config::{self, Config};
use sluice_core::dburl::DbUrl;
use sluice_core::error::{exit, Error, Result};
use sluice_core::migration::{self, Migration};
use sluice_core::runner::{self, DownOptions, RunContext, UpOptions};
use sluice_core::target::EngineKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

const GLOBAL: &str = "Global options";
const RUN: &str = "Run";
const LOCKS: &str = "Lock timeouts";
const PACING: &str = "Backfill pacing";
const ONLINE: &str = "Online copy (MariaDB/MySQL)";

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

/// Where the project and its database are, and how much to say: accepted before or after any
/// subcommand.
#[derive(Args)]
pub struct Global {
    /// Database URL (postgres://, postgresql://, mysql://, mariadb://). Also DATABASE_URL or sluice.toml.
    #[arg(long, global = true, env = "DATABASE_URL", hide_env_values = true, help_heading = GLOBAL)]
    pub database_url: Option<String>,
    /// Path of the configuration file (default: ./sluice.toml when present).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub config: Option<PathBuf>,
    /// Directory of migration files (default: `migrations`).
    #[arg(long, global = true, help_heading = GLOBAL)]
    pub migrations_dir: Option<PathBuf>,
    /// More log output (repeat for more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count, help_heading = GLOBAL)]
    pub verbose: u8,
    /// Only errors.
    #[arg(short, long, global = true, help_heading = GLOBAL)]
    pub quiet: bool,
}

/// Commands that take the run lock.
#[derive(Args, Clone, Default)]
pub struct RunLockArgs {
    /// Seconds to wait for another sluice run's lock before exiting with code 3 (default 60;
    /// sluice.toml: lock_wait_secs).
    #[arg(long, value_name = "SECONDS", help_heading = RUN)]
    pub lock_wait: Option<u64>,
}

/// Commands that record migrations or events in the history.
#[derive(Args, Clone, Default)]
pub struct HistoryArgs {
    /// Application version recorded with each migration (default: `git describe --always --dirty`).
    #[arg(long, env = "SLUICE_APP_VERSION", help_heading = RUN)]
    pub app_version: Option<String>,
}

#[derive(Args, Clone, Default)]
pub struct LockTimeoutArgs {
    /// Milliseconds a statement may wait for a table lock before it steps back and retries, so
    /// live queries never queue behind sluice for longer (default 1000; sluice.toml: lock_timeout_ms).
    #[arg(long, value_name = "MS", help_heading = LOCKS)]
    pub lock_timeout: Option<u64>,
}

#[derive(Args, Clone, Default)]
pub struct LockRetryArgs {
    /// Seconds sluice keeps retrying a statement that cannot get its lock before failing
    /// (default 600; sluice.toml: lock_retry_secs).
    #[arg(long, value_name = "SECONDS", help_heading = LOCKS)]
    pub lock_retry_for: Option<u64>,
}

#[derive(Args, Clone, Default)]
pub struct ExclusiveArgs {
    /// Milliseconds a step holding ACCESS EXCLUSIVE on an existing table (meant to be instant) may
    /// run before the server cancels it and rolls it back; 0: no limit (default 5000;
    /// sluice.toml: exclusive_timeout_ms).
    #[arg(long, value_name = "MS", help_heading = LOCKS)]
    pub exclusive_timeout: Option<u64>,
}

/// What a backfill (in `up`, `down`, `rehearse` or `sluice backfill`) paces itself on.
#[derive(Args, Clone)]
pub struct PacingArgs {
    /// `latency`: back off while a probe query runs slower than --latency-factor times its idle
    /// latency (the default); `speed`: only the batch duration target.
    #[arg(long, value_enum, default_value_t = Pace::Latency, help_heading = PACING)]
    pub pace: Pace,
    /// With --pace latency: how much slower the probe may get while batches run.
    #[arg(long, default_value_t = 1.5, value_name = "FACTOR", help_heading = PACING)]
    pub latency_factor: f64,
    /// The probe (default: a point read by primary key on the table being backfilled).
    #[arg(long, value_name = "SQL", help_heading = PACING)]
    pub probe_query: Option<String>,
    /// Pause while a replica replays more than this far behind (0: never).
    #[arg(long, default_value_t = 5000, value_name = "MS", help_heading = PACING)]
    pub max_replica_lag_ms: u64,
    /// Pause while this query returns true or a number above zero.
    #[arg(long, value_name = "SQL", help_heading = PACING)]
    pub throttle_query: Option<String>,
    /// The batch duration a backfill's batch size adapts to.
    #[arg(long, default_value_t = 50, value_name = "MS", help_heading = PACING)]
    pub target_batch_ms: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Pace {
    Latency,
    Speed,
}

impl PacingArgs {
    /// The flags' defaults, from the one place they are declared (the `#[arg]`s above).
    fn defaults() -> PacingArgs {
        use clap::FromArgMatches;
        let m = PacingArgs::augment_args(clap::Command::new("pacing")).get_matches_from(["pacing"]);
        PacingArgs::from_arg_matches(&m).expect("pacing defaults parse")
    }

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

/// How MariaDB/MySQL ALTERs that need a table copy run online (`up`, `down`, `cutover`, `rehearse`).
#[derive(Args, Clone, Default)]
pub struct OnlineArgs {
    /// Aim each copy chunk at this duration (default 200).
    #[arg(long, value_name = "MS", help_heading = ONLINE)]
    pub chunk_ms: Option<u64>,
    /// Pace the copy on commit latency: pause it while a one-row commit takes more than FACTOR
    /// times its latency without the copy. Slower; the clients' writes wait less for the redo
    /// log (default: off).
    #[arg(long, value_name = "FACTOR", help_heading = ONLINE)]
    pub copy_commit_factor: Option<f64>,
    /// Pause the copy while the server's Threads_running is above this.
    #[arg(long, value_name = "N", help_heading = ONLINE)]
    pub max_threads_running: Option<u64>,
    /// A replica whose lag pauses the copy (repeatable).
    #[arg(long, value_name = "URL", help_heading = ONLINE)]
    pub replica_url: Vec<String>,
    /// Replica lag that pauses the copy (default 1).
    #[arg(long, value_name = "SECONDS", help_heading = ONLINE)]
    pub max_replica_lag: Option<u64>,
}

/// Logical replication (PostgreSQL): the subscribers a publisher's run checks (`up`, `plan`,
/// `complete`).
#[derive(Args, Clone, Default)]
pub struct SubscriberArgs {
    /// A subscriber of this publisher (repeatable): before a column is added to a published
    /// table, sluice checks that the subscriber has it (refuses otherwise). Also
    /// SLUICE_SUBSCRIBER_URLS (space-separated) or subscriber_urls in sluice.toml.
    #[arg(
        long,
        value_name = "URL",
        env = "SLUICE_SUBSCRIBER_URLS",
        hide_env_values = true,
        value_delimiter = ' '
    )]
    pub subscriber_url: Vec<String>,
}

/// When a rewrite or copy is not worth it.
#[derive(Args, Clone, Default)]
pub struct SmallTableArgs {
    /// A rewriting type change (PostgreSQL) or a table copy (MariaDB/MySQL) on a table with fewer
    /// rows than this runs as written; 0: never (default 10000; sluice.toml: as_written_below_rows).
    #[arg(long, value_name = "ROWS", env = "SLUICE_AS_WRITTEN_BELOW_ROWS")]
    pub as_written_below_rows: Option<u64>,
}

/// The default of `as_written_below_rows`: at a copy rate of ~100k rows/s such a table is altered
/// as written in about a tenth of a second.
pub const AS_WRITTEN_BELOW_ROWS: u64 = sluice_core::runner::DEFAULT_AS_WRITTEN_BELOW_ROWS;

/// Everything a command that runs migrations (`up`, `down`) reads.
#[derive(Args, Clone)]
pub struct RunnerArgs {
    #[command(flatten)]
    pub small: SmallTableArgs,
    #[command(flatten)]
    pub run: RunLockArgs,
    #[command(flatten)]
    pub history: HistoryArgs,
    #[command(flatten)]
    pub lock_timeout: LockTimeoutArgs,
    #[command(flatten)]
    pub retry: LockRetryArgs,
    #[command(flatten)]
    pub exclusive: ExclusiveArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub online: OnlineArgs,
}

impl RunnerArgs {
    fn given(&self) -> Given<'_> {
        Given {
            small: Some(&self.small),
            run: Some(&self.run),
            history: Some(&self.history),
            lock_timeout: Some(&self.lock_timeout),
            retry: Some(&self.retry),
            exclusive: Some(&self.exclusive),
            pacing: Some(&self.pacing),
            online: Some(&self.online),
            subscribers: None,
            postpone_cutover: false,
        }
    }
}

/// The online-copy flags steer MariaDB/MySQL table copies only: given for a PostgreSQL database they
/// would be silently ignored (a `--replica-url` the user trusts to pause the run would not), so they
/// are refused before anything runs.
fn refuse_unused_online_flags(r: &Resolved, g: &Given) -> Result<()> {
    let mut given: Vec<&str> = Vec::new();
    if let Some(a) = g.online {
        for (set, flag) in [
            (a.chunk_ms.is_some(), "--chunk-ms"),
            (a.copy_commit_factor.is_some(), "--copy-commit-factor"),
            (a.max_threads_running.is_some(), "--max-threads-running"),
            (!a.replica_url.is_empty(), "--replica-url"),
            (a.max_replica_lag.is_some(), "--max-replica-lag"),
        ] {
            if set {
                given.push(flag);
            }
        }
    }
    if g.postpone_cutover {
        given.push("--postpone-cutover");
    }
    if given.is_empty() {
        return Ok(());
    }
    // Without a usable URL the command fails on that first, with its own message.
    let Ok(url) = r.url() else { return Ok(()) };
    if url.kind() != sluice_core::target::EngineKind::Postgres {
        return Ok(());
    }
    Err(Error::usage(
        format!(
            "{} steer{} MariaDB/MySQL online table copies, and this database is PostgreSQL: nothing would read {}",
            given.join(", "),
            if given.len() == 1 { "s" } else { "" },
            if given.len() == 1 { "it" } else { "them" },
        ),
        "drop the flag; on PostgreSQL backfills pace on replica lag from pg_stat_replication (--max-replica-lag-ms)",
    ))
}

/// The option groups one subcommand has; a group it has not falls back to sluice.toml and the
/// defaults. The one way a `RunContext` is built, so a flag on a subcommand is a flag it reads
/// (the `every_runner_flag_reaches_the_run` test checks that for every subcommand).
#[derive(Default)]
pub struct Given<'a> {
    small: Option<&'a SmallTableArgs>,
    run: Option<&'a RunLockArgs>,
    history: Option<&'a HistoryArgs>,
    lock_timeout: Option<&'a LockTimeoutArgs>,
    retry: Option<&'a LockRetryArgs>,
    exclusive: Option<&'a ExclusiveArgs>,
    pacing: Option<&'a PacingArgs>,
    online: Option<&'a OnlineArgs>,
    subscribers: Option<&'a SubscriberArgs>,
    postpone_cutover: bool,
}

#[derive(Subcommand)]
pub enum Command {
    /// See what sluice is for: a dangerous migration on a busy table, as written and by sluice.
    // After the options, not as a long description: that would switch --help to its long layout.
    #[command(
        after_help = "On a scratch database (dropped afterwards, also on Ctrl-C), a dangerous migration is \
applied to a table under a live workload as written and then by sluice, compared side by side, with \
an HTML report. The server is --database-url (or DATABASE_URL), else the local PostgreSQL at \
postgres://postgres@127.0.0.1:5432/postgres; sluice.toml is not read."
    )]
    Demo {
        /// Rows in the demo's `accounts` table.
        #[arg(long, default_value_t = 1_000_000, value_name = "N")]
        rows: u64,
        /// Where to write the HTML report (default: sluice-demo.html in the temporary directory).
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
    },
    /// Create sluice.toml and the migrations directory.
    Init,
    /// Create a new migration file `<timestamp>_<name>.sql` with an up and a down part.
    New { name: String },
    /// Show every migration's state, its app version, whether the live schema drifted, and what to
    /// run next.
    Status {
        #[arg(long)]
        json: bool,
    },
    /// Apply pending migrations (and resume a failed or interrupted one), then the repeatable
    /// migrations that are new or changed.
    Up {
        /// Apply up to and including this version.
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
        /// Print what would run, run nothing.
        #[arg(long)]
        dry_run: bool,
        /// With --dry-run: print it as JSON (each statement and the steps it runs as).
        #[arg(long, requires = "dry_run")]
        json: bool,
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
        /// Run the contract phase of each breaking migration (a column rename) right after its
        /// expand phase, leaving nothing expanded (no window with two application versions); what
        /// an earlier `up` left expanded is completed first.
        #[arg(long)]
        complete: bool,
        #[command(flatten)]
        runner: RunnerArgs,
        #[command(flatten)]
        subscribers: SubscriberArgs,
        /// Copy and verify, then stop before the swap; `sluice cutover` swaps later.
        #[arg(long, help_heading = ONLINE)]
        postpone_cutover: bool,
    },
    /// Two application versions: run the contract phase of expanded migrations (default: every
    /// one), once the new application version runs everywhere. The old names stop working.
    Complete {
        /// The expanded migration to complete.
        #[arg(value_name = "VERSION")]
        version: Option<String>,
        #[command(flatten)]
        subscribers: SubscriberArgs,
        #[command(flatten)]
        run: RunLockArgs,
        #[command(flatten)]
        history: HistoryArgs,
        #[command(flatten)]
        lock_timeout: LockTimeoutArgs,
        #[command(flatten)]
        retry: LockRetryArgs,
        #[command(flatten)]
        exclusive: ExclusiveArgs,
    },
    /// Two application versions: undo the expand phase of an expanded migration (default: the
    /// latest), before `complete`. The new names stop working; the migration is pending again.
    Rollback {
        /// The expanded (or failed, or interrupted) breaking migration to roll back.
        #[arg(value_name = "VERSION")]
        version: Option<String>,
        #[command(flatten)]
        run: RunLockArgs,
        #[command(flatten)]
        history: HistoryArgs,
        #[command(flatten)]
        lock_timeout: LockTimeoutArgs,
        #[command(flatten)]
        retry: LockRetryArgs,
        #[command(flatten)]
        exclusive: ExclusiveArgs,
    },
    /// MariaDB/MySQL: swap every verified online copy (from `up --postpone-cutover`) into place,
    /// then run `sluice up` to record the migration.
    Cutover {
        #[command(flatten)]
        run: RunLockArgs,
        #[command(flatten)]
        lock_timeout: LockTimeoutArgs,
        #[command(flatten)]
        retry: LockRetryArgs,
        #[command(flatten)]
        online: OnlineArgs,
    },
    /// MariaDB/MySQL: drop the `_<table>_old` tables kept by online changes.
    Cleanup {
        /// Also abandon unfinished online copies (drop their triggers, change log and shadow table).
        #[arg(long)]
        abort: bool,
        #[command(flatten)]
        run: RunLockArgs,
    },
    /// Roll back applied migrations with their down parts (default: the latest one). Repeatable
    /// migrations are never rolled back.
    Down {
        /// Roll back every migration newer than this version.
        #[arg(long, value_name = "VERSION", conflicts_with = "steps")]
        to: Option<String>,
        /// Roll back this many migrations.
        #[arg(long)]
        steps: Option<usize>,
        #[arg(long)]
        dry_run: bool,
        /// Run every statement exactly as written.
        #[arg(long)]
        as_written: bool,
        /// Also roll back a failed migration (MariaDB/MySQL: the statements of it that ran stay
        /// committed) by running its down part in full. The down part is written for the whole
        /// migration: it must also work when the statements after the failed one never ran
        /// (e.g. `DROP TABLE IF EXISTS`).
        #[arg(long)]
        failed: bool,
        #[command(flatten)]
        runner: RunnerArgs,
        #[command(flatten)]
        subscribers: SubscriberArgs,
    },
    /// Check that applied migrations still match their files (exit 4 when not).
    Verify {
        #[arg(long)]
        json: bool,
    },
    /// Accept intentional edits of applied migrations: re-record their checksums (logged).
    Repair {
        #[command(flatten)]
        run: RunLockArgs,
        #[command(flatten)]
        history: HistoryArgs,
    },
    /// Adopt an existing database: record migrations up to VERSION as applied without running them.
    Baseline {
        version: String,
        #[command(flatten)]
        run: RunLockArgs,
        #[command(flatten)]
        history: HistoryArgs,
    },
    /// Adopt a database another tool migrated: record the versions its history table says it
    /// applied as applied, and take the schema snapshot.
    Import {
        /// The tool that migrated the database (default: the migrations directory's layout).
        #[arg(long, value_name = "TOOL")]
        from: Option<String>,
        /// The tool's history table, when it was configured with another name.
        #[arg(long, value_name = "NAME")]
        table: Option<String>,
        /// Import the versions that have files even when some the tool applied have none.
        #[arg(long)]
        allow_missing: bool,
        #[command(flatten)]
        run: RunLockArgs,
        #[command(flatten)]
        history: HistoryArgs,
    },
    /// Compare the live schema with the snapshot sluice recorded (exit 4 when it drifted).
    Drift {
        #[arg(long)]
        json: bool,
        /// Write the drift as a new migration and record it as applied here.
        #[arg(long)]
        write_migration: bool,
        #[command(flatten)]
        run: RunLockArgs,
        #[command(flatten)]
        history: HistoryArgs,
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
    /// Find the code that names a table or column the migrations rename, drop, retype, make NOT
    /// NULL or unique (exit 10 when a dropped or renamed name is still referenced). Offline.
    Refs {
        /// Code to search, honouring .gitignore (default: `code_path` in sluice.toml, else `.`).
        paths: Vec<PathBuf>,
        /// Migration files or directories to read (default: every migration of the migrations
        /// directory); repeatable. Give the pending ones to check only those.
        #[arg(long, value_name = "PATH")]
        migration: Vec<PathBuf>,
        /// Engine and version whose SQL the migrations are written in (or `target` in sluice.toml,
        /// else the database URL's scheme).
        #[arg(long)]
        target: Option<String>,
        #[arg(long)]
        json: bool,
        /// Report references but exit 0 (the gate becomes a warning).
        #[arg(long)]
        warn_only: bool,
        /// `unhandled-reference`: exit 10 while the code names a table or column a migration
        /// drops or renames (the default; spelled out for CI configurations).
        #[arg(long, value_name = "GATE", value_parser = ["unhandled-reference"], conflicts_with = "warn_only")]
        fail_on: Vec<String>,
    },
    /// Show what `up` would do to the live database: per statement the lock, duration class,
    /// estimated time on the live table, what it blocks, and the safe steps.
    Plan {
        #[arg(long, value_name = "VERSION")]
        to: Option<String>,
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
        /// Also show query plans on the live database, changing nothing (PostgreSQL): the plans
        /// the hot statements would get with each new index (hypothetical, through hypopg), and
        /// the statements that use each dropped index or column today.
        #[arg(long)]
        explain: bool,
        /// With --explain: the statements to explain (SQL, `;`-terminated, `$1` placeholders);
        /// default: pg_stat_statements' top statements.
        #[arg(long, value_name = "FILE", requires = "explain")]
        queries: Option<PathBuf>,
        /// `unhandled-reference`: exit 10 when the code under `code_path` (sluice.toml) still
        /// names a table or column a pending migration drops or renames.
        #[arg(long, value_name = "GATE", value_parser = ["unhandled-reference"])]
        fail_on: Vec<String>,
        #[command(flatten)]
        small: SmallTableArgs,
        #[command(flatten)]
        subscribers: SubscriberArgs,
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
        #[command(flatten)]
        run: RunLockArgs,
        #[command(flatten)]
        lock_timeout: LockTimeoutArgs,
        #[command(flatten)]
        pacing: PacingArgs,
    },
    /// Would users notice? Apply the pending migrations to a scratch clone of the database while
    /// a workload runs against it, and judge latency, stalls and errors against a baseline
    /// (exit 8 when users would notice).
    Rehearse(Box<RehearseArgs>),
    /// Many databases (tenants, shards): run `up`, `plan`, `status` or `complete` on every target of
    /// a targets file, group by group (e.g. canary, then the rest), with a concurrency limit, stopping
    /// on the first failure, and one summary (exit 0 when every target succeeded).
    Fleet(FleetArgs),
    /// Show the append-only event log (up, down, failed, repair, baseline, import, drift-capture).
    Log {
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script, e.g. `sluice completions bash > /etc/bash_completion.d/sluice`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the man pages: `sluice.1` and one `sluice-<command>.1` per subcommand.
    Man {
        /// Directory to write the pages to (default: print `sluice.1` to stdout).
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Args)]
pub struct FleetArgs {
    #[command(subcommand)]
    pub action: FleetAction,
}

/// The fleet's options, common to its commands.
#[derive(Args, Clone)]
pub struct FleetOpts {
    /// The targets file: `[[group]]` tables (`name`, `targets` and/or `targets_file`, optional
    /// `subscriber_url` template), run in file order; optional `url` template with `{target}`,
    /// `concurrency`, and `[subscribers]` (each target's logical-replication subscribers by name).
    #[arg(long, default_value = "fleet.toml", value_name = "FILE")]
    pub targets: PathBuf,
    /// Targets running at once (default: the file's `concurrency`, else 4).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Go on after a target fails (default: start no further target; those running finish). An
    /// unreachable server never stops the fleet: it is reported.
    #[arg(long)]
    pub keep_going: bool,
    /// The summary as JSON on stdout (each target's own output goes to stderr, prefixed).
    #[arg(long)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum FleetAction {
    /// `sluice up` on every target; options after `--` are passed on (e.g. `-- --complete`).
    Up {
        #[command(flatten)]
        opts: FleetOpts,
        #[arg(last = true, value_name = "UP OPTIONS")]
        args: Vec<String>,
    },
    /// `sluice plan` on every target; options after `--` are passed on.
    Plan {
        #[command(flatten)]
        opts: FleetOpts,
        #[arg(last = true, value_name = "PLAN OPTIONS")]
        args: Vec<String>,
    },
    /// Each target's migrations counted by state.
    Status {
        #[command(flatten)]
        opts: FleetOpts,
    },
    /// `sluice complete` on every target, only once every target has expanded the same migrations
    /// and has nothing pending or failed (exit 11 otherwise, nothing completed).
    Complete {
        #[command(flatten)]
        opts: FleetOpts,
        #[arg(last = true, value_name = "COMPLETE OPTIONS")]
        args: Vec<String>,
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
    pub to: Option<String>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    /// Write a self-contained HTML report with charts.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Explain the workload's statements on the clone before and after the migration and report
    /// every plan that changed (PostgreSQL).
    #[arg(long)]
    pub explain: bool,
    /// With --explain: also measure each statement's time on the clone (EXPLAIN ANALYZE, median
    /// of five runs, each rolled back).
    #[arg(long, requires = "explain")]
    pub analyze: bool,
    /// `plan-regression`: exit 12 when a statement's plan regressed (implies --explain).
    #[arg(long, value_name = "GATE", value_parser = ["plan-regression"])]
    pub fail_on: Vec<String>,
    /// A plan estimated at this many times its cost before the migration is a regression
    /// (default 2.0, or `plan_regression_ratio` in sluice.toml).
    #[arg(long, value_name = "RATIO")]
    pub plan_regression_ratio: Option<f64>,
    #[command(flatten)]
    pub lock_timeout: LockTimeoutArgs,
    #[command(flatten)]
    pub retry: LockRetryArgs,
    #[command(flatten)]
    pub exclusive: ExclusiveArgs,
    #[command(flatten)]
    pub pacing: PacingArgs,
    #[command(flatten)]
    pub online: OnlineArgs,
}

/// What `lint` reads: a file given by path, or a migration of a directory in its layout.
enum LintInput {
    File(PathBuf),
    Entry(sluice_core::layout::Entry),
}

struct Resolved {
    config: Config,
    global: Global,
}

impl Resolved {
    /// The migrations `lint` and `refs` read: each directory in `paths` (default: the migrations
    /// directory) in its layout (sluice.toml's for the migrations directory, else detected), each
    /// file as the migration it belongs to in the migrations directory's layout (the files a change
    /// touched), else as sluice's. Paths only: files are read one at a time later. The engine picks
    /// per-dialect variants (`x.postgres.sql`).
    fn migration_inputs(&self, paths: Vec<PathBuf>, engine: EngineKind) -> Result<Vec<LintInput>> {
        let dialect = sluice_core::layout::Dialect::of(engine);
        let paths = if paths.is_empty() {
            vec![self.migrations_dir()]
        } else {
            paths
        };
        let mut inputs: Vec<LintInput> = Vec::new();
        for p in paths {
            if p.is_dir() {
                let configured = if p == self.migrations_dir() {
                    self.config.layout()
                } else {
                    None
                };
                let layout = sluice_core::layout::resolve(&p, configured)?;
                inputs.extend(
                    sluice_core::layout::entries(&p, layout, Some(dialect))?
                        .into_iter()
                        .map(LintInput::Entry),
                );
            } else {
                let dir = self.migrations_dir();
                let owner =
                    sluice_core::layout::entry_of_file(&dir, self.config.layout(), dialect, &p)?;
                inputs.push(owner.map_or(LintInput::File(p), LintInput::Entry));
            }
        }
        Ok(inputs)
    }

    fn migrations_dir(&self) -> PathBuf {
        migrations_dir(&self.global, &self.config)
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
        Ok(DbUrl::parse(&raw)?.with_session(self.config.session()))
    }

    fn files(&self) -> Result<Vec<Migration>> {
        // The URL's scheme names the engine, which picks per-dialect variants (`x.postgres.sql`).
        let dialect = self
            .url()
            .ok()
            .map(|u| sluice_core::layout::Dialect::of(u.kind()));
        Ok(sluice_core::layout::discover(&self.migrations_dir(), self.config.layout(), dialect)?.1)
    }

    /// Whose layout the migrations directory follows: sluice.toml's `layout`, else detected.
    fn layout(&self) -> Result<sluice_core::layout::Layout> {
        sluice_core::layout::resolve(&self.migrations_dir(), self.config.layout())
    }

    /// A version argument (`--to`, `baseline`) as the user wrote it: as its file names it
    /// (`2019-01-01-000000`, `1.2.10`), or the history key; `0` is before every migration.
    fn version_arg(&self, raw: Option<&str>) -> Result<Option<i64>> {
        let Some(raw) = raw else { return Ok(None) };
        let layout = self.layout()?;
        sluice_core::layout::key_of(layout, raw)
            .map(Some)
            .map_err(|m| {
                Error::usage(
                    format!("version {raw}: {m}"),
                    "give a version as `sluice status` shows it",
                )
            })
    }

    /// Commands that write a migration file write sluice's layout: refuse them in another tool's.
    fn writes_sluice_files(&self, what: &str) -> Result<()> {
        let layout = self.layout()?;
        if layout != sluice_core::layout::Layout::Sluice {
            return Err(Error::usage(
                format!(
                    "{what} writes a migration in sluice's own layout, but {} follows {layout}'s",
                    self.migrations_dir().display()
                ),
                format!("create the migration as {layout} names it (e.g. with {layout}'s own command); sluice reads it in place"),
            ));
        }
        Ok(())
    }

    /// The run's settings: a flag the subcommand has wins over sluice.toml, which wins over the default.
    fn context(&self, g: &Given) -> RunContext {
        let c = &self.config;
        let lock_timeout = Duration::from_millis(
            g.lock_timeout
                .and_then(|a| a.lock_timeout)
                .or(c.lock_timeout_ms)
                .unwrap_or(1000),
        );
        let lock_retry_for = Duration::from_secs(
            g.retry
                .and_then(|a| a.lock_retry_for)
                .or(c.lock_retry_secs)
                .unwrap_or(600),
        );
        // The online copy waits on metadata locks with the same discipline as every statement.
        let mut online = sluice_core::engine::OnlineOptions {
            postpone_cutover: g.postpone_cutover,
            lock_timeout,
            lock_retry_for,
            // Only the commands that plan or run migrations (up, down, plan) have the setting;
            // the others never run a migration's ALTER.
            as_written_below_rows: g
                .small
                .map(|a| {
                    a.as_written_below_rows
                        .or(c.as_written_below_rows)
                        .unwrap_or(AS_WRITTEN_BELOW_ROWS)
                })
                .unwrap_or(0),
            ..Default::default()
        };
        if let Some(a) = g.online {
            if let Some(ms) = a.chunk_ms {
                online.target_chunk = Duration::from_millis(ms.max(1));
            }
            online.commit_factor = a.copy_commit_factor.filter(|f| *f > 0.0);
            online.max_threads_running = a.max_threads_running;
            online.replica_urls = a.replica_url.clone();
            if let Some(s) = a.max_replica_lag {
                online.max_replica_lag = Duration::from_secs(s);
            }
        }
        RunContext {
            actor: actor(),
            // Only commands that record history ask git (one process spawn).
            app_version: g
                .history
                .and_then(|a| a.app_version.clone().or_else(git_describe)),
            lock_timeout,
            lock_retry_for,
            lock_wait: Duration::from_secs(
                g.run
                    .and_then(|a| a.lock_wait)
                    .or(c.lock_wait_secs)
                    .unwrap_or(60),
            ),
            say: Box::new(render::say),
            online,
            pacing: match g.pacing {
                Some(p) => p.pacing(),
                None => PacingArgs::defaults().pacing(),
            },
            exclusive_timeout: Duration::from_millis(
                g.exclusive
                    .and_then(|a| a.exclusive_timeout)
                    .or(c.exclusive_timeout_ms)
                    .unwrap_or(5000),
            ),
            progress: render::progress_bar(),
            // The flag (or its variable) wins over sluice.toml; only up, plan and complete read it.
            subscriber_urls: g
                .subscribers
                .map(|a| match a.subscriber_url.is_empty() {
                    true => c.subscriber_urls.clone().unwrap_or_default(),
                    false => a.subscriber_url.clone(),
                })
                .unwrap_or_default(),
        }
    }
}

impl Command {
    /// The option groups this subcommand has (see [`Given`]).
    fn given(&self) -> Given<'_> {
        match self {
            Command::Up {
                runner,
                subscribers,
                postpone_cutover,
                ..
            } => Given {
                postpone_cutover: *postpone_cutover,
                subscribers: Some(subscribers),
                ..runner.given()
            },
            Command::Down {
                runner,
                subscribers,
                ..
            } => Given {
                subscribers: Some(subscribers),
                ..runner.given()
            },
            Command::Complete {
                run,
                history,
                lock_timeout,
                retry,
                exclusive,
                subscribers,
                ..
            } => Given {
                run: Some(run),
                history: Some(history),
                lock_timeout: Some(lock_timeout),
                retry: Some(retry),
                exclusive: Some(exclusive),
                subscribers: Some(subscribers),
                ..Default::default()
            },
            Command::Rollback {
                run,
                history,
                lock_timeout,
                retry,
                exclusive,
                ..
            } => Given {
                run: Some(run),
                history: Some(history),
                lock_timeout: Some(lock_timeout),
                retry: Some(retry),
                exclusive: Some(exclusive),
                ..Default::default()
            },
            Command::Cutover {
                run,
                lock_timeout,
                retry,
                online,
            } => Given {
                run: Some(run),
                lock_timeout: Some(lock_timeout),
                retry: Some(retry),
                online: Some(online),
                ..Default::default()
            },
            Command::Cleanup { run, .. } => Given {
                run: Some(run),
                ..Default::default()
            },
            Command::Repair { run, history }
            | Command::Baseline { run, history, .. }
            | Command::Import { run, history, .. }
            | Command::Drift { run, history, .. } => Given {
                run: Some(run),
                history: Some(history),
                ..Default::default()
            },
            Command::Backfill {
                run,
                lock_timeout,
                pacing,
                ..
            } => Given {
                run: Some(run),
                lock_timeout: Some(lock_timeout),
                pacing: Some(pacing),
                ..Default::default()
            },
            Command::Plan {
                small, subscribers, ..
            } => Given {
                small: Some(small),
                subscribers: Some(subscribers),
                ..Default::default()
            },
            Command::Rehearse(a) => Given {
                lock_timeout: Some(&a.lock_timeout),
                retry: Some(&a.retry),
                exclusive: Some(&a.exclusive),
                pacing: Some(&a.pacing),
                online: Some(&a.online),
                ..Default::default()
            },
            Command::Init
            | Command::New { .. }
            | Command::Status { .. }
            | Command::Verify { .. }
            | Command::Lint { .. }
            | Command::Refs { .. }
            | Command::Rules { .. }
            | Command::Log { .. }
            | Command::Completions { .. }
            | Command::Demo { .. }
            | Command::Fleet(_)
            | Command::Man { .. } => Given::default(),
        }
    }
}

fn actor() -> String {
    let user = ["USER", "USERNAME", "LOGNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        .or_else(os_user)
        .unwrap_or_else(|| "unknown".into());
    let host = sluice_core::engine::LockHolder::me().host;
    match ci_run() {
        Some(ci) => format!("{user}@{host} ({ci})"),
        None => format!("{user}@{host}"),
    }
}

/// The OS user when no variable names one (cron, systemd units and containers often set none):
/// the name `/etc/passwd` gives the process's uid, or `uid N`.
#[cfg(unix)]
fn os_user() -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata("/proc/self").ok()?.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = passwd.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.len() > 2 && f[2].parse() == Ok(uid)).then(|| f[0].to_string())
    });
    Some(name.unwrap_or_else(|| format!("uid {uid}")))
}

#[cfg(not(unix))]
fn os_user() -> Option<String> {
    None
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

/// Global options a subcommand does not read (id, long name): hidden from its help and refused if
/// given. `demo` makes its own scratch project; `completions` and `man` are generated from the
/// definitions alone.
const UNREAD_GLOBALS: &[(&str, &[(&str, &str)])] = &[
    (
        "demo",
        &[("config", "config"), ("migrations_dir", "migrations-dir")],
    ),
    (
        "completions",
        &[
            ("database_url", "database-url"),
            ("config", "config"),
            ("migrations_dir", "migrations-dir"),
        ],
    ),
    (
        "man",
        &[
            ("database_url", "database-url"),
            ("config", "config"),
            ("migrations_dir", "migrations-dir"),
        ],
    ),
];

/// The command line as parsed and as documented (help, completions, man pages): each
/// subcommand's help lists only the global options it reads.
pub fn command() -> clap::Command {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    // A subcommand's own argument of the same id keeps the global one out of it: a hidden one
    // whose every value is refused (exit 2), so a flag the subcommand would ignore is an error.
    for (sub, unread) in UNREAD_GLOBALS {
        cmd = cmd.mut_subcommand(*sub, |mut s| {
            for (id, long) in *unread {
                let refuse = move |_: &str| -> std::result::Result<String, String> {
                    Err(format!("`sluice {sub}` does not read --{long}: drop it"))
                };
                s = s.arg(
                    clap::Arg::new(*id)
                        .long(*long)
                        .hide(true)
                        .value_parser(refuse),
                );
            }
            s
        });
    }
    cmd
}

/// The migrations directory: `--migrations-dir`, else sluice.toml's, else `migrations`.
pub fn migrations_dir(global: &Global, config: &Config) -> PathBuf {
    global
        .migrations_dir
        .clone()
        .or_else(|| config.migrations_dir.clone())
        .unwrap_or_else(|| PathBuf::from("migrations"))
}

/// Parses the process's arguments with [`command`].
pub fn parse() -> std::result::Result<Cli, clap::Error> {
    use clap::FromArgMatches;
    command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m))
}

pub async fn run(cli: Cli) -> Result<i32> {
    // Generated from the definitions alone: no sluice.toml is read, so a broken one cannot stop them.
    match &cli.command {
        Command::Completions { shell } => return completions(*shell),
        // Each target gets its URL from the targets file; the children read sluice.toml.
        Command::Fleet(f) => return crate::fleet::command(f, &cli.global).await,
        Command::Man { out } => return man(out.as_deref()),
        // Independent of any project: sluice.toml is neither needed nor read.
        Command::Demo { rows, report } => {
            let r = Resolved {
                config: Config::default(),
                global: cli.global,
            };
            let admin = r
                .global
                .database_url
                .clone()
                .unwrap_or_else(|| crate::demo::DEFAULT_ADMIN_URL.to_string());
            let ctx = r.context(&Given::default());
            return crate::demo::demo(crate::demo::DemoOptions {
                admin: DbUrl::parse(&admin)?,
                rows: *rows,
                report: report
                    .clone()
                    .unwrap_or_else(|| std::env::temp_dir().join("sluice-demo.html")),
                ctx,
            })
            .await;
        }
        _ => {}
    }
    let config = Config::load(cli.global.config.as_deref())?;
    let r = Resolved {
        config,
        global: cli.global,
    };
    let mut ctx = r.context(&cli.command.given());
    refuse_unused_online_flags(&r, &cli.command.given())?;
    match cli.command {
        Command::Init => init(&r),
        Command::New { name } => new(&r, &name),
        Command::Status { json } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            let mut report = runner::status(engine.as_mut(), &files).await?;
            let layout = r.layout()?;
            report.layout = Some(layout.name().to_string());
            // A row without its file shows the version its key stands for in this layout.
            for e in &mut report.migrations {
                if e.status == runner::MigrationStatus::MissingFile {
                    e.version_text = sluice_core::layout::version_text_of(layout, e.version);
                }
            }
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
            json,
            ..
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
                    render::plan(&report.planned, "apply", json);
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
            json,
            complete,
            ..
        } => {
            let files = r.files()?;
            let url = r.url()?;
            let mut engine = connect::engine(&url, create_database && !dry_run).await?;
            let opts = UpOptions {
                to: r.version_arg(to.as_deref())?,
                dry_run,
                allow_out_of_order: out_of_order,
                as_written,
                as_written_below_rows: ctx.online.as_written_below_rows,
                complete,
                subscriber_urls: ctx.subscriber_urls.clone(),
            };
            let report = runner::up(engine.as_mut(), &files, &opts, &ctx).await?;
            if dry_run {
                for v in &report.completed {
                    render::say(&format!(
                        "would complete {v} first, left expanded by an earlier `up` (`--complete`)"
                    ));
                }
                render::plan(&report.planned, "apply", json);
            } else if !report.applied.is_empty() {
                render::say(&format!(
                    "done: {} migration(s) applied",
                    report.applied.len()
                ));
            }
            if !dry_run && !report.expanded.is_empty() {
                let list: Vec<String> = report.expanded.iter().map(|v| v.to_string()).collect();
                render::say(&format!(
                    "expanded: {} (two application versions can run now; `sluice complete` once the new one runs everywhere, `sluice rollback` to undo)",
                    list.join(", ")
                ));
            }
            Ok(exit::OK)
        }
        Command::Complete { version, .. } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            let version = r.version_arg(version.as_deref())?;
            let done =
                sluice_core::lifecycle::complete(engine.as_mut(), &files, version, &ctx).await?;
            if done.is_empty() {
                render::say("nothing is expanded: nothing to complete");
            } else {
                render::say(&format!("done: {} migration(s) completed", done.len()));
            }
            Ok(exit::OK)
        }
        Command::Rollback { version, .. } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            let version = r.version_arg(version.as_deref())?;
            let done =
                sluice_core::lifecycle::rollback(engine.as_mut(), &files, version, &ctx).await?;
            if !done.is_empty() {
                render::say(&format!("done: {} migration(s) rolled back", done.len()));
            }
            Ok(exit::OK)
        }
        Command::Cutover { .. } => {
            let lines = connect::online_cutover(&r.url()?, &ctx).await?;
            if lines.is_empty() {
                render::say("no online copy waits for its swap");
            }
            for l in lines {
                render::say(&l);
            }
            Ok(exit::OK)
        }
        Command::Cleanup { abort, .. } => {
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
            failed,
            ..
        } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            let runner::DownReport { planned, stopped } = runner::down(
                engine.as_mut(),
                &files,
                &DownOptions {
                    to: r.version_arg(to.as_deref())?,
                    steps,
                    dry_run,
                    as_written,
                    failed,
                },
                &ctx,
            )
            .await?;
            // With nothing above the irreversible migration, its error is the whole answer.
            if dry_run && !(planned.is_empty() && stopped.is_some()) {
                render::plan(&planned, "roll back", false);
            } else if !dry_run && !planned.is_empty() {
                render::say(&format!("done: {} migration(s) rolled back", planned.len()));
            }
            // The irreversible migration `down` stopped at, after reverting those above it.
            if let Some(e) = stopped {
                return Err(e);
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
        Command::Repair { .. } => {
            let files = r.files()?;
            let mut engine = connect::engine(&r.url()?, false).await?;
            runner::repair(engine.as_mut(), &files, &ctx).await?;
            Ok(exit::OK)
        }
        Command::Baseline { version, .. } => {
            let files = r.files()?;
            let version = r.version_arg(Some(&version))?.unwrap_or(0);
            let mut engine = connect::engine(&r.url()?, false).await?;
            runner::baseline(engine.as_mut(), &files, version, &ctx).await?;
            Ok(exit::OK)
        }
        Command::Import {
            from,
            table,
            allow_missing,
            ..
        } => {
            let files = r.files()?;
            let files_layout = r.layout()?;
            let tool = match from {
                Some(t) => sluice_core::layout::Layout::parse(&t)
                    .map_err(|m| Error::usage(m, "pass --from with one of the tools named"))?,
                None => files_layout,
            };
            let mut engine = connect::engine(&r.url()?, false).await?;
            let opts = sluice_core::import::ImportOptions {
                tool,
                files_layout,
                table,
                allow_missing,
            };
            let report = sluice_core::import::import(engine.as_mut(), &files, &opts, &ctx).await?;
            render::import(&report);
            // Versions without files refuse the import (exit 4) unless --allow-missing.
            Ok(exit::OK)
        }
        Command::Drift {
            json,
            write_migration,
            ..
        } => {
            let mut engine = connect::engine(&r.url()?, false).await?;
            if write_migration {
                r.writes_sluice_files("`sluice drift --write-migration`")?;
                match runner::capture_drift(engine.as_mut(), &r.migrations_dir(), &ctx).await? {
                    Some(m) => render::say(&format!(
                        "wrote {} and recorded it as applied; commit it. `sluice down` here reverts the drift",
                        m.path.display()
                    )),
                    None => render::say("no drift: nothing to write"),
                }
                return Ok(exit::OK);
            }
            let layout = r.layout().ok();
            let report = runner::drift_in(engine.as_mut(), layout).await?;
            render::drift(&report, layout, json);
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
            let mut opts = sluice_core::lint::LintOptions {
                include_down,
                staged: !as_written,
                ..Default::default()
            };
            let target = if connect {
                let mut engine = connect::engine(&r.url()?, false).await?;
                opts.stats = Some(engine.table_stats().await?);
                // The pending migrations run in one `up`: a table an earlier one creates is new.
                opts.applied = Some(
                    engine
                        .history()
                        .await?
                        .iter()
                        .filter(|r| {
                            matches!(
                                r.state,
                                sluice_core::history::RecordState::Applied
                                    | sluice_core::history::RecordState::Baseline
                                    | sluice_core::history::RecordState::Expanded
                            )
                        })
                        .map(|r| r.version)
                        .collect(),
                );
                let live = engine.introspect().await?;
                for (tname, t) in &live.tables {
                    let short = tname.rsplit('.').next().unwrap_or(tname);
                    for c in &t.columns {
                        opts.live_columns.insert(short, &c.name, &c.data_type);
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
            // Paths only: files are read one at a time, so memory stays flat however many there are.
            let inputs = r.migration_inputs(paths, target.engine)?;
            let mut linter = sluice_core::lint::Linter::new(target, opts);
            let mut out = crate::lint::Output::new(format, &target.to_string());
            // Files are read and parsed on every core; the rules, which carry column types from
            // one file to the next, take them in order, so the output is the serial one.
            let parser = linter.parser();
            let threads = crate::lint::threads()?;
            crate::lint::for_each_ordered(
                &inputs,
                threads,
                |input| {
                    let size = |p: &std::path::Path| std::fs::metadata(p).map_or(0, |m| m.len());
                    match input {
                        LintInput::File(path) => size(path),
                        LintInput::Entry(e) => size(&e.up) + e.down.as_deref().map_or(0, size),
                    }
                },
                crate::lint::SQL_IN_FLIGHT,
                |input| {
                    match input {
                        LintInput::File(path) => migration::load_any(path),
                        LintInput::Entry(e) => sluice_core::layout::load(e),
                    }
                    .map(|m| (parser.parse(&m), m))
                },
                |loaded| {
                    let (parsed, m) = loaded?;
                    let findings = linter.lint_parsed(&m, parsed);
                    out.file(&m, findings);
                    Ok::<(), Error>(())
                },
            )?;
            let errors = out.finish(&linter);
            Ok(crate::lint::exit_code(errors))
        }
        Command::Plan {
            to,
            out_of_order,
            as_written,
            json,
            out,
            explain,
            queries,
            fail_on,
            ..
        } => {
            let fail_on_refs = fail_on.iter().any(|g| g == "unhandled-reference");
            if fail_on_refs && r.config.code_path.is_none() {
                return Err(Error::usage(
                    "plan --fail-on unhandled-reference needs the code to search",
                    "set code_path in sluice.toml (e.g. code_path = \"src\"), or run `sluice refs PATH`",
                ));
            }
            // Read before connecting: a bad file is bad input whatever the database says.
            let queries = match &queries {
                Some(p) => {
                    let text = std::fs::read_to_string(p)
                        .map_err(|e| Error::io(format!("reading {}", p.display()), e))?;
                    let kind = r.url().map(|u| u.kind()).unwrap_or(EngineKind::Postgres);
                    Some(
                        sluice_rehearse::explain::queries_file_for(&text, kind).map_err(|e| {
                            Error::usage(
                                format!("--queries {}: {e}", p.display()),
                                "write the statements to explain, each ending with `;`; parameters as $1, $2",
                            )
                        })?,
                    )
                }
                None => None,
            };
            let files = r.files()?;
            let url = r.url()?;
            let mut engine = connect::engine(&url, false).await?;
            let opts = UpOptions {
                to: r.version_arg(to.as_deref())?,
                dry_run: true,
                allow_out_of_order: out_of_order,
                as_written,
                as_written_below_rows: ctx.online.as_written_below_rows,
                complete: false,
                subscriber_urls: ctx.subscriber_urls.clone(),
            };
            let report = runner::plan(engine.as_mut(), &files, &opts).await?;
            let section = match explain {
                true => Some(plan_explain(&url, &report, queries).await?),
                false => None,
            };
            // With a code path configured, the code that names what the pending migrations
            // change: a reviewer sees database and code in one place.
            let code_refs = match &r.config.code_path {
                Some(root) => {
                    let pending = files.iter().filter(|f| {
                        report
                            .migrations
                            .iter()
                            .any(|m| m.version_text == f.version_text && m.name == f.name)
                    });
                    let mut found = crate::refs::of(engine.target(), pending);
                    crate::refs::search(
                        std::slice::from_ref(root),
                        &r.migrations_dir(),
                        &mut found,
                    )?;
                    Some((root, found))
                }
                None => None,
            };
            if json {
                let mut v = serde_json::to_value(&report).expect("plan serialises");
                if let Some(section) = &section {
                    v["query_plans"] = serde_json::to_value(section).expect("plans serialise");
                }
                if let Some((_, found)) = &code_refs {
                    v["code_references"] = crate::refs::to_json(found, engine.target());
                }
                outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
            } else {
                render::plan_report(&report, false);
                if let Some(section) = &section {
                    out!("{}", render::live_plans(section));
                }
                if let Some((root, found)) = &code_refs {
                    outln!(
                        "\nCode that names what these migrations change (code_path = {}):",
                        root.display()
                    );
                    out!("{}", crate::refs::to_text(found));
                }
            }
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
            let unhandled = code_refs
                .as_ref()
                .is_some_and(|(_, found)| crate::refs::breaking(found) > 0);
            // The database's hazards first: they stop a deploy whatever the code says.
            Ok(if errors {
                exit::LINT_ERRORS
            } else if fail_on_refs && unhandled {
                exit::CODE_REFERENCES
            } else {
                exit::OK
            })
        }
        Command::Refs {
            paths,
            migration,
            target,
            json,
            warn_only,
            fail_on: _,
        } => {
            let target = match target.or_else(|| r.config.target.clone()) {
                Some(raw) => sluice_core::target::Target::parse(&raw).map_err(|e| {
                    Error::usage(format!("--target: {e}"), "e.g. --target postgres:15")
                })?,
                // Only the scheme is read: refs never connects.
                None => match r.url().ok().map(|u| u.kind()) {
                    // The versions sluice tests against: only the dialect matters here.
                    Some(EngineKind::Postgres) => sluice_core::target::Target::new(EngineKind::Postgres, 15, 0),
                    Some(EngineKind::MariaDb) => sluice_core::target::Target::new(EngineKind::MariaDb, 10, 11),
                    Some(EngineKind::MySql) => sluice_core::target::Target::new(EngineKind::MySql, 8, 0),
                    None => {
                        return Err(Error::usage(
                            "refs needs to know which SQL dialect the migrations are written in",
                            "pass --target postgres:15 (or mariadb:10.11, mysql:8.0.36), set `target` in sluice.toml, or give a database URL (it is not connected to)",
                        ))
                    }
                },
            };
            let inputs = r.migration_inputs(migration, target.engine)?;
            let loaded = inputs
                .iter()
                .map(|input| match input {
                    LintInput::File(path) => migration::load_any(path),
                    LintInput::Entry(e) => sluice_core::layout::load(e),
                })
                .collect::<Result<Vec<_>>>()?;
            let mut found = crate::refs::of(target, &loaded);
            let roots = if paths.is_empty() {
                vec![r
                    .config
                    .code_path
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("."))]
            } else {
                paths
            };
            crate::refs::search(&roots, &r.migrations_dir(), &mut found)?;
            let breaking = crate::refs::print(&found, target, json);
            Ok(if breaking > 0 && !warn_only {
                exit::CODE_REFERENCES
            } else {
                exit::OK
            })
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
            pacing,
            ..
        } => {
            let mut engine = connect::engine(&r.url()?, false).await?;
            let spec = sluice_core::engine::BackfillSpec {
                table,
                set,
                filter,
                batch_rows,
                target_batch: Duration::from_millis(pacing.target_batch_ms.max(1)),
                pause: Duration::from_millis(pause_ms),
                progress: ctx.progress.clone(),
                pacing: pacing.pacing(),
                // The user's own UPDATE: the table's triggers fire, as for any UPDATE.
                stands_for_ddl: false,
                online: ctx.online_options(),
            };
            runner::backfill(engine.as_mut(), &spec, &ctx).await?;
            render::finish_progress();
            Ok(exit::OK)
        }
        Command::Rehearse(args) => rehearse(&r, &args, ctx).await,
        Command::Completions { .. }
        | Command::Man { .. }
        | Command::Demo { .. }
        | Command::Fleet(_) => {
            unreachable!("handled before the configuration is read")
        }
        Command::Log { limit, json } => {
            let mut engine = connect::engine(&r.url()?, false).await?;
            let events = engine.events(limit).await?;
            render::events(&events, r.layout().ok(), json);
            Ok(exit::OK)
        }
    }
}

/// An option clap did not expect gets a tip naming the subcommands that have it: runner options are
/// options of the subcommands that run migrations, given after their name.
pub fn explain_parse_error(mut e: clap::Error) -> clap::Error {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::CommandFactory;
    if e.kind() != ErrorKind::UnknownArgument {
        return e;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return e;
    };
    let flag = arg.split('=').next().unwrap_or(arg).to_string();
    let Some(long) = flag.strip_prefix("--") else {
        return e;
    };
    let cli = Cli::command();
    let owners: Vec<String> = cli
        .get_subcommands()
        .filter(|s| s.get_arguments().any(|a| a.get_long() == Some(long)))
        .map(|s| s.get_name().to_string())
        .collect();
    let Some(first) = owners.first() else {
        return e;
    };
    let tip = format!(
        "{flag} is an option of `sluice {}` only: give it after the subcommand's name, e.g. `sluice {first} {flag} ...`",
        owners.join("`, `sluice ")
    );
    e.insert(
        ContextKind::Suggested,
        ContextValue::StyledStrs(vec![tip.into()]),
    );
    e
}

/// `sluice completions SHELL`: the script on stdout.
fn completions(shell: clap_complete::Shell) -> Result<i32> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut command(), "sluice", &mut script);
    to_stdout(&script, "the completion script")
}

/// Generated text on stdout; a reader that stops early (`| head`) is not an error.
fn to_stdout(bytes: &[u8], what: &str) -> Result<i32> {
    crate::write_stdout(bytes)
        .map(|()| exit::OK)
        .map_err(|e| Error::io(format!("writing {what} to stdout"), e))
}

/// `sluice man [--out DIR]`: every page into DIR, or the top page on stdout.
fn man(out: Option<&Path>) -> Result<i32> {
    // As generate_to does: `help` is not a page of its own.
    let cmd = command().disable_help_subcommand(true);
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
            clap_mangen::generate_to(cmd, dir)
                .map_err(|e| Error::io(format!("writing the man pages to {}", dir.display()), e))?;
            render::say(&format!(
                "wrote the man pages to {}; read one with `man {}/sluice-up.1`",
                dir.display(),
                dir.display()
            ));
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(cmd)
                .render(&mut page)
                .map_err(|e| Error::io("rendering the man page", e))?;
            return to_stdout(&page, "the man page");
        }
    }
    Ok(exit::OK)
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
    r.writes_sluice_files("`sluice new`")?;
    let mut now = chrono::Utc::now();
    // Versions must stay unique and increasing even when two migrations are created in one second.
    // Every dialect has the same versions (a variant for one engine is a no-op on the others).
    let latest = sluice_core::layout::entries(
        &dir,
        sluice_core::layout::Layout::Sluice,
        Some(sluice_core::layout::Dialect::Postgres),
    )?
    .iter()
    // Repeatables (negative keys) are listed last and have no place in the version order.
    .map(|e| e.version)
    .max()
    .unwrap_or(0);
    // A latest version in the future (a clock ahead, a hand-picked number): go on from it, one
    // second later, instead of counting seconds up to it.
    if latest >= migration::new_version(now) {
        now = chrono::NaiveDateTime::parse_from_str(&latest.to_string(), "%Y%m%d%H%M%S")
            .ok()
            .and_then(|t| t.and_utc().checked_add_signed(chrono::Duration::seconds(1)))
            .filter(|t| migration::new_version(*t) > latest)
            .ok_or_else(|| {
                Error::usage(
                    format!("the latest migration's version {latest} is later than now and is not a timestamp (YYYYMMDDHHMMSS), so `sluice new` cannot tell which comes next"),
                    format!("create the file by hand with a version above {latest}, e.g. `migrations/{}_{name}.sql`", latest.saturating_add(1)),
                )
            })?;
    }
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

/// `plan --explain`: the hot statements' plans on the live database, changing nothing.
async fn plan_explain(
    url: &DbUrl,
    report: &runner::PlanReport,
    queries: Option<Vec<sluice_rehearse::explain::Probe>>,
) -> Result<sluice_rehearse::explain::LiveSection> {
    use sluice_rehearse::explain;
    let (probes, source) = match queries {
        Some(q) => (q, "--queries".to_string()),
        // Its statement digests keep no values, and MariaDB explains a statement with them: the
        // statement history (performance_schema) keeps them as sent.
        None if url.kind() != EngineKind::Postgres => {
            match explain::top_probes_mariadb(url).await {
                Ok(p) => (
                    p,
                    "performance_schema statement history (most frequent)".to_string(),
                ),
                Err(e) => {
                    render::say(&format!(
                        "plan --explain: no hot statements: {e} ({}); or pass the statements with --queries FILE",
                        e.help().unwrap_or_default()
                    ));
                    (vec![], "none".to_string())
                }
            }
        }
        None => match explain::top_probes(url).await {
            Ok(p) => (p, "pg_stat_statements (top statements)".to_string()),
            Err(e) => {
                render::say(&format!(
                    "plan --explain: no hot statements: {e}; or pass the statements with --queries FILE"
                ));
                (vec![], "none".to_string())
            }
        },
    };
    let pending: Vec<explain::PendingMigration> = report
        .migrations
        .iter()
        .map(|m| explain::PendingMigration {
            label: format!("{}_{}", m.version_text, m.name),
            statements: m.statements.iter().map(|s| s.sql.clone()).collect(),
        })
        .collect();
    explain::live(url, &pending, probes, source).await
}

async fn rehearse(r: &Resolved, a: &RehearseArgs, ctx: RunContext) -> Result<i32> {
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
    let fail_on_plans = a.fail_on.iter().any(|g| g == "plan-regression");
    let plan_regression_ratio = a
        .plan_regression_ratio
        .or(r.config.plan_regression_ratio)
        .unwrap_or(sluice_rehearse::explain::DEFAULT_REGRESSION_RATIO);
    if !(plan_regression_ratio.is_finite() && plan_regression_ratio > 1.0) {
        return Err(Error::usage(
            format!("--plan-regression-ratio {plan_regression_ratio}: must be a number above 1"),
            "e.g. --plan-regression-ratio 2.0 (a plan estimated at twice its cost before), or plan_regression_ratio in sluice.toml",
        ));
    }
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
        to: r.version_arg(a.to.as_deref())?,
        lock_timeout: ctx.lock_timeout,
        lock_retry_for: ctx.lock_retry_for,
        exclusive_timeout: ctx.exclusive_timeout,
        pacing: ctx.pacing.clone(),
        online: ctx.online.clone(),
        actor: ctx.actor.clone(),
        say: std::sync::Arc::new(render::say),
        explain: a.explain || fail_on_plans,
        analyze: a.analyze,
        plan_regression_ratio,
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
    } else if !report.pass {
        exit::REHEARSAL_FAILED
    } else if fail_on_plans && report.plan_regressions > 0 {
        exit::PLAN_REGRESSION
    } else {
        exit::OK
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The long flags an option group declares, read from the group itself.
    fn flags_of(cmd: clap::Command) -> Vec<String> {
        cmd.get_arguments()
            .filter_map(|a| a.get_long().map(str::to_string))
            .collect()
    }

    fn runner_flags() -> Vec<String> {
        let c = || clap::Command::new("group");
        let mut all = flags_of(RunnerArgs::augment_args(c()));
        all.extend(flags_of(SubscriberArgs::augment_args(c())));
        all.push("postpone-cutover".into());
        all
    }

    type Check = fn(&RunContext) -> bool;

    /// Each runner flag, a value other than its default, and where that value must show in the run.
    const REACHES: &[(&str, Option<&str>, Check)] = &[
        ("lock-wait", Some("7"), |c| {
            c.lock_wait == Duration::from_secs(7)
        }),
        ("app-version", Some("v-flag"), |c| {
            c.app_version.as_deref() == Some("v-flag")
        }),
        ("lock-timeout", Some("123"), |c| {
            c.lock_timeout == Duration::from_millis(123)
                && c.online.lock_timeout == Duration::from_millis(123)
        }),
        ("lock-retry-for", Some("9"), |c| {
            c.lock_retry_for == Duration::from_secs(9)
                && c.online.lock_retry_for == Duration::from_secs(9)
        }),
        ("exclusive-timeout", Some("77"), |c| {
            c.exclusive_timeout == Duration::from_millis(77)
        }),
        ("pace", Some("speed"), |c| c.pacing.latency_factor.is_none()),
        ("latency-factor", Some("3"), |c| {
            c.pacing.latency_factor == Some(3.0)
        }),
        ("probe-query", Some("SELECT 2"), |c| {
            c.pacing.probe.as_deref() == Some("SELECT 2")
        }),
        ("max-replica-lag-ms", Some("11"), |c| {
            c.pacing.max_replica_lag == Some(Duration::from_millis(11))
        }),
        ("throttle-query", Some("SELECT 3"), |c| {
            c.pacing.throttle_query.as_deref() == Some("SELECT 3")
        }),
        ("target-batch-ms", Some("13"), |c| {
            c.pacing.target_batch == Duration::from_millis(13)
        }),
        ("chunk-ms", Some("17"), |c| {
            c.online.target_chunk == Duration::from_millis(17)
        }),
        ("copy-commit-factor", Some("2.5"), |c| {
            c.online.commit_factor == Some(2.5)
        }),
        ("max-threads-running", Some("19"), |c| {
            c.online.max_threads_running == Some(19)
        }),
        ("replica-url", Some("mysql://replica"), |c| {
            c.online.replica_urls == ["mysql://replica"]
        }),
        ("max-replica-lag", Some("21"), |c| {
            c.online.max_replica_lag == Duration::from_secs(21)
        }),
        ("postpone-cutover", None, |c| c.online.postpone_cutover),
        ("as-written-below-rows", Some("23"), |c| {
            c.online.as_written_below_rows == 23
        }),
        ("subscriber-url", Some("postgres://sub/app"), |c| {
            c.subscriber_urls == ["postgres://sub/app"]
        }),
    ];

    /// `sluice SUB` with its required arguments filled in.
    fn base_args(sub: &clap::Command) -> Vec<String> {
        let mut args = vec!["sluice".to_string(), sub.get_name().to_string()];
        for a in sub.get_arguments().filter(|a| a.is_required_set()) {
            match a.get_long() {
                Some(long) => args.extend([format!("--{long}"), "x".into()]),
                None => args.push("1".into()),
            }
        }
        args
    }

    fn resolved(global: Global) -> Resolved {
        Resolved {
            config: Config::default(),
            global,
        }
    }

    /// A runner option on a subcommand is one it reads: for every subcommand, each runner flag its
    /// parser accepts, given alone, changes the run exactly as the flag says. The subcommands and
    /// their flags come from the parser, so a new subcommand or flag is covered without a row here
    /// (a new runner flag without a row in `REACHES` fails).
    #[test]
    fn every_runner_flag_reaches_the_run() {
        let mut names: Vec<&str> = REACHES.iter().map(|r| r.0).collect();
        names.sort();
        let mut declared = runner_flags();
        declared.sort();
        assert_eq!(names, declared, "every runner flag has a row in REACHES");
        let defaults =
            resolved(Cli::parse_from(["sluice", "init"]).global).context(&Given::default());
        let mut reached_by: Vec<(String, usize)> = Vec::new();
        for sub in Cli::command().get_subcommands() {
            let mut checked = 0;
            for (flag, value, reached) in REACHES {
                if !sub.get_arguments().any(|a| a.get_long() == Some(flag)) {
                    continue;
                }
                assert!(
                    !reached(&defaults),
                    "--{flag}: its test value is the default"
                );
                let mut args = base_args(sub);
                args.push(format!("--{flag}"));
                args.extend(value.map(str::to_string));
                let cli = Cli::try_parse_from(&args)
                    .unwrap_or_else(|e| panic!("{}: {e}", args.join(" ")));
                let ctx = resolved(cli.global).context(&cli.command.given());
                assert!(reached(&ctx), "`{}` does not reach the run", args.join(" "));
                checked += 1;
            }
            if checked > 0 {
                reached_by.push((sub.get_name().to_string(), checked));
            }
        }
        // Which subcommands have runner flags at all, and how many; every other one has none.
        let want = [
            ("up", 19),
            ("complete", 6),
            ("rollback", 5),
            ("cutover", 8),
            ("cleanup", 1),
            ("down", 18),
            ("repair", 2),
            ("baseline", 2),
            ("import", 2),
            ("drift", 2),
            ("plan", 2),
            ("backfill", 8),
            ("rehearse", 14),
        ];
        let want: Vec<(String, usize)> = want.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        assert_eq!(reached_by, want);
    }

    /// sluice.toml's keys still apply to every subcommand that reads them, and a flag wins over them.
    #[test]
    fn config_keys_apply_and_flags_win() {
        let config = Config {
            lock_wait_secs: Some(31),
            lock_timeout_ms: Some(32),
            lock_retry_secs: Some(33),
            exclusive_timeout_ms: Some(34),
            as_written_below_rows: Some(35),
            ..Default::default()
        };
        // Without sluice.toml the commands that run or plan migrations get the default, the
        // others never alter a table for a migration.
        for (sub, want) in [
            ("up", AS_WRITTEN_BELOW_ROWS),
            ("down", AS_WRITTEN_BELOW_ROWS),
            ("plan", AS_WRITTEN_BELOW_ROWS),
            ("cutover", 0),
        ] {
            let cli = Cli::parse_from(["sluice", sub]);
            let ctx = resolved(cli.global).context(&cli.command.given());
            assert_eq!(ctx.online.as_written_below_rows, want, "{sub}");
        }
        for sub in ["up", "down", "plan"] {
            let cli = Cli::parse_from(["sluice", sub]);
            let r = Resolved {
                config: config.clone(),
                global: cli.global,
            };
            assert_eq!(
                r.context(&cli.command.given()).online.as_written_below_rows,
                35,
                "{sub}"
            );
        }
        let cli = Cli::parse_from(["sluice", "up", "--lock-timeout", "5"]);
        let r = Resolved {
            config,
            global: cli.global,
        };
        let ctx = r.context(&cli.command.given());
        assert_eq!(ctx.lock_wait, Duration::from_secs(31));
        assert_eq!(ctx.lock_timeout, Duration::from_millis(5));
        assert_eq!(ctx.lock_retry_for, Duration::from_secs(33));
        assert_eq!(ctx.exclusive_timeout, Duration::from_millis(34));
    }

    /// sluice.toml's subscriber_urls reach the commands that check subscribers (up, plan,
    /// complete) and no other; the flag, repeated, wins over them.
    #[test]
    fn subscriber_urls_come_from_the_flag_else_sluice_toml() {
        let config = Config {
            subscriber_urls: Some(vec!["postgres://toml/app".into()]),
            ..Default::default()
        };
        let urls = |args: &[&str]| {
            let cli = Cli::parse_from(args);
            let r = Resolved {
                config: config.clone(),
                global: cli.global,
            };
            r.context(&cli.command.given()).subscriber_urls
        };
        for sub in ["up", "plan", "complete", "down"] {
            assert_eq!(urls(&["sluice", sub]), ["postgres://toml/app"], "{sub}");
            assert_eq!(
                urls(&[
                    "sluice",
                    sub,
                    "--subscriber-url",
                    "postgres://a/app",
                    "--subscriber-url",
                    "postgres://b/app"
                ]),
                ["postgres://a/app", "postgres://b/app"],
                "{sub}"
            );
        }
        for sub in ["rollback", "status"] {
            assert!(urls(&["sluice", sub]).is_empty(), "{sub}");
        }
    }
}
