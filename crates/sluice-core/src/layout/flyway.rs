//! Flyway (SQL migrations): `V<version>__<description>.sql`, its undo `U<version>__<description>.sql`,
//! and a `<file>.conf` beside a script with `executeInTransaction=false` (each statement on its own
//! here). Versions are numbers separated by `.` or `_` (`1.2.10`, `1_2`), compared part by part
//! as numbers, trailing zero parts ignored (`1.0` is `1`).
//!
//! The history keys a migration by one integer, so a dotted version is encoded into one that orders
//! as Flyway orders versions and never changes when other files are added: each part (leading
//! zeros dropped) is written as its digit count (`1`..`8`, or `9` and the count minus 9 for longer
//! parts) followed by its digits, and the result is padded with zeros to 18 digits. `1` is
//! 110000000000000000, `1.2.10` is 111221000000000000, `20190101120000` is
//! 952019010112000000. A version that needs more than 18 digits is refused.
//!
//! Repeatable migrations `R__<description>.sql` (and their `.conf`) are read as sluice's repeatables:
//! applied after the versioned ones whenever their checksum changes, in the order Flyway uses, by
//! description (`_` read as a space, as Flyway does), compared as Java compares strings.
//!
//! Not read yet (each an error naming the file, never a skipped file): callbacks
//! (`beforeMigrate.sql`, ...), and `${placeholders}`.

use super::{build, checksum_files, line_err, read, sluice_ignores, Entry, Layout};
use crate::error::{Error, Result};
use crate::migration::{Migration, SourceFile, TxMode};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The history key of a Flyway version, or why it has none.
pub fn version_key(version: &str) -> std::result::Result<i64, String> {
    let mut parts: Vec<&str> = version.split(['.', '_']).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return Err(format!(
            "the version `{version}` must be numbers separated by `.` or `_`, e.g. V1.2.10__add_users.sql"
        ));
    }
    let parts: Vec<&str> = {
        let trimmed: Vec<&str> = parts
            .drain(..)
            .map(|p| {
                let t = p.trim_start_matches('0');
                if t.is_empty() {
                    "0"
                } else {
                    t
                }
            })
            .collect();
        let keep = trimmed.iter().rposition(|p| *p != "0").map_or(1, |i| i + 1);
        trimmed[..keep].to_vec()
    };
    let mut key = String::new();
    for p in parts {
        match p.len() {
            n @ 1..=8 => key.push_str(&n.to_string()),
            n @ 9..=17 => key.push_str(&format!("9{}", n - 9)),
            _ => {
                return Err(format!(
                    "the version `{version}` has a part too long to record"
                ))
            }
        }
        key.push_str(p);
    }
    if key.len() > 18 {
        return Err(format!(
            "the version `{version}` is too long to record in sluice's history (it encodes to {} digits, at most 18)",
            key.len()
        ));
    }
    while key.len() < 18 {
        key.push('0');
    }
    Ok(key.parse().expect("18 digits fit an i64"))
}

/// The version a key stands for, parts joined with `.` (the inverse of `version_key`).
pub fn version_text(key: i64) -> Option<String> {
    let digits = format!("{key:018}");
    let b = digits.as_bytes();
    let mut parts = Vec::new();
    let mut i = 0;
    while i < b.len() && b[i] != b'0' {
        let mut len = usize::from(b[i] - b'0');
        i += 1;
        if len == 9 {
            len = 9 + usize::from(*b.get(i)? - b'0');
            i += 1;
        }
        parts.push(digits.get(i..i + len)?.to_string());
        i += len;
    }
    (!parts.is_empty() && b[i.min(b.len())..].iter().all(|c| *c == b'0')).then(|| parts.join("."))
}

/// `(prefix, version, description)` of a Flyway script name.
fn split(file: &str) -> Option<(char, &str, &str)> {
    let stem = file.strip_suffix(".sql")?;
    let prefix = stem.chars().next()?;
    let (version, desc) = stem[1..].split_once("__")?;
    Some((prefix, version, desc))
}

