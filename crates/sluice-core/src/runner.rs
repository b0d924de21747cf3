//! The runner: status, up, down, verify, repair, baseline and drift, driven through [`Engine`].
//!
//! Invariants it keeps:
//! - Every command that writes holds the engine's run lock for its whole duration.
//! - A migration's progress is recorded after every statement that commits, so a failed or killed run
//!   resumes at the first statement not recorded, never redoing or skipping one.
//! - Nothing is executed before every migration that will run has been parsed and checked.

use crate::engine::{Engine, LockAttempt, LockHolder};
use crate::error::{Error, Result, SqlFailure};
use crate::history::{statement_hash, Event, EventKind, HistoryRow, RecordState};
use crate::migration::{Direction, Migration, Part, TxMode};
use crate::schema::{diff, Difference};
use crate::sql::{self, SqlStatement};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Who runs, with which application version, and how progress is reported.
pub struct RunContext {
    pub actor: String,
    pub app_version: Option<String>,
    pub lock_wait: Duration,
    /// How long one statement may wait for a table lock before it gives up and retries, so live
    /// queries never queue behind sluice for longer than this.
    pub lock_timeout: Duration,
    /// How long sluice keeps retrying a statement that times out on a lock before it fails.
    pub lock_retry_for: Duration,
    /// Receives one line per notable event (applied migration, lock wait...).
    pub say: Box<dyn Fn(&str) + Send + Sync>,
    /// How MariaDB/MySQL ALTERs run online.
    pub online: crate::engine::OnlineOptions,
    /// What backfills pace themselves on.
    pub pacing: crate::engine::Pacing,
    /// How long a step holding ACCESS EXCLUSIVE on an existing table may run before the server
    /// cancels it (zero: no limit). Such steps are meant to be instant; one that is not would stop
    /// every query on the table for as long as it runs.
    pub exclusive_timeout: Duration,
}

