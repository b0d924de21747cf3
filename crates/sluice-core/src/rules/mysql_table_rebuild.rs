//! `mysql-table-rebuild` (MariaDB/MySQL): statements that rebuild a whole existing table —
//! `ALTER TABLE ... ENGINE=`, `ALTER TABLE ... FORCE`, `ALTER TABLE ... CONVERT TO CHARACTER SET`,
//! `OPTIMIZE TABLE`.
//!
//! Verified on MariaDB 10.11: `ENGINE=InnoDB` on an InnoDB table, `FORCE` and `OPTIMIZE TABLE` ("doing
//! recreate + analyze") rebuild in place with LOCK=NONE: writes continue, but every row and index is
//! rewritten (disk for a second copy, I/O, and replicas apply the ALTER for as long again, lagging
//! meanwhile). Those are Warnings offline, Errors when connected and the table is large, nothing when it
//! is small. `CONVERT TO CHARACTER SET` (latin1 or utf8mb3 to utf8mb4) and `ENGINE=` another engine need
//! ALGORITHM=COPY: writes are blocked for the whole copy, always an Error.

use super::prelude::*;
use super::require_lock_timeout::{name_sql, objects_after, tokens, Tok};
use crate::target::Target;

pub const RULE: Rule = Rule {
    id: "mysql-table-rebuild",
    severity: Severity::Error,
    engines: Engines::MySqlFamily,
    summary: "ALTER TABLE ... ENGINE= / FORCE / CONVERT TO CHARACTER SET, or OPTIMIZE TABLE, on an existing table",
    why: "the whole table is rebuilt. CONVERT TO CHARACTER SET and a change of storage engine copy it \
          (ALGORITHM=COPY): every write waits until the copy ends. ENGINE=InnoDB on an InnoDB table, FORCE and \
          OPTIMIZE TABLE rebuild it in place with writes allowed, but rewrite every row and index: a second copy \
          on disk, heavy I/O, and replicas that apply the statement for as long again, lagging meanwhile",
    safe: "-- large tables: an online schema change tool (gh-ost, pt-online-schema-change), or a maintenance window;\n\
           -- for utf8mb4 on new data only, instant: ALTER TABLE t DEFAULT CHARACTER SET utf8mb4;",
    check,
};

/// Severity of an online (INPLACE, LOCK=NONE) rebuild of `table`: Warning offline, Error when connected
/// and the table is large, None when connected and it is small. None as well when the statement forces
/// a blocking mode itself (ALGORITHM=COPY, LOCK=SHARED/EXCLUSIVE): the rebuild is then not online, and
/// `mysql-copy-algorithm` / `mysql-lock-option` report it.
pub(super) fn online_rebuild_severity(st: &Stmt, ctx: &Ctx, table: &QName) -> Option<Severity> {
    if let Some(o) = super::mysql_copy_algorithm::options(st, ctx.target.engine) {
        if o.algorithm.as_deref() == Some("COPY")
            || matches!(o.lock.as_deref(), Some("SHARED" | "EXCLUSIVE"))
        {
            return None;
        }
    }
    match ctx.is_large(table) {
        None => Some(Severity::Warning),
        Some(true) => Some(Severity::Error),
        Some(false) => None,
    }
}

/// `target >= major.minor.patch`, where a MySQL target written without a patch number (`mysql:8.0`) is
/// taken as the latest patch of that series.
pub(super) fn mysql_at_least(t: Target, major: u32, minor: u32, patch: u32) -> bool {
    if t.major == major && t.minor == minor && t.patch == 0 {
        return true;
    }
    t.at_least_patch(major, minor, patch)
}

#[derive(Debug, PartialEq)]
enum Kind {
    Optimize,
    Force,
    EngineInnoDb,
    EngineOther(String),
    Convert(String),
}

