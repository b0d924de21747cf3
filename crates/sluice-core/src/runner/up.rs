//! `sluice up`: what is pending, the dry run, and applying.

use super::*;

/// What [`up`] applies, and how. `UpOptions::default()` applies every pending migration the way
/// `sluice up` does.
#[derive(Debug, Clone, Default)]
pub struct UpOptions {
    /// Stop after this version (None: all pending).
    pub to: Option<i64>,
    /// Only plan: the report lists what would run (each statement and the safer form run
    /// instead); nothing is executed and no lock is taken.
    pub dry_run: bool,
    /// Apply a pending migration older than one already applied instead of refusing.
    pub allow_out_of_order: bool,
    /// Run every statement exactly as written (no concurrent forms).
    pub as_written: bool,
    /// Tables with fewer rows run rewrites and copies as written (0: never); the run itself reads
    /// it from `RunContext::online`, the dry run and `plan` from here.
    pub as_written_below_rows: u64,
    /// Run the contract phase of each breaking migration right after its expand phase
    /// (`up --complete`): no window with two application versions.
    pub complete: bool,
    /// Logical replication (PostgreSQL): the subscribers of this publisher whose tables are
    /// checked for the columns the run adds (`--subscriber-url`). Never recorded or printed.
    pub subscriber_urls: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlannedMigration {
    pub version: i64,
    /// The version as its file names it (`R` / `R_` for a repeatable: see `layout`).
    pub version_text: String,
    pub name: String,
    pub mode: TxMode,
    pub mode_reason: String,
    /// Statements already applied by an earlier, failed or killed run; they are skipped.
    pub resume_from: usize,
    pub statements: Vec<String>,
    /// For each statement, the safer form sluice runs instead and why (None: runs as written).
    pub runs_as: Vec<Option<RunsAs>>,
    /// The tables its statements name that earlier migrations of this run create: new, so their
    /// statements run as written (see [`crate::analysis::RunTables`]).
    #[serde(skip)]
    pub run_tables: Vec<crate::analysis::ir::QName>,
    /// For each statement: it changes only `run_tables`, so it runs as written.
    #[serde(skip)]
    pub in_run: Vec<bool>,
}

/// The steps sluice runs for a statement, in order, each committed before the next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct RunsAs {
    pub sql: String,
    pub note: String,
    /// The steps after `sql` (a backfill is described in words).
    pub then: Vec<String>,
}

impl RunsAs {
    /// A view or policy statement a staged type change runs inside its swap.
    pub(super) fn in_swap(after: bool) -> RunsAs {
        RunsAs {
            sql: "(nothing)".into(),
            note: if after {
                crate::plan::prepare::IN_SWAP_AFTER
            } else {
                crate::plan::prepare::IN_SWAP_BEFORE
            }
            .into(),
            then: vec![],
        }
    }

    pub(super) fn of(r: &crate::plan::staged::Rewrite) -> RunsAs {
        RunsAs {
            // The same text `sluice plan` shows for each step.
            then: r.then.iter().map(crate::plan::staged::Step::text).collect(),
            sql: r.sql.clone(),
            note: r.note.clone(),
        }
    }
}