impl RunContext {
    fn event(
        &self,
        kind: EventKind,
        m: Option<(&i64, &str, &str)>,
        detail: impl Into<String>,
    ) -> Event {
        Event {
            kind,
            version: m.map(|m| *m.0),
            name: m.map(|m| m.1.to_string()),
            checksum: m.map(|m| m.2.to_string()),
            actor: self.actor.clone(),
            app_version: self.app_version.clone(),
            sluice_version: crate::SLUICE_VERSION.into(),
            detail: detail.into(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Run lock

/// Takes the run lock, polling (never blocking inside the server, so a waiting run cannot hold back
/// `CREATE INDEX CONCURRENTLY` in the run that holds the lock) until `ctx.lock_wait` has passed.
pub async fn acquire_lock(engine: &mut dyn Engine, ctx: &RunContext) -> Result<()> {
    let me = LockHolder::me();
    let started = Instant::now();
    let mut announced = false;
    loop {
        match engine.try_run_lock(&me).await? {
            LockAttempt::Acquired => return Ok(()),
            LockAttempt::Busy(holder) => {
                if started.elapsed() >= ctx.lock_wait {
                    return Err(Error::LockBusy {
                        url: engine.url(),
                        holder: holder.map(|h| h.to_string()),
                        waited_secs: ctx.lock_wait.as_secs(),
                    });
                }
                if !announced {
                    let who = holder
                        .map(|h| h.to_string())
                        .unwrap_or_else(|| "held by another session".into());
                    (ctx.say)(&format!(
                        "waiting up to {}s for the run lock ({who})",
                        ctx.lock_wait.as_secs()
                    ));
                    announced = true;
                }
                let left = ctx.lock_wait.saturating_sub(started.elapsed());
                tokio::time::sleep(left.min(Duration::from_millis(250))).await;
            }
        }
    }
}

/// Runs `f` while holding the run lock, and releases it whatever `f` returns.
macro_rules! locked {
    ($engine:expr, $ctx:expr, $body:expr) => {{
        acquire_lock($engine, $ctx).await?;
        let result = async { $body }.await;
        let released = $engine.release_run_lock().await;
        match (result, released) {
            (Err(e), _) => Err(e),
            (Ok(_), Err(e)) => Err(e),
            (Ok(v), Ok(())) => Ok(v),
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// Status

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MigrationStatus {
    Applied,
    Baseline,
    Pending,
    /// Pending, but older than a migration already applied.
    OutOfOrder,
    Failed,
    /// Being applied by a run that holds the run lock now.
    Running,
    /// Recorded as running, but no run holds the lock: the run was killed or lost its connection.
    /// `up` resumes it.
    Interrupted,
    /// Applied, but the file changed since.
    Edited,
    /// Recorded in the database, no file for it.
    MissingFile,
    /// A rollback is under way, was killed or failed; `down` resumes it.
    Reverting,
}

impl MigrationStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationStatus::Applied => "applied",
            MigrationStatus::Baseline => "baseline",
            MigrationStatus::Pending => "pending",
            MigrationStatus::OutOfOrder => "out-of-order",
            MigrationStatus::Failed => "failed",
            MigrationStatus::Running => "running",
            MigrationStatus::Interrupted => "interrupted",
            MigrationStatus::Edited => "edited",
            MigrationStatus::MissingFile => "missing-file",
            MigrationStatus::Reverting => "reverting",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    pub version: i64,
    pub name: String,
    pub status: MigrationStatus,
    pub applied_at: Option<DateTime<Utc>>,
    pub applied_by: Option<String>,
    pub app_version: Option<String>,
    pub duration_ms: Option<i64>,
    pub statements_done: Option<i32>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum DriftState {
    /// No snapshot recorded yet (nothing applied by sluice).
    Unknown,
    Clean,
    Drifted {
        differences: Vec<Difference>,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub target: String,
    pub database: String,
    pub migrations: Vec<StatusEntry>,
    pub drift: DriftState,
}

fn merge(files: &[Migration], rows: &[HistoryRow]) -> Vec<StatusEntry> {
    let by_version: BTreeMap<i64, &HistoryRow> = rows.iter().map(|r| (r.version, r)).collect();
    let max_done = rows
        .iter()
        .filter(|r| r.state.is_done())
        .map(|r| r.version)
        .max();
    let mut out: Vec<StatusEntry> = Vec::new();
    for m in files {
        let row = by_version.get(&m.version);
        let status = match row {
            None if max_done.is_some_and(|v| m.version < v) => MigrationStatus::OutOfOrder,
            None => MigrationStatus::Pending,
            Some(r) => match r.state {
                RecordState::Applied | RecordState::Baseline if r.checksum != m.checksum => {
                    MigrationStatus::Edited
                }
                RecordState::Applied => MigrationStatus::Applied,
                RecordState::Baseline => MigrationStatus::Baseline,
                RecordState::Failed => MigrationStatus::Failed,
                RecordState::Running => MigrationStatus::Running,
                RecordState::Reverting => MigrationStatus::Reverting,
            },
        };
        out.push(entry(m.version, &m.name, status, row.copied()));
    }
    for r in rows
        .iter()
        .filter(|r| !files.iter().any(|m| m.version == r.version))
    {
        out.push(entry(
            r.version,
            &r.name,
            MigrationStatus::MissingFile,
            Some(r),
        ));
    }
    out.sort_by_key(|e| e.version);
    out
}

fn entry(
    version: i64,
    name: &str,
    status: MigrationStatus,
    row: Option<&HistoryRow>,
) -> StatusEntry {
    StatusEntry {
        version,
        name: name.to_string(),
        status,
        applied_at: row.and_then(|r| r.finished_at),
        applied_by: row.map(|r| r.applied_by.clone()),
        app_version: row.and_then(|r| r.app_version.clone()),
        duration_ms: row.and_then(|r| r.duration_ms),
        statements_done: row
            .filter(|r| !r.state.is_done())
            .map(|r| r.statements_done),
        error: row.and_then(|r| r.error.clone()),
    }
}

pub async fn status(engine: &mut dyn Engine, files: &[Migration]) -> Result<StatusReport> {
    let rows = engine.history().await?;
    let drift = drift_state(engine).await?;
    let mut migrations = merge(files, &rows);
    if migrations
        .iter()
        .any(|m| m.status == MigrationStatus::Running)
    {
        // A row says "running": only a run holding the lock can make that true right now.
        let live = match engine.try_run_lock(&LockHolder::me()).await? {
            LockAttempt::Acquired => {
                engine.release_run_lock().await?;
                false
            }
            LockAttempt::Busy(_) => true,
        };
        if !live {
            for m in migrations
                .iter_mut()
                .filter(|m| m.status == MigrationStatus::Running)
            {
                m.status = MigrationStatus::Interrupted;
            }
        }
    }
    Ok(StatusReport {
        target: engine.target().to_string(),
        database: engine.url(),
        migrations,
        drift,
    })
}

async fn drift_state(engine: &mut dyn Engine) -> Result<DriftState> {
    let Some(snap) = engine.latest_snapshot().await? else {
        return Ok(DriftState::Unknown);
    };
    let live = engine.introspect().await?;
    let differences = diff(&snap.schema, &live);
    Ok(if differences.is_empty() {
        DriftState::Clean
    } else {
        DriftState::Drifted { differences }
    })
}

// ---------------------------------------------------------------------------------------------
// Preparing a part: split, classify, choose the transaction mode

/// A migration part ready to run.
#[derive(Debug, Clone)]
pub struct PreparedPart {
    /// The statements as written (their hashes are what progress records).
    pub statements: Vec<SqlStatement>,
    /// What runs for each statement: the statement itself, or its safer form.
    pub run: Vec<SqlStatement>,
    pub rewrites: Vec<Option<crate::plan::rewrite::Rewrite>>,
    /// Which of `run` take ACCESS EXCLUSIVE on a table that existed before the part (with `safe`
    /// only: `--as-written` runs without a run-time bound).
    pub exclusive: Vec<bool>,
    pub mode: TxMode,
    /// Why this mode, for `--dry-run` and logs.
    pub mode_reason: String,
}

pub fn prepare(
    engine: &dyn Engine,
    m: &Migration,
    dir: Direction,
    safe: bool,
) -> Result<PreparedPart> {
    prepare_for(engine.target(), m, dir, safe)
}

/// Splits and classifies a part for a target, without a connection (`lint` uses the same decisions).
/// With `safe`, statements that have a safer equivalent sluice can run today (index builds and drops
/// CONCURRENTLY on PostgreSQL) run in that form; `--as-written` turns it off.
pub fn prepare_for(
    target: crate::target::Target,
    m: &Migration,
    dir: Direction,
    safe: bool,
) -> Result<PreparedPart> {
    let part: &Part = m.part(dir).ok_or_else(|| Error::usage(
        format!("migration {} has no down part", m.label()),
        format!(
            "add `-- sluice:down` and the SQL that undoes it to {}, or roll back with a new forward migration",
            m.path.display()
        ),
    ))?;
    let file_err = |offset_in_part: usize, message: String, help: &str| {
        let (line, col) = sql::line_col(&m.text, part.offset + offset_in_part);
        Error::MigrationFile {
            path: m.path.clone(),
            line: Some(line),
            message: format!("line {line}, column {col}: {message}"),
            help: help.to_string(),
        }
    };
    let kind = target.engine;
    let statements = sql::split(kind, &part.sql).map_err(|e| {
        let (l0, _) = sql::line_col(&m.text, part.offset);
        Error::MigrationFile {
            path: m.path.clone(),
            line: Some(l0 + e.line - 1),
            message: format!(
                "line {}: cannot read the SQL: {}",
                l0 + e.line - 1,
                e.message
            ),
            help: "check for an unterminated string, quoted identifier or dollar quote".into(),
        }
    })?;
    if statements.is_empty() {
        return Err(Error::MigrationFile {
            path: m.path.clone(),
            line: None,
            message: format!("the {} part has no SQL", if dir == Direction::Up { "up" } else { "down" }),
            help: "write the migration's SQL under `-- sluice:up` (and how to undo it under `-- sluice:down`)".into(),
        });
    }
    if let Some(s) = statements.iter().find(|s| s.is_transaction_control()) {
        return Err(file_err(
            s.offset,
            format!("`{}` controls transactions, which sluice manages itself", s.sql.lines().next().unwrap_or("")),
            "remove BEGIN/COMMIT from the migration; use `-- sluice:transaction single` or `per-statement` to choose the mode",
        ));
    }
    // A part forced into one transaction keeps its statements as written: their concurrent forms
    // cannot run there (lint says so).
    let rewrites = if safe && part.tx_directive != Some(TxMode::Single) {
        crate::plan::rewrite::rewrite_part(target, &statements)
    } else {
        vec![None; statements.len()]
    };
    let run: Vec<SqlStatement> = statements
        .iter()
        .zip(&rewrites)
        .map(|(s, r)| match r {
            Some(r) => sql::split(kind, &r.sql)
                .ok()
                .and_then(|mut v| (v.len() == 1).then(|| v.remove(0)))
                .map(|mut x| {
                    // Keep the written statement's place in the file for messages.
                    (x.offset, x.line, x.column) = (s.offset, s.line, s.column);
                    x
                })
                .unwrap_or_else(|| s.clone()),
            None => s.clone(),
        })
        .collect();
    let own_tx: Vec<&SqlStatement> = run
        .iter()
        .filter(|s| target.needs_own_transaction(s))
        .collect();
    let (mode, mode_reason) = match part.tx_directive {
        Some(TxMode::Single) => {
            if let Some(s) = own_tx.first() {
                let (why, help) = if target.transactional_ddl() {
                    (
                        "cannot run inside a transaction".to_string(),
                        "remove the directive (sluice then runs this migration statement by statement) or move the statement to its own migration",
                    )
                } else {
                    (
                        format!("commits implicitly on {kind}"),
                        "on MariaDB/MySQL a single transaction can only wrap data changes (INSERT/UPDATE/DELETE); remove the directive",
                    )
                };
                return Err(file_err(
                    s.offset,
                    format!(
                        "`-- sluice:transaction single`, but `{}` {why}",
                        first_line(&s.sql)
                    ),
                    help,
                ));
            }
            (
                TxMode::Single,
                "forced by `-- sluice:transaction single`".to_string(),
            )
        }
        Some(TxMode::PerStatement) => (
            TxMode::PerStatement,
            "forced by `-- sluice:transaction per-statement`".into(),
        ),
        None if !target.transactional_ddl() => (
            TxMode::PerStatement,
            format!("{kind} commits DDL implicitly; progress is recorded after each statement"),
        ),
        None => match (
            own_tx.first(),
            rewrites.iter().flatten().find(|r| !r.then.is_empty()),
        ) {
            (Some(s), _) => (
                TxMode::PerStatement,
                format!("`{}` cannot run inside a transaction", first_line(&s.sql)),
            ),
            (None, Some(r)) => (
                TxMode::PerStatement,
                format!(
                    "`{}` and its VALIDATE must commit separately",
                    first_line(&r.sql)
                ),
            ),
            (None, None) => (TxMode::Single, "all statements are transactional".into()),
        },
    };
    let exclusive = if safe {
        crate::plan::takes_access_exclusive(target, &run)
    } else {
        vec![false; run.len()]
    };
    Ok(PreparedPart {
        statements,
        run,
        rewrites,
        exclusive,
        mode,
        mode_reason,
    })
}

fn first_line(s: &str) -> String {
    let l = s.lines().next().unwrap_or("").trim();
    if l.chars().count() > 80 {
        format!("{}…", l.chars().take(80).collect::<String>())
    } else {
        l.to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Up

#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    pub to: Option<i64>,
    pub dry_run: bool,
    pub allow_out_of_order: bool,
    /// Run every statement exactly as written (no concurrent forms).
    pub as_written: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedMigration {
    pub version: i64,
    pub name: String,
    pub mode: TxMode,
    pub mode_reason: String,
    /// Statements already applied by an earlier, failed or killed run; they are skipped.
    pub resume_from: usize,
    pub statements: Vec<String>,
    /// For each statement, the safer form sluice runs instead and why (None: runs as written).
    pub runs_as: Vec<Option<RunsAs>>,
}

/// The steps sluice runs for a statement, in order, each committed before the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RunsAs {
    pub sql: String,
    pub note: String,
    /// The steps after `sql` (a backfill is described in words).
    pub then: Vec<String>,
}

impl PlannedMigration {
    fn new(m: &Migration, prepared: PreparedPart, resume_from: usize) -> Self {
        PlannedMigration {
            version: m.version,
            name: m.name.clone(),
            mode: prepared.mode,
            mode_reason: prepared.mode_reason,
            resume_from,
            statements: prepared.statements.iter().map(|s| s.sql.clone()).collect(),
            runs_as: prepared
                .rewrites
                .into_iter()
                .map(|r| {
                    r.map(|r| RunsAs {
                        then: r
                            .then
                            .iter()
                            .map(|st| match st {
                                crate::plan::rewrite::Step::Sql(sql) => sql.clone(),
                                crate::plan::rewrite::Step::Backfill { table, set, filter } => {
                                    format!(
                                        "backfill in batches: UPDATE {table} SET {set}{}",
                                        filter
                                            .as_deref()
                                            .map(|f| format!(" WHERE {f}"))
                                            .unwrap_or_default()
                                    )
                                }
                            })
                            .collect(),
                        sql: r.sql,
                        note: r.note,
                    })
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Default)]
pub struct UpReport {
    pub planned: Vec<PlannedMigration>,
    pub applied: Vec<i64>,
}

pub async fn up(
    engine: &mut dyn Engine,
    files: &[Migration],
    opts: &UpOptions,
    ctx: &RunContext,
) -> Result<UpReport> {
    if opts.dry_run {
        let rows = engine.history().await?;
        let mut planned = plan_up(engine, files, &rows, opts)?;
        if !opts.as_written {
            explain_online(engine, &mut planned).await?;
        }
        return Ok(UpReport {
            planned,
            applied: vec![],
        });
    }
    locked!(engine, ctx, {
        engine.ensure_history().await?;
        let rows = engine.history().await?;
        let planned = plan_up(engine, files, &rows, opts)?;
        let mut report = UpReport {
            planned: planned.clone(),
            applied: vec![],
        };
        if planned.is_empty() {
            (ctx.say)("nothing to apply: the database is up to date");
        }
        // A missing privilege is found now, not after earlier statements (or migrations) ran.
        let pending: Vec<String> = planned
            .iter()
            .flat_map(|p| p.statements.iter().skip(p.resume_from).cloned())
            .collect();
        engine.check_privileges(&pending, !opts.as_written).await?;
        for p in &planned {
            let m = files
                .iter()
                .find(|m| m.version == p.version)
                .expect("planned from files");
            let row = rows.iter().find(|r| r.version == m.version);
            run_part(engine, m, Direction::Up, row, !opts.as_written, ctx).await?;
            report.applied.push(m.version);
        }
        Ok(report)
    })
}

/// Fills in how the engine's online path would run each ALTER TABLE (MariaDB/MySQL), for the dry run.
async fn explain_online(engine: &mut dyn Engine, planned: &mut [PlannedMigration]) -> Result<()> {
    if engine.target().engine == crate::target::EngineKind::Postgres {
        return Ok(());
    }
    for p in planned.iter_mut() {
        for i in p.resume_from..p.statements.len() {
            if p.runs_as.get(i).is_some_and(|r| r.is_some()) {
                continue;
            }
            let Some(lines) = engine.explain_online(&p.statements[i]).await? else {
                continue;
            };
            let mut lines = lines.into_iter();
            let head = lines.next().unwrap_or_default();
            let rest: Vec<String> = lines.map(|l| l.trim().to_string()).collect();
            if p.runs_as.len() <= i {
                p.runs_as.resize(i + 1, None);
            }
            p.runs_as[i] = Some(RunsAs {
                sql: head,
                note: "online (MariaDB/MySQL)".into(),
                then: rest,
            });
        }
    }
    Ok(())
}

fn plan_up(
    engine: &dyn Engine,
    files: &[Migration],
    rows: &[HistoryRow],
    opts: &UpOptions,
) -> Result<Vec<PlannedMigration>> {
    let statuses = merge(files, rows);
    let edited: Vec<&StatusEntry> = statuses
        .iter()
        .filter(|s| s.status == MigrationStatus::Edited)
        .collect();
    if !edited.is_empty() {
        return Err(edited_error(&edited));
    }
    if let Some(r) = statuses
        .iter()
        .find(|s| s.status == MigrationStatus::Reverting)
    {
        return Err(Error::usage(
            format!(
                "the rollback of migration {}_{} did not finish",
                r.version, r.name
            ),
            "finish it with `sluice down` (it resumes where it stopped) before applying migrations",
        ));
    }
    if let Some(r) = statuses.iter().find(|s| {
        s.status == MigrationStatus::MissingFile
            && rows
                .iter()
                .any(|r| r.version == s.version && !r.state.is_done())
    }) {
        return Err(Error::usage(
            format!(
                "migration {}_{} is recorded as {} but its file is missing",
                r.version,
                r.name,
                r.status.as_str()
            ),
            "restore the file so `sluice up` can resume it",
        ));
    }
    let out_of_order: Vec<&StatusEntry> = statuses
        .iter()
        .filter(|s| {
            s.status == MigrationStatus::OutOfOrder && opts.to.is_none_or(|t| s.version <= t)
        })
        .collect();
    if !out_of_order.is_empty() && !opts.allow_out_of_order {
        let list: Vec<String> = out_of_order
            .iter()
            .map(|s| format!("{}_{}", s.version, s.name))
            .collect();
        return Err(Error::usage(
            format!(
                "pending migration(s) older than the latest applied one: {}",
                list.join(", ")
            ),
            "they were probably merged from another branch. Check they do not conflict with later ones, then run `sluice up --out-of-order`",
        ));
    }
    if let Some(t) = opts.to {
        if !files.iter().any(|m| m.version == t) {
            return Err(Error::usage(
                format!("--to {t}: no migration file has version {t}"),
                "run `sluice status` to list versions",
            ));
        }
    }
    let mut planned = Vec::new();
    for s in &statuses {
        let resumable = matches!(
            s.status,
            MigrationStatus::Failed | MigrationStatus::Running | MigrationStatus::Interrupted
        );
        let pending = matches!(
            s.status,
            MigrationStatus::Pending | MigrationStatus::OutOfOrder
        );
        // A failed migration blocks everything after it, so it is resumed even beyond --to.
        if !(resumable || (pending && opts.to.is_none_or(|t| s.version <= t))) {
            continue;
        }
        let m = files
            .iter()
            .find(|m| m.version == s.version)
            .expect("status from files");
        let prepared = prepare(engine, m, Direction::Up, !opts.as_written)?;
        let row = rows.iter().find(|r| r.version == m.version);
        let resume_from = check_resume(m, Direction::Up, &prepared, row)?;
        planned.push(PlannedMigration::new(m, prepared, resume_from));
    }
    Ok(planned)
}

fn edited_error(edited: &[&StatusEntry]) -> Error {
    let list: Vec<String> = edited
        .iter()
        .map(|s| format!("{}_{}", s.version, s.name))
        .collect();
    Error::Checksum {
        message: format!(
            "applied migration(s) changed since they were applied: {}",
            list.join(", ")
        ),
        help: "restore the applied text (e.g. from version control). If the edit is intentional and the database already \
               matches it, run `sluice repair` to accept it (it is logged)"
            .into(),
    }
}

/// How many statements of an interrupted part are already applied, after checking that they were not
/// changed since (a resumed migration must not skip a statement whose text is no longer what ran).
fn check_resume(
    m: &Migration,
    dir: Direction,
    prepared: &PreparedPart,
    row: Option<&HistoryRow>,
) -> Result<usize> {
    let Some(row) = row else { return Ok(0) };
    let resuming = match dir {
        Direction::Up => matches!(row.state, RecordState::Failed | RecordState::Running),
        Direction::Down => row.state == RecordState::Reverting,
    };
    if !resuming {
        return Ok(0);
    }
    let done = row.statements_done.max(0) as usize;
    if done == 0 {
        return Ok(0);
    }
    if done > prepared.statements.len() {
        return Err(Error::Checksum {
            message: format!(
                "migration {} had {done} statement(s) applied, but its file now has only {}",
                m.label(),
                prepared.statements.len()
            ),
            help: "restore the statements that were applied; add fixes after them".into(),
        });
    }
    for (i, (s, h)) in prepared
        .statements
        .iter()
        .zip(&row.statement_hashes)
        .take(done)
        .enumerate()
    {
        if statement_hash(&s.sql) != *h {
            return Err(Error::Checksum {
                message: format!(
                    "statement {} of migration {} was applied and has been edited since (line {})",
                    i + 1,
                    m.label(),
                    sql::line_col(&m.text, m.part(dir).map(|p| p.offset).unwrap_or(0) + s.offset).0
                ),
                help: "only the failed statement and those after it may change; restore the applied ones".into(),
            });
        }
    }
    Ok(done)
}

/// Applies (up) or reverts (down) one migration, recording progress.
async fn run_part(
    engine: &mut dyn Engine,
    m: &Migration,
    dir: Direction,
    existing: Option<&HistoryRow>,
    safe: bool,
    ctx: &RunContext,
) -> Result<()> {
    let prepared = prepare(engine, m, dir, safe)?;
    let resume_from = check_resume(m, dir, &prepared, existing)?;
    if safe {
        refuse_rewriting_type_changes(engine, m, dir, &prepared, resume_from).await?;
    }
    let started = Utc::now();
    let clock = Instant::now();
    let verb = if dir == Direction::Up {
        "applying"
    } else {
        "reverting"
    };
    let resume_note = if resume_from > 0 {
        format!(", resuming at statement {}", resume_from + 1)
    } else {
        String::new()
    };
    (ctx.say)(&format!(
        "{verb} {} ({}, {} statement(s){resume_note})",
        m.label(),
        prepared.mode.name(),
        prepared.statements.len()
    ));
    let in_progress = if dir == Direction::Up {
        RecordState::Running
    } else {
        RecordState::Reverting
    };
    let mut row = match existing {
        // Down keeps the original application record and only tracks its own progress.
        Some(r) if dir == Direction::Down => HistoryRow {
            state: in_progress,
            statements_done: resume_from as i32,
            statement_hashes: r
                .statement_hashes
                .iter()
                .take(resume_from)
                .cloned()
                .collect::<Vec<_>>()
                .into_iter()
                .chain(std::iter::empty())
                .collect(),
            error: None,
            failed_statement: None,
            ..r.clone()
        },
        _ => HistoryRow {
            version: m.version,
            name: m.name.clone(),
            checksum: m.checksum.clone(),
            state: in_progress,
            started_at: started,
            finished_at: None,
            duration_ms: None,
            applied_by: ctx.actor.clone(),
            sluice_version: crate::SLUICE_VERSION.into(),
            app_version: ctx.app_version.clone(),
            statements_done: resume_from as i32,
            statement_hashes: prepared
                .statements
                .iter()
                .take(resume_from)
                .map(|s| statement_hash(&s.sql))
                .collect(),
            error: None,
            failed_statement: None,
        },
    };
    if dir == Direction::Down && resume_from == 0 {
        row.statement_hashes.clear();
    }
    let part_offset = m.part(dir).map(|p| p.offset).unwrap_or(0);
    let ident = (&m.version, m.name.as_str(), m.checksum.as_str());
    engine.set_lock_timeout(ctx.lock_timeout).await?;

    match prepared.mode {
        TxMode::Single => {
            let mut retry = LockRetry::new();
            loop {
                engine.begin().await?;
                let mut failed = None;
                for ((s, exec), &x) in prepared
                    .statements
                    .iter()
                    .zip(&prepared.run)
                    .zip(&prepared.exclusive)
                {
                    let bound = x.then_some(ctx.exclusive_timeout);
                    if let Err(e) = execute_bounded(engine, &exec.sql, bound).await {
                        failed = Some((s, e));
                        break;
                    }
                }
                let Some((s, mut e)) = failed else { break };
                let _ = engine.rollback().await;
                // A lock timeout rolled the whole migration back: wait and run it again.
                if e.lock_timeout && retry.again(engine, s, ctx, &mut e).await {
                    continue;
                }
                return Err(
                    record_failure(engine, m, dir, row, s, part_offset, e, 0, true, ctx).await,
                );
            }
            finish(engine, m, dir, &mut row, &prepared, clock, ctx).await?;
            engine.commit().await?;
            snapshot(engine, m).await?;
        }
        TxMode::PerStatement => {
            engine.upsert_migration(&row).await?;
            for (i, s) in prepared.statements.iter().enumerate().skip(resume_from) {
                let exec = &prepared.run[i];
                let rewrite = prepared.rewrites[i].as_ref();
                if let Some(r) = rewrite {
                    (ctx.say)(&format!("`{}`: {}", first_line(&s.sql), r.note));
                }
                // A staged rewrite runs its steps before the last one each in a transaction of its
                // own (a backfill in its own checkpointed batches); on resume they may have run
                // already, and each is safe to run again.
                let staged = rewrite.filter(|r| !r.then.is_empty());
                if let Some(r) = staged {
                    // Only a run that was cut off (killed, connection lost) may have left this
                    // statement's steps half done: a failure the run saw removed them (undo).
                    let resuming = i == resume_from
                        && existing.is_some_and(|r| {
                            matches!(r.state, RecordState::Running | RecordState::Reverting)
                        });
                    // A first attempt fails as the statement would when the name its staged form
                    // creates is taken: on resume, what carries that name is the earlier attempt's.
                    if let Some(check) = r.precheck.as_deref().filter(|_| !resuming) {
                        if let Err(mut e) = engine.execute(check).await {
                            e.position = None;
                            return Err(record_failure(
                                engine,
                                m,
                                dir,
                                row,
                                s,
                                part_offset,
                                e,
                                i,
                                false,
                                ctx,
                            )
                            .await);
                        }
                    }
                    let first = crate::plan::rewrite::Step::Sql(r.sql.clone());
                    let last_is_sql =
                        matches!(r.then.last(), Some(crate::plan::rewrite::Step::Sql(_)));
                    let upto = if last_is_sql {
                        r.then.len() - 1
                    } else {
                        r.then.len()
                    };
                    for (k, step) in std::iter::once(&first).chain(&r.then[..upto]).enumerate() {
                        let outcome =
                            match step {
                                crate::plan::rewrite::Step::Sql(sql) => {
                                    let index = if k == 0 {
                                        r.builds_index.as_deref()
                                    } else {
                                        None
                                    };
                                    let bound = exclusive_step(engine, safe, sql, ctx);
                                    let opts = StepOpts {
                                        builds_index: index,
                                        resuming,
                                        rewritten: true,
                                        bound,
                                    };
                                    run_step(engine, sql, opts, s, ctx).await?
                                }
                                crate::plan::rewrite::Step::Backfill { table, set, filter } => {
                                    let spec = crate::engine::BackfillSpec {
                                        table: table.clone(),
                                        set: set.clone(),
                                        filter: filter.clone(),
                                        batch_rows: None,
                                        target_batch: ctx.pacing.target_batch,
                                        pause: Duration::ZERO,
                                        progress: None,
                                        pacing: ctx.pacing.clone(),
                                    };
                                    engine.backfill(&spec, &*ctx.say).await.map(|_| ()).map_err(
                                        |e| crate::engine::ServerError {
                                            code: String::new(),
                                            message: format!("backfill: {e}"),
                                            position: None,
                                            connection_lost: false,
                                            lock_timeout: false,
                                        },
                                    )
                                }
                            };
                        if let Err(e) = outcome {
                            let e = undo_staged(engine, r, e, ctx).await;
                            return Err(record_failure(
                                engine,
                                m,
                                dir,
                                row,
                                s,
                                part_offset,
                                e,
                                i,
                                false,
                                ctx,
                            )
                            .await);
                        }
                    }
                }
                // What commits with the progress record: the statement, the last step of a staged
                // rewrite, or nothing when that last step was a backfill (already checkpointed).
                let exec_sql: Option<String> = match staged {
                    Some(r) => r
                        .then
                        .last()
                        .and_then(crate::plan::rewrite::Step::sql)
                        .map(str::to_string),
                    None => Some(exec.sql.clone()),
                };
                // Where the statement allows it (any PostgreSQL statement that may run in a
                // transaction; MariaDB/MySQL data changes; the last step of a staged rewrite), it
                // commits together with its progress record, so a crash can never leave it applied
                // but unrecorded. The others run on their own, then the progress is recorded.
                let atomic = staged.is_some() || !engine.needs_own_transaction(exec);
                if atomic {
                    engine.begin().await?;
                    let mut retry = LockRetry::new();
                    while let Some(exec_sql) = &exec_sql {
                        let bound = match staged {
                            Some(_) => exclusive_step(engine, safe, exec_sql, ctx),
                            None => prepared.exclusive[i].then_some(ctx.exclusive_timeout),
                        };
                        let Err(mut e) = execute_bounded(engine, exec_sql, bound).await else {
                            break;
                        };
                        let _ = engine.rollback().await;
                        if rewrite.is_some() {
                            // The server's position is in the rewritten text, not in the file.
                            e.position = None;
                        }
                        if e.lock_timeout && retry.again(engine, s, ctx, &mut e).await {
                            engine.begin().await?;
                            continue;
                        }
                        if let Some(r) = staged {
                            e = undo_staged(engine, r, e, ctx).await;
                        }
                        return Err(record_failure(
                            engine,
                            m,
                            dir,
                            row,
                            s,
                            part_offset,
                            e,
                            i,
                            false,
                            ctx,
                        )
                        .await);
                    }
                } else {
                    let index = rewrite.and_then(|r| r.builds_index.as_deref());
                    let online = match online_alter(engine, safe, exec, ctx).await {
                        Ok(o) => o,
                        Err(refused) => {
                            // A refusal (exit 2) still leaves the migration failed and resumable.
                            let e = crate::engine::ServerError {
                                code: String::new(),
                                message: refused.to_string(),
                                position: None,
                                connection_lost: false,
                                lock_timeout: false,
                            };
                            let _ = record_failure(
                                engine,
                                m,
                                dir,
                                row,
                                s,
                                part_offset,
                                e,
                                i,
                                false,
                                ctx,
                            )
                            .await;
                            return Err(refused);
                        }
                    };
                    let outcome = match online {
                        Some(done) => done,
                        None => {
                            let bound = prepared.exclusive[i].then_some(ctx.exclusive_timeout);
                            let opts = StepOpts {
                                builds_index: index,
                                resuming: false,
                                rewritten: rewrite.is_some(),
                                bound,
                            };
                            run_step(engine, &exec.sql, opts, s, ctx).await?
                        }
                    };
                    if let Err(e) = outcome {
                        return Err(record_failure(
                            engine,
                            m,
                            dir,
                            row,
                            s,
                            part_offset,
                            e,
                            i,
                            false,
                            ctx,
                        )
                        .await);
                    }
                }
                row.statements_done = i as i32 + 1;
                row.statement_hashes.push(statement_hash(&s.sql));
                engine.upsert_migration(&row).await?;
                if atomic {
                    engine.commit().await?;
                }
            }
            finish(engine, m, dir, &mut row, &prepared, clock, ctx).await?;
            snapshot(engine, m).await?;
        }
    }
    let _ = ident;
    (ctx.say)(&format!(
        "{} {} in {} ms",
        if dir == Direction::Up {
            "applied"
        } else {
            "reverted"
        },
        m.label(),
        clock.elapsed().as_millis()
    ));
    Ok(())
}

/// An ALTER TABLE on an engine with its own online path (MariaDB/MySQL) runs that way unless
/// `--as-written`; None when the engine leaves it to run as written. `Err` is a refusal (bad input:
/// no safe online form for this table) that must reach the user as such.
async fn online_alter(
    engine: &mut dyn Engine,
    safe: bool,
    exec: &SqlStatement,
    ctx: &RunContext,
) -> Result<Option<std::result::Result<(), crate::engine::ServerError>>> {
    if !safe
        || engine.target().engine == crate::target::EngineKind::Postgres
        || !exec.has_words(&["ALTER", "TABLE"])
    {
        return Ok(None);
    }
    let failed = |message: String| crate::engine::ServerError {
        code: String::new(),
        message,
        position: None,
        connection_lost: false,
        lock_timeout: false,
    };
    match engine.alter_online(&exec.sql, &ctx.online, &*ctx.say).await {
        Ok(None) => Ok(None),
        // A copy waiting for `sluice cutover` is not done: the statement stays unapplied, so the
        // next `sluice up` (after the swap) finds it swapped and records it.
        Ok(Some(report)) if report.cutover_pending => Ok(Some(Err(failed(
            "the online copy is verified and waits for its swap: run `sluice cutover`, then `sluice up` again to record the migration".into(),
        )))),
        Ok(Some(_)) => Ok(Some(Ok(()))),
        Err(e @ Error::Usage { .. }) => Err(e),
        Err(e) => Ok(Some(Err(failed(e.to_string())))),
    }
}

/// A column type change that rewrites the table holds ACCESS EXCLUSIVE for the whole rewrite: sluice
/// has no staged form for it yet (expand/contract), so it refuses before running anything of the
/// migration, unless `--as-written`.
async fn refuse_rewriting_type_changes(
    engine: &mut dyn Engine,
    m: &Migration,
    dir: Direction,
    prepared: &PreparedPart,
    resume_from: usize,
) -> Result<()> {
    let target = engine.target();
    if target.engine != crate::target::EngineKind::Postgres {
        return Ok(());
    }
    let mut created: Vec<crate::analysis::ir::QName> = Vec::new();
    for (i, s) in prepared.statements.iter().enumerate() {
        let st = crate::analysis::ir::build(target.engine, i, s, 0, &s.sql);
        for a in st.actions() {
            match a {
                crate::analysis::ir::Action::CreateTable { table, .. } => {
                    created.push(table.clone())
                }
                crate::analysis::ir::Action::AlterColumnType {
                    table,
                    column,
                    new_type,
                    using,
                    ..
                } if i >= resume_from && !created.iter().any(|c| c.matches(table)) => {
                    let Some(old) = engine.column_type(&table.display(), column).await? else {
                        continue;
                    };
                    // `USING col` or `USING col::newtype` changes nothing about the rewrite question.
                    let trivial = !using
                        || crate::rules::alter_column_type::usings(&st)
                            .iter()
                            .any(|(c, e)| {
                                c == column
                                    && crate::rules::alter_column_type::trivial_using(
                                        e,
                                        column,
                                        &crate::rules::alter_column_type::parse_type(new_type),
                                    )
                            });
                    if trivial
                        && crate::plan::alter_column_type::pg_binary_coercible(&old, new_type)
                    {
                        continue;
                    }
                    let part_offset = m.part(dir).map(|p| p.offset).unwrap_or(0);
                    let (line, col) = sql::line_col(&m.text, part_offset + s.offset);
                    return Err(Error::MigrationFile {
                        path: m.path.clone(),
                        line: Some(line),
                        message: format!(
                            "line {line}, column {col}: changing {table}.{column} from {old} to {new_type} rewrites the table and its indexes under ACCESS EXCLUSIVE: every query on it waits for the whole rewrite"
                        ),
                        help: "sluice has no online form for this yet: add a new column, write both, backfill it (`sluice backfill`), switch readers, drop the old one. To run it as written anyway (e.g. on a small table or in a maintenance window), use `sluice up --as-written`".into(),
                    });
                }
                _ => {}
            }
        }
    }
    Ok(())
}

/// Runs one step of a staged rewrite before its last: in a transaction of its own, or alone when it
/// cannot run in one (a concurrent index build, then without a lock timeout since it never makes
/// queries queue). On resume, "already exists" means an interrupted attempt ran it.
/// How one step runs: whether it builds an index (an invalid leftover is dropped first), whether
/// it may have run already (resume), whether it is sluice's rewrite (server positions do not map
/// to the file) and its run-time bound.
struct StepOpts<'a> {
    builds_index: Option<&'a str>,
    resuming: bool,
    rewritten: bool,
    bound: Option<Duration>,
}

async fn run_step(
    engine: &mut dyn Engine,
    sql: &str,
    opts: StepOpts<'_>,
    written: &SqlStatement,
    ctx: &RunContext,
) -> Result<std::result::Result<(), crate::engine::ServerError>> {
    let StepOpts {
        builds_index,
        resuming,
        rewritten,
        bound,
    } = opts;
    let stmt = sql::split(engine.target().engine, sql)
        .ok()
        .and_then(|v| v.into_iter().next());
    let own_tx = stmt
        .as_ref()
        .is_some_and(|x| engine.needs_own_transaction(x));
    let no_timeout = stmt
        .as_ref()
        .is_some_and(|x| never_queues_queries(engine, x));
    if no_timeout {
        engine.set_lock_timeout(Duration::ZERO).await?;
    }
    let mut retry = LockRetry::new();
    let outcome = loop {
        // A concurrent build that failed earlier leaves an INVALID index that IF NOT EXISTS would
        // keep: drop it and build again.
        if let Some(index) = builds_index {
            if engine.drop_invalid_index(index).await? {
                (ctx.say)(&format!("dropped the invalid index {index} left by an earlier attempt; building it again"));
            }
        }
        if !own_tx {
            engine.begin().await?;
        }
        match execute_bounded(engine, sql, bound).await {
            Ok(()) => {
                if !own_tx {
                    engine.commit().await?;
                }
                break Ok(());
            }
            Err(mut e) => {
                if !own_tx {
                    let _ = engine.rollback().await;
                }
                // duplicate_object / duplicate_column: the interrupted attempt ran this step.
                if matches!(e.code.as_str(), "42710" | "42701") && resuming {
                    break Ok(());
                }
                if rewritten {
                    // The server's position is in the rewritten text, not in the file.
                    e.position = None;
                }
                if e.lock_timeout && retry.again(engine, written, ctx, &mut e).await {
                    continue;
                }
                break Err(e);
            }
        }
    };
    if no_timeout {
        engine.set_lock_timeout(ctx.lock_timeout).await?;
    }
    Ok(outcome)
}

/// After a step of a staged statement failed: removes what its earlier steps created (helper checks,
/// the NOT VALID constraint, the index it built), so the failed statement leaves nothing behind, as
/// it would have as written; the message says so, or says what is left for the rerun.
async fn undo_staged(
    engine: &mut dyn Engine,
    r: &crate::plan::rewrite::Rewrite,
    mut e: crate::engine::ServerError,
    ctx: &RunContext,
) -> crate::engine::ServerError {
    if e.connection_lost || r.undo.is_empty() {
        return e;
    }
    let _ = engine.rollback().await;
    let mut left = Vec::new();
    for sql in &r.undo {
        if let Err(x) = engine.execute(sql).await {
            left.push(format!("`{sql}` failed: {}", x.message));
        }
    }
    e.message = if left.is_empty() {
        (ctx.say)("removed what the staged form had created for the failed statement");
        format!(
            "{} (sluice removed what its staged steps had created: `{}`)",
            e.message,
            r.undo.join("`; `")
        )
    } else {
        format!(
            "{} (sluice's staged form could not remove all it had created: {}; `sluice up` resumes with it)",
            e.message,
            left.join("; ")
        )
    };
    e
}

/// The run-time bound of a staged step sluice generated: ACCESS EXCLUSIVE steps get one.
fn exclusive_step(
    engine: &dyn Engine,
    safe: bool,
    sql: &str,
    ctx: &RunContext,
) -> Option<Duration> {
    let stmts = sql::split(engine.target().engine, sql).ok()?;
    (safe
        && crate::plan::takes_access_exclusive(engine.target(), &stmts)
            .iter()
            .any(|x| *x))
    .then_some(ctx.exclusive_timeout)
}

/// Runs a statement; with a bound, the server cancels it when it runs longer (it holds ACCESS
/// EXCLUSIVE, so every query on the table waits for as long as it runs).
async fn execute_bounded(
    engine: &mut dyn Engine,
    sql: &str,
    bound: Option<Duration>,
) -> std::result::Result<(), crate::engine::ServerError> {
    let Some(limit) = bound.filter(|d| !d.is_zero()) else {
        return engine.execute(sql).await;
    };
    engine.set_statement_timeout(limit).await?;
    let outcome = engine.execute(sql).await;
    // After a failure the transaction is aborted and its rollback undoes the SET; this reset is
    // for statements that ran outside a transaction.
    let reset = engine.set_statement_timeout(Duration::ZERO).await;
    match outcome {
        Ok(()) => reset,
        Err(mut e) => {
            if e.code == "57014" {
                e.message = format!(
                    "{}: this step holds ACCESS EXCLUSIVE (every query on the table waits while it runs) and was expected to be instant, but it ran longer than {} ms, so the server cancelled it and rolled it back",
                    e.message,
                    limit.as_millis()
                );
            }
            Err(e)
        }
    }
}

/// A concurrent index build, drop or detach (PostgreSQL) never makes queries queue behind it, and
/// its waits for older transactions may be long: it runs without a lock timeout. Everything else
/// that runs outside a transaction (VACUUM FULL, MariaDB DDL, ...) keeps it.
fn never_queues_queries(engine: &dyn Engine, stmt: &SqlStatement) -> bool {
    engine.target().engine == crate::target::EngineKind::Postgres
        && engine.needs_own_transaction(stmt)
        && stmt.has_word("CONCURRENTLY")
}

/// Retries a statement that gave up waiting for a lock: exponential backoff with jitter, until
/// `ctx.lock_retry_for` has passed, saying each time who holds the table.
struct LockRetry {
    started: Instant,
    attempt: u32,
}

impl LockRetry {
    fn new() -> Self {
        LockRetry {
            started: Instant::now(),
            attempt: 0,
        }
    }

    /// Waits before the next attempt and returns true, or returns false when time is up (then `e`
    /// says how long sluice tried).
    async fn again(
        &mut self,
        engine: &mut dyn Engine,
        s: &SqlStatement,
        ctx: &RunContext,
        e: &mut crate::engine::ServerError,
    ) -> bool {
        self.attempt += 1;
        let table = crate::analysis::ir::build(engine.target().engine, 0, s, 0, &s.sql)
            .actions()
            .iter()
            .find_map(crate::plan::action_table)
            .map(|t| t.display());
        let blockers = engine
            .describe_blockers(table.as_deref())
            .await
            .unwrap_or_default();
        let who = if blockers.is_empty() {
            "unknown sessions".to_string()
        } else {
            blockers.join("; ")
        };
        if self.started.elapsed() >= ctx.lock_retry_for {
            e.message = format!(
                "{} (gave up after {} attempt(s) over {} s; blocked by {who})",
                e.message,
                self.attempt,
                self.started.elapsed().as_secs()
            );
            return false;
        }
        // 250 ms doubling to 30 s, with ±50% jitter so several waiting runs do not retry in step.
        let base = 250u64.saturating_mul(1 << self.attempt.min(7)).min(30_000);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let delay = Duration::from_millis(base / 2 + (nanos as u64 % base.max(1)));
        let delay = delay.min(ctx.lock_retry_for.saturating_sub(self.started.elapsed()));
        (ctx.say)(&format!(
            "`{}` waited {} ms for its lock{} and stepped back so queries do not queue behind it; blocked by {who}; retry {} in {} ms",
            first_line(&s.sql),
            ctx.lock_timeout.as_millis(),
            table.map(|t| format!(" on {t}")).unwrap_or_default(),
            self.attempt,
            delay.as_millis()
        ));
        tokio::time::sleep(delay).await;
        true
    }
}

/// Records the finished part and its event (inside the migration's transaction in single mode, so
/// the record and the change commit together).
async fn finish(
    engine: &mut dyn Engine,
    m: &Migration,
    dir: Direction,
    row: &mut HistoryRow,
    prepared: &PreparedPart,
    clock: Instant,
    ctx: &RunContext,
) -> Result<()> {
    let ident = (&m.version, m.name.as_str(), m.checksum.as_str());
    match dir {
        Direction::Up => {
            row.state = RecordState::Applied;
            row.finished_at = Some(Utc::now());
            row.duration_ms = Some(clock.elapsed().as_millis() as i64);
            row.statements_done = prepared.statements.len() as i32;
            row.statement_hashes = prepared
                .statements
                .iter()
                .map(|s| statement_hash(&s.sql))
                .collect();
            row.error = None;
            row.failed_statement = None;
            engine.upsert_migration(row).await?;
            engine
                .append_event(&ctx.event(
                    EventKind::Up,
                    Some(ident),
                    format!(
                        "{} statement(s), {}",
                        prepared.statements.len(),
                        prepared.mode.name()
                    ),
                ))
                .await?;
        }
        Direction::Down => {
            engine.delete_migration(m.version).await?;
            engine
                .append_event(&ctx.event(
                    EventKind::Down,
                    Some(ident),
                    format!(
                        "{} statement(s), {}",
                        prepared.statements.len(),
                        prepared.mode.name()
                    ),
                ))
                .await?;
        }
    }
    Ok(())
}

/// Records the schema as the migration left it. Called after the migration committed: reading the
/// catalogs takes time, and inside the migration's transaction that time would be spent holding its
/// locks (ACCESS EXCLUSIVE for most DDL), with every query on the table waiting.
async fn snapshot(engine: &mut dyn Engine, m: &Migration) -> Result<()> {
    let schema = engine.introspect().await?;
    engine.save_snapshot(Some(m.version), &schema).await
}

#[allow(clippy::too_many_arguments)]
async fn record_failure(
    engine: &mut dyn Engine,
    m: &Migration,
    dir: Direction,
    mut row: HistoryRow,
    s: &SqlStatement,
    part_offset: usize,
    e: crate::engine::ServerError,
    index: usize,
    rolled_back: bool,
    ctx: &RunContext,
) -> Error {
    let offset = part_offset + s.offset;
    // Point at the server's reported position inside the statement when there is one.
    let error_offset = e
        .position
        .and_then(|p| {
            s.sql
                .char_indices()
                .nth(p.saturating_sub(1))
                .map(|(b, _)| offset + b)
        })
        .unwrap_or(offset);
    let (line, column) = sql::line_col(&m.text, error_offset);
    let failure = SqlFailure {
        version: m.version,
        name: m.name.clone(),
        path: m.path.clone(),
        file_text: m.text.clone(),
        offset,
        error_offset,
        line,
        column,
        statement: s.sql.clone(),
        code: e.code.clone(),
        server_message: e.message.clone(),
        statements_applied: if rolled_back { 0 } else { index },
        rolled_back,
    };
    if e.connection_lost {
        return Error::Database {
            context: format!("lost the connection while running {} at {}:{line}:{column}", m.label(), m.path.display()),
            message: e.message,
            help: "the statement's outcome is unknown; the run lock was released with the connection. Run `sluice status`, then `sluice up` to resume".into(),
        };
    }
    row.state = match dir {
        Direction::Up => RecordState::Failed,
        Direction::Down => RecordState::Reverting,
    };
    row.statements_done = failure.statements_applied as i32;
    row.statement_hashes.truncate(failure.statements_applied);
    row.error = Some(format!("{}:{line}:{column}: {e}", m.path.display()));
    row.failed_statement = Some(s.sql.clone());
    // A migration that fails before anything of it is applied, on its first attempt, leaves a
    // failed row too: `status` must show what went wrong and when.
    let record = async {
        engine.upsert_migration(&row).await?;
        engine
            .append_event(&ctx.event(
                EventKind::Failed,
                Some((&m.version, &m.name, &m.checksum)),
                format!("{}: {e}", if dir == Direction::Up { "up" } else { "down" }),
            ))
            .await
    };
    if let Err(rec) = record.await {
        tracing::warn!("could not record the failure: {rec}");
    }
    Error::MigrationFailed(Box::new(failure))
}

// ---------------------------------------------------------------------------------------------
// Down

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub to: Option<i64>,
    pub steps: Option<usize>,
    pub dry_run: bool,
    pub as_written: bool,
}

pub async fn down(
    engine: &mut dyn Engine,
    files: &[Migration],
    opts: &DownOptions,
    ctx: &RunContext,
) -> Result<Vec<PlannedMigration>> {
    let body = |engine: &mut dyn Engine,
                rows: Vec<HistoryRow>|
     -> Result<Vec<(Migration, HistoryRow, PlannedMigration)>> {
        let mut targets: Vec<&HistoryRow> = rows
            .iter()
            .filter(|r| r.state.is_done() || r.state == RecordState::Reverting)
            .collect();
        targets.sort_by_key(|r| std::cmp::Reverse(r.version));
        if let Some(r) = rows
            .iter()
            .find(|r| matches!(r.state, RecordState::Failed | RecordState::Running))
        {
            return Err(Error::usage(
                format!("migration {}_{} is recorded as {}", r.version, r.name, r.state.as_str()),
                "finish it with `sluice up` (it resumes at the failed statement) before rolling back",
            ));
        }
        let selected: Vec<&HistoryRow> = match (opts.to, opts.steps) {
            (Some(_), Some(_)) => {
                return Err(Error::usage(
                    "--to and --steps cannot be combined",
                    "give one of them",
                ))
            }
            (Some(t), None) => targets.into_iter().filter(|r| r.version > t).collect(),
            (None, steps) => targets.into_iter().take(steps.unwrap_or(1)).collect(),
        };
        let mut out = Vec::new();
        for r in selected {
            let m = files
                .iter()
                .find(|m| m.version == r.version)
                .ok_or_else(|| {
                    Error::usage(
                        format!(
                            "cannot roll back {}_{}: its file is missing",
                            r.version, r.name
                        ),
                        "restore the migration file (its down part is needed)",
                    )
                })?;
            if m.checksum != r.checksum && r.state != RecordState::Reverting {
                return Err(Error::Checksum {
                    message: format!("migration {} changed since it was applied; its down part may not undo what ran", m.label()),
                    help: "restore the applied text, or run `sluice repair` if the edit is intentional".into(),
                });
            }
            let prepared = prepare(engine, m, Direction::Down, !opts.as_written)?;
            let resume_from = check_resume(m, Direction::Down, &prepared, Some(r))?;
            let plan = PlannedMigration::new(m, prepared, resume_from);
            out.push((m.clone(), r.clone(), plan));
        }
        Ok(out)
    };
    if opts.dry_run {
        let rows = engine.history().await?;
        return Ok(body(engine, rows)?.into_iter().map(|(_, _, p)| p).collect());
    }
    locked!(engine, ctx, {
        engine.ensure_history().await?;
        let rows = engine.history().await?;
        let work = body(engine, rows)?;
        if work.is_empty() {
            (ctx.say)("nothing to roll back");
        }
        for (m, row, _) in &work {
            run_part(engine, m, Direction::Down, Some(row), !opts.as_written, ctx).await?;
        }
        Ok(work.into_iter().map(|(_, _, p)| p).collect())
    })
}

// ---------------------------------------------------------------------------------------------
// Verify, repair, baseline

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub checked: usize,
    pub edited: Vec<StatusEntry>,
    pub missing_files: Vec<StatusEntry>,
}

pub async fn verify(engine: &mut dyn Engine, files: &[Migration]) -> Result<VerifyReport> {
    let rows = engine.history().await?;
    let statuses = merge(files, &rows);
    let report = VerifyReport {
        checked: rows.iter().filter(|r| r.state.is_done()).count(),
        edited: statuses
            .iter()
            .filter(|s| s.status == MigrationStatus::Edited)
            .cloned()
            .collect(),
        missing_files: statuses
            .iter()
            .filter(|s| s.status == MigrationStatus::MissingFile)
            .cloned()
            .collect(),
    };
    Ok(report)
}

/// Accepts intentional edits of applied migrations: re-records their checksums, each logged.
pub async fn repair(
    engine: &mut dyn Engine,
    files: &[Migration],
    ctx: &RunContext,
) -> Result<Vec<(i64, String, String)>> {
    locked!(engine, ctx, {
        engine.ensure_history().await?;
        let rows = engine.history().await?;
        let mut repaired = Vec::new();
        for r in rows.iter().filter(|r| r.state.is_done()) {
            let Some(m) = files.iter().find(|m| m.version == r.version) else {
                continue;
            };
            if m.checksum == r.checksum {
                continue;
            }
            let mut row = r.clone();
            row.checksum = m.checksum.clone();
            engine.upsert_migration(&row).await?;
            engine
                .append_event(&ctx.event(
                    EventKind::Repair,
                    Some((&m.version, &m.name, &m.checksum)),
                    format!("checksum {} -> {}", r.checksum, m.checksum),
                ))
                .await?;
            (ctx.say)(&format!(
                "repaired {}: checksum {} -> {}",
                m.label(),
                &r.checksum[..12],
                &m.checksum[..12]
            ));
            repaired.push((m.version, r.checksum.clone(), m.checksum.clone()));
        }
        if repaired.is_empty() {
            (ctx.say)("nothing to repair: every applied migration matches its file");
        }
        Ok(repaired)
    })
}

/// Adopts a database sluice has never migrated: migrations up to `version` are recorded as already
/// applied, and the live schema becomes the first snapshot.
pub async fn baseline(
    engine: &mut dyn Engine,
    files: &[Migration],
    version: i64,
    ctx: &RunContext,
) -> Result<usize> {
    locked!(engine, ctx, {
        engine.ensure_history().await?;
        let rows = engine.history().await?;
        if !rows.is_empty() {
            return Err(Error::usage(
                format!("the database already has sluice history ({} migration(s) recorded)", rows.len()),
                "baseline adopts a database sluice has never migrated; use `sluice status` to see its state",
            ));
        }
        let now = Utc::now();
        let adopted: Vec<&Migration> = files.iter().filter(|m| m.version <= version).collect();
        for m in &adopted {
            engine
                .upsert_migration(&HistoryRow {
                    version: m.version,
                    name: m.name.clone(),
                    checksum: m.checksum.clone(),
                    state: RecordState::Baseline,
                    started_at: now,
                    finished_at: Some(now),
                    duration_ms: Some(0),
                    applied_by: ctx.actor.clone(),
                    sluice_version: crate::SLUICE_VERSION.into(),
                    app_version: ctx.app_version.clone(),
                    statements_done: 0,
                    statement_hashes: vec![],
                    error: None,
                    failed_statement: None,
                })
                .await?;
        }
        engine
            .append_event(&ctx.event(
                EventKind::Baseline,
                None,
                format!(
                    "baseline at version {version}: {} migration(s) recorded as applied",
                    adopted.len()
                ),
            ))
            .await?;
        let schema = engine.introspect().await?;
        engine.save_snapshot(Some(version), &schema).await?;
        (ctx.say)(&format!(
            "baseline at {version}: {} migration(s) recorded as applied, schema snapshot taken",
            adopted.len()
        ));
        Ok(adopted.len())
    })
}

// ---------------------------------------------------------------------------------------------
// Drift

#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// The migration version whose snapshot was compared (None: no snapshot yet).
    pub snapshot_version: Option<i64>,
    pub snapshot_taken_at: Option<DateTime<Utc>>,
    pub differences: Vec<Difference>,
}

pub async fn drift(engine: &mut dyn Engine) -> Result<DriftReport> {
    let snap = engine.latest_snapshot().await?.ok_or_else(|| {
        Error::usage(
            "no schema snapshot recorded: sluice has not migrated this database yet",
            "apply migrations with `sluice up`, or adopt the database with `sluice baseline VERSION`",
        )
    })?;
    let live = engine.introspect().await?;
    Ok(DriftReport {
        snapshot_version: snap.version,
        snapshot_taken_at: Some(snap.taken_at),
        differences: diff(&snap.schema, &live),
    })
}

/// Writes the drift as a migration (up: recorded → live, down: live → recorded) and records it as
/// applied, since the database already has it. Returns the new file's path, or None when clean.
pub async fn capture_drift(
    engine: &mut dyn Engine,
    dir: &Path,
    ctx: &RunContext,
) -> Result<Option<Migration>> {
    locked!(engine, ctx, {
        let snap = engine.latest_snapshot().await?.ok_or_else(|| {
            Error::usage(
                "no schema snapshot recorded: sluice has not migrated this database yet",
                "adopt the database with `sluice baseline VERSION` first",
            )
        })?;
        let live = engine.introspect().await?;
        let differences = diff(&snap.schema, &live);
        if differences.is_empty() {
            return Ok(None);
        }
        let up_sql = engine.render_diff_sql(&snap.schema, &live);
        let down_sql = engine.render_diff_sql(&live, &snap.schema);
        // One comment line per difference: definitions span lines and must not leak out of the comment.
        let listing: String = differences
            .iter()
            .map(|d| {
                let line = d
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ");
                let short: String = line.chars().take(200).collect();
                format!(
                    "--   {short}{}\n",
                    if short.len() < line.len() { " …" } else { "" }
                )
            })
            .collect();
        let text = format!(
            "-- Captured by `sluice drift --write-migration` on {}.\n-- The live schema differed from the snapshot sluice recorded{}:\n{listing}-- It is recorded as applied where it was captured; `sluice down` reverts the drift there.\n\n-- sluice:up\n{up_sql}\n-- sluice:down\n{down_sql}",
            Utc::now().format("%Y-%m-%d %H:%M:%S UTC"),
            snap.version.map(|v| format!(" after migration {v}")).unwrap_or_default(),
        );
        let rows = engine.history().await?;
        let mut now = Utc::now();
        let max_version = rows.iter().map(|r| r.version).max().unwrap_or(0);
        // The capture must sort after everything applied, whatever clocks did.
        let mut file_name = crate::migration::new_file_name(now, "capture_drift")?;
        while crate::migration::parse_file_name(&file_name)
            .map(|(v, _)| v <= max_version)
            .unwrap_or(false)
            || dir.join(&file_name).exists()
        {
            now += chrono::Duration::seconds(1);
            file_name = crate::migration::new_file_name(now, "capture_drift")?;
        }
        std::fs::create_dir_all(dir)
            .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
        let path = dir.join(&file_name);
        std::fs::write(&path, &text)
            .map_err(|e| Error::io(format!("writing {}", path.display()), e))?;
        let m = crate::migration::load_file(&path)?;
        engine.ensure_history().await?;
        let stamp = Utc::now();
        engine
            .upsert_migration(&HistoryRow {
                version: m.version,
                name: m.name.clone(),
                checksum: m.checksum.clone(),
                state: RecordState::Applied,
                started_at: stamp,
                finished_at: Some(stamp),
                duration_ms: Some(0),
                applied_by: ctx.actor.clone(),
                sluice_version: crate::SLUICE_VERSION.into(),
                app_version: ctx.app_version.clone(),
                statements_done: 0,
                statement_hashes: vec![],
                error: None,
                failed_statement: None,
            })
            .await?;
        engine
            .append_event(&ctx.event(
                EventKind::DriftCapture,
                Some((&m.version, &m.name, &m.checksum)),
                format!(
                    "{} difference(s) captured into {}",
                    differences.len(),
                    path.display()
                ),
            ))
            .await?;
        engine.save_snapshot(Some(m.version), &live).await?;
        Ok(Some(m))
    })
}

// ---------------------------------------------------------------------------------------------
// Plan

#[derive(Debug, Clone, Serialize)]
pub struct MigrationPlan {
    pub version: i64,
    pub name: String,
    pub mode: TxMode,
    pub statements: Vec<crate::plan::StatementPlan>,
    pub findings: Vec<crate::analysis::Finding>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub target: String,
    pub database: String,
    /// Sizes of the tables the pending migrations touch.
    pub tables: BTreeMap<String, crate::analysis::TableStats>,
    pub migrations: Vec<MigrationPlan>,
}

/// What `sluice up` would do to the live database: for each pending statement, its lock, duration
/// class, estimate on the live table and the safe steps; plus the lint findings, size-aware.
pub async fn plan(
    engine: &mut dyn Engine,
    files: &[Migration],
    opts: &UpOptions,
) -> Result<PlanReport> {
    let rows = engine.history().await?;
    let target = engine.target();
    let planned = plan_up(engine, files, &rows, opts)?;
    let stats = engine.table_stats().await?;
    let live = engine.introspect().await?;
    let mut column_types: std::collections::HashMap<(String, String), String> =
        std::collections::HashMap::new();
    for (tname, t) in &live.tables {
        let short = tname.rsplit('.').next().unwrap_or(tname).to_string();
        for c in &t.columns {
            column_types.insert((short.clone(), c.name.clone()), c.data_type.clone());
        }
    }
    let lint_opts = crate::analysis::LintOptions {
        staged: !opts.as_written,
        include_down: false,
        stats: Some(stats.clone()),
        live_columns: column_types.clone(),
    };
    let mut report = PlanReport {
        target: target.to_string(),
        database: engine.url(),
        tables: BTreeMap::new(),
        migrations: vec![],
    };
    for p in &planned {
        let m = files
            .iter()
            .find(|m| m.version == p.version)
            .expect("planned from files");
        let findings = crate::analysis::lint(target, std::slice::from_ref(m), &lint_opts).findings;
        let (stmts, lint_mode, _) = crate::analysis::build_part(target, m, Direction::Up);
        // The mode `up` will run the part in (its staged forms may need per-statement).
        let mode = prepare(engine, m, Direction::Up, !opts.as_written)
            .map(|p| p.mode)
            .unwrap_or(lint_mode);
        let mut statements = Vec::new();
        crate::analysis::walk_part(
            target,
            &stmts,
            lint_mode,
            Some(&stats),
            &mut column_types,
            |i, st, ctx| {
                if i >= p.resume_from {
                    statements.push(crate::plan::plan_statement(st, ctx));
                }
            },
        );
        if target.engine != crate::target::EngineKind::Postgres && !opts.as_written {
            for sp in statements.iter_mut() {
                sp.online = engine.explain_online(&sp.sql).await?;
            }
        }
        for sp in &statements {
            for a in &sp.actions {
                if let Some(t) = &a.table {
                    let short = t.rsplit('.').next().unwrap_or(t);
                    if let Some(s) = stats.get(t).or_else(|| stats.get(short)) {
                        report.tables.insert(t.clone(), *s);
                    }
                }
            }
        }
        report.migrations.push(MigrationPlan {
            version: m.version,
            name: m.name.clone(),
            mode,
            statements,
            findings,
        });
    }
    Ok(report)
}

// ---------------------------------------------------------------------------------------------
// Reviewed plans (`plan --out`, `up --plan`)

/// The plan file for the live database and the files: what `up` with `opts` would run (as
/// `up --dry-run` shows it) and the state it would run on.
pub async fn plan_file(
    engine: &mut dyn Engine,
    files: &[Migration],
    opts: &UpOptions,
    database: &str,
) -> Result<crate::planfile::PlanFile> {
    let rows = engine.history().await?;
    let (doc, refused) = capture_plan(engine, files, &rows, opts, database).await?;
    match refused {
        Some(e) => Err(e),
        None => Ok(doc),
    }
}

/// The plan document as of now; when `up` itself would refuse, that refusal instead of the steps.
async fn capture_plan(
    engine: &mut dyn Engine,
    files: &[Migration],
    rows: &[HistoryRow],
    opts: &UpOptions,
    database: &str,
) -> Result<(crate::planfile::PlanFile, Option<Error>)> {
    use crate::planfile::{PlanFile, PlanHistory, PlanMigration, PlanOptions};
    let target = engine.target();
    let schema = engine.introspect().await?;
    let (migrations, refused) = match plan_up(engine, files, rows, opts) {
        Ok(mut planned) => {
            if !opts.as_written {
                explain_online(engine, &mut planned).await?;
            }
            let migrations = planned
                .iter()
                .map(|p| {
                    let m = files.iter().find(|m| m.version == p.version);
                    PlanMigration::of(p, m.map(|m| m.checksum.as_str()).unwrap_or(""))
                })
                .collect();
            (migrations, None)
        }
        Err(e) => (vec![], Some(e)),
    };
    let doc = PlanFile {
        format: crate::planfile::FORMAT.into(),
        format_version: crate::planfile::FORMAT_VERSION,
        sluice_version: crate::SLUICE_VERSION.into(),
        created_at: Utc::now(),
        engine: target.engine.name().into(),
        server_version: if target.patch > 0 {
            format!("{}.{}.{}", target.major, target.minor, target.patch)
        } else {
            format!("{}.{}", target.major, target.minor)
        },
        database: database.to_string(),
        options: PlanOptions::from_up(opts),
        schema_fingerprint: schema.fingerprint(),
        history: PlanHistory::of(rows),
        migrations,
        schema,
    };
    Ok((doc, refused))
}

/// What `up --plan` did.
#[derive(Debug, Clone)]
pub enum PlanRun {
    /// Everything matched; these ran (with `dry_run`: would run).
    Ran(UpReport),
    /// Every migration of the plan is already applied with the reviewed checksum (a rerun):
    /// nothing ran. `others_pending`: migrations pending now that the plan does not cover.
    AlreadyApplied {
        versions: Vec<i64>,
        others_pending: usize,
    },
}

/// Runs a reviewed plan: under the run lock, recomputes the plan from the live database and the
/// files, and only when it is identical runs it, exactly as `up` with the plan's options would.
/// Any difference refuses before anything runs (exit 4), naming each difference.
pub async fn up_with_plan(
    engine: &mut dyn Engine,
    files: &[Migration],
    plan: &crate::planfile::PlanFile,
    path: &Path,
    database: &str,
    dry_run: bool,
    ctx: &RunContext,
) -> Result<PlanRun> {
    let opts = plan.options.up_options(dry_run);
    if dry_run {
        return check_plan(engine, files, plan, path, database, &opts).await;
    }
    locked!(engine, ctx, {
        let checked = check_plan(engine, files, plan, path, database, &opts).await?;
        let PlanRun::Ran(mut report) = checked else {
            return Ok(checked);
        };
        engine.ensure_history().await?;
        let rows = engine.history().await?;
        if report.planned.is_empty() {
            (ctx.say)("nothing to apply: the plan is empty and the database is up to date");
        }
        for p in &report.planned {
            let m = files
                .iter()
                .find(|m| m.version == p.version)
                .expect("planned from files");
            let row = rows.iter().find(|r| r.version == m.version);
            run_part(engine, m, Direction::Up, row, !opts.as_written, ctx).await?;
            report.applied.push(m.version);
        }
        Ok(PlanRun::Ran(report))
    })
}

async fn check_plan(
    engine: &mut dyn Engine,
    files: &[Migration],
    plan: &crate::planfile::PlanFile,
    path: &Path,
    database: &str,
    opts: &UpOptions,
) -> Result<PlanRun> {
    let rows = engine.history().await?;
    if crate::planfile::already_applied(plan, &rows) {
        let others_pending = plan_up(engine, files, &rows, opts)
            .map(|p| p.len())
            .unwrap_or(0);
        return Ok(PlanRun::AlreadyApplied {
            versions: plan.migrations.iter().map(|m| m.version).collect(),
            others_pending,
        });
    }
    let (now, refused) = capture_plan(engine, files, &rows, opts, database).await?;
    let refused = refused.map(|e| e.to_string());
    let gone = |v: i64| match (
        files.iter().any(|m| m.version == v),
        rows.iter().find(|r| r.version == v),
    ) {
        (false, _) => "its file is gone".to_string(),
        (true, Some(r)) if r.state.is_done() => {
            format!("it is already {} (by {})", r.state.as_str(), r.applied_by)
        }
        (true, Some(r)) => format!("it is recorded as {}", r.state.as_str()),
        (true, None) => "it is not pending".to_string(),
    };
    let diffs = plan.differences(&now, refused.as_deref(), gone);
    if !diffs.is_empty() {
        let shown = path.display();
        return Err(Error::Checksum {
            message: format!(
                "the reviewed plan {shown} no longer matches the database and the migration files; nothing was run. {} difference(s), plan vs now:\n{}",
                diffs.iter().filter(|d| !d.starts_with(' ')).count(),
                diffs
                    .iter()
                    .map(|d| match d.strip_prefix("  ") {
                        Some(detail) => format!("      {detail}"),
                        None => format!("  - {d}"),
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            help: format!(
                "something changed since the plan was reviewed. Check that the change is expected, then write the plan \
                 again (`sluice plan --out {shown}`), review it, and run `sluice up --plan {shown}`"
            ),
        });
    }
    let planned = {
        let mut planned = plan_up(engine, files, &rows, opts)?;
        if !opts.as_written {
            explain_online(engine, &mut planned).await?;
        }
        planned
    };
    Ok(PlanRun::Ran(UpReport {
        planned,
        applied: vec![],
    }))
}

// ---------------------------------------------------------------------------------------------
// Backfill

/// A data migration in batches (`sluice backfill`), under the run lock and the lock timeout.
pub async fn backfill(
    engine: &mut dyn Engine,
    spec: &crate::engine::BackfillSpec,
    ctx: &RunContext,
) -> Result<crate::engine::BackfillReport> {
    // Refused before the run lock or any row is touched.
    sql::check_backfill_input(engine.target().engine, &spec.set, spec.filter.as_deref())?;
    locked!(engine, ctx, {
        engine.ensure_history().await?;
        engine.set_lock_timeout(ctx.lock_timeout).await?;
        engine.backfill(spec, &*ctx.say).await
    })
}
