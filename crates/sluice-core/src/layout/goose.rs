//! goose (SQL migrations): one `<version>_<name>.sql` file with `-- +goose Up` and
//! `-- +goose Down`; `-- +goose StatementBegin` / `StatementEnd` wrap a statement holding `;`
//! (sluice's splitter reads such bodies itself; the pairs are checked); `-- +goose NO TRANSACTION`
//! runs the file outside a transaction (each statement on its own here). Versions are numbers.

use super::{build, line_err, near_miss_of, read, sluice_ignores, Entry, Layout};
use crate::error::Result;
use crate::migration::{has_sql, Migration, Part, TxMode};

pub(super) const PREFIX: &str = "-- +goose";

const HELP: &str = "goose annotations are `-- +goose Up`, `-- +goose Down`, `-- +goose StatementBegin`, `-- +goose StatementEnd` and `-- +goose NO TRANSACTION`, alone on their line";

pub(super) fn load(e: &Entry) -> Result<Migration> {
    let path = &e.up;
    let text = read(path)?;
    let ignores = sluice_ignores(Layout::Goose, path, &text, 0)?;
    let mut no_tx = false;
    // (is up, start, end)
    let mut parts: Vec<(bool, usize, usize)> = Vec::new();
    let mut open_block: Option<usize> = None;
    let mut offset = 0;
    for (i, line) in text.split_inclusive('\n').enumerate() {
        let start = offset;
        offset += line.len();
        let lineno = i + 1;
        let t = line.trim();
        let Some(cmd) = t
            .strip_prefix(PREFIX)
            .filter(|r| r.is_empty() || r.starts_with(' '))
        else {
            if let Some(found) = near_miss_of(
                line,
                "goose",
                &["up", "down", "statement", "no transaction", "no"],
            ) {
                return Err(line_err(
                    path,
                    lineno,
                    format!("`{found}` looks like a goose annotation but is not one"),
                    HELP,
                ));
            }
            continue;
        };
        let cmd = cmd.trim().to_lowercase();
        match cmd.as_str() {
            "up" | "down" => {
                let up = cmd == "up";
                if let Some(l) = open_block {
                    return Err(line_err(
                        path,
                        l,
                        "`-- +goose StatementBegin` without `-- +goose StatementEnd`".into(),
                        HELP,
                    ));
                }
                match (parts.last(), up) {
                    (None, true) => {
                        if has_sql(&text[..start]) {
                            return Err(line_err(
                                path,
                                lineno,
                                "SQL before `-- +goose Up` belongs to no part".into(),
                                "move it below `-- +goose Up`",
                            ));
                        }
                    }
                    (None, false) => {
                        return Err(line_err(
                            path,
                            lineno,
                            "`-- +goose Down` before `-- +goose Up`".into(),
                            "put the up part first",
                        ))
                    }
                    (Some((true, ..)), false) => {}
                    (Some(_), _) => {
                        return Err(line_err(
                            path,
                            lineno,
                            format!("a second `{t}`"),
                            "a goose migration has one Up and at most one Down section",
                        ))
                    }
                }
                if let Some(last) = parts.last_mut() {
                    last.2 = start;
                }
                parts.push((up, offset, text.len()));
            }
            "statementbegin" => {
                if parts.is_empty() {
                    return Err(line_err(
                        path,
                        lineno,
                        "`-- +goose StatementBegin` before `-- +goose Up`".into(),
                        HELP,
                    ));
                }
                if open_block.is_some() {
                    return Err(line_err(
                        path,
                        lineno,
                        "a second `-- +goose StatementBegin` before `-- +goose StatementEnd`"
                            .into(),
                        HELP,
                    ));
                }
                open_block = Some(lineno);
            }
            "statementend" => {
                if open_block.take().is_none() {
                    return Err(line_err(
                        path,
                        lineno,
                        "`-- +goose StatementEnd` without `-- +goose StatementBegin`".into(),
                        HELP,
                    ));
                }
            }
            "no transaction" => no_tx = true,
            "envsub on" | "envsub off" => {
                return Err(line_err(
                    path,
                    lineno,
                    format!("`{t}`: sluice does not substitute environment variables"),
                    "write the values into the migration, or apply it with goose",
                ))
            }
            _ => {
                return Err(line_err(
                    path,
                    lineno,
                    format!("unknown goose annotation `{t}`"),
                    HELP,
                ))
            }
        }
    }
    if let Some(l) = open_block {
        return Err(line_err(
            path,
            l,
            "`-- +goose StatementBegin` without `-- +goose StatementEnd`".into(),
            HELP,
        ));
    }
    let tx = no_tx.then_some(TxMode::PerStatement);
    let part = |p: &(bool, usize, usize)| Part {
        sql: text[p.1..p.2].to_string(),
        offset: p.1,
        tx_directive: tx,
        file: 0,
    };
    let up = match parts.first() {
        Some(p) => part(p),
        None => {
            return Err(line_err(
                path,
                1,
                "no `-- +goose Up` annotation".into(),
                "goose SQL migrations start with `-- +goose Up`; put the up SQL under it",
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
        "`-- +goose Down` section",
        ignores,
    ))
}