impl PlannedMigration {
    pub(super) fn new(
        m: &Migration,
        prepared: PreparedPart,
        resume_from: usize,
        run_tables: Vec<crate::analysis::ir::QName>,
    ) -> Self {
        // Only those its text names (a superset of the tables it changes): a long run's list is
        // not copied into every migration.
        let text: Vec<String> = prepared
            .statements
            .iter()
            .map(|s| s.sql.to_lowercase())
            .collect();
        let named = |q: &crate::analysis::ir::QName| {
            let name = q.name.to_lowercase();
            text.iter().any(|t| t.contains(&name))
        };
        let run_tables = run_tables.into_iter().filter(named).collect();
        PlannedMigration {
            run_tables,
            in_run: prepared.written.iter().map(|w| w.in_run).collect(),
            version_text: m.version_text.clone(),
            version: m.version,
            name: m.name.clone(),
            mode: prepared.mode,
            mode_reason: prepared.mode_reason,
            resume_from,
            statements: prepared.statements.iter().map(|s| s.sql.clone()).collect(),
            runs_as: prepared
                .rewrites
                .iter()
                .zip(prepared.brackets.iter().chain(std::iter::repeat(&Bracket::None)))
                .map(|(r, b)| match b {
                    Bracket::Skip(why) => Some(RunsAs {
                        sql: "(nothing)".into(),
                        note: why.to_string(),
                        then: vec![],
                    }),
                    Bracket::Group { .. } => Some(RunsAs {
                        sql: "BEGIN".into(),
                        note: "the statements up to its COMMIT run in one transaction together with their progress record".into(),
                        then: vec![],
                    }),
                    Bracket::InSwap { after } => Some(RunsAs::in_swap(*after)),
                    Bracket::None => r.as_ref().map(RunsAs::of),
                })
                .collect(),
        }
    }
}

/// What [`up`] planned and applied.
#[derive(Debug, Clone, Serialize, Default)]
pub struct UpReport {
    pub planned: Vec<PlannedMigration>,
    /// Versions applied by this run, in order.
    pub applied: Vec<i64>,
    /// Breaking migrations this run expanded (and left expanded: `sluice complete` next).
    pub expanded: Vec<i64>,
    /// Migrations an earlier run left expanded that this one completed first (`up --complete`).
    pub completed: Vec<i64>,
}

/// Applies the pending migrations of `files` (as [`crate::migration::discover`] reads them), under
/// the run lock: each statement runs in its safer form where sluice has one (concurrent index
/// builds, NOT VALID + VALIDATE, batched backfills, the MariaDB online copy), with the lock
/// discipline of `ctx`, and progress is recorded after every statement, so a failed or killed run
/// resumes where it stopped. Everything is parsed and checked before the first statement runs.
/// An error is a [`crate::Error`] whose `exit_code()` is the command's documented exit code.
pub async fn up(
    engine: &mut dyn Engine,
    files: &[Migration],
    opts: &UpOptions,
    ctx: &RunContext,
) -> Result<UpReport> {
    if opts.dry_run {
        let rows = engine.history().await?;
        let live = live_tables(engine).await?;
        let mut planned = plan_up(engine, files, &rows, opts, live)?;
        // What the lifecycle refuses, the dry run refuses too (before, it said "would apply").
        // `up --complete` completes what is expanded first: the check then sees nothing open.
        let rows_after: Vec<_> = if opts.complete {
            rows.iter()
                .filter(|r| r.state != crate::history::RecordState::Expanded)
                .cloned()
                .collect()
        } else {
            rows.clone()
        };
        check_lifecycle(engine, files, &planned, &rows_after, opts).await?;
        // What `up --complete` completes first is checked as `complete` checks it: a subscriber
        // does not drop a column its publisher still sends.
        if opts.complete && !opts.as_written {
            let expanded: Vec<(&Migration, usize)> = rows
                .iter()
                .filter(|r| r.state == crate::history::RecordState::Expanded)
                .filter_map(|r| files.iter().find(|m| m.version == r.version))
                .map(|m| (m, 0))
                .collect();
            super::replication::check(
                engine,
                super::replication::Runs::Up,
                &expanded,
                false,
                true,
                &opts.subscriber_urls,
                &[],
            )
            .await?;
        }
        for w in replication_check(engine, files, &planned, opts).await? {
            (ctx.say)(&format!("warning: {w}"));
        }
        if !opts.as_written {
            explain_online(engine, &mut planned, opts.as_written_below_rows).await?;
            // The dry run stops where `up` would: a type change it cannot stage is refused here too.
            explain_type_changes(
                engine,
                files,
                &mut planned,
                opts.as_written_below_rows,
                true,
            )
            .await?;
            crate::lifecycle::explain_dry_run(engine, files, &mut planned).await?;
        }
        // What `up --complete` would complete first (see below).
        let completed = if opts.complete && !opts.as_written {
            rows.iter()
                .filter(|r| r.state == crate::history::RecordState::Expanded)
                .map(|r| r.version)
                .collect()
        } else {
            vec![]
        };
        return Ok(UpReport {
            planned,
            completed,
            ..Default::default()
        });
    }
    locked!(engine, ctx, {
        engine.ensure_history().await?;
        // `up --complete` means no window with two versions: what an earlier `up` left expanded is
        // completed first, so the pending migrations then meet no expanded one on their tables.
        let mut completed = Vec::new();
        if opts.complete && !opts.as_written {
            let rows = engine.history().await?;
            if rows
                .iter()
                .any(|r| r.state == crate::history::RecordState::Expanded)
            {
                completed = crate::lifecycle::complete_locked(engine, files, None, ctx).await?;
                for v in &completed {
                    (ctx.say)(&format!(
                        "completed {v}, left expanded by an earlier `up` (`--complete`)"
                    ));
                }
            }
        }
        let rows = engine.history().await?;
        let live = live_tables(engine).await?;
        let planned = plan_up(engine, files, &rows, opts, live)?;
        let mut report = UpReport {
            planned: planned.clone(),
            completed,
            ..Default::default()
        };
        // Two application versions live: what the lifecycle cannot run is refused before anything runs.
        check_lifecycle(engine, files, &planned, &rows, opts).await?;
        for w in replication_check(engine, files, &planned, opts).await? {
            (ctx.say)(&format!("warning: {w}"));
        }
        if planned.is_empty() {
            (ctx.say)(&nothing_to_apply(&rows, files));
        }
        // A missing privilege is found now, not after earlier statements (or migrations) ran.
        let pending: Vec<String> = planned
            .iter()
            .flat_map(|p| p.statements.iter().skip(p.resume_from).cloned())
            .collect();
        engine.check_privileges(&pending, !opts.as_written).await?;
        for p in &planned {
            apply_planned(engine, files, &rows, p.version, opts, ctx, &mut report).await?;
        }
        Ok(report)
    })
}

