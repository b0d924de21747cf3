//! What sluice records in the target database: one row per migration, an append-only event log and
//! schema snapshots.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordState {
    /// Started and not finished: another run is applying it, or a run was killed (resumable).
    Running,
    Applied,
    /// A statement failed; `statements_done` of the up part are applied and recorded.
    Failed,
    /// Recorded by `sluice baseline`: the database already had it.
    Baseline,
    /// A `sluice down` of this migration is under way, was killed, or failed, after `statements_done`
    /// statements of the down part; `sluice down` resumes it.
    Reverting,
    /// A breaking migration (two application versions live) whose expand phase is done: old and
    /// new names both work; `sluice complete` runs its contract phase, `sluice rollback` undoes it.
    Expanded,
}

impl RecordState {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordState::Running => "running",
            RecordState::Applied => "applied",
            RecordState::Failed => "failed",
            RecordState::Baseline => "baseline",
            RecordState::Reverting => "reverting",
            RecordState::Expanded => "expanded",
        }
    }

    /// The word messages use, as `status` shows it: a run that stopped while `running` (killed,
    /// connection lost) is `interrupted`.
    pub fn shown(self) -> &'static str {
        match self {
            RecordState::Running => "interrupted",
            s => s.as_str(),
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => RecordState::Running,
            "applied" => RecordState::Applied,
            "failed" => RecordState::Failed,
            "baseline" => RecordState::Baseline,
            "reverting" => RecordState::Reverting,
            "expanded" => RecordState::Expanded,
            _ => return None,
        })
    }

    /// The migration's changes are in the database.
    pub fn is_done(self) -> bool {
        matches!(self, RecordState::Applied | RecordState::Baseline)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRow {
    pub version: i64,
    pub name: String,
    pub checksum: String,
    pub state: RecordState,
    pub started_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
    pub duration_ms: Option<i64>,
    pub applied_by: String,
    pub sluice_version: String,
    pub app_version: Option<String>,
    /// Statements of the running part that are applied, for resume.
    pub statements_done: i32,
    /// SHA-256 of each applied statement, so a resume can tell whether they were edited.
    pub statement_hashes: Vec<String>,
    pub error: Option<String>,
    pub failed_statement: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EventKind {
    Up,
    Down,
    Failed,
    Repair,
    Baseline,
    DriftCapture,
    /// `sluice import`: versions another tool applied, recorded from its history table.
    Import,
    /// The expand phase of a breaking migration ran (`sluice up`).
    Expand,
    /// The contract phase ran (`sluice complete`).
    Complete,
    /// The expand phase was undone (`sluice rollback`).
    Rollback,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Up => "up",
            EventKind::Down => "down",
            EventKind::Failed => "failed",
            EventKind::Repair => "repair",
            EventKind::Baseline => "baseline",
            EventKind::DriftCapture => "drift-capture",
            EventKind::Import => "import",
            EventKind::Expand => "expand",
            EventKind::Complete => "complete",
            EventKind::Rollback => "rollback",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    pub kind: EventKind,
    pub version: Option<i64>,
    pub name: Option<String>,
    pub checksum: Option<String>,
    pub actor: String,
    pub app_version: Option<String>,
    pub sluice_version: String,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRow {
    pub id: i64,
    pub at: DateTime<Utc>,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone)]
pub struct Snapshot {
    pub version: Option<i64>,
    pub taken_at: DateTime<Utc>,
    pub schema: crate::schema::Schema,
}

pub fn statement_hash(sql: &str) -> String {
    crate::migration::checksum(sql.trim())
}
