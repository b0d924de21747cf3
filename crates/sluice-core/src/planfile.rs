//! Reviewed plans: `sluice plan --out FILE` writes what `sluice up` would run and the state it
//! would run on; `sluice up --plan FILE` recomputes both and runs only when nothing changed since.
//!
//! The file holds no URL and no credential: the database is named by its name only.

use crate::error::{Error, Result};
use crate::history::{HistoryRow, RecordState};
use crate::runner::{PlannedMigration, RunsAs, UpOptions};
use crate::schema::Schema;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

/// Marks the JSON as a sluice plan.
pub const FORMAT: &str = "sluice-plan";
/// The layout this sluice writes and reads; a file with a higher number comes from a newer sluice.
pub const FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    pub format: String,
    pub format_version: u32,
    pub sluice_version: String,
    /// When the plan was made (informational, not compared).
    pub created_at: DateTime<Utc>,
    pub engine: String,
    pub server_version: String,
    /// The database's name, never its URL.
    pub database: String,
    pub options: PlanOptions,
    /// `Schema::fingerprint` of the live schema when the plan was made.
    pub schema_fingerprint: String,
    pub history: PlanHistory,
    /// What `up` runs, in order.
    pub migrations: Vec<PlanMigration>,
    /// The live schema the fingerprint was taken of, so a refusal can name what changed.
    pub schema: Schema,
}

/// The `up` options that change what runs; `up --plan` runs with these and no others.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanOptions {
    pub to: Option<i64>,
    pub out_of_order: bool,
    pub as_written: bool,
}

impl PlanOptions {
    pub fn from_up(o: &UpOptions) -> Self {
        PlanOptions {
            to: o.to,
            out_of_order: o.allow_out_of_order,
            as_written: o.as_written,
        }
    }

    pub fn up_options(&self, dry_run: bool) -> UpOptions {
        UpOptions {
            to: self.to,
            dry_run,
            allow_out_of_order: self.out_of_order,
            as_written: self.as_written,
            as_written_below_rows: 0,
            complete: false,
            // Not part of the reviewed plan (URLs may hold passwords): the run's own.
            subscriber_urls: vec![],
        }
    }

    /// As the user would type them.
    pub fn flags(&self) -> String {
        let mut f = Vec::new();
        if let Some(t) = self.to {
            f.push(format!("--to {t}"));
        }
        if self.out_of_order {
            f.push("--out-of-order".into());
        }
        if self.as_written {
            f.push("--as-written".into());
        }
        if f.is_empty() {
            "(none)".into()
        } else {
            f.join(" ")
        }
    }
}

/// The recorded history the plan was made on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHistory {
    /// The newest applied (or baselined) migration.
    pub head: Option<HistoryHead>,
    /// How many migrations are recorded (any state).
    pub recorded: usize,
    /// SHA-256 over every record's version, name, checksum, state and progress.
    pub digest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryHead {
    pub version: i64,
    pub name: String,
    pub checksum: String,
}

