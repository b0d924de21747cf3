//! Running one step: in its own transaction or alone, bounded when it holds ACCESS EXCLUSIVE; undoing a failed staged form.

use super::*;

/// Which statement of which migration part: with the step's position, the key of an unnamed
/// index build's record (identical statements each keep their own).
pub(super) fn unnamed_slot(m: &Migration, dir: Direction, i: usize) -> String {
    format!("{} {dir:?} {i}", m.version)
}

/// How one step runs: whether it builds an index (an invalid leftover is dropped first), whether
/// it may have run already (resume), whether it is sluice's rewrite (server positions do not map
/// to the file) and its run-time bound.
pub(crate) struct StepOpts<'a> {
    /// Where the step stands (migration, direction, statement, step): see unnamed_slot.
    pub(crate) slot: String,
    pub(crate) builds_index: Option<&'a str>,
    /// An unnamed concurrent index build: its table and probe.
    pub(crate) unnamed: Option<(String, String)>,
    pub(crate) resuming: bool,
    pub(crate) rewritten: bool,
    pub(crate) bound: Option<Duration>,
    /// Runs in a transaction of its own (false: on its own, e.g. CONCURRENTLY).
    pub(crate) transactional: bool,
    /// Runs without a lock timeout (a concurrent build or drop: queries never queue behind it).
    pub(crate) never_queues_queries: bool,
    /// Where to put how long the attempt that succeeded waited for and held its locks: what a
    /// bounded step held its lock for, without the lock-timeout retries before it.
    pub(crate) held_us: Option<&'a Held>,
}

/// How long the attempt of a bounded step that succeeded waited for its explicit locks (its
/// leading `LOCK TABLE` statements; queries queue behind a waiting request too) and then held
/// them until COMMIT, in microseconds. A step without explicit locks counts it all as held.
#[derive(Default)]
pub(crate) struct Held {
    pub(crate) wait_us: std::sync::atomic::AtomicU64,
    pub(crate) held_us: std::sync::atomic::AtomicU64,
}

impl Held {
    /// Records an attempt that began at `attempt`, was granted its locks at `granted` (None: at
    /// once) and has just committed.
    pub(crate) fn record(&self, attempt: std::time::Instant, granted: Option<std::time::Instant>) {
        use std::sync::atomic::Ordering::Relaxed;
        let granted = granted.unwrap_or(attempt);
        self.wait_us
            .store((granted - attempt).as_micros() as u64, Relaxed);
        self.held_us
            .store(granted.elapsed().as_micros() as u64, Relaxed);
    }

    pub(crate) fn get(&self) -> (Duration, Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            Duration::from_micros(self.wait_us.load(Relaxed)),
            Duration::from_micros(self.held_us.load(Relaxed)),
        )
    }
}

