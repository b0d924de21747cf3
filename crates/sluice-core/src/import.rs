//! `sluice import`: adopt a database another tool migrated, from that tool's own history table.
//! The versions it applied are recorded as applied in sluice's history (with sluice's checksum of
//! each file), one event says where they came from, and the schema snapshot is taken so `drift`
//! works from then on.

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::history::{EventKind, HistoryRow, RecordState};
use crate::layout::{self, Layout};
use crate::migration::Migration;
use crate::quote;
use crate::runner::{acquire_lock, RunContext};
use crate::target::EngineKind;
use chrono::Utc;
use serde::Serialize;
use sha2::{Digest, Sha384};
use std::collections::{BTreeMap, BTreeSet};

/// The history table a tool keeps by default.
pub fn default_table(tool: Layout) -> Option<&'static str> {
    Some(match tool {
        Layout::Sluice => return None,
        Layout::Diesel => "__diesel_schema_migrations",
        Layout::Sqlx => "_sqlx_migrations",
        Layout::GolangMigrate | Layout::Dbmate => "schema_migrations",
        Layout::Goose => "goose_db_version",
        Layout::Flyway => "flyway_schema_history",
    })
}

pub struct ImportOptions {
    /// The tool whose history table is read.
    pub tool: Layout,
    /// The layout of the migrations directory (whose keys the files have).
    pub files_layout: Layout,
    /// The table's name, when the tool was configured with another one.
    pub table: Option<String>,
    /// Import the versions that have files even when others have none.
    pub allow_missing: bool,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    pub tool: String,
    pub table: String,
    /// Versions recorded as applied (as their files write them).
    pub imported: Vec<String>,
    /// Versions the tool applied whose files are not in the directory: not imported.
    pub missing_files: Vec<String>,
    /// Files newer than the last version imported: left pending for `sluice up`.
    pub pending: Vec<String>,
    /// Files the tool has not applied that are older than the last version imported.
    pub out_of_order: Vec<String>,
    /// Files whose content differs from the checksum the tool recorded when it applied them.
    pub checksum_differs: Vec<String>,
    /// Repeatable migrations the tool applied whose file changed since: recorded as applied with the
    /// tool's checksum, so `sluice up` applies them again.
    pub repeatable_changed: Vec<String>,
    /// How the tool's checksums were compared ("not kept" when the tool keeps none).
    pub checksums: String,
    /// sluice's history already had exactly these rows: nothing was written.
    pub noop: bool,
}

/// What the tool's table says about one version.
struct Applied {
    text: String,
    checksum: Option<String>,
}

/// The versions the tool's table records as applied.
struct ToolHistory {
    applied: Vec<Applied>,
    /// Repeatable migrations (Flyway's `R__`, whose version is NULL), by the name of their file
    /// without `R__` and `.sql`: the checksum of the latest successful application, None when the
    /// latest one failed (the file then counts as never applied: `up` applies it).
    repeatable: BTreeMap<String, Option<String>>,
    /// Every file up to this version is applied too (golang-migrate's single row, Flyway's baseline).
    up_to: Option<String>,
}

fn truthy(v: &Option<String>) -> bool {
    matches!(
        v.as_deref().map(str::to_ascii_lowercase).as_deref(),
        Some("t" | "true" | "1")
    )
}

fn text(v: &Option<String>) -> String {
    v.clone().unwrap_or_default()
}