impl PlanHistory {
    pub fn of(rows: &[HistoryRow]) -> Self {
        let mut sorted: Vec<&HistoryRow> = rows.iter().collect();
        sorted.sort_by_key(|r| r.version);
        let mut h = Sha256::new();
        for r in &sorted {
            h.update(format!(
                "{}\t{}\t{}\t{}\t{}\n",
                r.version,
                r.name,
                r.checksum,
                r.state.as_str(),
                r.statements_done
            ));
        }
        PlanHistory {
            head: sorted
                .iter()
                .rev()
                .find(|r| r.state.is_done())
                .map(|r| HistoryHead {
                    version: r.version,
                    name: r.name.clone(),
                    checksum: r.checksum.clone(),
                }),
            recorded: rows.len(),
            digest: hex(&h.finalize()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanMigration {
    pub version: i64,
    pub name: String,
    /// SHA-256 of the migration file as sluice records it.
    pub checksum: String,
    pub mode: String,
    pub mode_reason: String,
    /// Statements an earlier failed run applied; they are skipped.
    pub resume_from: usize,
    pub statements: Vec<PlanStatement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStatement {
    /// As written in the file.
    pub sql: String,
    /// What sluice runs instead, with its note and later steps (None: runs as written).
    pub runs_as: Option<RunsAs>,
}

impl PlanMigration {
    pub fn of(p: &PlannedMigration, checksum: &str) -> Self {
        PlanMigration {
            version: p.version,
            name: p.name.clone(),
            checksum: checksum.to_string(),
            mode: p.mode.name().to_string(),
            mode_reason: p.mode_reason.clone(),
            resume_from: p.resume_from,
            statements: p
                .statements
                .iter()
                .enumerate()
                .map(|(i, s)| PlanStatement {
                    sql: s.clone(),
                    runs_as: p.runs_as.get(i).cloned().flatten(),
                })
                .collect(),
        }
    }

    fn label(&self) -> String {
        crate::layout::history_label(None, self.version, &self.name)
    }
}

impl PlanFile {
    /// The plan's identity: the first 12 hex digits of the SHA-256 of its text, recorded with the
    /// migrations it applies.
    pub fn id_of(text: &str) -> String {
        hex(&Sha256::digest(text.as_bytes()))[..12].to_string()
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("plan serialises") + "\n"
    }

    /// Reads a plan file; anything that is not a complete plan of a format this sluice knows is bad
    /// input (exit 2).
    pub fn read(path: &Path) -> Result<(PlanFile, String)> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading the plan {}", path.display()), e))?;
        Ok((Self::parse(&text, path)?, Self::id_of(&text)))
    }

    pub fn parse(text: &str, path: &Path) -> Result<PlanFile> {
        let shown = path.display();
        let replan = format!(
            "write it again with `sluice plan --out {shown}`, review it, then run `sluice up --plan {shown}`"
        );
        let value: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            let what = if e.is_eof() {
                "it ends early (truncated?)".to_string()
            } else {
                format!("line {}, column {}: {e}", e.line(), e.column())
            };
            Error::usage(
                format!("{shown} is not a readable sluice plan: {what}"),
                replan.clone(),
            )
        })?;
        if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(Error::usage(
                format!("{shown} is not a sluice plan (no `\"format\": \"{FORMAT}\"`)"),
                replan,
            ));
        }
        let version = value.get("format_version").and_then(|v| v.as_u64());
        match version {
            Some(v) if v == FORMAT_VERSION as u64 => {}
            Some(v) if v > FORMAT_VERSION as u64 => {
                let by = value
                    .get("sluice_version")
                    .and_then(|v| v.as_str())
                    .unwrap_or("a newer sluice");
                return Err(Error::usage(
                    format!(
                        "{shown} has plan format version {v}, written by sluice {by}; this sluice ({}) reads version {FORMAT_VERSION} only",
                        crate::SLUICE_VERSION
                    ),
                    format!("run it with the sluice that wrote it, or {replan}"),
                ));
            }
            _ => {
                return Err(Error::usage(
                    format!("{shown}: `format_version` is missing or not a known version"),
                    replan,
                ))
            }
        }
        serde_json::from_value(value).map_err(|e| {
            Error::usage(
                format!("{shown} is not a complete sluice plan: {e}"),
                replan.clone(),
            )
        })
    }

    /// Every way the state now differs from the plan, each as "what: plan …, now …".
    /// `gone` says why a planned migration is no longer pending.
    pub fn differences(
        &self,
        now: &PlanFile,
        now_refused: Option<&str>,
        gone: impl Fn(i64) -> String,
    ) -> Vec<String> {
        let mut out = Vec::new();
        let short = |s: &str| s.chars().take(12).collect::<String>();
        if self.sluice_version != now.sluice_version {
            out.push(format!(
                "sluice version: plan {}, now {}",
                self.sluice_version, now.sluice_version
            ));
        }
        if (&self.engine, &self.server_version) != (&now.engine, &now.server_version) {
            out.push(format!(
                "server: plan {} {}, now {} {}",
                self.engine, self.server_version, now.engine, now.server_version
            ));
        }
        if self.database != now.database {
            out.push(format!(
                "database: plan `{}`, now `{}`",
                self.database, now.database
            ));
        }
        if self.history != now.history {
            let head = |h: &Option<HistoryHead>| match h {
                Some(h) => crate::layout::history_label(None, h.version, &h.name),
                None => "nothing applied".into(),
            };
            if self.history.head != now.history.head {
                out.push(format!(
                    "history head: plan {}, now {}",
                    head(&self.history.head),
                    head(&now.history.head)
                ));
            } else {
                out.push(format!(
                    "recorded history: plan {} record(s) (digest {}), now {} (digest {}): a migration was applied, rolled back, failed or repaired",
                    self.history.recorded,
                    short(&self.history.digest),
                    now.history.recorded,
                    short(&now.history.digest)
                ));
            }
        }
        if self.schema_fingerprint != now.schema_fingerprint {
            out.push(format!(
                "schema fingerprint: plan {}, now {}",
                short(&self.schema_fingerprint),
                short(&now.schema_fingerprint)
            ));
            let changes = crate::schema::diff(&self.schema, &now.schema);
            for d in changes.iter().take(20) {
                out.push(format!("  {d}"));
            }
            if changes.len() > 20 {
                out.push(format!(
                    "  … and {} more (`sluice drift` lists changes against sluice's own snapshot)",
                    changes.len() - 20
                ));
            }
        }
        if let Some(why) = now_refused {
            out.push(format!(
                "steps: plan {} migration(s), now `sluice up` refuses: {why}",
                self.migrations.len()
            ));
            return out;
        }
        for p in &self.migrations {
            match now.migrations.iter().find(|n| n.version == p.version) {
                None => out.push(format!(
                    "migration {}: plan applies it, now {}",
                    p.label(),
                    gone(p.version)
                )),
                Some(n) => migration_differences(p, n, &mut out),
            }
        }
        for n in &now.migrations {
            if !self.migrations.iter().any(|p| p.version == n.version) {
                out.push(format!(
                    "migration {}: not in the plan, now pending (a migration file was added)",
                    n.label()
                ));
            }
        }
        out
    }
}

fn migration_differences(p: &PlanMigration, n: &PlanMigration, out: &mut Vec<String>) {
    let short = |s: &str| s.chars().take(12).collect::<String>();
    let label = p.label();
    if p.name != n.name {
        out.push(format!(
            "migration {}: name: plan `{}`, now `{}`",
            p.version, p.name, n.name
        ));
    }
    if p.checksum != n.checksum {
        out.push(format!(
            "migration {label}: file edited: checksum plan {}, now {}",
            short(&p.checksum),
            short(&n.checksum)
        ));
    }
    if (&p.mode, &p.mode_reason) != (&n.mode, &n.mode_reason) {
        out.push(format!(
            "migration {label}: transaction mode: plan {} ({}), now {} ({})",
            p.mode, p.mode_reason, n.mode, n.mode_reason
        ));
    }
    if p.resume_from != n.resume_from {
        out.push(format!(
            "migration {label}: starts at statement {} in the plan, now at {}",
            p.resume_from + 1,
            n.resume_from + 1
        ));
    }
    if p.statements.len() != n.statements.len() {
        out.push(format!(
            "migration {label}: plan {} statement(s), now {}",
            p.statements.len(),
            n.statements.len()
        ));
    }
    let one = |s: &PlanStatement| {
        let mut t = first_line(&s.sql);
        if let Some(r) = &s.runs_as {
            t.push_str(&format!(" (runs as: {}", first_line(&r.sql)));
            for step in &r.then {
                t.push_str(&format!("; then {}", first_line(step)));
            }
            t.push(')');
        }
        t
    };
    for (i, (a, b)) in p.statements.iter().zip(&n.statements).enumerate() {
        if a != b {
            let (sa, sb) = if a.sql != b.sql {
                (first_line(&a.sql), first_line(&b.sql))
            } else {
                (one(a), one(b))
            };
            // Same first lines: the difference is further in; say so rather than print equal text.
            let (sa, sb) = if sa == sb {
                (
                    format!("{sa} …"),
                    format!("{sb} … (differs after its first line)"),
                )
            } else {
                (sa, sb)
            };
            out.push(format!(
                "migration {label}: statement {}: plan `{sa}`, now `{sb}`",
                i + 1
            ));
        }
    }
}

fn first_line(s: &str) -> String {
    let l = s
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if l.chars().count() > 100 {
        format!("{}…", l.chars().take(100).collect::<String>())
    } else {
        l.to_string()
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// True when every migration of the plan is recorded as applied with the checksum the plan reviewed.
pub fn already_applied(plan: &PlanFile, rows: &[HistoryRow]) -> bool {
    !plan.migrations.is_empty()
        && plan.migrations.iter().all(|p| {
            rows.iter().any(|r| {
                r.version == p.version
                    && matches!(r.state, RecordState::Applied)
                    && r.checksum == p.checksum
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> PlanFile {
        PlanFile {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            sluice_version: crate::SLUICE_VERSION.into(),
            created_at: Utc::now(),
            engine: "postgres".into(),
            server_version: "15.4".into(),
            database: "app".into(),
            options: PlanOptions::default(),
            schema_fingerprint: Schema::default().fingerprint(),
            history: PlanHistory::of(&[]),
            migrations: vec![PlanMigration {
                version: 1,
                name: "a".into(),
                checksum: "c".repeat(64),
                mode: "single".into(),
                mode_reason: "all statements are transactional".into(),
                resume_from: 0,
                statements: vec![PlanStatement {
                    sql: "CREATE TABLE t (id int)".into(),
                    runs_as: None,
                }],
            }],
            schema: Schema::default(),
        }
    }

    #[test]
    fn round_trip_and_no_differences_with_itself() {
        let p = sample();
        let back = PlanFile::parse(&p.to_json(), Path::new("p.json")).unwrap();
        assert!(back.differences(&p, None, |_| String::new()).is_empty());
    }

    #[test]
    fn bad_files_are_bad_input_with_the_cause() {
        let good = sample().to_json();
        let mut future: serde_json::Value = serde_json::from_str(&good).unwrap();
        future["format_version"] = 2.into();
        let mut missing: serde_json::Value = serde_json::from_str(&good).unwrap();
        missing.as_object_mut().unwrap().remove("migrations");
        let cases = [
            (
                good[..good.len() / 2].to_string(),
                "ends early (truncated?)",
            ),
            ("{ not json".to_string(), "line 1, column 3"),
            ("{\"a\": 1}".to_string(), "is not a sluice plan"),
            (future.to_string(), "has plan format version 2"),
            (missing.to_string(), "missing field `migrations`"),
        ];
        for (text, want) in cases {
            let e = PlanFile::parse(&text, Path::new("p.json")).unwrap_err();
            assert_eq!(e.exit_code(), crate::error::exit::BAD_INPUT, "{want}");
            assert!(e.to_string().contains(want), "{e} should say {want}");
            assert!(e.help().unwrap().contains("sluice plan --out p.json"));
        }
    }
}
