//! golang-migrate: `<version>_<name>.up.sql` and `<version>_<name>.down.sql`, versions numbers of
//! any number of digits (sluice records up to 18). The tool has no transaction option: the part's
//! statements decide, as in sluice's own layout.

use super::{build, checksum_files, read, sluice_ignores, whole, Entry, Layout};
use crate::error::Result;
use crate::migration::{Migration, SourceFile};
use std::path::PathBuf;

pub(super) fn entries(listing: &[(PathBuf, String)]) -> Result<Vec<Entry>> {
    super::sqlx::up_down_entries(Layout::GolangMigrate, listing, false)
}

pub(super) fn load(e: &Entry) -> Result<Migration> {
    let up_text = read(&e.up)?;
    let mut ignores = sluice_ignores(Layout::GolangMigrate, &e.up, &up_text, 0)?;
    let mut roles = vec![("up", up_text.clone())];
    let mut more = Vec::new();
    let down = match &e.down {
        Some(p) => {
            let text = read(p)?;
            ignores.extend(sluice_ignores(Layout::GolangMigrate, p, &text, 1)?);
            roles.push(("down", text.clone()));
            let part = whole(&text, 1, None);
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
    let up = whole(&up_text, 0, None);
    Ok(build(
        e,
        up_text,
        more,
        checksum,
        up,
        down,
        "`.down.sql` file",
        ignores,
    ))
}