async fn read_tool(
    engine: &mut dyn Engine,
    tool: Layout,
    table: &str,
    kind: EngineKind,
) -> Result<ToolHistory> {
    let t = quote::ident(kind, table);
    let pg = kind == EngineKind::Postgres;
    let q = |cols: &[&str]| {
        cols.iter()
            .map(|c| quote::ident(kind, c))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut applied = Vec::new();
    let mut repeatable = BTreeMap::new();
    let mut up_to = None;
    match tool {
        Layout::Sluice => unreachable!("refused by the caller"),
        Layout::Diesel | Layout::Dbmate => {
            let v = q(&["version"]);
            for r in engine
                .query_text(&format!("SELECT {v} FROM {t} ORDER BY {v}"))
                .await?
            {
                applied.push(Applied {
                    text: text(&r[0]),
                    checksum: None,
                });
            }
        }
        Layout::Sqlx => {
            // The checksum is binary: read as hex on both engines.
            let sum = if pg {
                format!("encode({}, 'hex')", quote::ident(kind, "checksum"))
            } else {
                format!("HEX({})", quote::ident(kind, "checksum"))
            };
            let cols = q(&["version", "success"]);
            let v = q(&["version"]);
            for r in engine
                .query_text(&format!("SELECT {cols}, {sum} FROM {t} ORDER BY {v}"))
                .await?
            {
                // sqlx records a failed migration with success = false: it is not applied.
                if truthy(&r[1]) {
                    applied.push(Applied {
                        text: text(&r[0]),
                        checksum: r[2].as_ref().map(|s| s.to_ascii_lowercase()),
                    });
                }
            }
        }
        Layout::GolangMigrate => {
            let rows = engine
                .query_text(&format!("SELECT {} FROM {t}", q(&["version", "dirty"])))
                .await?;
            if rows.len() > 1 {
                return Err(Error::usage(
                    format!("{table} has {} rows; golang-migrate keeps exactly one", rows.len()),
                    "check that this is golang-migrate's table (pass --from and --table for another tool's)",
                ));
            }
            if let Some(r) = rows.first() {
                let v = text(&r[0]);
                if truthy(&r[1]) {
                    return Err(Error::usage(
                        format!("golang-migrate marked version {v} dirty in {table}: it failed partway, so the database is in an unknown state"),
                        format!("finish or undo version {v} by hand, then `migrate force <version>` to the last version that is fully applied, and run `sluice import` again"),
                    ));
                }
                // -1 is golang-migrate's "no version".
                if v != "-1" {
                    up_to = Some(v);
                }
            }
        }
        Layout::Goose => {
            let cols = q(&["version_id", "is_applied"]);
            let id = q(&["id"]);
            // The latest row of a version decides: goose appends a row on every up and down.
            let mut state: BTreeMap<i64, bool> = BTreeMap::new();
            for r in engine
                .query_text(&format!("SELECT {cols} FROM {t} ORDER BY {id}"))
                .await?
            {
                let v: i64 = text(&r[0]).parse().map_err(|_| {
                    Error::database("reading goose_db_version", "a version_id is not a number")
                })?;
                state.insert(v, truthy(&r[1]));
            }
            // Version 0 is the row goose writes when it creates the table.
            for (v, on) in state {
                if on && v != 0 {
                    applied.push(Applied {
                        text: v.to_string(),
                        checksum: None,
                    });
                }
            }
        }
        Layout::Flyway => {
            let cols = q(&["version", "type", "checksum", "success", "script"]);
            let rank = q(&["installed_rank"]);
            let mut state: BTreeMap<i64, Option<Applied>> = BTreeMap::new();
            for r in engine
                .query_text(&format!("SELECT {cols} FROM {t} ORDER BY {rank}"))
                .await?
            {
                let ty = text(&r[1]).to_ascii_uppercase();
                if ty == "SCHEMA" {
                    continue;
                }
                // A repeatable migration has no version; each application appends a row, the
                // latest decides. `script` is the file's path under the location.
                let Some(v) = r[0].clone() else {
                    let script = text(&r[4]);
                    let file = script.rsplit(['/', '\\']).next().unwrap_or(&script);
                    if let Some(name) = file
                        .strip_prefix("R__")
                        .and_then(|f| f.strip_suffix(".sql"))
                    {
                        let sum = r[2].clone().filter(|_| truthy(&r[3]));
                        repeatable.insert(name.to_string(), sum);
                    }
                    continue;
                };
                if !truthy(&r[3]) {
                    return Err(Error::usage(
                        format!("Flyway recorded version {v} ({}) as failed in {table}", text(&r[4])),
                        format!("finish or undo version {v} by hand and run `flyway repair`, then run `sluice import` again"),
                    ));
                }
                let key = layout::key_of(Layout::Flyway, &v).map_err(|m| {
                    Error::database(format!("reading {table}"), format!("version {v}: {m}"))
                })?;
                match ty.as_str() {
                    "BASELINE" => up_to = Some(v),
                    // An undo or a deletion takes the version back out.
                    "UNDO_SQL" | "DELETE" => {
                        state.insert(key, None);
                    }
                    _ => {
                        state.insert(
                            key,
                            Some(Applied {
                                text: v,
                                checksum: r[2].clone(),
                            }),
                        );
                    }
                }
            }
            applied.extend(state.into_values().flatten());
        }
    }
    Ok(ToolHistory {
        applied,
        repeatable,
        up_to,
    })
}

/// Flyway's checksum: CRC-32 over the file's lines without their line breaks (a leading BOM
/// dropped), as a signed 32-bit number.
pub fn flyway_checksum(bytes: &[u8]) -> i32 {
    let text = String::from_utf8_lossy(bytes);
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let mut crc = 0xFFFF_FFFFu32;
    // Java's readLine splits on \n, \r and \r\n alike.
    let normalised = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines: Vec<&str> = normalised.split('\n').collect();
    if normalised.ends_with('\n') {
        lines.pop();
    }
    for line in lines {
        for b in line.as_bytes() {
            crc ^= u32::from(*b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xEDB8_8320
                } else {
                    crc >> 1
                };
            }
        }
    }
    (!crc) as i32
}