fn bad_name(path: &Path, message: String) -> Error {
    Error::MigrationFile {
        path: path.to_path_buf(),
        line: None,
        message: format!("malformed migration file name: {message}"),
        help: "this directory is read as flyway: name versioned migrations V<version>__<description>.sql, their undo U<version>__<description>.sql, and repeatable ones R__<description>.sql".into(),
    }
}

pub(super) fn entries(listing: &[(PathBuf, String)]) -> Result<Vec<Entry>> {
    let mut versioned: BTreeMap<i64, Entry> = BTreeMap::new();
    let mut undo: Vec<(i64, PathBuf)> = Vec::new();
    let mut repeatable: Vec<Entry> = Vec::new();
    let names: Vec<&str> = listing.iter().map(|(_, n)| n.as_str()).collect();
    for (path, file) in listing {
        if path.is_dir() {
            continue;
        }
        let lower = file.to_lowercase();
        if lower.ends_with(".sql.conf") {
            if !names.contains(&file.trim_end_matches(".conf")) {
                return Err(Error::MigrationFile {
                    path: path.clone(),
                    line: None,
                    message: "a script configuration without its script".into(),
                    help: "name it after the script it configures, e.g. V2__add_index.sql.conf beside V2__add_index.sql".into(),
                });
            }
            continue;
        }
        if !lower.ends_with(".sql") {
            continue;
        }
        let Some((prefix, version, desc)) = split(file).filter(|(p, _, _)| "VUR".contains(*p))
        else {
            let stem = file.trim_end_matches(".sql");
            if ["before", "after"].iter().any(|p| stem.starts_with(p)) {
                return Err(Error::MigrationFile {
                    path: path.clone(),
                    line: None,
                    message: "a Flyway callback: sluice does not run callbacks".into(),
                    help:
                        "fold what it does into a migration, or run it yourself around `sluice up`"
                            .into(),
                });
            }
            return Err(bad_name(
                path,
                format!("`{file}` is not V<version>__<description>.sql"),
            ));
        };
        if desc.is_empty() {
            return Err(bad_name(
                path,
                format!("`{file}` has no description after `__`"),
            ));
        }
        if prefix == 'R' {
            if !version.is_empty() {
                return Err(bad_name(
                    path,
                    format!(
                        "`{file}`: a repeatable migration has no version (R__<description>.sql)"
                    ),
                ));
            }
            let mut e = Entry::repeatable(
                Layout::Flyway,
                "R__",
                desc,
                desc.replace('_', " "),
                path.clone(),
            );
            e.meta = Some(path.with_file_name(format!("{file}.conf"))).filter(|p| p.is_file());
            repeatable.push(e);
            continue;
        }
        let key = version_key(version).map_err(|m| bad_name(path, m))?;
        if prefix == 'U' {
            undo.push((key, path.clone()));
            continue;
        }
        let mut e = Entry::new_keyed(Layout::Flyway, version, key, desc, path.clone());
        e.meta = Some(path.with_file_name(format!("{file}.conf"))).filter(|p| p.is_file());
        if let Some(other) = versioned.get(&key) {
            return Err(Error::MigrationFile {
                path: path.clone(),
                line: None,
                message: format!("version {version} is also used by {} (Flyway ignores trailing zero parts and leading zeros)", other.up.display()),
                help: "every migration needs its own version: rename one of the files".into(),
            });
        }
        versioned.insert(key, e);
    }
    for (key, path) in undo {
        let e = versioned
            .get_mut(&key)
            .ok_or_else(|| Error::MigrationFile {
                path: path.clone(),
                line: None,
                message: "an undo migration without a versioned migration of the same version"
                    .into(),
                help: "add the V<version>__ migration it undoes, or remove the U file".into(),
            })?;
        if e.down.is_some() {
            return Err(Error::MigrationFile {
                path: path.clone(),
                line: None,
                message: format!("a second undo migration for version {}", e.version_text),
                help: "keep one U<version>__ file per version".into(),
            });
        }
        e.down = Some(path);
    }
    Ok(versioned.into_values().chain(repeatable).collect())
}

