//! `sluice down`.

use super::*;

#[derive(Debug, Clone, Default)]
pub struct DownOptions {
    pub to: Option<i64>,
    pub steps: Option<usize>,
    pub dry_run: bool,
    pub as_written: bool,
    /// `--failed`: also roll back a failed migration whose applied statements stay committed
    /// (MariaDB/MySQL have no transactional DDL), by running its down part in full.
    pub failed: bool,
}

/// What `down` reverted (or would revert, with `--dry-run`), and the irreversible migration it
/// stopped at, if any: the migrations above it are reverted first, so the error comes after them.
#[derive(Debug, Default)]
pub struct DownReport {
    pub planned: Vec<PlannedMigration>,
    pub stopped: Option<Error>,
}

/// Logical replication (PostgreSQL): a down part adds and removes columns as an up part does, so
/// it is held to the same order — a column it drops on a subscriber must have left the publisher,
/// a column it adds back on a publisher must be on the subscribers named by `--subscriber-url`.
async fn replication(
    engine: &mut dyn Engine,
    work: &[(Migration, HistoryRow, PlannedMigration)],
    ctx: &RunContext,
) -> Result<()> {
    let items: Vec<(&Migration, usize)> = work.iter().map(|(m, _, p)| (m, p.resume_from)).collect();
    let warnings = super::replication::check(
        engine,
        super::replication::Runs::Down,
        &items,
        true,
        true,
        &ctx.subscriber_urls,
        &[],
    )
    .await?;
    for w in warnings {
        (ctx.say)(&format!("warning: {w}"));
    }
    Ok(())
}