/// sqlx's checksum: SHA-384 of the up file as it is on disk.
pub fn sqlx_checksum(bytes: &[u8]) -> String {
    Sha384::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Whether the file still has the content the tool recorded; None when the tool keeps no checksum.
fn same_content(tool: Layout, m: &Migration, recorded: &str) -> Result<bool> {
    let bytes = std::fs::read(&m.path)
        .map_err(|e| Error::io(format!("reading {}", m.path.display()), e))?;
    Ok(match tool {
        Layout::Sqlx => sqlx_checksum(&bytes) == recorded.trim(),
        Layout::Flyway => recorded.trim().parse::<i32>().ok() == Some(flyway_checksum(&bytes)),
        _ => true,
    })
}

fn label(m: &Migration) -> String {
    format!("{}_{}", m.version_text, m.name)
}

pub async fn import(
    engine: &mut dyn Engine,
    files: &[Migration],
    opts: &ImportOptions,
    ctx: &RunContext,
) -> Result<ImportReport> {
    let tool = opts.tool;
    let Some(default) = default_table(tool) else {
        return Err(Error::usage(
            "import reads another tool's history table, and this directory follows sluice's own layout",
            "pass --from <tool> for the tool that migrated the database (diesel, sqlx, golang-migrate, dbmate, goose, flyway)",
        ));
    };
    let table = opts.table.clone().unwrap_or_else(|| default.to_string());
    let kind = engine.target().engine;
    let schema = if kind == EngineKind::Postgres {
        "current_schema()"
    } else {
        "DATABASE()"
    };
    let lit = match kind {
        EngineKind::Postgres => quote::pg::literal(&table),
        _ => quote::mysql::literal(&table),
    };
    let found = engine
        .query_text(&format!(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = {schema} AND table_name = {lit}"
        ))
        .await?;
    if found.is_empty() {
        return Err(Error::usage(
            format!("this database has no table {table}: {tool} has not migrated it, or keeps its history under another name"),
            "pass --from <tool> for the tool that migrated it, and --table NAME when that tool was configured with another table name",
        ));
    }
    let history = read_tool(engine, tool, &table, kind).await?;

    let by_key: BTreeMap<i64, &Migration> = files.iter().map(|m| (m.version, m)).collect();
    let key = |text: &str| layout::key_of(opts.files_layout, text).ok();
    let mut report = ImportReport {
        tool: tool.name().into(),
        table: table.clone(),
        checksums: match tool {
            Layout::Sqlx => "compared (sqlx's SHA-384 of the up file)".into(),
            Layout::Flyway => "compared (Flyway's CRC-32 of the V and R files)".into(),
            _ => format!("not compared: {tool} keeps no checksum"),
        },
        ..Default::default()
    };
    let mut chosen: BTreeSet<i64> = BTreeSet::new();
    if let Some(v) = &history.up_to {
        match key(v) {
            Some(k) => {
                chosen.extend(by_key.range(..=k).map(|(k, _)| *k));
                // golang-migrate's version is a migration it ran; a Flyway baseline need not be.
                if !by_key.contains_key(&k) && tool == Layout::GolangMigrate {
                    report.missing_files.push(v.clone());
                }
            }
            None => report.missing_files.push(v.clone()),
        }
    }
    for a in &history.applied {
        match key(&a.text).and_then(|k| by_key.get(&k)) {
            Some(m) => {
                chosen.insert(m.version);
                if let Some(sum) = &a.checksum {
                    if !same_content(tool, m, sum)? {
                        report.checksum_differs.push(label(m));
                    }
                }
            }
            None => report.missing_files.push(a.text.clone()),
        }
    }
    // Repeatables the tool applied: recorded with sluice's checksum when the file is what the tool
    // last applied, else with the tool's own (which no file has), so `up` applies the file again.
    let mut checksums: BTreeMap<i64, String> = BTreeMap::new();
    for (name, sum) in &history.repeatable {
        let Some(sum) = sum else { continue };
        match files.iter().find(|m| m.is_repeatable() && m.name == *name) {
            Some(m) => {
                chosen.insert(m.version);
                if !same_content(tool, m, sum)? {
                    checksums.insert(m.version, format!("{tool}:{}", sum.trim()));
                    report.repeatable_changed.push(label(m));
                }
            }
            None => report.missing_files.push(format!("R__{name}")),
        }
    }
    report.imported = chosen.iter().map(|k| label(by_key[k])).collect();
    let last = chosen
        .iter()
        .rfind(|k| !layout::is_repeatable_key(**k))
        .copied()
        .unwrap_or(i64::MIN);
    for m in files.iter().filter(|m| !chosen.contains(&m.version)) {
        if m.version > last || m.is_repeatable() {
            report.pending.push(label(m));
        } else {
            report.out_of_order.push(label(m));
        }
    }
    if !report.missing_files.is_empty() && !opts.allow_missing {
        return Err(Error::Checksum {
            message: format!(
                "{} version(s) that {tool} applied (in {table}) have no migration file here: {}; nothing was imported",
                report.missing_files.len(),
                report.missing_files.join(", ")
            ),
            help: "run import in the checkout that has those migrations, or pass --allow-missing to import the others".into(),
        });
    }

    acquire_lock(engine, ctx).await?;
    let result = record(engine, &by_key, &chosen, &checksums, &mut report, ctx).await;
    let released = engine.release_run_lock().await;
    result.and(released)?;
    Ok(report)
}

async fn record(
    engine: &mut dyn Engine,
    by_key: &BTreeMap<i64, &Migration>,
    chosen: &BTreeSet<i64>,
    checksums: &BTreeMap<i64, String>,
    report: &mut ImportReport,
    ctx: &RunContext,
) -> Result<()> {
    engine.ensure_history().await?;
    let existing = engine.history().await?;
    let now = Utc::now();
    let rows: Vec<HistoryRow> = chosen
        .iter()
        .map(|k| {
            let m = by_key[k];
            HistoryRow {
                version: m.version,
                name: m.name.clone(),
                checksum: checksums.get(k).unwrap_or(&m.checksum).clone(),
                state: RecordState::Applied,
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
            }
        })
        .collect();
    if !existing.is_empty() {
        let shape = |r: &HistoryRow| (r.version, r.name.clone(), r.checksum.clone(), r.state);
        let same = existing.len() == rows.len()
            && existing
                .iter()
                .zip(&rows)
                .all(|(a, b)| shape(a) == shape(b));
        if same {
            report.noop = true;
            return Ok(());
        }
        return Err(Error::usage(
            format!(
                "sluice's history in this database already has {} migration(s) recorded, not the {} this import would record",
                existing.len(),
                rows.len()
            ),
            "import adopts a database sluice has not migrated yet (rerunning the same import is a no-op); see `sluice status` for what sluice recorded",
        ));
    }
    for r in &rows {
        engine.upsert_migration(r).await?;
    }
    engine
        .append_event(&ctx.event(
            EventKind::Import,
            None,
            format!(
                "imported {} version(s) from {}'s table {}",
                rows.len(),
                report.tool,
                report.table
            ),
        ))
        .await?;
    let schema = engine.introspect().await?;
    let last = chosen.iter().rfind(|k| !layout::is_repeatable_key(**k));
    engine.save_snapshot(last.copied(), &schema).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flyway_checksum_ignores_line_breaks_and_bom() {
        let lf = flyway_checksum(b"CREATE TABLE a (id INT);\nSELECT 1;\n");
        assert_eq!(
            lf,
            flyway_checksum(b"\xEF\xBB\xBFCREATE TABLE a (id INT);\r\nSELECT 1;")
        );
        // CRC-32 of the concatenated lines, which zlib's reference value pins.
        assert_eq!(flyway_checksum(b"123456789"), 0xCBF4_3926u32 as i32);
        assert_ne!(
            lf,
            flyway_checksum(b"CREATE TABLE a (id INT);\nSELECT 2;\n")
        );
    }

    #[test]
    fn sqlx_checksum_is_sha384_of_the_bytes() {
        assert_eq!(
            sqlx_checksum(b"abc"),
            "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed8086072ba1e7cc2358baeca134c825a7"
        );
    }
}
