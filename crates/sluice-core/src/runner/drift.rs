//! `sluice drift`: the live schema against the last snapshot.

use super::*;

#[derive(Debug, Clone, Serialize)]
pub struct DriftReport {
    /// The migration version whose snapshot was compared (None: no snapshot yet).
    pub snapshot_version: Option<i64>,
    pub snapshot_taken_at: Option<DateTime<Utc>>,
    pub differences: Vec<Difference>,
    /// What the comparison allowed for, e.g. a migration that failed part-way, whose committed
    /// statements are recorded in the snapshot and are not drift.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Migrations a run has not finished (interrupted, being reverted): what they left
    /// half made shows as drift, and is theirs to finish or undo, not a migration to capture.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unfinished: Vec<String>,
}

/// The migrations of `history` a run left unfinished, as [`DriftReport::unfinished`] names them:
/// killed (or running), half-reverted and expanded ones. A failed one is not: its committed statements are
/// in the snapshot, and a failed expand removed what it made (or says it could not).
fn unfinished(history: &[HistoryRow], layout: Option<crate::layout::Layout>) -> Vec<String> {
    history
        .iter()
        // Expanded too: a `complete` or `rollback` cut off (or failed part-way on MariaDB/MySQL)
        // leaves the migration recorded expanded with its table between the two states.
        .filter(|r| {
            matches!(
                r.state,
                RecordState::Running | RecordState::Reverting | RecordState::Expanded
            )
        })
        .map(|r| crate::layout::history_label(layout, r.version, &r.name))
        .collect()
}

/// Compares the live schema with the snapshot taken after the last migration.
pub async fn drift(engine: &mut dyn Engine) -> Result<DriftReport> {
    drift_in(engine, None).await
}

/// [`drift`] naming migrations as `layout` writes their versions.
pub async fn drift_in(
    engine: &mut dyn Engine,
    layout: Option<crate::layout::Layout>,
) -> Result<DriftReport> {
    let snap = engine.latest_snapshot().await?.ok_or_else(|| {
        Error::usage(
            "no schema snapshot recorded: sluice has not migrated this database yet",
            "apply migrations with `sluice up`, or adopt the database with `sluice baseline VERSION` (or `sluice import` when another tool migrated it)",
        )
    })?;
    let live = engine.introspect().await?;
    let history = engine.history().await?;
    let notes = history
        .iter()
        .filter(|r| r.state == RecordState::Failed && r.statements_done > 0)
        .map(|r| {
            format!(
                "migration {} failed part-way: its {} committed statement(s) are not drift",
                crate::layout::history_label(layout, r.version, &r.name),
                r.statements_done
            )
        })
        .collect();
    Ok(DriftReport {
        snapshot_version: snap.version,
        snapshot_taken_at: Some(snap.taken_at),
        differences: diff(&snap.schema, &live),
        notes,
        unfinished: unfinished(&history, layout),
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
        let open = unfinished(&engine.history().await?, None);
        if !open.is_empty() {
            return Err(Error::Lifecycle {
                message: format!(
                    "not capturing drift while migration {} is unfinished: what it left half made shows as drift, and a captured migration's down part would drop it with its data",
                    open.join(", ")
                ),
                help: "finish it (`sluice up` resumes an interrupted run, `sluice complete` an expanded migration) or undo it (`sluice rollback` for an expand phase, `sluice down` for a revert), then run `sluice drift` again".into(),
            });
        }
        let up_sql = engine.render_diff_sql(&snap.schema, &live);
        let down_sql = engine.render_diff_sql(&live, &snap.schema);
        // One comment line per difference: definitions span lines and must not leak out of the comment.
        let listing: String = differences
            .iter()
            .map(|d| {
                // Escaped as on the terminal: whoever reads the file with `cat` sees no raw
                // control sequence (the SQL below must name the objects as they are).
                let line = crate::error::printable(&d.to_string())
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
