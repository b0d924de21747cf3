//! diesel: one directory per migration, `<version>_<name>/up.sql`, optional `down.sql` and
//! `metadata.toml` (`run_in_transaction = false`). The version is the name before the first `_`
//! with its `-` removed (`2019-01-01-000000` is `20190101000000`), ordered as text. Files at the
//! top level are ignored, as diesel ignores them.

use super::{build, checksum_files, line_err, read, sluice_ignores, whole, Entry, Layout};
use crate::error::{Error, Result};
use crate::migration::{Migration, SourceFile, TxMode};
use std::path::{Path, PathBuf};

pub(super) fn entries(listing: &[(PathBuf, String)]) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (path, name) in listing {
        if !path.is_dir() {
            continue;
        }
        let as_file = format!("{name}.sql");
        let (version, rest) = super::split_name(Layout::Diesel, path, &as_file, ".sql")?;
        let up = path.join("up.sql");
        // Names diesel would not read are errors, never skipped: a typo must not drop a migration.
        for (f, _) in super::read_dir(path)? {
            let fname = f
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            let lower = fname.to_lowercase();
            let known = ["up.sql", "down.sql", "metadata.toml"].contains(&fname.as_str());
            let looks = ["up.", "down.", "metadata."]
                .iter()
                .any(|p| lower.starts_with(p))
                || lower.ends_with(".sql");
            if !known && looks {
                return Err(Error::MigrationFile {
                    path: f.clone(),
                    line: None,
                    message: format!("`{fname}` is not a file diesel reads"),
                    help: "a diesel migration is `up.sql`, `down.sql` and `metadata.toml`, in lowercase".into(),
                });
            }
        }
        if !up.is_file() {
            return Err(Error::MigrationFile {
                path: path.clone(),
                line: None,
                message: "a diesel migration directory without `up.sql`".into(),
                help: "add up.sql (an empty one is a migration with nothing to do), or move the directory out of the migrations directory".into(),
            });
        }
        let mut e = Entry::new(Layout::Diesel, version, rest, up)?;
        e.down = Some(path.join("down.sql")).filter(|p| p.is_file());
        e.meta = Some(path.join("metadata.toml")).filter(|p| p.is_file());
        out.push(e);
    }
    Ok(out)
}

/// `run_in_transaction = false` runs each statement on its own; any other key diesel keeps as
/// extra data, except a misspelling of that one.
fn metadata(path: &Path, text: &str) -> Result<Option<TxMode>> {
    let table: toml::Table = toml::from_str(text).map_err(|e| Error::MigrationFile {
        path: path.to_path_buf(),
        line: None,
        message: format!("invalid metadata.toml: {}", e.message().trim()),
        help: "write `run_in_transaction = false` (or remove the file)".into(),
    })?;
    let mut tx = None;
    for (k, v) in &table {
        let norm: String = k
            .to_lowercase()
            .chars()
            .filter(|c| c.is_alphanumeric())
            .collect();
        if k == "run_in_transaction" {
            tx = match v.as_bool() {
                Some(false) => Some(TxMode::PerStatement),
                Some(true) => None,
                None => {
                    return Err(Error::MigrationFile {
                        path: path.to_path_buf(),
                        line: text
                            .lines()
                            .position(|l| l.trim_start().starts_with(k.as_str()))
                            .map(|i| i + 1),
                        message: "`run_in_transaction` must be true or false".into(),
                        help: "write `run_in_transaction = false`".into(),
                    })
                }
            };
        } else if norm.contains("transaction") {
            let line = text
                .lines()
                .position(|l| l.contains(k.as_str()))
                .map(|i| i + 1)
                .unwrap_or(1);
            return Err(line_err(
                path,
                line,
                format!("`{k}` looks like diesel's `run_in_transaction` but is not it"),
                "write `run_in_transaction = false` exactly: diesel keeps any other key as extra data, so the migration would run in a transaction",
            ));
        }
    }
    Ok(tx)
}

pub(super) fn load(e: &Entry) -> Result<Migration> {
    let up_text = read(&e.up)?;
    let mut ignores = sluice_ignores(Layout::Diesel, &e.up, &up_text, 0)?;
    let meta_text = e.meta.as_ref().map(|p| read(p)).transpose()?;
    let tx = match (&e.meta, &meta_text) {
        (Some(p), Some(t)) => metadata(p, t)?,
        _ => None,
    };
    let mut more = Vec::new();
    let mut roles: Vec<(&str, String)> = vec![("up.sql", up_text.clone())];
    let down = match &e.down {
        Some(p) => {
            let text = read(p)?;
            ignores.extend(sluice_ignores(Layout::Diesel, p, &text, 1)?);
            roles.push(("down.sql", text.clone()));
            let part = whole(&text, 1, tx);
            more.push(SourceFile {
                path: p.clone(),
                text,
            });
            Some(part)
        }
        None => None,
    };
    if let (Some(p), Some(t)) = (&e.meta, meta_text) {
        roles.push(("metadata.toml", t.clone()));
        more.push(SourceFile {
            path: p.clone(),
            text: t,
        });
    }
    let refs: Vec<(&str, &str)> = roles.iter().map(|(r, t)| (*r, t.as_str())).collect();
    let checksum = checksum_files(&refs);
    let up = whole(&up_text, 0, tx);
    Ok(build(
        e, up_text, more, checksum, up, down, "down.sql", ignores,
    ))
}