/// `executeInTransaction=false` from a script's `.conf`; other settings are refused rather than
/// ignored, since each changes how Flyway would run the script.
fn conf(path: &Path, text: &str) -> Result<Option<TxMode>> {
    let mut tx = None;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let (k, v) = t
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .unwrap_or((t, ""));
        match (k, v) {
            ("executeInTransaction", "false") => tx = Some(TxMode::PerStatement),
            ("executeInTransaction", "true") => tx = None,
            ("encoding", v)
                if v.eq_ignore_ascii_case("utf-8") || v.eq_ignore_ascii_case("utf8") => {}
            _ if k.to_lowercase().contains("transaction") && k != "executeInTransaction" => {
                return Err(line_err(
                    path,
                    i + 1,
                    format!("`{k}` looks like Flyway's `executeInTransaction` but is not it"),
                    "write `executeInTransaction=false` exactly",
                ));
            }
            _ => {
                return Err(line_err(path, i + 1, format!("sluice does not read the script setting `{t}`"), "sluice reads `executeInTransaction=true|false` (and `encoding=UTF-8`) here; remove the others or apply the script with Flyway"));
            }
        }
    }
    Ok(tx)
}

/// Flyway replaces `${name}` in scripts by default; sluice does not, so such a script is refused.
fn no_placeholders(path: &Path, text: &str) -> Result<()> {
    if let Some(i) = text.lines().position(|l| l.contains("${")) {
        return Err(line_err(
            path,
            i + 1,
            "a Flyway placeholder (`${...}`): sluice does not replace placeholders".into(),
            "write the value into the migration",
        ));
    }
    Ok(())
}

pub(super) fn load(e: &Entry) -> Result<Migration> {
    let up_text = read(&e.up)?;
    no_placeholders(&e.up, &up_text)?;
    let mut ignores = sluice_ignores(Layout::Flyway, &e.up, &up_text, 0)?;
    let mut roles = vec![("up", up_text.clone())];
    let mut more = Vec::new();
    let mut tx = None;
    let mut conf_file = None;
    if let Some(p) = &e.meta {
        let t = read(p)?;
        tx = conf(p, &t)?;
        roles.push(("conf", t.clone()));
        conf_file = Some(SourceFile {
            path: p.clone(),
            text: t,
        });
    }
    let down = match &e.down {
        Some(p) => {
            let text = read(p)?;
            no_placeholders(p, &text)?;
            ignores.extend(sluice_ignores(Layout::Flyway, p, &text, 1)?);
            // The undo script's own .conf, when there is one.
            let undo_conf = p.with_file_name(format!(
                "{}.conf",
                p.file_name().unwrap_or_default().to_string_lossy()
            ));
            let mut down_tx = None;
            if undo_conf.is_file() {
                let t = read(&undo_conf)?;
                down_tx = conf(&undo_conf, &t)?;
                roles.push(("undo conf", t));
            }
            roles.push(("undo", text.clone()));
            let part = super::whole(&text, 1, down_tx);
            more.push(SourceFile {
                path: p.clone(),
                text,
            });
            Some(part)
        }
        None => None,
    };
    more.extend(conf_file);
    let refs: Vec<(&str, &str)> = roles.iter().map(|(r, t)| (*r, t.as_str())).collect();
    let checksum = checksum_files(&refs);
    let up = super::whole(&up_text, 0, tx);
    Ok(build(
        e,
        up_text,
        more,
        checksum,
        up,
        down,
        "undo migration (U<version>__...sql)",
        ignores,
    ))
}