/// Runs one step of a staged rewrite before its last: in a transaction of its own, or alone when it
/// cannot run in one (a concurrent index build, then without a lock timeout since it never makes
/// queries queue). On resume, "already exists" means an interrupted attempt ran it.
pub(crate) async fn run_step<'w>(
    engine: &mut dyn Engine,
    sql: &str,
    opts: StepOpts<'_>,
    written: impl Into<super::retry::Subject<'w>>,
    ctx: &RunContext,
) -> Result<std::result::Result<(), crate::engine::ServerError>> {
    let StepOpts {
        slot,
        builds_index,
        unnamed,
        resuming,
        rewritten,
        bound,
        transactional,
        never_queues_queries: no_timeout,
        held_us,
    } = opts;
    let own_tx = !transactional;
    let written = written.into();
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
        } else if let Some((table, probe)) = &unnamed {
            match engine
                .before_unnamed_index(&slot, table, probe, sql)
                .await?
            {
                crate::engine::UnnamedIndex::Build(dropped) => {
                    for index in dropped {
                        (ctx.say)(&format!("dropped the invalid index {index} an earlier attempt at this unnamed index left; building it again"));
                    }
                }
                crate::engine::UnnamedIndex::Built(index) => {
                    (ctx.say)(&format!("{index}: an earlier attempt built this unnamed index; not building it again"));
                    break Ok(());
                }
            }
        }
        let attempt = std::time::Instant::now();
        if !own_tx {
            engine.begin().await?;
        }
        let run = if held_us.is_some() {
            execute_bounded_timed(engine, sql, bound, ctx).await
        } else {
            execute_bounded(engine, sql, bound, ctx)
                .await
                .map(|()| None)
        };
        match run {
            Ok(granted) => {
                if !own_tx {
                    engine.commit().await?;
                }
                if let Some(h) = held_us {
                    h.record(attempt, granted);
                }
                if unnamed.is_some() {
                    crate::crash_point("unnamed-index-built");
                }
                // What before_unnamed_index recorded is forgotten by the caller once the
                // statement's progress is recorded (in run_part), not here: a kill in
                // between would leave neither, and the rerun would build the index a second time.
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
                if e.lock_timeout
                    && retry
                        .again_at(engine, written, Some(sql), ctx, &mut e)
                        .await
                {
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

/// Where a staged form's steps run and how each is keyed: `up`'s staged statements and the
/// lifecycle's expand phase both run their steps through `run_steps`.
pub(crate) struct StepsRun<'a, 'w> {
    /// The key of step `k` (see unnamed_slot): kept as each caller has always written it, since a
    /// resume finds what an interrupted attempt recorded under it.
    pub(crate) slot: &'a (dyn Fn(usize) -> String + Sync),
    /// The index the first step builds when it is SQL rather than an `Index` step.
    pub(crate) first_builds_index: Option<&'a str>,
    pub(crate) resuming: bool,
    /// What a lock-timeout retry names as waiting.
    pub(crate) written: super::retry::Subject<'w>,
    /// Called before step `k` runs (the lifecycle says what it does; tests kill the run there).
    pub(crate) before: &'a (dyn Fn(usize, &crate::plan::staged::About) + Sync),
}

/// Runs a staged form's steps in order, each as `About` says (SQL and index builds through
/// run_step, a backfill in its own checkpointed batches), and stops at the first that fails.
pub(crate) async fn run_steps(
    engine: &mut dyn Engine,
    steps: &[(&crate::plan::staged::Step, &crate::plan::staged::About)],
    run: StepsRun<'_, '_>,
    ctx: &RunContext,
) -> Result<std::result::Result<(), crate::engine::ServerError>> {
    use crate::plan::staged::Step;
    let held = Held::default();
    for (k, (step, about)) in steps.iter().enumerate() {
        (run.before)(k, about);
        let outcome = match step {
            Step::Sql(sql) | Step::Index { sql, .. } => {
                let index = match step {
                    Step::Index { index, .. } => Some(index.as_str()),
                    _ if k == 0 => run.first_builds_index,
                    _ => None,
                };
                let opts = StepOpts {
                    slot: (run.slot)(k),
                    builds_index: index,
                    unnamed: None,
                    resuming: run.resuming,
                    rewritten: true,
                    bound: about.bounded().then_some(ctx.exclusive_timeout),
                    transactional: about.transactional,
                    never_queues_queries: about.never_queues_queries(),
                    held_us: Some(&held),
                };
                let outcome = run_step(engine, sql, opts, run.written, ctx).await?;
                // A step that blocks every query on the table says how long it held the lock
                // (the attempt that succeeded, from BEGIN to COMMIT), so "short" is a number.
                if outcome.is_ok() && about.bounded() {
                    say_held(about, held.get(), engine.target().engine, ctx);
                }
                outcome
            }
            Step::Analyze { table, .. } => {
                let sql = step.text();
                let opts = StepOpts {
                    slot: (run.slot)(k),
                    builds_index: None,
                    unnamed: None,
                    resuming: run.resuming,
                    rewritten: true,
                    bound: None,
                    transactional: about.transactional,
                    never_queues_queries: about.never_queues_queries(),
                    held_us: None,
                };
                match run_step(engine, &sql, opts, run.written, ctx).await? {
                    // A lost connection is a cut-off run: the rerun resumes (and analyzes again,
                    // which is harmless).
                    Err(e) if e.connection_lost => Err(e),
                    // Statistics are an optimisation: the schema change itself is done, so a
                    // lock held past the retry budget (a VACUUM, another ANALYZE, an index
                    // build) or any other failure is said, never fails the migration.
                    Err(e) => {
                        (ctx.say)(&format!(
                            "warning: `{sql}` did not run: {}; the migration goes on, but the planner has no statistics on the backfilled column until autovacuum analyzes {table}: run `ANALYZE {table}` later",
                            e.message
                        ));
                        Ok(())
                    }
                    Ok(()) => Ok(()),
                }
            }
            Step::Backfill {
                table,
                set,
                filter,
                as_update,
            } => {
                let spec = crate::engine::BackfillSpec {
                    table: table.clone(),
                    set: set.clone(),
                    filter: filter.clone(),
                    batch_rows: None,
                    target_batch: ctx.pacing.target_batch,
                    pause: Duration::ZERO,
                    progress: ctx.progress.clone(),
                    pacing: ctx.pacing.clone(),
                    stands_for_ddl: !as_update,
                    online: ctx.online_options(),
                };
                engine
                    .backfill(&spec, &*ctx.say)
                    .await
                    .map(|_| ())
                    .map_err(|e| crate::engine::ServerError {
                        code: String::new(),
                        message: format!("backfill: {e}"),
                        position: None,
                        connection_lost: false,
                        lock_timeout: false,
                        grant: String::new(),
                    })
            }
        };
        if outcome.is_err() {
            return Ok(outcome);
        }
        // Test hook: a step of a referencing column's staged change (issue 13 point 2) done,
        // the parent's not begun (`child-step-done@<n>`: after the n-th such step).
        if about.label.is_some() {
            crate::crash_point("child-step-done");
        }
    }
    Ok(Ok(()))
}

/// Says how long a step that blocks every query on its table held its lock (the attempt that
/// succeeded, from the grant of its explicit locks — or its BEGIN — to COMMIT), and how long it
/// waited for those locks first (queries queue behind a waiting request as behind a granted one),
/// so "one short step" is a number the user sees.
pub(crate) fn say_held(
    about: &crate::plan::staged::About,
    (wait, held): (Duration, Duration),
    kind: crate::target::EngineKind,
    ctx: &RunContext,
) {
    // The description up to its first ':' or ',' outside parentheses (a parenthesised aside
    // such as "(no scan: ...)" would be cut open).
    let mut depth = 0usize;
    let end = about
        .description
        .char_indices()
        .find(|&(_, ch)| {
            match ch {
                '(' => depth += 1,
                ')' => depth = depth.saturating_sub(1),
                _ => {}
            }
            depth == 0 && (ch == ':' || ch == ',')
        })
        .map_or(about.description.len(), |(i, _)| i);
    let what = about.description[..end].trim_end();
    let waited = if wait.is_zero() {
        String::new()
    } else {
        format!(
            ", after waiting {:.1} ms for the locks",
            wait.as_secs_f64() * 1000.0
        )
    };
    (ctx.say)(&format!(
        "{}{what}: held {} for {:.1} ms{waited}",
        about
            .label
            .as_deref()
            .map(|l| format!("{}: ", l.trim_end_matches(':')))
            .unwrap_or_default(),
        // MariaDB/MySQL take no PostgreSQL lock modes: their exclusive steps hold the table's
        // write lock (`LOCK TABLES … WRITE` or the DDL's exclusive metadata lock).
        match (kind, about.lock) {
            (
                crate::target::EngineKind::MariaDb | crate::target::EngineKind::MySql,
                crate::plan::staged::Lock::AccessExclusive | crate::plan::staged::Lock::Exclusive,
            ) => "the table's write lock",
            (crate::target::EngineKind::MariaDb | crate::target::EngineKind::MySql, _) => {
                "its lock"
            }
            _ => about.lock.name(),
        },
        held.as_secs_f64() * 1000.0
    ));
}

/// [`execute_bounded`] for a step that takes its locks explicitly first (`LOCK TABLE …`, in the
/// order that keeps clients from losing a deadlock): those statements run apart from the rest, so
/// the moment the locks are granted is known. Returns it; None when the step has no such prefix.
pub(crate) async fn execute_bounded_timed(
    engine: &mut dyn Engine,
    sql: &str,
    bound: Option<Duration>,
    ctx: &RunContext,
) -> std::result::Result<Option<std::time::Instant>, crate::engine::ServerError> {
    let kind = engine.target().engine;
    // PostgreSQL only: a MariaDB/MySQL step's `LOCK TABLES` is timed by the online copy itself.
    match lock_prefix(kind, sql).filter(|_| kind == crate::target::EngineKind::Postgres) {
        Some(at) => execute_parts(engine, &[&sql[..at], &sql[at..]], bound, ctx).await,
        None => execute_bounded(engine, sql, bound, ctx)
            .await
            .map(|()| None),
    }
}

/// Where the statements after a step's last `LOCK` statement begin (None: no `LOCK` statement, or
/// nothing after it).
fn lock_prefix(kind: crate::target::EngineKind, sql: &str) -> Option<usize> {
    let stmts = crate::sql::split(kind, sql).ok()?;
    let last = stmts
        .iter()
        .rposition(|s| s.keywords.first().is_some_and(|k| k == "LOCK"))?;
    stmts.get(last + 1).map(|s| s.offset)
}

/// After a step of a staged statement failed: removes what its earlier steps created (helper checks,
/// the NOT VALID constraint, the index it built), so the failed statement leaves nothing behind, as
/// it would have as written; the message says so, or says what is left for the rerun.
pub(super) async fn undo_staged(
    engine: &mut dyn Engine,
    r: &crate::plan::staged::Rewrite,
    mut e: crate::engine::ServerError,
    ctx: &RunContext,
) -> crate::engine::ServerError {
    if e.connection_lost || r.undo.is_empty() {
        return e;
    }
    let _ = engine.rollback().await;
    let mut left = Vec::new();
    let type_change = r.answers.contains(&"alter-column-type");
    if type_change {
        // A staged type change's helpers go all together or not at all, every lock wait short:
        // one by one, a lock timeout could drop the sync trigger and leave the shadow column, which
        // nothing can then tell from a column of the user's; and a wait for one table while the
        // drops hold another could make a client the victim of a deadlock.
        let all = async {
            engine.begin().await.map_err(|e| e.to_string())?;
            engine
                .execute(crate::plan::alter_column_type::SHORT_SECOND_WAIT)
                .await
                .map_err(|e| e.message)?;
            for sql in &r.undo {
                engine
                    .execute(sql)
                    .await
                    .map_err(|e| format!("`{sql}` failed: {}", e.message))?;
            }
            engine.commit().await.map_err(|e| e.to_string())
        };
        if let Err(x) = all.await {
            let _ = engine.rollback().await;
            left.push(format!("none of it was removed ({x})"));
        }
    } else {
        for sql in &r.undo {
            if let Err(x) = engine.execute(sql).await {
                left.push(format!("`{sql}` failed: {}", x.message));
            }
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
        // A staged type change's rerun refuses a shadow column it did not make in this run
        // (it may be the user's): its helpers go with `sluice rollback`.
        let next = if type_change {
            "`sluice rollback` removes them (the migration is then pending)"
        } else {
            "`sluice up` resumes with it"
        };
        format!(
            "{} (sluice's staged form could not remove all it had created: {}; {next})",
            e.message,
            left.join("; ")
        )
    };
    e
}

/// Runs a statement; with a bound, the server cancels it when it runs longer (it holds ACCESS
/// EXCLUSIVE, so every query on the table waits for as long as it runs).
pub(crate) async fn execute_bounded(
    engine: &mut dyn Engine,
    sql: &str,
    bound: Option<Duration>,
    ctx: &RunContext,
) -> std::result::Result<(), crate::engine::ServerError> {
    execute_parts(engine, &[sql], bound, ctx).await.map(|_| ())
}

async fn run_parts(
    engine: &mut dyn Engine,
    parts: &[&str],
    ctx: &RunContext,
) -> std::result::Result<Option<std::time::Instant>, crate::engine::ServerError> {
    let mut first = None;
    for (i, part) in parts.iter().enumerate() {
        engine
            .execute_watched(part, ctx.progress.as_ref(), &*ctx.say)
            .await?;
        if i == 0 && parts.len() > 1 {
            first = Some(std::time::Instant::now());
        }
    }
    Ok(first)
}

/// Runs `parts` in order under one statement timeout (`bound`); returns when the first of two
/// parts finished.
async fn execute_parts(
    engine: &mut dyn Engine,
    parts: &[&str],
    bound: Option<Duration>,
    ctx: &RunContext,
) -> std::result::Result<Option<std::time::Instant>, crate::engine::ServerError> {
    let Some(limit) = bound.filter(|d| !d.is_zero()) else {
        return run_parts(engine, parts, ctx).await;
    };
    engine.set_statement_timeout(limit).await?;
    let outcome = run_parts(engine, parts, ctx).await;
    // After a failure the transaction is aborted and its rollback undoes the SET; this reset is
    // for statements that ran outside a transaction.
    let reset = engine.set_statement_timeout(Duration::ZERO).await;
    match outcome {
        Ok(first) => reset.map(|()| first),
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
