//! Errors of the whole flow. Every variant carries what went wrong, why, and what to do next; the
//! binary renders them and maps them to the documented exit codes.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Exit codes, documented in the README. Kept here so library users see the same contract.
pub mod exit {
    pub const OK: i32 = 0;
    /// A migration statement failed on the server (recorded as failed; `sluice up` resumes).
    pub const MIGRATION_FAILED: i32 = 1;
    /// Bad input: usage, configuration, malformed migration files, unknown directives, missing down part.
    pub const BAD_INPUT: i32 = 2;
    /// Another sluice run holds the run lock and did not release it within `--lock-wait`.
    pub const LOCK_BUSY: i32 = 3;
    /// Checksum mismatch (an applied migration was edited) or schema drift found.
    pub const CHECKSUM_OR_DRIFT: i32 = 4;
    /// Cannot connect: unreachable server, authentication failure, unknown database, TLS failure.
    pub const CONNECT: i32 = 5;
    /// Any other database error (lost connection mid-run, a server-side failure, ...).
    pub const DATABASE: i32 = 6;
    /// `sluice lint` / `sluice plan` found error-level hazards.
    pub const LINT_ERRORS: i32 = 7;
    /// `sluice rehearse`: the rehearsal's verdict is that users would notice the migration.
    pub const REHEARSAL_FAILED: i32 = 8;
    /// Permission denied: the database user lacks a privilege the run needs (found by the
    /// preflight before any work, or refused by the server); the message names the GRANT to run.
    pub const PERMISSION: i32 = 9;
    /// `sluice refs` (and `sluice plan --fail-on unhandled-reference`): the code still names a
    /// table or column a migration drops or renames.
    pub const CODE_REFERENCES: i32 = 10;
    /// Two application versions live: the expand / complete / rollback lifecycle refuses (a second
    /// breaking migration on a table with one expanded, `down` over an expanded migration, a
    /// version that is not expanded, an engine without the lifecycle).
    pub const LIFECYCLE: i32 = 11;
    /// `sluice rehearse --fail-on plan-regression`: a statement's plan got at least
    /// `--plan-regression-ratio` times costlier (or fails) after the migration.
    pub const PLAN_REGRESSION: i32 = 12;
    /// Stopped by Ctrl-C (SIGINT): 128 + 2, as shells report it.
    pub const INTERRUPTED: i32 = 130;
    /// Stopped by SIGTERM: 128 + 15.
    pub const TERMINATED: i32 = 143;
}

/// Where a failing statement sits in its migration file.
#[derive(Debug, Clone)]
pub struct SqlFailure {
    pub version: i64,
    /// The version as its file names it.
    pub version_text: String,
    pub name: String,
    pub path: PathBuf,
    /// The whole file text, for rendering the source with a caret.
    pub file_text: String,
    /// Byte offset of the statement in `file_text`.
    pub offset: usize,
    /// Byte offset of the error inside the file (the statement start, or the server's position).
    pub error_offset: usize,
    pub line: usize,
    pub column: usize,
    pub statement: String,
    /// The server's error code (SQLSTATE on PostgreSQL, error number on MariaDB/MySQL).
    pub code: String,
    pub server_message: String,
    /// How many statements of this migration are applied and will be skipped on resume.
    pub statements_applied: usize,
    /// True when the whole migration ran in one transaction and was rolled back.
    pub rolled_back: bool,
    /// For a privilege error, the GRANT that fixes it when the server's message tells (else empty).
    pub grant: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{message}")]
    Usage { message: String, help: String },

    /// The two-versions lifecycle (expand / complete / rollback) refuses, with the reason.
    #[error("{message}")]
    Lifecycle { message: String, help: String },

    #[error("{path}: {message}")]
    MigrationFile {
        path: PathBuf,
        line: Option<usize>,
        message: String,
        help: String,
    },

    #[error("cannot connect to {url}: {message}")]
    Connect {
        url: String,
        message: String,
        help: String,
    },