/// What `up` says when nothing is pending: "up to date" only when no migration waits for another
/// command (an expanded one for `complete`, an interrupted `down` for `down`).
fn nothing_to_apply(rows: &[crate::history::HistoryRow], files: &[Migration]) -> String {
    use crate::history::RecordState;
    let named = |state: RecordState| -> Vec<String> {
        rows.iter()
            .filter(|r| r.state == state)
            .map(|r| match files.iter().find(|m| m.version == r.version) {
                Some(m) => m.label(),
                None => format!("{}_{}", r.version, r.name),
            })
            .collect()
    };
    let mut waiting = Vec::new();
    let expanded = named(RecordState::Expanded);
    if !expanded.is_empty() {
        waiting.push(format!(
            "{} expanded: run `sluice complete` once the new application version runs everywhere (or `sluice rollback`)",
            expanded.join(", ")
        ));
    }
    let reverting = named(RecordState::Reverting);
    if !reverting.is_empty() {
        waiting.push(format!(
            "a `sluice down` of {} did not finish: run `sluice down` again to finish it",
            reverting.join(", ")
        ));
    }
    match waiting.is_empty() {
        true => "nothing to apply: the database is up to date".into(),
        false => format!("nothing to apply; {}", waiting.join("; ")),
    }
}

/// Two application versions live: what the lifecycle cannot run (judged with the type changes the
/// live tables will stage) is refused before anything runs — by `up`, its dry run and `up --plan`.
pub(super) async fn check_lifecycle(
    engine: &mut dyn Engine,
    files: &[Migration],
    planned: &[PlannedMigration],
    rows: &[HistoryRow],
    opts: &UpOptions,
) -> Result<()> {
    if opts.as_written {
        let resumed: Vec<(i64, usize)> =
            planned.iter().map(|p| (p.version, p.resume_from)).collect();
        return crate::runner::lifecycle::as_written_over_helpers(engine, files, &resumed, rows)
            .await;
    }
    let versions: Vec<i64> = planned.iter().map(|p| p.version).collect();
    let kept = kept_type_changes(engine, files, planned, opts.as_written_below_rows).await?;
    // `--complete` completes each kept change before the next runs (and what is expanded first).
    if !opts.complete {
        crate::runner::lifecycle::referenced_open_type_change(engine, files, rows, &kept).await?;
    }
    let children = crate::runner::lifecycle::open_children(engine, files, rows).await?;
    crate::lifecycle::check_up(
        engine.target(),
        files,
        &versions,
        rows,
        opts.complete,
        &kept,
        &children,
    )
}