/// What the statement rebuilds, read from its tokens at the top level (not inside parentheses, strings or
/// quoted identifiers): the IR's keyword fallback only says that one of the words occurs somewhere.
fn kinds(st: &Stmt, engine: EngineKind) -> Vec<Kind> {
    if st.keywords.first().map(String::as_str) == Some("OPTIMIZE") {
        return vec![Kind::Optimize];
    }
    let toks = tokens(&st.sql, engine);
    // Clauses start right after the table name (and MariaDB's WAIT n / NOWAIT) and after each
    // top-level comma; a word elsewhere (`ADD COLUMN engine ...`) is not a clause.
    let mut starts = Vec::new();
    if let Some(t) = toks.iter().position(|t| *t == Tok::Word("TABLE".into())) {
        let mut i = t + 2;
        while toks.get(i) == Some(&Tok::Punct('.')) {
            i += 2;
        }
        match toks.get(i) {
            Some(Tok::Word(w)) if w == "NOWAIT" => i += 1,
            Some(Tok::Word(w)) if w == "WAIT" => i += 2,
            _ => {}
        }
        starts.push(i);
    }
    let mut depth = 0i32;
    for (i, t) in toks.iter().enumerate() {
        match t {
            Tok::Punct('(') => depth += 1,
            Tok::Punct(')') => depth -= 1,
            Tok::Punct(',') if depth == 0 => starts.push(i + 1),
            _ => {}
        }
    }
    let word = |j: usize| match toks.get(j) {
        Some(Tok::Word(w)) => Some(w.as_str()),
        _ => None,
    };
    let mut out = Vec::new();
    for i in starts {
        match word(i) {
            Some("FORCE") => out.push(Kind::Force),
            Some("ENGINE") => {
                let j = if toks.get(i + 1) == Some(&Tok::Punct('=')) {
                    i + 2
                } else {
                    i + 1
                };
                let e = match toks.get(j) {
                    Some(Tok::Word(e)) => e.clone(),
                    Some(Tok::Quoted(e)) | Some(Tok::Str(e)) => e.to_ascii_uppercase(),
                    _ => continue,
                };
                if e == "INNODB" {
                    out.push(Kind::EngineInnoDb)
                } else {
                    out.push(Kind::EngineOther(e))
                }
            }
            Some("CONVERT") if word(i + 1) == Some("TO") => {
                let j = match (word(i + 2), word(i + 3)) {
                    (Some("CHARACTER"), Some("SET")) => i + 4,
                    (Some("CHARSET"), _) => i + 3,
                    _ => continue,
                };
                let cs = match toks.get(j) {
                    Some(Tok::Word(c)) => c.to_lowercase(),
                    Some(Tok::Quoted(c)) | Some(Tok::Str(c)) => c.to_lowercase(),
                    _ => "…".into(),
                };
                out.push(Kind::Convert(cs));
            }
            _ => {}
        }
    }
    out
}

fn check(st: &Stmt, ctx: &Ctx, out: &mut Vec<Hit>) {
    let Some(Action::MySqlRebuild { table, .. }) = st
        .actions()
        .iter()
        .find(|a| matches!(a, Action::MySqlRebuild { .. }))
    else {
        return;
    };
    let tables: Vec<QName> = match table {
        Some(t) => vec![t.clone()],
        None => objects_after(st, ctx.target.engine, &["TABLE"]),
    };
    let tables: Vec<QName> = tables
        .into_iter()
        .filter(|t| !ctx.is_new_table(t))
        .collect();
    let Some(first) = tables.first() else {
        return;
    };
    let tq = name_sql(ctx.target.engine, first);
    let list = tables
        .iter()
        .map(|t| format!("`{t}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let kinds = kinds(st, ctx.target.engine);
    let copy = kinds.iter().find_map(|k| match k {
        Kind::Convert(cs) => Some(format!(
            "CONVERT TO CHARACTER SET {cs} copies {list} (ALGORITHM=COPY): every write waits until the whole table is copied"
        )),
        Kind::EngineOther(e) => Some(format!(
            "ENGINE={e} copies {list} into the new storage engine (ALGORITHM=COPY): every write waits until the copy ends"
        )),
        _ => None,
    });
    if let Some(msg) = copy {
        let help = if kinds.iter().any(|k| matches!(k, Kind::Convert(_))) {
            format!(
                "-- new data only, instant: ALTER TABLE {tq} DEFAULT CHARACTER SET utf8mb4;\n\
                 -- existing columns: convert with an online schema change tool (gh-ost, pt-online-schema-change)"
            )
        } else {
            "-- change the engine with an online schema change tool (gh-ost, pt-online-schema-change)".to_string()
        };
        out.push(Hit::new(msg).help(help));
        return;
    }
    let what = if kinds.contains(&Kind::Optimize) {
        "OPTIMIZE TABLE (for InnoDB: recreate + analyze)"
    } else if kinds.contains(&Kind::Force) {
        "ALTER TABLE ... FORCE"
    } else if kinds.contains(&Kind::EngineInnoDb) {
        "ENGINE=InnoDB"
    } else {
        // The keyword fallback matched a word inside a name or a string: nothing to say.
        return;
    };
    let sev = tables
        .iter()
        .filter_map(|t| online_rebuild_severity(st, ctx, t))
        .max();
    let Some(sev) = sev else {
        return;
    };
    out.push(
        Hit::new(format!(
            "{what} rebuilds {list} row by row: writes continue (in place, LOCK=NONE), but the whole table is \
             rewritten, needs room for a second copy, and replicas lag while they replay it"
        ))
        .severity(sev)
        .help(format!(
            "-- needed at all? InnoDB reclaims space by itself for most workloads. If so, on a large table use\n\
             -- gh-ost / pt-online-schema-change, or at least make the server refuse a blocking copy:\n\
             ALTER TABLE {tq} FORCE, ALGORITHM=INPLACE, LOCK=NONE;"
        )),
    );
}