    #[error("another sluice run holds the run lock on {url}{}", holder.as_ref().map(|h| format!(" ({h})")).unwrap_or_default())]
    LockBusy {
        url: String,
        holder: Option<String>,
        waited_secs: u64,
    },

    #[error("{message}")]
    Checksum { message: String, help: String },

    #[error("the live schema has drifted from what sluice recorded ({count} difference(s))")]
    Drift { count: usize },

    #[error("migration {} ({}) failed at {}:{}:{}: {}", .0.version_text, .0.name, .0.path.display(), .0.line, .0.column, .0.server_message)]
    MigrationFailed(Box<SqlFailure>),

    #[error("{context}: {message}")]
    Database {
        context: String,
        message: String,
        help: String,
    },

    /// The server refused the rows for the change, as the statement as written would (a
    /// duplicate for a new unique key, a value out of range); nothing of the change was left.
    #[error("{context}: {message}")]
    Rejected {
        context: String,
        message: String,
        help: String,
    },
    /// The database user lacks a privilege. `grant` is the exact statement an administrator runs
    /// (names quoted through the engine's quote helper) when it can be told, else empty.
    #[error("permission denied: {context}: {message}")]
    Permission {
        context: String,
        message: String,
        grant: String,
    },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage { .. } | Error::MigrationFile { .. } | Error::Io { .. } => exit::BAD_INPUT,
            Error::Lifecycle { .. } => exit::LIFECYCLE,
            Error::Connect { .. } => exit::CONNECT,
            Error::LockBusy { .. } => exit::LOCK_BUSY,
            Error::Checksum { .. } | Error::Drift { .. } => exit::CHECKSUM_OR_DRIFT,
            Error::MigrationFailed(f) if is_privilege_code(&f.code) => exit::PERMISSION,
            Error::MigrationFailed(_) | Error::Rejected { .. } => exit::MIGRATION_FAILED,
            Error::Permission { .. } => exit::PERMISSION,
            Error::Database { .. } => exit::DATABASE,
        }
    }

    /// What the user should do next.
    pub fn help(&self) -> Option<String> {
        match self {
            Error::Usage { help, .. }
            | Error::Lifecycle { help, .. }
            | Error::MigrationFile { help, .. }
            | Error::Connect { help, .. }
            | Error::Checksum { help, .. }
            | Error::Database { help, .. }
            | Error::Rejected { help, .. } => (!help.is_empty()).then(|| help.clone()),
            Error::LockBusy { waited_secs, .. } => Some(format!(
                "waited {waited_secs}s; wait for the other run to finish, or raise --lock-wait. \
                 A crashed run releases the lock when its connection closes"
            )),
            Error::Drift { .. } => Some(
                "run `sluice drift` to list the differences; `sluice drift --write-migration` captures them as a migration"
                    .into(),
            ),
            Error::Permission { grant, .. } => Some(if grant.is_empty() {
                "grant the privilege the server names (README \"Privileges\" lists what each feature needs), \
                 then run the same command again"
                    .into()
            } else {
                format!("as an administrator, run: {grant}\nthen run the same command again")
            }),
            Error::MigrationFailed(f) if is_privilege_code(&f.code) => Some(format!(
                "{}. {}",
                if f.grant.is_empty() {
                    "the database user lacks a privilege this statement needs (README \"Privileges\" lists what \
                     each feature needs): grant it or run as the tables' owner"
                        .to_string()
                } else {
                    format!("the database user lacks a privilege this statement needs; as an administrator, run: {}", f.grant)
                },
                if f.rolled_back || f.statements_applied == 0 {
                    "Nothing of this migration is applied; run `sluice up` again after granting it".to_string()
                } else {
                    format!(
                        "The first {} statement(s) are applied and recorded; `sluice up` resumes at this one",
                        f.statements_applied
                    )
                }
            )),
            Error::MigrationFailed(f) => Some(if f.rolled_back {
                "the migration ran in one transaction and was rolled back: nothing of it is applied. \
                 Fix the statement and run `sluice up` again"
                    .into()
            } else if f.statements_applied == 0 {
                "no statement of this migration is applied. Fix the cause and run `sluice up` again".into()
            } else {
                format!(
                    "the first {} statement(s) of this migration are applied and recorded. Fix the cause \
                     (you may edit this statement or later ones) and run `sluice up` again: it resumes at this statement",
                    f.statements_applied
                )
            }),
            Error::Io { .. } => None,
        }
    }

    pub fn usage(message: impl Into<String>, help: impl Into<String>) -> Self {
        Error::Usage {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn lifecycle(message: impl Into<String>, help: impl Into<String>) -> Self {
        Error::Lifecycle {
            message: message.into(),
            help: help.into(),
        }
    }

    pub fn database(context: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Database {
            context: context.into(),
            message: message.into(),
            help: String::new(),
        }
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Whether a server error code (SQLSTATE on PostgreSQL, error number on MariaDB/MySQL) says the
/// user lacks a privilege. Authentication failures (28P01, 1045) are connect errors, not these.
pub fn is_privilege_code(code: &str) -> bool {
    matches!(
        code,
        // insufficient_privilege
        "42501"
            // ER_DBACCESS_DENIED_ERROR, ER_TABLEACCESS_DENIED_ERROR, ER_COLUMNACCESS_DENIED_ERROR,
            // ER_SPECIFIC_ACCESS_DENIED_ERROR, ER_PROCACCESS_DENIED_ERROR,
            // ER_BINLOG_CREATE_ROUTINE_NEED_SUPER (CREATE TRIGGER with binary logging on)
            | "1044" | "1142" | "1143" | "1227" | "1370" | "1419"
    )
}

/// A character `printable` escapes: a control character (C0 but newline and tab, DEL, C1) or a
/// bidirectional override.
pub fn unprintable(c: char) -> bool {
    (c.is_control() && c != '\n' && c != '\t')
        || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` made safe for a terminal: control characters (C0 but newline and tab, DEL, C1) and the
/// bidirectional overrides are shown as `\u{..}` instead of being sent raw, so an object name or a
/// server message can never move the cursor, recolour the screen or reorder what the user reads.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let bad = unprintable;
    if !text.chars().any(bad) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if bad(c) {
            out.push_str(&format!("\\u{{{:x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod permission_tests {
    use super::*;

    #[test]
    fn privilege_codes_exit_9_authentication_and_others_do_not() {
        for code in ["42501", "1044", "1142", "1143", "1227", "1370", "1419"] {
            assert!(is_privilege_code(code), "{code}");
        }
        // Authentication failures are connect errors (exit 5); the rest stay what they were.
        for code in ["28P01", "28000", "1045", "1146", "42P01", "1205", ""] {
            assert!(!is_privilege_code(code), "{code}");
        }
        let e = Error::Permission {
            context: "the online copy of `t`".into(),
            message: "LOCK TABLES missing".into(),
            grant: "GRANT LOCK TABLES ON `d`.* TO 'u'@'%';".into(),
        };
        assert_eq!(e.exit_code(), exit::PERMISSION);
        assert_eq!(exit::PERMISSION, 9);
        assert!(e
            .help()
            .unwrap()
            .starts_with("as an administrator, run: GRANT LOCK TABLES ON `d`.* TO 'u'@'%';\n"));
    }
}

#[cfg(test)]
mod printable_tests {
    #[test]
    fn control_and_bidi_characters_are_escaped_everything_else_kept() {
        for c in (0u32..0x20)
            .chain(0x7f..0xa0)
            .chain(0x202a..0x202f)
            .chain(0x2066..0x206a)
        {
            let ch = char::from_u32(c).unwrap();
            if ch == '\n' || ch == '\t' {
                continue;
            }
            let input = format!("t{ch}x");
            let out = super::printable(&input);
            assert_eq!(out, format!("t\\u{{{c:x}}}x"));
        }
        let plain = "table \"Wert\" ünïcödé 表\n\tok";
        assert!(matches!(
            super::printable(plain),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