/// Logical replication around the database (PostgreSQL): refuses removing a column a publisher
/// still sends (`--complete` or `--as-written`: the run removes it), checks the subscribers named
/// in `opts.subscriber_urls` for the columns the run adds to published tables (a staged type
/// change's helper included), and returns what to say of them (all of it, unnamed).
pub(super) async fn replication_check(
    engine: &mut dyn Engine,
    files: &[Migration],
    planned: &[PlannedMigration],
    opts: &UpOptions,
) -> Result<Vec<String>> {
    let items: Vec<(&Migration, usize)> = planned
        .iter()
        .filter_map(|p| {
            files
                .iter()
                .find(|m| m.version == p.version)
                .map(|m| (m, p.resume_from))
        })
        .collect();
    // A staged type change adds a helper column to its table: on a published table, a column the
    // subscribers are sent too.
    let mut helpers = Vec::new();
    let kind = engine.target().engine;
    // Staging is read from the live catalog: only for a database that publishes something.
    if kind == crate::target::EngineKind::Postgres
        && !opts.as_written
        && !planned.is_empty()
        && !engine.logical_replication().await?.published.is_empty()
    {
        for p in planned {
            let Some(m) = files.iter().find(|m| m.version == p.version) else {
                continue;
            };
            let Ok(mut prepared) = prepare_in(engine, m, Direction::Up, true, &p.run_tables) else {
                continue;
            };
            let retypes = |s: &crate::sql::SqlStatement| {
                crate::analysis::ir::build(kind, 0, s, 0, &s.sql)
                    .actions()
                    .iter()
                    .filter_map(|a| match a {
                        crate::analysis::ir::Action::AlterColumnType { table, column, .. } => {
                            Some((table.clone(), column.clone()))
                        }
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            };
            if !prepared.statements.iter().any(|s| !retypes(s).is_empty()) {
                continue;
            }
            let Ok(changes) = stage_type_changes(
                engine,
                m,
                Direction::Up,
                &mut prepared,
                p.resume_from,
                opts.as_written_below_rows,
                &p.run_tables,
            )
            .await
            else {
                continue;
            };
            for (i, change) in changes {
                if !matches!(change, TypeChange::Staged(_)) {
                    continue;
                }
                for (table, column) in retypes(&prepared.statements[i]) {
                    helpers.push(super::replication::Helper {
                        migration: m.label(),
                        table: format!(
                            "{}.{}",
                            table.schema.as_deref().unwrap_or("public"),
                            table.name
                        ),
                        helper: crate::plan::helper_name(&column, "", "sluice_new"),
                        column,
                    });
                }
            }
        }
    }
    super::replication::check(
        engine,
        super::replication::Runs::Up,
        &items,
        true,
        opts.complete || opts.as_written,
        &opts.subscriber_urls,
        &helpers,
    )
    .await
}

/// PostgreSQL: the rewriting type changes of the dry run, staged from the live catalog (their
/// steps, and the part's mode then) or run as written on a small table. A type change `up` would
/// refuse is returned as that same error when `refuse` (`up --dry-run`: it must not say "would
/// apply" what `up` refuses); `plan` shows the refusal in its own words instead.
pub(super) async fn explain_type_changes(
    engine: &mut dyn Engine,
    files: &[Migration],
    planned: &mut [PlannedMigration],
    below: u64,
    refuse: bool,
) -> Result<()> {
    for p in planned.iter_mut() {
        let Some(m) = files.iter().find(|m| m.version == p.version) else {
            continue;
        };
        let mut prepared = prepare_in(engine, m, Direction::Up, true, &p.run_tables)?;
        let Ok(changes) = stage_type_changes(
            engine,
            m,
            Direction::Up,
            &mut prepared,
            p.resume_from,
            below,
            &p.run_tables,
        )
        .await
        else {
            continue;
        };
        for (i, change) in changes {
            if p.runs_as.len() <= i {
                p.runs_as.resize(i + 1, None);
            }
            match change {
                TypeChange::Small(note) => {
                    p.runs_as[i] = Some(RunsAs {
                        sql: p.statements[i].clone(),
                        note,
                        then: vec![],
                    })
                }
                TypeChange::Staged(kept) => {
                    p.runs_as[i] = prepared.rewrites[i].as_ref().map(RunsAs::of);
                    // As `plan` states it: what the old version sees while the old column is kept.
                    for t in kept.iter().flat_map(|lp| &lp.old_version) {
                        if let Some(r) = p.runs_as[i].as_mut() {
                            r.note = format!("{}; what the old version sees: {t}", r.note);
                        }
                    }
                    // What `up` would say before the first batch, said on the step.
                    let tables: Vec<String> = prepared.rewrites[i]
                        .iter()
                        .flat_map(|r| &r.then)
                        .filter_map(|s| match s {
                            crate::plan::staged::Step::Backfill { table, .. } => {
                                Some(table.clone())
                            }
                            _ => None,
                        })
                        .collect();
                    for table in tables {
                        if let Some(w) = engine.backfill_trigger_warning(&table).await? {
                            if let Some(r) = p.runs_as[i].as_mut() {
                                r.note = format!("{}; {w}", r.note);
                            }
                        }
                    }
                    p.mode = prepared.mode;
                    p.mode_reason = prepared.mode_reason.clone();
                }
                TypeChange::Refused { error, .. } if refuse => return Err(error),
                TypeChange::Refused { .. } => {}
            }
        }
        // The view and policy statements a staged type change runs inside its swap.
        for (k, b) in prepared.brackets.iter().enumerate() {
            if let Bracket::InSwap { after } = b {
                if p.runs_as.len() <= k {
                    p.runs_as.resize(k + 1, None);
                }
                p.runs_as[k] = Some(RunsAs::in_swap(*after));
            }
        }
    }
    Ok(())
}

/// Fills in how the engine's online path would run each ALTER TABLE (MariaDB/MySQL), for the dry run.
pub(super) async fn explain_online(
    engine: &mut dyn Engine,
    planned: &mut [PlannedMigration],
    as_written_below_rows: u64,
) -> Result<()> {
    if engine.target().engine == crate::target::EngineKind::Postgres {
        return Ok(());
    }
    for p in planned.iter_mut() {
        for i in p.resume_from..p.statements.len() {
            if p.runs_as.get(i).is_some_and(|r| r.is_some())
                || p.in_run.get(i).copied().unwrap_or(false)
            {
                continue;
            }
            let Some(lines) = engine
                .explain_online(&p.statements[i], as_written_below_rows)
                .await?
            else {
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

/// The tables of the database now, by name and schema-qualified name: a run's `CREATE TABLE IF
/// NOT EXISTS` of one of them makes nothing new. Read from the catalog by name only, so it takes
/// no lock on any table and never waits behind one (`table_stats` would, on PostgreSQL).
pub(super) async fn live_tables(engine: &mut dyn Engine) -> Result<Vec<String>> {
    let sql = match engine.target().engine {
        crate::target::EngineKind::Postgres => {
            "SELECT n.nspname, c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'sluice') AND n.nspname NOT LIKE 'pg_toast%'"
        }
        _ => "SELECT TABLE_SCHEMA, TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = 'BASE TABLE'",
    };
    let mut out = Vec::new();
    for row in engine.query_text(sql).await? {
        if let [Some(schema), Some(name)] = row.as_slice() {
            out.push(format!("{schema}.{name}"));
            out.push(name.clone());
        }
    }
    Ok(out)
}

pub(super) fn plan_up(
    engine: &dyn Engine,
    files: &[Migration],
    rows: &[HistoryRow],
    opts: &UpOptions,
    live: Vec<String>,
) -> Result<Vec<PlannedMigration>> {
    let statuses = merge(files, rows);
    let edited: Vec<&StatusEntry> = statuses
        .iter()
        .filter(|s| s.status == MigrationStatus::Edited)
        .collect();
    if !edited.is_empty() {
        return Err(edited_error(&edited));
    }
    // An expand phase cut off (recorded running with its breaking statement's hash ahead of its
    // done count) whose file changed since: the rerun would plan from the new text and leave what
    // the cut-off run made (triggers that go on writing values) behind for good.
    if let Some((r, m)) = rows.iter().find_map(|r| {
        let m = files.iter().find(|m| m.version == r.version)?;
        (r.state == crate::history::RecordState::Running
            && r.statement_hashes.len() > r.statements_done.max(0) as usize
            && m.checksum != r.checksum)
            .then_some((r, m))
    }) {
        let _ = r;
        return Err(Error::Checksum {
            message: format!(
                "the expand phase of migration {} was cut off and its file has changed since: a rerun would plan from the new text and leave what the cut-off run made (its triggers, its new column) behind",
                m.label()
            ),
            help: "restore the file as it was, then run `sluice up` to finish the expand (or `sluice rollback` to remove what it made), and change the migration after that".into(),
        });
    }
    if let Some(r) = statuses
        .iter()
        .find(|s| s.status == MigrationStatus::Reverting)
    {
        return Err(Error::usage(
            format!(
                "the rollback of migration {}_{} did not finish",
                r.version_text, r.name
            ),
            "finish it with `sluice down` (it resumes where it stopped) before applying migrations",
        ));
    }
    if let Some((r, row)) = statuses.iter().find_map(|s| {
        rows.iter()
            .find(|r| r.version == s.version && !r.state.is_done())
            .filter(|_| s.status == MigrationStatus::MissingFile)
            .map(|row| (s, row))
    }) {
        // Exit 4, as for any recorded migration whose file is missing; the record's own state
        // (the status only says the file is missing).
        let (state, next) = match row.state {
            crate::history::RecordState::Expanded => (
                "expanded",
                "restore the file: `sluice complete` and `sluice rollback` are planned from it, and `sluice up` goes on after it",
            ),
            _ => (
                row.state.shown(),
                "restore the file so `sluice up` can finish it",
            ),
        };
        return Err(Error::Checksum {
            message: format!(
                "migration {}_{} is {state} but its file is missing",
                r.version_text, r.name
            ),
            help: next.into(),
        });
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
            .map(|s| format!("{}_{}", s.version_text, s.name))
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
    // The tables the run's earlier migrations create are new for its later ones.
    let mut run = crate::analysis::RunTables::on(live);
    for s in &statuses {
        let resumable = matches!(
            s.status,
            MigrationStatus::Failed | MigrationStatus::Running | MigrationStatus::Interrupted
        );
        let pending = matches!(
            s.status,
            MigrationStatus::Pending
                | MigrationStatus::OutOfOrder
                | MigrationStatus::New
                | MigrationStatus::Changed
        );
        // Repeatables run after every versioned migration: not when `--to` stops before the end.
        if crate::layout::is_repeatable_key(s.version) && opts.to.is_some() {
            continue;
        }
        // A failed migration blocks everything after it, so it is resumed even beyond --to.
        if !(resumable || (pending && opts.to.is_none_or(|t| s.version <= t))) {
            continue;
        }
        let m = files
            .iter()
            .find(|m| m.version == s.version)
            .expect("status from files");
        let fresh = run.current();
        run.push(engine.target(), m);
        let prepared = prepare_in(engine, m, Direction::Up, !opts.as_written, &fresh)?;
        let row = rows.iter().find(|r| r.version == m.version);
        let resume_from = check_resume(m, Direction::Up, &prepared, row)?;
        planned.push(PlannedMigration::new(m, prepared, resume_from, fresh));
    }
    Ok(planned)
}

pub(super) fn edited_error(edited: &[&StatusEntry]) -> Error {
    let list: Vec<String> = edited
        .iter()
        .map(|s| format!("{}_{}", s.version_text, s.name))
        .collect();
    // An expanded migration's complete and rollback are planned from its file: an edit cannot
    // be accepted while it is open, only restored.
    let help = if edited.iter().any(|s| s.open_secs.is_some()) {
        "restore the applied text (e.g. from version control): an expanded migration's `sluice complete` and `sluice rollback` \
         are planned from its file, so it must read as it did at `sluice up` until one of them has run; change the schema \
         further in a new migration"
    } else {
        "restore the applied text (e.g. from version control). If the edit is intentional and the database already \
         matches it, run `sluice repair` to accept it (it is logged)"
    };
    Error::Checksum {
        message: format!(
            "applied migration(s) changed since they were applied: {}",
            list.join(", ")
        ),
        help: help.into(),
    }
}

/// How many statements of an interrupted part are already applied, after checking that they were not
/// changed since (a resumed migration must not skip a statement whose text is no longer what ran).
pub(super) fn check_resume(
    m: &Migration,
    dir: Direction,
    prepared: &PreparedPart,
    row: Option<&HistoryRow>,
) -> Result<usize> {
    let Some(row) = row else { return Ok(0) };
    // A repeatable runs whole every time, as Flyway runs it (its statements are written to be
    // rerun: CREATE OR REPLACE), so a failed one is rerun from the start once its file is fixed.
    if m.is_repeatable() {
        return Ok(0);
    }
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
                    m.part(dir).map(|p| sql::line_col(m.file_of(p).1, p.offset + s.offset).0).unwrap_or(0)
                ),
                help: "only the failed statement and those after it may change; restore the applied ones".into(),
            });
        }
    }
    Ok(done)
}

/// Applies one planned migration (`up` and `up --plan`): a breaking one through the two-phase
/// lifecycle (recorded as expanded, or applied with `--complete`), any other part by part.
pub(super) async fn apply_planned(
    engine: &mut dyn Engine,
    files: &[Migration],
    rows: &[HistoryRow],
    version: i64,
    opts: &UpOptions,
    ctx: &RunContext,
    report: &mut UpReport,
) -> Result<()> {
    let m = files
        .iter()
        .find(|m| m.version == version)
        .expect("planned from files");
    let row = rows.iter().find(|r| r.version == m.version);
    let run = crate::lifecycle::InRun { files, rows };
    if !opts.as_written
        && crate::lifecycle::up_hook(engine, m, row, run, opts.complete, ctx).await?
    {
        match opts.complete {
            true => report.applied.push(m.version),
            false => report.expanded.push(m.version),
        }
        return Ok(());
    }
    let run_tables = report
        .planned
        .iter()
        .find(|p| p.version == version)
        .map(|p| p.run_tables.clone())
        .unwrap_or_default();
    let expanded = run_part(
        engine,
        m,
        Direction::Up,
        row,
        !opts.as_written,
        &run_tables,
        ctx,
    )
    .await?;
    if expanded {
        if opts.complete {
            crate::lifecycle::complete_kept(engine, m, ctx).await?;
        } else {
            report.expanded.push(m.version);
            return Ok(());
        }
    }
    report.applied.push(m.version);
    Ok(())
}
