//! `sluice plan`, and reviewed plans (`plan --out`, `up --plan`).

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct MigrationPlan {
    pub version: i64,
    /// The version as its file names it (`R` / `R_` for a repeatable: see `layout`).
    pub version_text: String,
    pub name: String,
    pub mode: TxMode,
    pub statements: Vec<crate::plan::StatementPlan>,
    pub findings: Vec<crate::analysis::Finding>,
    /// A breaking migration (two application versions live): both phases and what each version sees.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lifecycle: Option<crate::plan::expand::LifecyclePlan>,
}

#[derive(Debug, Clone, Serialize)]
pub struct PlanReport {
    pub target: String,
    pub database: String,
    /// Sizes of the tables the pending migrations touch.
    pub tables: BTreeMap<String, crate::analysis::TableStats>,
    pub migrations: Vec<MigrationPlan>,
    /// What the migrations mean for logical replication (PostgreSQL publications): the order to run
    /// them in across the publisher and its subscribers.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub replication: Vec<String>,
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
    let stats = engine.table_stats().await?;
    let live = live_tables(engine).await?;
    let planned = plan_up(engine, files, &rows, opts, live)?;
    let replication = super::up::replication_check(engine, files, &planned, opts).await?;
    // As `up` judges timestamp ↔ timestamptz: with the session TimeZone its statements run under.
    let session_utc = engine
        .session_time_zone()
        .await?
        .is_some_and(|z| crate::session::is_utc_zone(&z));
    let live = engine.introspect().await?;
    let mut column_types = crate::analysis::ColumnTypes::new();
    for (tname, t) in &live.tables {
        let short = tname.rsplit('.').next().unwrap_or(tname);
        for c in &t.columns {
            column_types.insert(short, &c.name, &c.data_type);
        }
    }
    // The planned migrations are one run: a table one of them creates is new for the later ones,
    // for lint's rules as for the steps (one linter over the run, in order).
    let lint_opts = crate::lint::LintOptions {
        staged: !opts.as_written,
        include_down: false,
        stats: Some(stats.clone()),
        live_columns: column_types.clone(),
        applied: Some(
            rows.iter()
                .filter(|r| !planned.iter().any(|p| p.version == r.version))
                .map(|r| r.version)
                .collect(),
        ),
    };
    let mut linter = crate::lint::Linter::new(target, lint_opts);
    // What `up` would refuse because a breaking change is open on the table (expanded, or earlier
    // in this run): `plan` reviews the whole history, so it says so as a finding and goes on.
    let conflicts = match opts.as_written {
        true => vec![],
        false => {
            let versions: Vec<i64> = planned.iter().map(|p| p.version).collect();
            let kept = super::type_change::kept_type_changes(
                engine,
                files,
                &planned,
                opts.as_written_below_rows,
            )
            .await?;
            let children = crate::runner::lifecycle::open_children(engine, files, &rows).await?;
            crate::lifecycle::open_table_conflicts(
                target,
                files,
                &versions,
                &rows,
                opts.complete,
                &kept,
                &children,
            )
        }
    };
    let mut report = PlanReport {
        target: target.to_string(),
        database: engine.url(),
        tables: BTreeMap::new(),
        migrations: vec![],
        replication,
    };
    for p in &planned {
        let m = files
            .iter()
            .find(|m| m.version == p.version)
            .expect("planned from files");
        let mut findings = linter.lint_migration(m);
        let (stmts, lint_mode, _) = crate::analysis::build_part(target, m, Direction::Up);
        // The mode `up` will run the part in (its staged forms may need per-statement), and the
        // staged form of each statement: the plan shows the steps `up` runs, from one function.
        let mut prepared =
            prepare_in(engine, m, Direction::Up, !opts.as_written, &p.run_tables).ok();
        let off = if opts.as_written {
            Some("--as-written runs every statement as written")
        } else if m.up.tx_directive == Some(TxMode::Single) {
            Some("`-- sluice:transaction single` keeps every statement as written (the staged forms cannot run in one transaction)")
        } else {
            None
        };
        // Rewriting type changes: staged from the live catalog, small-table notes, refusals.
        let changes = match prepared.as_mut().filter(|_| off.is_none()) {
            Some(prep) => {
                let below = opts.as_written_below_rows;
                stage_type_changes(
                    engine,
                    m,
                    Direction::Up,
                    prep,
                    p.resume_from,
                    below,
                    &p.run_tables,
                )
                .await
                .unwrap_or_default()
            }
            None => vec![],
        };
        // A type change `up` stages from the live catalog is not the rewrite lint judged as
        // written: the plan and its exit status say what `up` will do.
        for (i, change) in &changes {
            if !matches!(change, TypeChange::Staged(_)) {
                continue;
            }
            let answers = prepared
                .as_ref()
                .and_then(|p| p.rewrites.get(*i))
                .and_then(Option::as_ref)
                .map_or(&[][..], |r| r.answers);
            for f in findings
                .iter_mut()
                .filter(|f| f.statement == *i && answers.contains(&f.rule))
            {
                f.severity = crate::analysis::Severity::Info;
                f.message = format!(
                    "{} (as written; `sluice up` runs it staged instead: a shadow column kept in sync by a trigger, a paced backfill, indexes and constraints rebuilt concurrently, one short swap)",
                    f.message
                );
            }
        }
        // A staged backfill whose batches will fire the table's own triggers (the role may not
        // turn them off for its session): `up` says so before the first batch, the plan first,
        // unless a `-- sluice:ignore` on the statement says why that is fine.
        let ignores = crate::lint::part_ignores(m, &m.up, &stmts);
        let mut used = vec![false; ignores.len()];
        if let Some(prep) = prepared.as_ref().filter(|_| off.is_none()) {
            for (i, r) in prep.rewrites.iter().enumerate().skip(p.resume_from) {
                let Some(st) = stmts.get(i) else { continue };
                let mut seen = Vec::new();
                for step in r.iter().flat_map(|r| &r.then) {
                    let crate::plan::staged::Step::Backfill { table, .. } = step else {
                        continue;
                    };
                    if seen.contains(table) {
                        continue;
                    }
                    seen.push(table.clone());
                    if let Some(w) = engine.backfill_trigger_warning(table).await? {
                        let rule = "backfill-fires-triggers";
                        if let Some(k) = ignores
                            .iter()
                            .position(|(ig, on)| ig.rule == rule && *on == Some(i))
                        {
                            used[k] = true;
                            continue;
                        }
                        findings.push(crate::analysis::finding(
                            m,
                            &m.up,
                            st,
                            rule,
                            crate::analysis::Severity::Warning,
                            w.strip_prefix("warning: ").unwrap_or(&w).to_string(),
                            "a staged backfill updates every row, which fires the table's UPDATE triggers where the statement as written fires none",
                            "run sluice as a role that may set session_replication_role, or the statement with `sluice up --as-written` in a maintenance window".into(),
                        ));
                    }
                }
            }
        }
        let mode = prepared.as_ref().map(|p| p.mode).unwrap_or(lint_mode);
        let mut statements = Vec::new();
        // Constraints added in one phase to a live table: the old version's writes that break
        // them fail from then on (issue 14: said, never silent).
        let mut added: Vec<(usize, String)> = Vec::new();
        let mut nullability = ColumnStates::new(&live);
        crate::analysis::walk_part_in(
            target,
            &stmts,
            lint_mode,
            Some(&stats),
            &mut column_types,
            session_utc,
            &p.run_tables,
            |i, st, ctx| {
                if i >= p.resume_from {
                    let staged = match off {
                        Some(why) => crate::plan::Staged::Off(why),
                        None => crate::plan::Staged::Rewrite(
                            prepared
                                .as_ref()
                                .and_then(|p| p.rewrites.get(i))
                                .and_then(Option::as_ref),
                        ),
                    };
                    statements.push(crate::plan::plan_statement(st, ctx, staged));
                    if !opts.as_written {
                        added.extend(
                            added_constraints(st, ctx, &mut nullability)
                                .into_iter()
                                .map(|t| (i, t)),
                        );
                    }
                }
            },
        );
        // A view or policy statement a staged type change runs inside its swap: said on it.
        for sp in statements.iter_mut() {
            let note = match prepared.as_ref().and_then(|p| p.brackets.get(sp.index)) {
                Some(Bracket::InSwap { after: false }) => crate::plan::prepare::IN_SWAP_BEFORE,
                Some(Bracket::InSwap { after: true }) => crate::plan::prepare::IN_SWAP_AFTER,
                _ => continue,
            };
            for a in sp.actions.iter_mut() {
                a.impact.note = note.to_string();
            }
        }
        // A rewriting type change on a small live table runs as written, one sluice cannot stage
        // is refused: the plan says so.
        let mut kept = None;
        for (i, change) in changes {
            let why = match change {
                TypeChange::Small(note) => format!("`sluice up` {note}"),
                TypeChange::Refused { why, .. } => {
                    format!("`sluice up` refuses it: sluice cannot stage it: {why}")
                }
                TypeChange::Staged(lp) => {
                    kept = kept.or(lp);
                    continue;
                }
            };
            for sp in statements.iter_mut().filter(|sp| sp.index == i) {
                for a in sp.actions.iter_mut().filter(|a| a.refused.is_some()) {
                    a.refused = Some(why.clone());
                }
            }
        }
        if target.engine != crate::target::EngineKind::Postgres {
            for sp in statements.iter_mut() {
                // The as-written line comes from the prediction the online path makes (one
                // source): the server runs the whole ALTER with one algorithm and lock level.
                if let Some((table, imp)) = engine.as_written_impact(&sp.sql).await? {
                    // A clause the statement IR does not model still gets its line.
                    if sp.actions.is_empty() {
                        sp.actions.push(crate::plan::ActionPlan {
                            table: Some(table),
                            impact: imp.clone(),
                            estimate_secs: None,
                            safe_steps: vec![],
                            refused: None,
                        });
                    }
                    for a in sp.actions.iter_mut() {
                        let s = a.table.as_ref().and_then(|t| {
                            let short = t.rsplit('.').next().unwrap_or(t);
                            stats.get(t).or_else(|| stats.get(short)).copied()
                        });
                        a.estimate_secs = crate::plan::estimate(imp.effect, s);
                        a.impact = imp.clone();
                        if sp.new_in_run {
                            a.estimate_secs = None;
                            a.impact.note = crate::plan::NEW_IN_RUN.to_string();
                        }
                    }
                }
                // A statement on tables the run creates earlier runs as written, not online (and
                // the server has no such table yet to predict anything from).
                if !opts.as_written && !sp.new_in_run {
                    sp.online = engine
                        .explain_online(&sp.sql, opts.as_written_below_rows)
                        .await?;
                }
            }
        }
        for sp in &statements {
            for a in &sp.actions {
                if let Some(t) = &a.table {
                    let short = t.rsplit('.').next().unwrap_or(t);
                    if let Some(s) = stats.get(t).or_else(|| stats.get(short)).or_else(|| {
                        crate::analysis::stats_in_any_case(target.engine, &stats, short)
                    }) {
                        report.tables.insert(t.clone(), *s);
                    }
                }
            }
        }
        let lifecycle = match off {
            None => {
                let run = crate::lifecycle::InRun { files, rows: &rows };
                crate::lifecycle::plan_hook(engine, m, run, &mut statements, &mut findings).await
            }
            Some(_) => None,
        };
        // A type change whose swap keeps the old column: its complete and rollback.
        let kept_type_change = lifecycle.is_none() && kept.is_some();
        let lifecycle = lifecycle.or(kept.map(|lp| *lp));
        // What the old version sees that the new version did not write: a finding each (a
        // lossy cast warns; a dropped column's value and a constraint's failing writes are
        // notes), suppressed by `-- sluice:ignore old-version-sees` as a rule's.
        let mut sees: Vec<(usize, crate::analysis::Severity, String, &str)> = Vec::new();
        if let Some(lp) = &lifecycle {
            if let Ok(Some((_, st, b))) = crate::lifecycle::lifecycle_change(target, m) {
                // A fill's trigger keeps the old version's writes from failing: its NOT NULL
                // is stated by the lifecycle instead.
                if let crate::plan::expand::Breaking::FillNotNull { .. } = b {
                    added.retain(|(i, _)| *i != st.index);
                }
                let (severity, help) = match kept_type_change {
                    true => (
                        crate::analysis::Severity::Warning,
                        "deploy the new version everywhere before it writes values the old type cannot take, and `sluice complete` once it runs everywhere; if the old version must keep every value, change the type in a way that keeps them (a wider type)",
                    ),
                    false => (
                        crate::analysis::Severity::Info,
                        "if the old version must not read that value, deploy the new version everywhere before it inserts rows, or give the column the default the old version should read in a migration before this one",
                    ),
                };
                sees.extend(
                    lp.old_version
                        .iter()
                        .map(|t| (st.index, severity, t.clone(), help)),
                );
            }
        }
        sees.extend(added.into_iter().map(|(i, t)| {
            (
                i,
                crate::analysis::Severity::Info,
                t,
                "deploy application code that never writes such rows before this migration runs",
            )
        }));
        for (i, severity, message, help) in sees {
            let rule = crate::plan::old_version::RULE;
            if let Some(k) = ignores
                .iter()
                .position(|(ig, on)| ig.rule == rule && *on == Some(i))
            {
                used[k] = true;
                continue;
            }
            let Some(st) = stmts.get(i) else { continue };
            findings.push(crate::analysis::finding(
                m,
                &m.up,
                st,
                rule,
                severity,
                message,
                crate::plan::old_version::WHY,
                help.to_string(),
            ));
        }
        // Lint leaves these ignores to the plan, which knows whether they matched.
        for (k, (ig, on)) in ignores.iter().enumerate() {
            let plan_only = crate::rules::PLAN_FINDINGS.contains(&ig.rule.as_str());
            if plan_only && !used[k] && on.is_none_or(|i| i >= p.resume_from) {
                findings.push(crate::lint::unused_ignore(m, ig, on.unwrap_or(0)));
            }
        }
        for (_, e) in conflicts.iter().filter(|(v, _)| *v == m.version) {
            if let Some(f) = open_table_finding(target, m, e) {
                findings.push(f);
            }
        }
        report.migrations.push(MigrationPlan {
            version: m.version,
            version_text: m.version_text.clone(),
            name: m.name.clone(),
            mode,
            statements,
            findings,
            lifecycle,
        });
    }
    Ok(report)
}

