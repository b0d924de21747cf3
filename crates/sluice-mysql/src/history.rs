//! sluice's own tables in the target database, all prefixed `sluice_` (so introspection can skip
//! them): migrations, the append-only event log, schema snapshots, the layout version and the run
//! lock's holder.
//!
//! Timestamps are UTC `DATETIME(6)` values that sluice writes explicitly; the column defaults follow
//! the session time zone, which sluice leaves alone so migrations see the server's usual `NOW()`.

use sluice_core::history::{EventKind, RecordState};

/// The history layout version; bumped when sluice changes its own tables.
pub const HISTORY_FORMAT: &str = "1";

pub const CREATE_META: &str = "CREATE TABLE IF NOT EXISTS `sluice_meta` (
  `k` VARCHAR(64) NOT NULL PRIMARY KEY,
  `v` VARCHAR(255) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

pub const CREATE_MIGRATIONS: &str = "CREATE TABLE IF NOT EXISTS `sluice_migrations` (
  `version` BIGINT NOT NULL PRIMARY KEY,
  `name` VARCHAR(255) NOT NULL,
  `checksum` VARCHAR(128) NOT NULL,
  `state` VARCHAR(16) NOT NULL,
  `started_at` DATETIME(6) NOT NULL,
  `finished_at` DATETIME(6) NULL,
  `duration_ms` BIGINT NULL,
  `applied_by` VARCHAR(255) NOT NULL,
  `sluice_version` VARCHAR(64) NOT NULL,
  `app_version` VARCHAR(255) NULL,
  `statements_done` INT NOT NULL DEFAULT 0,
  `statement_hashes` LONGTEXT NOT NULL,
  `error` TEXT NULL,
  `failed_statement` LONGTEXT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

pub const CREATE_EVENTS: &str = "CREATE TABLE IF NOT EXISTS `sluice_events` (
  `id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  `kind` VARCHAR(32) NOT NULL,
  `version` BIGINT NULL,
  `name` VARCHAR(255) NULL,
  `checksum` VARCHAR(128) NULL,
  `actor` VARCHAR(255) NOT NULL,
  `app_version` VARCHAR(255) NULL,
  `sluice_version` VARCHAR(64) NOT NULL,
  `detail` TEXT NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

pub const CREATE_SNAPSHOTS: &str = "CREATE TABLE IF NOT EXISTS `sluice_snapshots` (
  `id` BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  `taken_at` DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  `version` BIGINT NULL,
  `schema_json` LONGTEXT NOT NULL,
  `fingerprint` VARCHAR(64) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

pub const CREATE_LOCK: &str = "CREATE TABLE IF NOT EXISTS `sluice_lock` (
  `lock_name` VARCHAR(64) NOT NULL PRIMARY KEY,
  `connection_id` BIGINT NOT NULL,
  `host` VARCHAR(255) NOT NULL,
  `pid` BIGINT NOT NULL,
  `since` DATETIME(6) NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4";

/// Triggers that make the event log append-only for everyone, not just for sluice (which never
/// updates or deletes events). Single-statement bodies need no client-side delimiter tricks.
pub const EVENT_TRIGGERS: [(&str, &str); 2] = [
    (
        "sluice_events_no_update",
        "CREATE TRIGGER `sluice_events_no_update` BEFORE UPDATE ON `sluice_events` FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'sluice_events is append-only: events cannot be updated'",
    ),
    (
        "sluice_events_no_delete",
        "CREATE TRIGGER `sluice_events_no_delete` BEFORE DELETE ON `sluice_events` FOR EACH ROW \
         SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'sluice_events is append-only: events cannot be deleted'",
    ),
];

pub const MIGRATION_COLUMNS: &str = "`version`, `name`, `checksum`, `state`, `started_at`, `finished_at`, \
     `duration_ms`, `applied_by`, `sluice_version`, `app_version`, `statements_done`, `statement_hashes`, \
     `error`, `failed_statement`";

pub fn parse_state(s: &str) -> Option<RecordState> {
    RecordState::parse(s)
}

pub fn parse_event_kind(s: &str) -> Option<EventKind> {
    Some(match s {
        "up" => EventKind::Up,
        "down" => EventKind::Down,
        "failed" => EventKind::Failed,
        "repair" => EventKind::Repair,
        "baseline" => EventKind::Baseline,
        "drift-capture" => EventKind::DriftCapture,
        "import" => EventKind::Import,
        "expand" => EventKind::Expand,
        "complete" => EventKind::Complete,
        "rollback" => EventKind::Rollback,
        _ => return None,
    })
}

/// Cuts `s` to at most `max` bytes on a character boundary (TEXT columns hold 65,535 bytes).
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    // Room for the ellipsis (3 bytes in UTF-8).
    let mut end = max.saturating_sub(3);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_kind_round_trips() {
        for k in [
            EventKind::Up,
            EventKind::Down,
            EventKind::Failed,
            EventKind::Repair,
            EventKind::Baseline,
            EventKind::DriftCapture,
            EventKind::Import,
            EventKind::Expand,
            EventKind::Complete,
            EventKind::Rollback,
        ] {
            assert_eq!(parse_event_kind(k.as_str()), Some(k));
        }
        assert_eq!(parse_event_kind("nope"), None);
    }

    #[test]
    fn truncation_respects_char_boundaries() {
        assert_eq!(truncate("abc", 10), "abc");
        let t = truncate(&"é".repeat(100), 51);
        assert!(t.len() <= 51, "{}", t.len());
        assert!(t.ends_with('…'));
    }
}
