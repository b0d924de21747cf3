//! `sluice status`: the files merged with the history.

use super::*;

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
    /// A repeatable migration never applied: `up` applies it after the versioned ones.
    New,
    /// A repeatable migration whose file changed since it was last applied: `up` applies it again.
    Changed,
    /// Two application versions live: the expand phase ran; `complete` or `rollback` next.
    Expanded,
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
            MigrationStatus::New => "new",
            MigrationStatus::Changed => "changed",
            MigrationStatus::Expanded => "expanded",
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct StatusEntry {
    pub version: i64,
    /// The version as its file names it (`2019-01-01-000000` in diesel's layout).
    pub version_text: String,
    pub name: String,
    pub status: MigrationStatus,
    pub applied_at: Option<DateTime<Utc>>,
    pub applied_by: Option<String>,
    pub app_version: Option<String>,
    pub duration_ms: Option<i64>,
    pub statements_done: Option<i32>,
    pub error: Option<String>,
    /// An expanded migration: seconds since its expand phase finished.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub open_secs: Option<i64>,
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
    /// Whose directory layout the files follow (set by the caller, which resolved it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub layout: Option<String>,
}

pub(super) fn merge(files: &[Migration], rows: &[HistoryRow]) -> Vec<StatusEntry> {
    let by_version: BTreeMap<i64, &HistoryRow> = rows.iter().map(|r| (r.version, r)).collect();
    let max_done = rows
        .iter()
        .filter(|r| !crate::layout::is_repeatable_key(r.version))
        .filter(|r| r.state.is_done() || r.state == RecordState::Expanded)
        .map(|r| r.version)
        .max();
    let mut out: Vec<StatusEntry> = Vec::new();
    for m in files {
        let row = by_version.get(&m.version);
        let repeatable = m.is_repeatable();
        let status = match row {
            // A repeatable is never out of order or edited: a new or changed one is applied (again).
            None if repeatable => MigrationStatus::New,
            Some(r) if repeatable && r.state.is_done() && r.checksum != m.checksum => {
                MigrationStatus::Changed
            }
            None if max_done.is_some_and(|v| m.version < v) => MigrationStatus::OutOfOrder,
            None => MigrationStatus::Pending,
            Some(r) => match r.state {
                RecordState::Applied | RecordState::Baseline | RecordState::Expanded
                    if r.checksum != m.checksum =>
                {
                    MigrationStatus::Edited
                }
                RecordState::Applied => MigrationStatus::Applied,
                RecordState::Baseline => MigrationStatus::Baseline,
                RecordState::Failed => MigrationStatus::Failed,
                RecordState::Running => MigrationStatus::Running,
                RecordState::Reverting => MigrationStatus::Reverting,
                RecordState::Expanded => MigrationStatus::Expanded,
            },
        };
        let mut e = entry(m.version, &m.name, status, row.copied());
        e.version_text = m.version_text.clone();
        out.push(e);
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
    // Versioned migrations by version, then the repeatables in their files' order (a stable sort).
    out.sort_by_key(|e| {
        let repeatable = crate::layout::is_repeatable_key(e.version);
        (repeatable, if repeatable { 0 } else { e.version })
    });
    out
}

/// How messages name a history row: as its file does when there is one (`2019-01-01-000000_x`).
pub(super) fn row_label(files: &[Migration], r: &HistoryRow) -> String {
    files
        .iter()
        .find(|m| m.version == r.version)
        .map(|m| m.label())
        .unwrap_or_else(|| crate::layout::history_label(None, r.version, &r.name))
}

pub(super) fn entry(
    version: i64,
    name: &str,
    status: MigrationStatus,
    row: Option<&HistoryRow>,
) -> StatusEntry {
    StatusEntry {
        version,
        version_text: version.to_string(),
        name: name.to_string(),
        status,
        applied_at: row.and_then(|r| r.finished_at),
        applied_by: row.map(|r| r.applied_by.clone()),
        app_version: row.and_then(|r| r.app_version.clone()),
        duration_ms: row.and_then(|r| r.duration_ms),
        statements_done: row
            .filter(|r| !r.state.is_done() && r.state != RecordState::Expanded)
            .map(|r| r.statements_done),
        error: row.and_then(|r| r.error.clone()),
        open_secs: row.and_then(crate::lifecycle::open_secs),
    }
}

/// Every migration, from the files and the database's history merged: applied, pending, failed,
/// edited since applied, missing its file; and whether the schema drifted from the last snapshot.
/// Reads only; no run lock.
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
        layout: None,
    })
}

pub(super) async fn drift_state(engine: &mut dyn Engine) -> Result<DriftState> {
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
