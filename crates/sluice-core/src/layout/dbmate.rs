//! dbmate: one `<version>_<name>.sql` file with `-- migrate:up` and `-- migrate:down` (dbmate
//! allows no space after `--`); options follow the marker, `transaction:false` runs the part
//! outside a transaction (each statement on its own here). Versions are ordered as text.

use super::{build, line_err, near_miss_of, read, sluice_ignores, Entry, Layout};
use crate::error::Result;
use crate::migration::{has_sql, Migration, Part, TxMode};

/// `Some((is_up, options))` when the trimmed line is a dbmate marker.
pub(super) fn marker(trimmed: &str) -> Option<(bool, &str)> {
    let rest = trimmed
        .strip_prefix("--")?
        .trim_start()
        .strip_prefix("migrate:")?;
    let (up, opts) = if let Some(o) = rest.strip_prefix("up") {
        (true, o)
    } else if let Some(o) = rest.strip_prefix("down") {
        (false, o)
    } else {
        return None;
    };
    (opts.is_empty() || opts.starts_with(char::is_whitespace)).then_some((up, opts))
}

pub(super) fn load(e: &Entry) -> Result<Migration> {
    let path = &e.up;
    let text = read(path)?;
    let ignores = sluice_ignores(Layout::Dbmate, path, &text, 0)?;
    // (start of the part, end, transaction option); the end is filled at the next marker.
    let mut parts: Vec<(bool, usize, usize, Option<TxMode>, usize)> = Vec::new();
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let lineno = i + 1;
        let t = line.trim();
        let Some((up, opts)) = marker(t) else {
            if let Some(found) = near_miss_of(line, "migrate", &["up", "down"]) {
                return Err(line_err(
                    path,
                    lineno,
                    format!("`{found}` looks like a dbmate marker but is not one"),
                    "dbmate markers are written `-- migrate:up` and `-- migrate:down` (options after a space, e.g. `transaction:false`), in lowercase, alone on their line",
                ));
            }
            continue;
        };
        let mut tx = None;
        for opt in opts.split_whitespace() {
            tx =
                match opt {
                    "transaction:false" => Some(TxMode::PerStatement),
                    "transaction:true" => None,
                    _ => return Err(line_err(
                        path,
                        lineno,
                        format!("unknown dbmate option `{opt}`"),
                        "dbmate reads `transaction:false` (or `transaction:true`) after the marker",
                    )),
                };
        }
        match (parts.last(), up) {
            (None, true) => {
                if has_sql(&text[..start]) {
                    return Err(line_err(
                        path,
                        lineno,
                        "SQL before `-- migrate:up` belongs to no part".into(),
                        "move it below `-- migrate:up`",
                    ));
                }
            }
            (None, false) => {
                return Err(line_err(
                    path,
                    lineno,
                    "`-- migrate:down` before `-- migrate:up`".into(),
                    "put the up part first, then `-- migrate:down` and the down part",
                ))
            }
            (Some((true, ..)), false) => {}
            (Some(_), _) => {
                return Err(line_err(
                    path,
                    lineno,
                    format!(
                        "a second `-- migrate:{}` marker",
                        if up { "up" } else { "down" }
                    ),
                    "a dbmate migration has one `-- migrate:up` and at most one `-- migrate:down`",
                ))
            }
        }
        if let Some(last) = parts.last_mut() {
            last.2 = start;
        }
        parts.push((up, offset, text.len(), tx, lineno));
    }
    let part = |p: &(bool, usize, usize, Option<TxMode>, usize)| Part {
        sql: text[p.1..p.2].to_string(),
        offset: p.1,
        tx_directive: p.3,
        file: 0,
    };
    let up = match parts.first() {
        Some(p) => part(p),
        None => {
            return Err(super::line_err(
                path,
                1,
                "no `-- migrate:up` marker".into(),
                "dbmate migrations start with `-- migrate:up`; put the up SQL under it",
            ))
        }
    };
    let down = parts.get(1).map(part);
    let checksum = crate::migration::checksum(&text);
    Ok(build(
        e,
        text,
        vec![],
        checksum,
        up,
        down,
        "`-- migrate:down` section",
        ignores,
    ))
}
