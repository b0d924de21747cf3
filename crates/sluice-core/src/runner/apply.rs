//! Applying one part, statement by statement or in one transaction, recording progress.

use super::*;

/// Applies (up) or reverts (down) one migration, recording progress. True when it left the
/// migration expanded (a staged type change that kept its old column until `sluice complete`).
pub(super) async fn run_part(
    engine: &mut dyn Engine,
    m: &Migration,
    dir: Direction,
    existing: Option<&HistoryRow>,
    safe: bool,
    run_tables: &[crate::analysis::ir::QName],
    ctx: &RunContext,
) -> Result<bool> {
    let mut prepared = prepare_in(engine, m, dir, safe, run_tables)?;
    let resume_from = check_resume(m, dir, &prepared, existing)?;
    if safe {
        let below = ctx.online.as_written_below_rows;
        for (i, change) in stage_type_changes(
            engine,
            m,
            dir,
            &mut prepared,
            resume_from,
            below,
            run_tables,
        )
        .await?
        {
            match change {
                TypeChange::Small(note) => (ctx.say)(&format!(
                    "`{}`: {note}",
                    first_line(&prepared.statements[i].sql)
                )),
                TypeChange::Staged(_) => {}
                TypeChange::Refused { error, .. } => return Err(error),
            }
        }
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
    if prepared.statements.is_empty() {
        (ctx.say)(&format!(
            "{verb} {} (no SQL: recorded, nothing runs)",
            m.label()
        ));
    } else {
        (ctx.say)(&format!(
            "{verb} {} ({}, {} statement(s){resume_note})",
            m.label(),
            prepared.mode.name(),
            prepared.statements.len()
        ));
    }
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
    engine.set_lock_timeout(ctx.lock_timeout).await?;

    match prepared.mode {
        TxMode::Single => {
            let mut retry = LockRetry::new();
            loop {
                engine.begin().await?;
                let mut failed = None;
                // A part resumed in one transaction after an earlier run committed some of its
                // statements (a staged step commits on its own: a type change whose swap
                // committed before the record) runs only the rest: run again, `USING v * 1.5`
                // would multiply twice.
                for (i, (w, r)) in prepared
                    .written
                    .iter()
                    .zip(&prepared.rewrites)
                    .enumerate()
                    .skip(resume_from)
                {
                    let bound = prepared.exclusive[i].then_some(ctx.exclusive_timeout);
                    let exec = r.as_ref().map_or(&w.sql, |r| &r.sql);
                    if let Err(e) = execute_bounded(engine, exec, bound, ctx).await {
                        failed = Some((i, e));
                        break;
                    }
                }
                let Some((i, mut e)) = failed else { break };
                let (s, w) = (&prepared.statements[i], &prepared.written[i]);
                let _ = engine.rollback().await;
                // A lock timeout rolled the whole migration back: wait and run it again.
                if e.lock_timeout && retry.again(engine, w, ctx, &mut e).await {
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
            // A run killed between recording a statement's progress and forgetting its unnamed
            // index build left the record: that statement is done, forget it now (a later
            // identical statement must not take its index for its own).
            for i in 0..resume_from.min(prepared.statements.len()) {
                let unnamed = match prepared.rewrites[i].as_ref() {
                    Some(r) => r.unnamed_index.clone(),
                    None => prepared.written[i].unnamed_index.clone(),
                };
                if let Some((table, probe)) = &unnamed {
                    let slot = format!("{}.0", unnamed_slot(m, dir, i));
                    engine.after_unnamed_index(&slot, table, probe).await?;
                }
            }
            // The statements of a BEGIN ... COMMIT group run with its BEGIN.
            let mut next = resume_from;
            for (i, s) in prepared.statements.iter().enumerate().skip(resume_from) {
                if i < next {
                    continue;
                }
                next = i + 1;
                match prepared.brackets.get(i).copied().unwrap_or(Bracket::None) {
                    Bracket::None => {}
                    Bracket::InSwap { after: true } => {
                        // Committed with the swap before it, which the loop skips past: only a
                        // record that stops between the two could land here, and none does.
                        return Err(Error::Usage {
                            message: format!(
                                "`{}` runs inside the swap of the staged type change before it, which is not recorded as done",
                                first_line(&s.sql)
                            ),
                            help: "run `sluice up` again".into(),
                        });
                    }
                    Bracket::InSwap { after: false } => {
                        (ctx.say)(&format!(
                            "`{}`: {}",
                            first_line(&s.sql),
                            crate::plan::prepare::IN_SWAP_BEFORE
                        ));
                        row.statements_done = i as i32 + 1;
                        row.statement_hashes.push(statement_hash(&s.sql));
                        engine.upsert_migration(&row).await?;
                        continue;
                    }
                    Bracket::Skip(why) => {
                        (ctx.say)(&format!("`{}`: {why}", first_line(&s.sql)));
                        row.statements_done = i as i32 + 1;
                        row.statement_hashes.push(statement_hash(&s.sql));
                        engine.upsert_migration(&row).await?;
                        continue;
                    }
                    Bracket::Group { end } => {
                        // The group and its progress record commit together, or not at all.
                        engine.begin().await?;
                        for k in i + 1..end {
                            // A BEGIN inside the group (PostgreSQL only warns of it): the
                            // transaction is open already.
                            if prepared.written[k].transaction_control {
                                continue;
                            }
                            let sql = &prepared.written[k].sql;
                            // ACCESS EXCLUSIVE on a live table is bounded here as anywhere.
                            let bound = prepared.exclusive[k].then_some(ctx.exclusive_timeout);
                            if let Err(e) = execute_bounded(engine, sql, bound, ctx).await {
                                let _ = engine.rollback().await;
                                let inner = &prepared.statements[k];
                                return Err(record_failure(
                                    engine,
                                    m,
                                    dir,
                                    row,
                                    inner,
                                    part_offset,
                                    e,
                                    i,
                                    false,
                                    ctx,
                                )
                                .await);
                            }
                        }
                        row.statements_done = end as i32 + 1;
                        for k in i..=end {
                            row.statement_hashes
                                .push(statement_hash(&prepared.statements[k].sql));
                        }
                        engine.upsert_migration(&row).await?;
                        engine.commit().await?;
                        next = end + 1;
                        continue;
                    }
                }
                let rewrite = prepared.rewrites[i].as_ref();
                // The statement as written, as the model describes it: the runner reads this (or
                // the staged form's steps), never the statement's SQL.
                let written = &prepared.written[i];
                // What runs first: the statement as written, or its staged form's first step.
                let exec = rewrite.map_or(&written.sql, |r| &r.sql);
                // An unnamed concurrent index build (as written or staged): what a rerun needs to
                // recognise a build a killed run finished.
                let unnamed = match rewrite {
                    Some(r) => r.unnamed_index.clone(),
                    None => written.unnamed_index.clone(),
                };
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
                    let first = crate::plan::staged::Step::Sql(r.sql.clone());
                    let last_is_sql =
                        matches!(r.then.last(), Some(crate::plan::staged::Step::Sql(_)));
                    let upto = if last_is_sql {
                        r.then.len() - 1
                    } else {
                        r.then.len()
                    };
                    let steps: Vec<_> = std::iter::once(&first)
                        .chain(&r.then[..upto])
                        .zip(&r.about)
                        .collect();
                    let prefix = unnamed_slot(m, dir, i);
                    let run = StepsRun {
                        slot: &|k| format!("{prefix}.{k}"),
                        first_builds_index: r.builds_index.as_deref(),
                        resuming,
                        written: written.into(),
                        before: &|_, _| {},
                    };
                    if let Err(e) = run_steps(engine, &steps, run, ctx).await? {
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
                // What commits with the progress record: the statement, the last step of a staged
                // rewrite, or nothing when that last step was a backfill (already checkpointed).
                let exec_sql: Option<String> = match staged {
                    Some(r) => r
                        .then
                        .last()
                        .and_then(crate::plan::staged::Step::sql)
                        .map(str::to_string),
                    None => Some(exec.clone()),
                };
                // Where the statement allows it (any PostgreSQL statement that may run in a
                // transaction; MariaDB/MySQL data changes; the last step of a staged rewrite), it
                // commits together with its progress record, so a crash can never leave it applied
                // but unrecorded. The others run on their own, then the progress is recorded.
                let atomic = staged.is_some()
                    || match rewrite {
                        Some(r) => r.about[0].transactional,
                        None => written.transactional,
                    };
                // From the BEGIN of the attempt that succeeds to its COMMIT: how long a staged
                // form's last step (a swap) held its lock.
                let mut attempt = std::time::Instant::now();
                let mut granted = None;
                if atomic {
                    if staged.is_some() {
                        // Test hooks around a staged rewrite's last step (the swap of a type
                        // change): before it, and after it ran but before it commits.
                        crate::crash_point("staged-swap");
                    }
                    engine.begin().await?;
                    let mut retry = LockRetry::new();
                    while let Some(exec_sql) = &exec_sql {
                        let bound = match staged {
                            // The last step commits with the progress record.
                            Some(r) => r.about[r.then.len()].bounded(),
                            None => prepared.exclusive[i],
                        }
                        .then_some(ctx.exclusive_timeout);
                        let mut e = match execute_bounded_timed(engine, exec_sql, bound, ctx).await
                        {
                            Ok(at) => {
                                granted = at;
                                break;
                            }
                            Err(e) => e,
                        };
                        let _ = engine.rollback().await;
                        if rewrite.is_some() {
                            // The server's position is in the rewritten text, not in the file.
                            e.position = None;
                        }
                        if e.lock_timeout && retry.again(engine, written, ctx, &mut e).await {
                            attempt = std::time::Instant::now();
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
                    let online = match online_alter(engine, safe, written, ctx).await {
                        Ok(o) => o,
                        Err(refused) => {
                            // A refusal (exit 2) still leaves the migration failed and resumable.
                            let e = crate::engine::ServerError {
                                code: String::new(),
                                message: refused.to_string(),
                                position: None,
                                connection_lost: false,
                                lock_timeout: false,
                                grant: String::new(),
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
                                slot: format!("{}.0", unnamed_slot(m, dir, i)),
                                builds_index: index,
                                unnamed: unnamed.clone(),
                                resuming: false,
                                rewritten: rewrite.is_some(),
                                bound,
                                transactional: false,
                                never_queues_queries: match rewrite {
                                    Some(r) => r.about[0].never_queues_queries(),
                                    None => written.never_queues_queries,
                                },
                                held_us: None,
                            };
                            run_step(engine, exec, opts, written, ctx).await?
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
                // The statements after a staged type change that its swap ran (re-created views
                // and policies) are recorded with it, in its transaction.
                let mut end = i;
                if staged.is_some() {
                    while matches!(
                        prepared.brackets.get(end + 1),
                        Some(Bracket::InSwap { after: true })
                    ) {
                        end += 1;
                    }
                }
                for k in i..=end {
                    row.statements_done = k as i32 + 1;
                    row.statement_hashes
                        .push(statement_hash(&prepared.statements[k].sql));
                }
                next = end + 1;
                engine.upsert_migration(&row).await?;
                if staged.is_some() {
                    crate::crash_point("staged-swap-uncommitted");
                }
                if atomic {
                    engine.commit().await?;
                    if let Some(about) = staged
                        .filter(|_| exec_sql.is_some())
                        .map(|r| &r.about[r.then.len()])
                        .filter(|a| a.bounded())
                    {
                        let held = Held::default();
                        held.record(attempt, granted);
                        say_held(about, held.get(), engine.target().engine, ctx);
                    }
                }
                if staged.is_some() {
                    crate::crash_point("staged-swap-committed");
                }
                // What before_unnamed_index recorded is forgotten once the statement's progress
                // is recorded: until then a rerun must still recognise a build the killed run
                // finished.
                if let Some((table, probe)) = &unnamed {
                    let slot = format!("{}.0", unnamed_slot(m, dir, i));
                    engine.after_unnamed_index(&slot, table, probe).await?;
                }
            }
            finish(engine, m, dir, &mut row, &prepared, clock, ctx).await?;
            snapshot(engine, m).await?;
        }
    }
    if row.state == RecordState::Expanded {
        (ctx.say)(&format!(
            "expanded {} in {} ms: the old column is kept (equal to the new one by a reverse trigger) while expanded",
            m.label(),
            clock.elapsed().as_millis()
        ));
        return Ok(true);
    }
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
    Ok(false)
}

/// An ALTER TABLE on an engine with its own online path (MariaDB/MySQL) runs that way unless
/// `--as-written`; None when the engine leaves it to run as written. `Err` is a refusal (bad input:
/// no safe online form for this table) that must reach the user as such.
pub(super) async fn online_alter(
    engine: &mut dyn Engine,
    safe: bool,
    exec: &crate::plan::as_written::AsWritten,
    ctx: &RunContext,
) -> Result<Option<std::result::Result<(), crate::engine::ServerError>>> {
    if !safe || !exec.alter_table {
        return Ok(None);
    }
    let failed = |message: String| crate::engine::ServerError {
        code: String::new(),
        message,
        position: None,
        connection_lost: false,
        lock_timeout: false,
        grant: String::new(),
    };
    match engine
        .alter_online(&exec.sql, &ctx.online_options(), &*ctx.say)
        .await
    {
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
