//! sqlx: `<version>_<name>.sql` (up only, irreversible) or `<version>_<name>.up.sql` with
//! `<version>_<name>.down.sql`; versions are numbers. A file that starts with exactly
//! `-- no-transaction` runs outside a transaction: each statement on its own here.

use super::{build, checksum_files, line_err, read, sluice_ignores, whole, Entry, Layout};
use crate::error::{Error, Result};
use crate::migration::{Migration, SourceFile, TxMode};
use std::collections::BTreeMap;
use std::path::PathBuf;

pub(super) const NO_TX: &str = "-- no-transaction";

pub(super) fn entries(listing: &[(PathBuf, String)]) -> Result<Vec<Entry>> {
    up_down_entries(Layout::Sqlx, listing, true)
}

/// Shared with golang-migrate: `.up.sql` / `.down.sql` pairs, plus (sqlx only) plain `.sql` files.
pub(super) fn up_down_entries(
    layout: Layout,
    listing: &[(PathBuf, String)],
    plain_allowed: bool,
) -> Result<Vec<Entry>> {
    let mut ups: BTreeMap<(String, String), Entry> = BTreeMap::new();
    let mut downs: Vec<(String, String, PathBuf)> = Vec::new();
    for (path, file) in listing {
        if path.is_dir() || !file.to_lowercase().ends_with(".sql") {
            continue;
        }
        let (suffix, kind) = if file.ends_with(".up.sql") {
            (".up.sql", "up")
        } else if file.ends_with(".down.sql") {
            (".down.sql", "down")
        } else if plain_allowed
            && !file.to_lowercase().ends_with(".up.sql")
            && !file.to_lowercase().ends_with(".down.sql")
        {
            (".sql", "plain")
        } else {
            (".up.sql", "up")
        };
        let (version, name) = super::split_name(layout, path, file, suffix)?;
        let key = (version.to_string(), name.to_string());
        if kind == "down" {
            downs.push((key.0, key.1, path.clone()));
            continue;
        }
        let e = Entry::new(layout, version, name, path.clone())?;
        if let Some(other) = ups.get(&key) {
            return Err(Error::MigrationFile {
                path: path.clone(),
                line: None,
                message: format!("version {version} is also used by {}", other.up.display()),
                help: "keep either the plain `.sql` file or the `.up.sql` / `.down.sql` pair"
                    .into(),
            });
        }
        ups.insert(key, e);
    }
    for (v, n, path) in downs {
        match ups.get_mut(&(v.clone(), n.clone())) {
            Some(e) if e.up.to_string_lossy().ends_with(".up.sql") => e.down = Some(path),
            _ => {
                return Err(Error::MigrationFile {
                    path: path.clone(),
                    line: None,
                    message: format!("a down file without its up file `{v}_{n}.up.sql`"),
                    help: "add the up file with the same version and name, or remove the down file"
                        .into(),
                })
            }
        }
    }
    Ok(ups.into_values().collect())
}

/// `-- no-transaction` counts only as the file's very start (as sqlx reads it); the same words
/// anywhere else, or spelled otherwise, are an error rather than a transaction silently kept.
fn no_transaction(path: &std::path::Path, text: &str) -> Result<Option<TxMode>> {
    for (i, line) in text.lines().enumerate() {
        let norm: String = line
            .to_lowercase()
            .chars()
            .filter(|c| !"-#/* _\t".contains(*c))
            .collect();
        if norm.starts_with("notransaction") && !(i == 0 && text.starts_with(NO_TX)) {
            return Err(line_err(
                path,
                i + 1,
                format!("`{}` looks like sqlx's `-- no-transaction` but sqlx does not read it", line.trim()),
                "sqlx runs a file outside a transaction only when it starts with exactly `-- no-transaction`; write that as the first line, or reword the comment",
            ));
        }
    }
    Ok(text.starts_with(NO_TX).then_some(TxMode::PerStatement))
}

pub(super) fn load(e: &Entry) -> Result<Migration> {
    let up_text = read(&e.up)?;
    let up_tx = no_transaction(&e.up, &up_text)?;
    let mut ignores = sluice_ignores(Layout::Sqlx, &e.up, &up_text, 0)?;
    let plain = !e.up.to_string_lossy().ends_with(".up.sql");
    let mut roles = vec![("up", up_text.clone())];
    let mut more = Vec::new();
    let down = match &e.down {
        Some(p) => {
            let text = read(p)?;
            let tx = no_transaction(p, &text)?;
            ignores.extend(sluice_ignores(Layout::Sqlx, p, &text, 1)?);
            roles.push(("down", text.clone()));
            let part = whole(&text, 1, tx);
            more.push(SourceFile {
                path: p.clone(),
                text,
            });
            Some(part)
        }
        None => None,
    };
    let refs: Vec<(&str, &str)> = roles.iter().map(|(r, t)| (*r, t.as_str())).collect();
    let checksum = checksum_files(&refs);
    let up = whole(&up_text, 0, up_tx);
    let missing = if plain {
        "down part (a plain sqlx `.sql` migration has none; the `.up.sql` / `.down.sql` form has)"
    } else {
        "`.down.sql` file"
    };
    Ok(build(
        e, up_text, more, checksum, up, down, missing, ignores,
    ))
}
