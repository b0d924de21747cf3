//! Recording progress, failures and schema snapshots in the history.

use super::*;

/// Records the finished part and its event (inside the migration's transaction in single mode, so
/// the record and the change commit together).
pub(super) async fn finish(
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
            // Test hook: a type change's swap committed, its state not recorded.
            let type_change = crate::lifecycle::type_change_of(engine.target(), m);
            if type_change.is_some() {
                crate::crash_point("type-change-unrecorded");
            }
            // A staged type change that kept the old column is expanded until `sluice complete`.
            let kept = match type_change {
                Some((_, _, b)) => crate::lifecycle::kept_type_change(engine, b).await?,
                None => None,
            };
            let (state, kind, detail) = match kept {
                Some(b) => (
                    RecordState::Expanded,
                    EventKind::Expand,
                    format!("expanded: {}", b.describe()),
                ),
                None => (
                    RecordState::Applied,
                    EventKind::Up,
                    format!(
                        "{} statement(s), {}",
                        prepared.statements.len(),
                        prepared.mode.name()
                    ),
                ),
            };
            row.state = state;
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
                .append_event(&ctx.event(kind, Some(ident), detail))
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
pub(crate) async fn snapshot(engine: &mut dyn Engine, m: &Migration) -> Result<()> {
    let schema = engine.introspect().await?;
    // A repeatable has no place in the version order: its snapshot names none.
    let version = Some(m.version).filter(|_| !m.is_repeatable());
    engine.save_snapshot(version, &schema).await
}

#[allow(clippy::too_many_arguments)]
pub(crate) async fn record_failure(
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
    let (path, text) = m.part(dir).map(|p| m.file_of(p)).unwrap_or(m.file(0));
    let (line, column) = sql::line_col(text, error_offset);
    let failure = SqlFailure {
        version: m.version,
        version_text: m.version_text.clone(),
        name: m.name.clone(),
        path: path.to_path_buf(),
        file_text: text.to_string(),
        offset,
        error_offset,
        line,
        column,
        statement: s.sql.clone(),
        code: e.code.clone(),
        server_message: e.message.clone(),
        statements_applied: if rolled_back { 0 } else { index },
        rolled_back,
        grant: e.grant.clone(),
    };
    if e.connection_lost {
        return Error::Database {
            context: format!("lost the connection while running {} at {}:{line}:{column}", m.label(), path.display()),
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
    row.error = Some(format!("{}:{line}:{column}: {e}", path.display()));
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
    if dir == Direction::Up && failure.statements_applied > 0 {
        if let Err(e) = snapshot_committed_part(engine, m).await {
            tracing::warn!("could not record the schema after the failure: {e}");
        }
    }
    Error::MigrationFailed(Box::new(failure))
}

/// After a migration failed with some of its statements committed (no transactional DDL, or
/// per-statement mode): records a snapshot in which the tables and views its up part names are as
/// they are live, so `drift` does not report the migration's own committed statements; every
/// other object keeps its recorded definition, so a real out-of-band change is still reported.
pub(super) async fn snapshot_committed_part(engine: &mut dyn Engine, m: &Migration) -> Result<()> {
    let Some(snap) = engine.latest_snapshot().await? else {
        return Ok(());
    };
    let kind = engine.target().engine;
    let named: Vec<crate::analysis::ir::QName> = sql::split(kind, &m.up.sql)
        .unwrap_or_default()
        .iter()
        .enumerate()
        .flat_map(|(i, st)| {
            crate::analysis::ir::relations(kind, &crate::analysis::ir::build(kind, i, st, 0, ""))
        })
        .collect();
    // Schema keys are `schema.table` on PostgreSQL and `table` on MariaDB/MySQL, whose table names
    // compare case-insensitively on most setups.
    let names = |key: &str| {
        let (schema, table) = match key.rsplit_once('.') {
            Some((s, t)) => (Some(s), t),
            None => (None, key),
        };
        named.iter().any(|q| {
            let same = |a: &str, b: &str| {
                if kind == crate::target::EngineKind::Postgres {
                    a == b
                } else {
                    a.eq_ignore_ascii_case(b)
                }
            };
            same(&q.name, table)
                && match (&q.schema, schema) {
                    (Some(qs), Some(s)) => same(qs, s),
                    _ => true,
                }
        })
    };
    let live = engine.introspect().await?;
    let mut schema = snap.schema;
    pub(super) fn take_live<T: Clone>(
        recorded: &mut std::collections::BTreeMap<String, T>,
        live: &std::collections::BTreeMap<String, T>,
        names: &dyn Fn(&str) -> bool,
    ) {
        recorded.retain(|k, _| !names(k) || live.contains_key(k));
        for (k, v) in live.iter().filter(|(k, _)| names(k)) {
            recorded.insert(k.clone(), v.clone());
        }
    }
    take_live(&mut schema.tables, &live.tables, &names);
    take_live(&mut schema.views, &live.views, &names);
    engine.save_snapshot(snap.version, &schema).await
}
