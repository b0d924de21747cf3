//! `sluice verify`, `repair` and `baseline`.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    pub checked: usize,
    pub edited: Vec<StatusEntry>,
    pub missing_files: Vec<StatusEntry>,
}

/// Checks that every applied migration's file is unchanged (checksum) and still there.
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
        // Checked before anything is repaired: the whole command refuses, nothing changed.
        let open_edited: Vec<String> = rows
            .iter()
            .filter(|r| r.state == RecordState::Expanded)
            .filter_map(|r| {
                files
                    .iter()
                    .find(|m| m.version == r.version && m.checksum != r.checksum)
            })
            .map(|m| m.label())
            .collect();
        if !open_edited.is_empty() {
            return Err(Error::Checksum {
                message: format!(
                    "{} is expanded and its file changed since `sluice up`: repair does not accept that edit",
                    open_edited.join(", ")
                ),
                help: "restore the file as it was at `sluice up` (`sluice complete` and `sluice rollback` are planned from it); change the schema further in a new migration".into(),
            });
        }
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
        // A missing file is not an edit to accept: said, and the command fails (exit 4) after
        // accepting the edits, so `verify` never passes on repair's word.
        let missing: Vec<String> = rows
            .iter()
            .filter(|r| r.state.is_done() || r.state == RecordState::Expanded)
            .filter(|r| !files.iter().any(|m| m.version == r.version))
            .map(|r| crate::layout::history_label(None, r.version, &r.name))
            .collect();
        if !missing.is_empty() {
            return Err(Error::Checksum {
                message: format!(
                    "{} {} recorded in the database but {} no file: repair accepts edited files, not missing ones{}",
                    missing.join(", "),
                    if missing.len() > 1 { "are" } else { "is" },
                    if missing.len() > 1 { "have" } else { "has" },
                    match repaired.len() {
                        0 => String::new(),
                        n => format!(" ({n} edited migration(s) repaired)"),
                    }
                ),
                help: "restore the missing files (from version control) into the migrations directory".into(),
            });
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
        // Repeatables are not in the version order: the next `up` applies them, as after Flyway's
        // baseline.
        let adopted: Vec<&Migration> = files
            .iter()
            .filter(|m| m.version <= version && !m.is_repeatable())
            .collect();
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