/// The finding `plan` shows for a migration `up` refuses because a breaking change is open on its
/// table: an error (the run stops there), on the breaking statement, with `up`'s own words.
fn open_table_finding(
    target: crate::target::Target,
    m: &Migration,
    e: &Error,
) -> Option<crate::analysis::Finding> {
    let part = m.part(Direction::Up)?;
    // A migration that is not breaking itself (a CREATE TABLE of a name whose drop is open): its
    // first statement carries the finding.
    let st = match crate::lifecycle::lifecycle_change(target, m).ok().flatten() {
        Some((_, st, _)) => st,
        None => crate::analysis::build_part(target, m, Direction::Up)
            .0
            .into_iter()
            .next()?,
    };
    let (message, help) = match e {
        Error::Lifecycle { message, help } => (message.clone(), help.clone()),
        other => (other.to_string(), String::new()),
    };
    Some(crate::analysis::finding(
        m,
        part,
        &st,
        "breaking-change-on-open-table",
        crate::analysis::Severity::Error,
        format!("`sluice up` refuses this migration (exit 11): {message}. Fix: {help}"),
        "two application versions run while a breaking change is open on a table; a second one on the same table would need a third version nobody deployed",
        help,
    ))
}

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
pub(super) async fn capture_plan(
    engine: &mut dyn Engine,
    files: &[Migration],
    rows: &[HistoryRow],
    opts: &UpOptions,
    database: &str,
) -> Result<(crate::planfile::PlanFile, Option<Error>)> {
    use crate::planfile::{PlanFile, PlanHistory, PlanMigration, PlanOptions};
    let target = engine.target();
    let schema = engine.introspect().await?;
    let live = live_tables(engine).await?;
    let (migrations, refused) = match plan_up(engine, files, rows, opts, live) {
        Ok(mut planned) => {
            if !opts.as_written {
                explain_online(engine, &mut planned, opts.as_written_below_rows).await?;
                explain_type_changes(
                    engine,
                    files,
                    &mut planned,
                    opts.as_written_below_rows,
                    false,
                )
                .await?;
                // Refusals are reported as `plan` reports them, not by stopping here.
                let _ = crate::lifecycle::explain_dry_run(engine, files, &mut planned).await;
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
    let mut opts = plan.options.up_options(dry_run);
    // Not part of the reviewed options: a table that grew past it since shows as a difference.
    opts.as_written_below_rows = ctx.online.as_written_below_rows;
    opts.subscriber_urls = ctx.subscriber_urls.clone();
    if dry_run {
        let checked = check_plan(engine, files, plan, path, database, &opts).await?;
        // A reviewed plan is no licence to stop replication: the same checks as `up`'s.
        if let PlanRun::Ran(report) = &checked {
            for w in super::up::replication_check(engine, files, &report.planned, &opts).await? {
                (ctx.say)(&format!("warning: {w}"));
            }
        }
        return Ok(checked);
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
        super::up::check_lifecycle(engine, files, &report.planned, &rows, &opts).await?;
        for w in super::up::replication_check(engine, files, &report.planned, &opts).await? {
            (ctx.say)(&format!("warning: {w}"));
        }
        let versions: Vec<i64> = report.planned.iter().map(|p| p.version).collect();
        for version in versions {
            super::up::apply_planned(engine, files, &rows, version, &opts, ctx, &mut report)
                .await?;
        }
        Ok(PlanRun::Ran(report))
    })
}

pub(super) async fn check_plan(
    engine: &mut dyn Engine,
    files: &[Migration],
    plan: &crate::planfile::PlanFile,
    path: &Path,
    database: &str,
    opts: &UpOptions,
) -> Result<PlanRun> {
    let rows = engine.history().await?;
    if crate::planfile::already_applied(plan, &rows) {
        let live = live_tables(engine).await?;
        let others_pending = plan_up(engine, files, &rows, opts, live)
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
        let live = live_tables(engine).await?;
        let mut planned = plan_up(engine, files, &rows, opts, live)?;
        if !opts.as_written {
            explain_online(engine, &mut planned, opts.as_written_below_rows).await?;
            explain_type_changes(
                engine,
                files,
                &mut planned,
                opts.as_written_below_rows,
                false,
            )
            .await?;
            // Refusals are reported as `plan` reports them, not by stopping here.
            let _ = crate::lifecycle::explain_dry_run(engine, files, &mut planned).await;
        }
        planned
    };
    Ok(PlanRun::Ran(UpReport {
        planned,
        ..Default::default()
    }))
}

/// Whether a column of a live table takes NULL and whether an INSERT that leaves it out gets a
/// value: as the server holds it before the run, then as the run's statements leave it (so a
/// second statement on the same column is judged against the first's result).
struct ColumnStates<'a> {
    live: &'a crate::schema::Schema,
    changed: std::collections::HashMap<(String, String), ColumnState>,
}

#[derive(Debug, Clone, Copy)]
struct ColumnState {
    nullable: bool,
    /// A default, an auto-increment or a generation: an INSERT that leaves the column out is served.
    filled: bool,
}

impl<'a> ColumnStates<'a> {
    fn new(live: &'a crate::schema::Schema) -> Self {
        Self {
            live,
            changed: std::collections::HashMap::new(),
        }
    }

    fn key(t: &crate::analysis::ir::QName, column: &str) -> (String, String) {
        (t.display(), column.to_string())
    }

    fn get(&self, t: &crate::analysis::ir::QName, column: &str) -> Option<ColumnState> {
        if let Some(s) = self.changed.get(&Self::key(t, column)) {
            return Some(*s);
        }
        let (_, table) = self.live.tables.iter().find(|(k, _)| {
            let (schema, name) = match k.rsplit_once('.') {
                Some((s, n)) => (Some(s), n),
                None => (None, k.as_str()),
            };
            name == t.name
                && match (schema, t.schema.as_deref()) {
                    (Some(a), Some(b)) => a == b,
                    // An unqualified PostgreSQL name: the default search path's schema.
                    (Some(a), None) => a == "public",
                    _ => true,
                }
        })?;
        let c = table.columns.iter().find(|c| c.name == column)?;
        let extra = c.extra.as_deref().unwrap_or("").to_ascii_lowercase();
        Some(ColumnState {
            nullable: c.nullable,
            filled: c
                .default
                .as_deref()
                .is_some_and(|d| !d.eq_ignore_ascii_case("null"))
                || extra.contains("auto_increment")
                || extra.contains("identity")
                || extra.contains("generated")
                || extra.contains("nextval"),
        })
    }

    fn set(&mut self, t: &crate::analysis::ir::QName, column: &str, state: ColumnState) {
        self.changed.insert(Self::key(t, column), state);
    }
}

/// The constraints `st` adds to a table that exists before the run (NOT NULL, UNIQUE, PRIMARY
/// KEY, CHECK, FOREIGN KEY, a unique index), and the defaults it takes from NOT NULL columns,
/// each stated as what the old version's writes meet. A MariaDB/MySQL `MODIFY`/`CHANGE` restates
/// the whole column, so whether it adds NOT NULL or drops a default is read against the live
/// column (`states`).
fn added_constraints(
    st: &crate::analysis::ir::Stmt,
    ctx: &crate::analysis::Ctx,
    states: &mut ColumnStates<'_>,
) -> Vec<String> {
    use crate::analysis::ir::{Action, ConstraintKind};
    use crate::plan::old_version::{added_constraint, Added};
    let live = |t: &crate::analysis::ir::QName| !ctx.is_new_table(t) && !ctx.is_run_table(t);
    let mut out = Vec::new();
    for a in st.actions() {
        let text = match a {
            Action::SetNotNull { table, column } if live(table) => {
                let before = states.get(table, column);
                if let Some(b) = before {
                    states.set(
                        table,
                        column,
                        ColumnState {
                            nullable: false,
                            ..b
                        },
                    );
                }
                if before.is_some_and(|b| !b.nullable) {
                    continue;
                }
                added_constraint(Added::NotNull {
                    table: &table.display(),
                    column,
                    mysql: ctx.target.engine.is_mysql_family(),
                })
            }
            Action::DropNotNull { table, column } => {
                if let Some(b) = states.get(table, column) {
                    states.set(
                        table,
                        column,
                        ColumnState {
                            nullable: true,
                            ..b
                        },
                    );
                }
                continue;
            }
            Action::SetDefault { table, column, .. } => {
                if let Some(b) = states.get(table, column) {
                    states.set(table, column, ColumnState { filled: true, ..b });
                }
                continue;
            }
            Action::DropDefault { table, column } if live(table) => {
                let Some(b) = states.get(table, column) else {
                    continue;
                };
                states.set(table, column, ColumnState { filled: false, ..b });
                if b.nullable || !b.filled {
                    continue;
                }
                added_constraint(Added::DefaultDropped {
                    table: &table.display(),
                    column,
                    mysql: ctx.target.engine.is_mysql_family(),
                })
            }
            Action::AddColumn { table, column, .. }
                if live(table) && ctx.target.engine.is_mysql_family() =>
            {
                let c = column;
                let filled = c.default.is_some()
                    || c.auto_increment
                    || c.generated_stored
                    || c.generated_virtual
                    || c.identity
                    || c.serial;
                if !(c.not_null || c.primary_key) || filled {
                    continue;
                }
                added_constraint(Added::Required {
                    table: &table.display(),
                    column: &c.name,
                })
            }
            // A MariaDB/MySQL MODIFY/CHANGE: the column as restated against the column as it was.
            Action::AlterColumnType {
                table,
                column,
                spec: Some(spec),
                ..
            } if live(table) => {
                let Some(b) = states.get(table, column) else {
                    continue;
                };
                let after = ColumnState {
                    nullable: !spec.not_null && !spec.primary_key,
                    filled: spec
                        .default
                        .as_ref()
                        .is_some_and(|d| !d.text.eq_ignore_ascii_case("null"))
                        || spec.auto_increment
                        || spec.generated_stored
                        || spec.generated_virtual,
                };
                states.set(table, &spec.name, after);
                if after.nullable {
                    continue;
                }
                if b.nullable {
                    added_constraint(Added::NotNull {
                        table: &table.display(),
                        column: &spec.name,
                        mysql: true,
                    })
                } else if b.filled && !after.filled {
                    added_constraint(Added::DefaultDropped {
                        table: &table.display(),
                        column: &spec.name,
                        mysql: true,
                    })
                } else {
                    continue;
                }
            }
            Action::AddConstraint { table, constraint } if live(table) => match constraint.kind {
                ConstraintKind::Unique | ConstraintKind::PrimaryKey => {
                    added_constraint(Added::Unique {
                        table: &table.display(),
                        columns: &constraint.columns,
                    })
                }
                ConstraintKind::ForeignKey => added_constraint(Added::ForeignKey {
                    table: &table.display(),
                    columns: &constraint.columns,
                    references: &constraint
                        .references
                        .as_ref()
                        .map(|r| r.display())
                        .unwrap_or_else(|| "the referenced table".into()),
                }),
                ConstraintKind::Check => added_constraint(Added::Check {
                    table: &table.display(),
                    name: constraint.name.as_deref(),
                }),
                _ => continue,
            },
            Action::CreateIndex {
                table,
                unique: true,
                columns,
                ..
            } if live(table) => added_constraint(Added::Unique {
                table: &table.display(),
                columns,
            }),
            _ => continue,
        };
        out.push(text);
    }
    out
}
