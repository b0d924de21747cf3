//! sluice's own layout, plus per-dialect variants: `<version>_<name>.postgres.sql` and
//! `<version>_<name>.mysql.sql` (MariaDB and MySQL) beside, or instead of, the generic
//! `<version>_<name>.sql`. The engine's own variant wins, else the generic file; a migration with
//! variants for other engines only is a no-op on this one (recorded, nothing runs), so versions stay
//! aligned across engines.
//!
//! Repeatable migrations are `R_<name>.sql` (variants `R_<name>.postgres.sql` / `.mysql.sql`): an up
//! part only, applied after every versioned migration, in the byte order of their names, whenever
//! their checksum differs from the one last applied.

use super::{Dialect, Entry, Layout};
use crate::error::{Error, Result};
use crate::migration::parse_file_name;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The dialect a file name is a variant for, and the generic name it stands for.
pub(crate) fn variant(file: &str) -> Option<(Dialect, String)> {
    for d in [Dialect::Postgres, Dialect::Mysql] {
        if let Some(stem) = file.strip_suffix(&format!(".{}.sql", d.name())) {
            return Some((d, format!("{stem}.sql")));
        }
    }
    None
}

/// The name of a repeatable migration's (generic) file name `R_<name>.sql`, or None for another name.
fn repeatable_name(generic: &str) -> Option<std::result::Result<String, String>> {
    let name = generic.strip_prefix("R_")?.strip_suffix(".sql")?;
    let ok = !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    Some(if ok {
        Ok(name.to_string())
    } else {
        Err(format!(
            "the repeatable migration's name `{name}` must be lowercase letters, digits, `_` or `-` (R_<name>.sql)"
        ))
    })
}

/// The version and name of a generic file name, or a repeatable's name (version None).
fn name_of(generic: &str) -> std::result::Result<(Option<i64>, String), String> {
    match repeatable_name(generic) {
        Some(r) => r.map(|n| (None, n)),
        None => parse_file_name(generic).map(|(v, n)| (Some(v), n)),
    }
}

#[derive(Default)]
struct Group {
    generic: Option<PathBuf>,
    variants: Vec<(Dialect, PathBuf)>,
}

pub(super) fn entries(
    listing: &[(PathBuf, String)],
    dialect: Option<Dialect>,
) -> Result<Vec<Entry>> {
    let mut groups: BTreeMap<String, Group> = BTreeMap::new();
    for (path, file) in listing {
        if !file.to_lowercase().ends_with(".sql") || !path.is_file() {
            continue;
        }
        let (d, generic) = match variant(file) {
            Some((d, g)) => (Some(d), g),
            None => (None, file.clone()),
        };
        name_of(&generic).map_err(|m| Error::MigrationFile {
            path: path.clone(),
            line: None,
            message: format!("malformed migration file name: {m}"),
            help: "rename the file to <version>_<name>.sql, or R_<name>.sql for a repeatable migration (with .postgres.sql / .mysql.sql for one engine's variant), or create new migrations with `sluice new <name>`".into(),
        })?;
        let g = groups.entry(generic).or_default();
        match d {
            Some(d) => g.variants.push((d, path.clone())),
            None => g.generic = Some(path.clone()),
        }
    }
    let mut out = Vec::new();
    for (generic, g) in groups {
        let (version, name) = name_of(&generic).expect("checked above");
        let chosen = match dialect {
            Some(d) => g
                .variants
                .iter()
                .find(|(v, _)| *v == d)
                .map(|(_, p)| p.clone()),
            None => None,
        };
        let (path, noop) = match (chosen, &g.generic) {
            (Some(p), _) => (p, false),
            (None, Some(p)) => (p.clone(), false),
            (None, None) => {
                let (_, other) = &g.variants[0];
                if dialect.is_none() {
                    return Err(Error::usage(
                        format!("{} is a variant for one engine only, and the engine is not known here", other.display()),
                        "give the engine (a database URL, or --target for lint), or add a generic file beside it",
                    ));
                }
                (other.clone(), true)
            }
        };
        let mut e = match version {
            Some(v) => Entry::new(Layout::Sluice, &v.to_string(), &name, path)?,
            None => Entry::repeatable(Layout::Sluice, "R_", &name, name.clone(), path),
        };
        e.noop = noop;
        out.push(e);
    }
    Ok(out)
}