/// Reverts applied migrations (the latest first) with their `-- sluice:down` sections, under the
/// run lock; stops at the first irreversible one (reported in [`DownReport::stopped`]).
pub async fn down(
    engine: &mut dyn Engine,
    files: &[Migration],
    opts: &DownOptions,
    ctx: &RunContext,
) -> Result<DownReport> {
    type Work = (
        Vec<(Migration, HistoryRow, PlannedMigration)>,
        Option<Error>,
    );
    let body = |engine: &mut dyn Engine, rows: Vec<HistoryRow>| -> Result<Work> {
        // `down` never undoes a repeatable migration (Flyway's undo has none either): its rows,
        // failed ones included, are not in the range.
        let rows: Vec<HistoryRow> = rows
            .into_iter()
            .filter(|r| !crate::layout::is_repeatable_key(r.version))
            .collect();
        let transactional = engine.transactional_ddl();
        let target = engine.target();
        // A staged type change cut off before its swap (PostgreSQL): the view and policy drops
        // before it are recorded as done but run inside the swap, so nothing of the migration
        // committed but sluice's helpers, which `sluice rollback` removes (its down part, run
        // in full, would undo nothing of its up part and leave them).
        let cut_before_swap = |r: &HistoryRow| {
            files
                .iter()
                .find(|m| m.version == r.version)
                .and_then(|m| crate::lifecycle::cut_type_change_of(target, m))
                .is_some_and(|cut| r.statements_done <= cut.index as i32)
        };
        let revert_failed = |r: &HistoryRow| {
            opts.failed
                && r.state == RecordState::Failed
                && (!transactional || r.statements_done > 0)
                && !cut_before_swap(r)
        };
        let mut targets: Vec<&HistoryRow> = rows
            .iter()
            .filter(|r| {
                r.state.is_done()
                    || matches!(r.state, RecordState::Reverting | RecordState::Expanded)
                    || revert_failed(r)
            })
            .collect();
        targets.sort_by_key(|r| std::cmp::Reverse(r.version));
        if let Some(r) = rows.iter().find(|r| {
            matches!(r.state, RecordState::Failed | RecordState::Running) && !revert_failed(r)
        }) {
            let help = if cut_before_swap(r) {
                "its staged type change stopped before its swap: nothing of it is applied but sluice's helpers \
                 (shadow columns, sync triggers): `sluice rollback` removes them (the migration is then pending), \
                 or `sluice up` resumes it"
            } else if r.state == RecordState::Failed && (!transactional || r.statements_done > 0) {
                "finish it with `sluice up` (it resumes at the failed statement), or roll back the statements of it \
                 that committed with `sluice down --failed`: that runs its down part in full, written for the whole \
                 migration, so it must also work when the later statements never ran (e.g. `DROP TABLE IF EXISTS`)"
            } else if r.state == RecordState::Failed {
                "nothing of it is applied (the server rolled it back): fix it and run `sluice up`"
            } else {
                "finish it with `sluice up` (it resumes at the failed statement) before rolling back"
            };
            return Err(Error::usage(
                format!(
                    "migration {} is recorded as {}",
                    row_label(files, r),
                    r.state.shown()
                ),
                help,
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
            if r.state == RecordState::Expanded {
                return Err(crate::lifecycle::down_refusal(&row_label(files, r)));
            }
            let m = files
                .iter()
                .find(|m| m.version == r.version)
                .ok_or_else(|| Error::Checksum {
                    // Exit 4, as for any recorded migration whose file is missing.
                    message: format!(
                        "cannot roll back {}: its file is missing",
                        crate::layout::history_label(None, r.version, &r.name)
                    ),
                    help: "restore the migration file (its down part is needed)".into(),
                })?;
            // A failed migration's file is usually being fixed: its down part may change.
            if m.checksum != r.checksum
                && r.state != RecordState::Reverting
                && r.state != RecordState::Failed
            {
                return Err(Error::Checksum {
                    message: format!("migration {} changed since it was applied; its down part may not undo what ran", m.label()),
                    help: "restore the applied text, or run `sluice repair` if the edit is intentional".into(),
                });
            }
            // An irreversible migration ends the range: those above it are still reverted.
            if m.down.is_none() {
                return Ok((out, Some(irreversible_error(m))));
            }
            let prepared = prepare(engine, m, Direction::Down, !opts.as_written)?;
            let resume_from = check_resume(m, Direction::Down, &prepared, Some(r))?;
            let plan = PlannedMigration::new(m, prepared, resume_from, vec![]);
            out.push((m.clone(), r.clone(), plan));
        }
        Ok((out, None))
    };
    // The stop, saying what was reverted before it.
    let stopped = |stop: Option<Error>, done: &[(Migration, HistoryRow, PlannedMigration)]| {
        stop.map(|e| match e {
            Error::Usage { message, help } if !done.is_empty() => {
                let list: Vec<String> = done.iter().map(|(m, _, _)| m.label()).collect();
                let verb = if opts.dry_run {
                    "would stop"
                } else {
                    "stopped"
                };
                Error::Usage {
                    message: format!(
                        "{message}; `sluice down` {verb} there after rolling back {}",
                        list.join(", ")
                    ),
                    help,
                }
            }
            e => e,
        })
    };
    if opts.dry_run {
        let rows = engine.history().await?;
        let (work, stop) = body(engine, rows)?;
        replication(engine, &work, ctx).await?;
        return Ok(DownReport {
            stopped: stopped(stop, &work),
            planned: work.into_iter().map(|(_, _, p)| p).collect(),
        });
    }
    locked!(engine, ctx, {
        engine.ensure_history().await?;
        let rows = engine.history().await?;
        let (work, stop) = body(engine, rows)?;
        replication(engine, &work, ctx).await?;
        if work.is_empty() && stop.is_none() {
            (ctx.say)("nothing to roll back");
        }
        for (m, row, _) in &work {
            if row.state == RecordState::Failed {
                (ctx.say)(&format!(
                    "{} failed after {} statement(s) of its up part committed: its down part runs in full (--failed)",
                    m.label(),
                    row.statements_done
                ));
            }
            run_part(
                engine,
                m,
                Direction::Down,
                Some(row),
                !opts.as_written,
                &[],
                ctx,
            )
            .await?;
        }
        Ok(DownReport {
            stopped: stopped(stop, &work),
            planned: work.into_iter().map(|(_, _, p)| p).collect(),
        })
    })
}
